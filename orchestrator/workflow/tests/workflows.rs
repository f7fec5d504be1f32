//! Golden tests over workflow files: every file in `tests/invalid/` must
//! fail to load, and its rendered diagnostics must match the insta
//! snapshot in `tests/invalid/snapshots/`; every file in `tests/valid/`
//! (and the repository's `workflows/*.yaml`) must load without any
//! diagnostic. Review changed snapshots with `cargo insta review`.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use synod_types::SkillRef;
use synod_workflow::{LoadOptions, OutputSchemas, load_with};

/// Output schemas of the skills the test files use, standing in for a registry.
struct TestSchemas;

impl OutputSchemas for TestSchemas {
    fn output_schema(&self, uses: &SkillRef) -> Option<Value> {
        match (uses.expert.as_str(), uses.skill.as_str()) {
            ("detect", "alerts") => Some(json!({
                "type": "object",
                "properties": {
                    "alerts": {"type": "array", "items": {
                        "type": "object",
                        "properties": {
                            "rule": {"type": "string"},
                            "severity": {"type": "integer"}
                        }
                    }},
                    "count": {"type": "integer"}
                }
            })),
            _ => None,
        }
    }
}

fn yaml_files(directory: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(directory)
        .unwrap_or_else(|error| panic!("read {}: {error}", directory.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    files
}

fn relative(path: &Path) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

#[test]
fn invalid_workflows_report_located_diagnostics() {
    let directory = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/invalid");
    let files = yaml_files(&directory);
    assert!(files.len() >= 30, "only {} invalid workflows", files.len());
    let options = LoadOptions {
        schemas: Some(&TestSchemas),
    };
    for path in files {
        let source = std::fs::read_to_string(&path).expect("read workflow");
        let name = relative(&path);
        let diagnostics = match load_with(&source, &name, options) {
            Ok(_) => panic!("{name} loaded, but it is in tests/invalid"),
            Err(diagnostics) => diagnostics,
        };
        assert!(diagnostics.has_errors(), "{name}");
        for diagnostic in diagnostics.iter() {
            assert!(diagnostic.span.end <= source.len(), "{name}: {diagnostic}");
        }
        let stem = path
            .file_stem()
            .expect("file name")
            .to_string_lossy()
            .to_string();
        insta::with_settings!({
            snapshot_path => "invalid/snapshots",
            prepend_module_to_snapshot => false,
            omit_expression => true,
        }, {
            insta::assert_snapshot!(stem, diagnostics.render(&source));
        });
    }
}

#[test]
fn valid_workflows_load_cleanly() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = yaml_files(&root.join("tests/valid"));
    files.extend(yaml_files(&root.join("../../workflows")));
    assert!(files.len() >= 4, "{files:?}");
    let options = LoadOptions {
        schemas: Some(&TestSchemas),
    };
    for path in files {
        let source = std::fs::read_to_string(&path).expect("read workflow");
        let name = relative(&path);
        match load_with(&source, &name, options) {
            Ok(workflow) => assert!(
                workflow.warnings.is_empty(),
                "{name}: {:?}",
                workflow.warnings
            ),
            Err(diagnostics) => panic!("{name}:\n{}", diagnostics.render(&source)),
        }
    }
}
