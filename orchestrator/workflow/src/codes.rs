//! Stable diagnostic codes: `SYN-W…` for the workflow loader, `SYN-P…` for
//! the planner. A code never changes meaning once released; retired codes are
//! not reused. [`TABLE`] lists every code with a one-line meaning.

/// The file is not valid YAML (or uses anchors, aliases or tags).
pub const YAML_SYNTAX: &str = "SYN-W0001";
/// A value has the wrong YAML type (e.g. a list where a mapping is expected).
pub const WRONG_TYPE: &str = "SYN-W0002";
/// A mapping holds a field the format does not define.
pub const UNKNOWN_FIELD: &str = "SYN-W0003";
/// `needs` names a step that does not exist.
pub const UNKNOWN_NEED: &str = "SYN-W0004";
/// A required field is absent.
pub const MISSING_FIELD: &str = "SYN-W0005";
/// A mapping holds the same key twice.
pub const DUPLICATE_KEY: &str = "SYN-W0006";
/// A workflow name, step id or input name has characters that are not allowed.
pub const INVALID_NAME: &str = "SYN-W0007";
/// `uses` is not `expert/skill`.
pub const INVALID_USES: &str = "SYN-W0008";
/// A step needs itself, directly or through its own output.
pub const SELF_NEED: &str = "SYN-W0009";
/// Steps need each other in a cycle.
pub const DEPENDENCY_CYCLE: &str = "SYN-W0010";
/// A `${{ }}` expression does not parse.
pub const EXPRESSION_SYNTAX: &str = "SYN-W0011";
/// An expression reads an input the workflow does not declare.
pub const UNKNOWN_INPUT_REF: &str = "SYN-W0012";
/// An expression reads a step that does not exist, or not through `.output`.
pub const UNKNOWN_STEP_REF: &str = "SYN-W0013";
/// A duration (`timeout`, retry intervals) does not parse.
pub const INVALID_DURATION: &str = "SYN-W0014";
/// A `retry` policy is malformed or has impossible numbers.
pub const INVALID_RETRY: &str = "SYN-W0015";
/// An input's `type` is unknown, or its `default` does not have that type.
pub const INVALID_INPUT: &str = "SYN-W0016";
/// `steps` is empty.
pub const NO_STEPS: &str = "SYN-W0017";
/// A step lists the same need twice (warning).
pub const DUPLICATE_NEED: &str = "SYN-W0018";
/// Two fields that exclude each other, or one that needs another.
pub const CONFLICTING_FIELDS: &str = "SYN-W0019";
/// An expression reads a name that is not in scope where it is written.
pub const UNKNOWN_NAME: &str = "SYN-W0020";
/// An expression reads a step outside the reader's `needs` ancestry.
pub const NOT_IN_NEEDS: &str = "SYN-W0021";
/// An expression calls a function CEL does not have.
pub const UNKNOWN_FUNCTION: &str = "SYN-W0022";
/// An expression has a type error (e.g. a string added to a number).
pub const EXPRESSION_TYPE: &str = "SYN-W0023";
/// `secrets.X` names a secret the workflow does not declare.
pub const UNKNOWN_SECRET: &str = "SYN-W0024";
/// A secret is read somewhere other than binding headers or the webhook secret.
pub const SECRET_NOT_ALLOWED: &str = "SYN-W0025";
/// `env.X` names an `env` entry the workflow does not declare.
pub const UNKNOWN_ENV: &str = "SYN-W0026";
/// A `cron` schedule does not parse.
pub const INVALID_CRON: &str = "SYN-W0027";
/// A binding URL templates its scheme or host.
pub const TEMPLATED_HOST: &str = "SYN-W0028";
/// A binding URL is not an absolute `http(s)://host/…` URL.
pub const INVALID_URL: &str = "SYN-W0029";
/// An `approval` block lists no roles.
pub const INVALID_APPROVAL: &str = "SYN-W0030";
/// `item` is read outside a `for_each` step's `with`.
pub const ITEM_OUTSIDE_FOR_EACH: &str = "SYN-W0031";
/// A value is outside its allowed set or range.
pub const INVALID_VALUE: &str = "SYN-W0032";
/// A field that must be one `${{ }}` expression holds something else.
pub const NOT_AN_EXPRESSION: &str = "SYN-W0033";
/// A declared secret is never read (warning).
pub const UNUSED_SECRET: &str = "SYN-W0034";
/// `uses` names an expert the catalog does not know.
pub const UNKNOWN_EXPERT: &str = "SYN-P0001";
/// `uses` names a skill the expert does not offer.
pub const UNKNOWN_SKILL: &str = "SYN-P0002";
/// An expression reads an output field the skill's output schema does not have.
pub const UNKNOWN_OUTPUT_FIELD: &str = "SYN-P0003";
/// A plan step's input reads a step it does not list in `needs`.
pub const UNLISTED_REFERENCE: &str = "SYN-P0004";
/// The workflow uses a feature this orchestrator cannot execute yet.
pub const NOT_EXECUTABLE_YET: &str = "SYN-P0005";

