//! Rule files: the builtin ones load, and mistakes in a custom one are
//! reported with the file, the rule and the fix.

use synod_expert_code_security::{Language, RuleSet, Scanner};

#[test]
fn builtin_rules_cover_every_language_and_category_has_a_cwe() {
    let rules = RuleSet::builtin().unwrap();
    for (key, category) in rules.categories() {
        assert!(category.cwe > 0, "{key}");
    }
    let scanner = Scanner::new(rules);
    for language in Language::ALL {
        let path = match language {
            Language::Python => "x.py",
            Language::Java => "X.java",
            Language::JavaScript => "x.js",
            Language::Go => "x.go",
        };
        assert!(scanner.scan_source(path, "").unwrap().is_empty());
    }
}

#[test]
fn custom_rule_file_replaces_a_language() {
    let mut rules = RuleSet::builtin().unwrap();
    rules
        .add_json(
            "custom.json",
            r#"{ "language": "python",
                 "sources": [{ "pattern": "read_ticket", "kind": "ticket" }],
                 "sinks": [{ "id": "custom.sqli", "category": "sqli", "patterns": ["run_sql"], "args": [0], "message": "ticket text in SQL" }] }"#,
        )
        .unwrap();
    let findings = Scanner::new(rules)
        .scan_source(
            "t.py",
            "def f():\n    t = read_ticket()\n    run_sql('x' + t)\n    os.system(t)\n",
        )
        .unwrap();
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].rule_id, "custom.sqli");
    assert_eq!(findings[0].cwe, 89);
}

#[test]
fn rule_file_errors_name_the_place_and_the_fix() {
    let mut rules = RuleSet::builtin().unwrap();
    let unknown = rules
        .add_json("a.json", r#"{ "language": "python", "sinks": [{ "id": "r1", "category": "sqlinj", "patterns": ["x"], "message": "m" }] }"#)
        .unwrap_err()
        .to_string();
    assert!(
        unknown.contains("`r1`") && unknown.contains("`sqlinj`") && unknown.contains("sqli"),
        "{unknown}"
    );
    let regex = rules
        .add_json("b.json", r#"{ "language": "java", "patterns": [{ "id": "r2", "category": "hash", "patterns": ["x"], "arg_regex": "(", "message": "m" }] }"#)
        .unwrap_err()
        .to_string();
    assert!(
        regex.contains("`arg_regex`") && regex.contains("`b.json`"),
        "{regex}"
    );
    let field = rules
        .add_json("c.json", r#"{ "language": "go", "sink": [] }"#)
        .unwrap_err()
        .to_string();
    assert!(
        field.contains("unknown field `sink`") && field.contains("line 1"),
        "{field}"
    );
    let language = rules
        .add_json("d.json", r#"{ "language": "cobol" }"#)
        .unwrap_err()
        .to_string();
    assert!(language.contains("`cobol`"), "{language}");
}
