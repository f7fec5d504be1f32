//! The SARIF log validates against the SARIF 2.1.0 JSON Schema (vendored in
//! tests/sarif-schema-2.1.0.json, see SARIF-SCHEMA-LICENSE.md).

use serde_json::Value;
use synod_expert_code_security::{Scanner, SourceFile, to_sarif};

fn schema() -> Value {
    let text = include_str!("sarif-schema-2.1.0.json");
    serde_json::from_str(text).unwrap()
}

#[test]
fn sarif_log_is_valid_sarif_2_1_0() {
    let scanner = Scanner::builtin().unwrap();
    let files = vec![
        SourceFile {
            path: "app/views.py".into(),
            content: "from flask import request\nimport os, hashlib\n\ndef v():\n    os.system(request.args['c'])\n    hashlib.md5(b'x')\n".into(),
        },
        SourceFile {
            path: "dir with space/A.java".into(),
            content: "class A { void f(HttpServletRequest request) { Runtime.getRuntime().exec(request.getParameter(\"c\")); } }".into(),
        },
        SourceFile {
            path: "README.txt".into(),
            content: "not code".into(),
        },
    ];
    let report = scanner.scan_files(&files);
    assert_eq!(report.findings.len(), 3);
    let log = to_sarif(&report, scanner.rules(), "0.1.0");
    let validator = jsonschema::validator_for(&schema()).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&log)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let results = log["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results[0]["ruleId"], "python.cmdi.os");
    assert_eq!(results[0]["properties"]["cwe"], "CWE-78");
    assert_eq!(
        results[0]["codeFlows"][0]["threadFlows"][0]["locations"][0]["location"]["physicalLocation"]
            ["region"]["startLine"],
        5
    );
    let notifications = &log["runs"][0]["invocations"][0]["toolExecutionNotifications"];
    assert_eq!(notifications.as_array().unwrap().len(), 1);
    // A broken log is rejected: the test can fail.
    let mut broken = log.clone();
    broken["runs"][0]["results"][0]["level"] = "fatal".into();
    assert!(!validator.is_valid(&broken));
}