/// Every code with its one-line meaning, in code order.
pub const TABLE: &[(&str, &str)] = &[
    (
        YAML_SYNTAX,
        "the file is not valid YAML, or uses anchors, aliases or tags",
    ),
    (
        WRONG_TYPE,
        "a value has the wrong YAML type (e.g. a list where a mapping is expected)",
    ),
    (
        UNKNOWN_FIELD,
        "a mapping holds a field the format does not define",
    ),
    (UNKNOWN_NEED, "`needs` names a step that does not exist"),
    (MISSING_FIELD, "a required field is absent"),
    (DUPLICATE_KEY, "a mapping holds the same key twice"),
    (
        INVALID_NAME,
        "a workflow name, step id or input name has characters that are not allowed",
    ),
    (INVALID_USES, "`uses` is not `expert/skill`"),
    (
        SELF_NEED,
        "a step needs itself, directly or through its own output",
    ),
    (DEPENDENCY_CYCLE, "steps need each other in a cycle"),
    (EXPRESSION_SYNTAX, "a `${{ }}` expression does not parse"),
    (
        UNKNOWN_INPUT_REF,
        "an expression reads an input the workflow does not declare",
    ),
    (
        UNKNOWN_STEP_REF,
        "an expression reads a step that does not exist, or not through `.output`",
    ),
    (
        INVALID_DURATION,
        "a duration (`timeout`, retry intervals) does not parse",
    ),
    (
        INVALID_RETRY,
        "a `retry` policy is malformed or has impossible numbers",
    ),
    (
        INVALID_INPUT,
        "an input's `type` is unknown, or its `default` does not have that type",
    ),
    (NO_STEPS, "`steps` is empty"),
    (DUPLICATE_NEED, "a step lists the same need twice (warning)"),
    (
        CONFLICTING_FIELDS,
        "two fields that exclude each other, or one that needs another",
    ),
    (
        UNKNOWN_NAME,
        "an expression reads a name that is not in scope where it is written",
    ),
    (
        NOT_IN_NEEDS,
        "an expression reads a step outside the reader's `needs` ancestry",
    ),
    (
        UNKNOWN_FUNCTION,
        "an expression calls a function CEL does not have",
    ),
    (
        EXPRESSION_TYPE,
        "an expression has a type error (e.g. a string added to a number)",
    ),
    (
        UNKNOWN_SECRET,
        "`secrets.X` names a secret the workflow does not declare",
    ),
    (
        SECRET_NOT_ALLOWED,
        "a secret is read somewhere other than binding headers or the webhook secret",
    ),
    (
        UNKNOWN_ENV,
        "`env.X` names an `env` entry the workflow does not declare",
    ),
    (INVALID_CRON, "a `cron` schedule does not parse"),
    (TEMPLATED_HOST, "a binding URL templates its scheme or host"),
    (
        INVALID_URL,
        "a binding URL is not an absolute `http(s)://host/…` URL",
    ),
    (INVALID_APPROVAL, "an `approval` block lists no roles"),
    (
        ITEM_OUTSIDE_FOR_EACH,
        "`item` is read outside a `for_each` step's `with`",
    ),
    (INVALID_VALUE, "a value is outside its allowed set or range"),
    (
        NOT_AN_EXPRESSION,
        "a field that must be one `${{ }}` expression holds something else",
    ),
    (UNUSED_SECRET, "a declared secret is never read (warning)"),
    (
        UNKNOWN_EXPERT,
        "`uses` names an expert the catalog does not know",
    ),
    (
        UNKNOWN_SKILL,
        "`uses` names a skill the expert does not offer",
    ),
    (
        UNKNOWN_OUTPUT_FIELD,
        "an expression reads an output field the skill's output schema does not have",
    ),
    (
        UNLISTED_REFERENCE,
        "a plan step's input reads a step it does not list in `needs`",
    ),
    (
        NOT_EXECUTABLE_YET,
        "the workflow uses a feature this orchestrator cannot execute yet",
    ),
];

