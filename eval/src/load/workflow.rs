//! A benchmark shape (`diamond6`, …) as a workflow YAML the server runs:
//! one step per execution of [`Workload::executions`], each calling
//! `expert/skill` with `{node, n_inputs}`, needs as in the shape. Pure.

use std::fmt::Write as _;

use crate::bench::workload::Workload;

/// Step settings added to every step (`timeout`, `retry`), as YAML flow
/// mappings, e.g. `retry: "{ policy: fixed, interval: 50ms, max_attempts: 3 }"`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepSettings {
    /// `timeout:` value, e.g. `500ms`.
    pub timeout: Option<String>,
    /// `retry:` value, a YAML flow mapping.
    pub retry: Option<String>,
}

/// The workflow `name` running `workload` with `uses` (`expert/skill`).
pub fn workflow_yaml(
    name: &str,
    workload: &Workload,
    uses: &str,
    settings: &StepSettings,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "name: {name}");
    let _ = writeln!(
        out,
        "description: the `{}` benchmark shape ({} steps) calling {uses}",
        workload.name, workload.node_executions
    );
    out.push_str("steps:\n");
    for execution in workload.executions() {
        let _ = writeln!(out, "  {}:", execution.id);
        let _ = writeln!(out, "    uses: {uses}");
        if !execution.needs.is_empty() {
            let _ = writeln!(out, "    needs: [{}]", execution.needs.join(", "));
        }
        let _ = writeln!(
            out,
            "    with: {{ node: \"{}\", n_inputs: {} }}",
            execution.node, execution.n_inputs
        );
        if let Some(timeout) = &settings.timeout {
            let _ = writeln!(out, "    timeout: {timeout}");
        }
        if let Some(retry) = &settings.retry {
            let _ = writeln!(out, "    retry: {retry}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diamond6_becomes_a_valid_workflow_with_its_joins() {
        let workload = Workload::builtin("diamond6").unwrap();
        let settings = StepSettings {
            timeout: Some("500ms".into()),
            retry: Some("{ policy: fixed, interval: 20ms, max_attempts: 3 }".into()),
        };
        let yaml = workflow_yaml("load-diamond6", &workload, "bench/noop", &settings);
        let workflow = synod_workflow::load(&yaml, "load.yaml").unwrap_or_else(|d| {
            panic!("{}", d.render(&yaml));
        });
        assert_eq!(workflow.name, "load-diamond6");
        assert_eq!(workflow.steps.len(), 6);
        assert!(yaml.contains("  join:\n    uses: bench/noop\n    needs: [b0, b1, b2, b3]\n"));
        assert!(yaml.contains("with: { node: \"join\", n_inputs: 5 }"));
        assert_eq!(yaml.matches("timeout: 500ms").count(), 6);
    }
}