/// The one-line meaning of `code`, if it is a known code.
pub fn meaning(code: &str) -> Option<&'static str> {
    for (known, text) in TABLE {
        if *known == code {
            return Some(text);
        }
    }
    None
}

/// `CODES.md`: every code with its meaning and the example files under
/// `tests/invalid/` whose snapshots show it (`examples(code)`).
pub fn markdown(examples: &dyn Fn(&str) -> Vec<String>) -> String {
    let mut out = String::from(
        "# synod workflow diagnostic codes\n\n\
         Generated from `orchestrator/workflow/src/codes.rs`; do not edit. `SYN-W` codes come \
         from the loader (`synod_workflow::load`), `SYN-P` codes from the planner. A code never \
         changes meaning. Each example is a file in `tests/invalid/` with its rendered \
         diagnostics in `tests/invalid/snapshots/`.\n\n\
         | code | meaning | examples |\n|---|---|---|\n",
    );
    for (code, meaning) in TABLE {
        let files = examples(code);
        let listed: Vec<String> = files
            .iter()
            .map(|file| format!("[{file}](tests/invalid/{file}.yaml)"))
            .collect();
        let listed = if listed.is_empty() {
            "-".to_owned()
        } else {
            listed.join(", ")
        };
        out.push_str(&format!("| `{code}` | {meaning} | {listed} |\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `CODES.md` must match the table and the invalid examples.
    #[test]
    fn committed_codes_page_is_current() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut snapshots: Vec<(String, String)> = Vec::new();
        for entry in std::fs::read_dir(root.join("tests/invalid/snapshots")).expect("snapshots") {
            let path = entry.expect("entry").path();
            let name = path
                .file_stem()
                .expect("name")
                .to_string_lossy()
                .to_string();
            let text = std::fs::read_to_string(&path).expect("read snapshot");
            snapshots.push((name, text));
        }
        snapshots.sort();
        let examples = |code: &str| -> Vec<String> {
            let needle = format!("[{code}]");
            snapshots
                .iter()
                .filter(|(_, text)| text.contains(&needle))
                .map(|(name, _)| name.clone())
                .take(4)
                .collect()
        };
        let generated = markdown(&examples);
        let path = root.join("CODES.md");
        if std::env::var_os("SYNOD_UPDATE_SCHEMA").is_some() {
            std::fs::write(&path, &generated).expect("write CODES.md");
            return;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "orchestrator/workflow/CODES.md is stale; regenerate it with \
             `SYNOD_UPDATE_SCHEMA=1 cargo test -p synod-workflow committed_codes_page_is_current` and commit it"
        );
    }

    #[test]
    fn codes_are_unique_and_well_formed() {
        let mut seen = std::collections::HashSet::new();
        for (code, text) in TABLE {
            assert!(
                code.starts_with("SYN-W") || code.starts_with("SYN-P"),
                "{code}"
            );
            assert_eq!(code.len(), 9, "{code}");
            assert!(code[5..].chars().all(|c| c.is_ascii_digit()), "{code}");
            assert!(!text.is_empty());
            assert!(seen.insert(*code), "{code} listed twice");
        }
        assert_eq!(
            meaning(UNKNOWN_NEED),
            Some("`needs` names a step that does not exist")
        );
        assert_eq!(meaning("SYN-W9999"), None);
    }
}
