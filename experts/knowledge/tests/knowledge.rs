//! Fixture-based tests of loading, search and every skill.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use serde_json::json;
use synod_expert_knowledge::skills::{self, ChainStep, MatchedBy, ProblemKind, Severity, Verdict};
use synod_expert_knowledge::{Config, Kind, KnowledgeBase, expert, expert_with_base};
use synod_expert_sdk::testing::TestExpert;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn config() -> Config {
    Config {
        attack_path: Some(fixture("enterprise-attack.json")),
        capec_path: Some(fixture("stix-capec.json")),
        cwe_path: Some(fixture("cwe")),
    }
}

fn kb() -> &'static KnowledgeBase {
    static KB: OnceLock<KnowledgeBase> = OnceLock::new();
    KB.get_or_init(|| config().load().expect("fixtures load"))
}

fn one(kb: &KnowledgeBase, id: &str) -> usize {
    kb.by_id(id)[0]
}

fn steps(ids: &[&str]) -> Vec<ChainStep> {
    ids.iter()
        .map(|id| ChainStep {
            technique: (*id).to_owned(),
            timestamp: None,
        })
        .collect()
}

#[test]
fn loads_objects_relationships_and_flags() {
    let kb = kb();
    let count = |kind| kb.objects().iter().filter(|o| o.kind == kind).count();
    assert_eq!(count(Kind::Technique), 12);
    assert_eq!(count(Kind::Tactic), 6);
    assert_eq!(count(Kind::Group), 2);
    assert_eq!(count(Kind::AttackPattern), 5);
    assert_eq!(count(Kind::CapecMitigation), 1);
    assert_eq!(count(Kind::Weakness), 5);
    assert_eq!(
        count(Kind::Category),
        1,
        "views are skipped, categories kept"
    );
    assert_eq!(
        kb.dangling_edges(),
        1,
        "the relationship to a missing object"
    );

    let lsass = kb.object(one(kb, "T1003.001"));
    assert_eq!(lsass.full_name, "OS Credential Dumping: LSASS Memory");
    assert!(lsass.is_subtechnique);
    assert_eq!(lsass.tactics, ["credential-access"]);
    assert_eq!(
        lsass.detection,
        ["Monitor for unexpected processes interacting with LSASS.exe."]
    );
    assert!(kb.object(one(kb, "T1086")).revoked);
    assert!(kb.object(one(kb, "T1064")).deprecated);
    assert!(kb.object(one(kb, "CAPEC-999")).deprecated);
    assert!(kb.object(one(kb, "CWE-999")).deprecated);
    let cwe89 = kb.object(one(kb, "cwe-89"));
    assert_eq!(cwe89.cites, ["CAPEC-108", "CAPEC-66", "CAPEC-7"]);
    assert_eq!(cwe89.aliases, ["SQLi"]);
    assert!(cwe89.description.contains("interpreted as SQL"));
    // Citation markers and markdown links are removed.
    let phishing = kb.object(one(kb, "T1566"));
    assert!(
        !phishing.description.contains("Citation"),
        "{}",
        phishing.description
    );
    assert!(
        kb.object(one(kb, "T1059.001"))
            .description
            .starts_with("Adversaries may abuse PowerShell commands")
    );
}

#[test]
fn tactic_order_comes_from_the_matrix() {
    let kb = kb();
    assert_eq!(
        kb.tactic_order(),
        [
            "reconnaissance",
            "initial-access",
            "execution",
            "credential-access",
            "discovery",
            "lateral-movement"
        ]
    );
}

#[test]
fn id_lookup_prefers_current_techniques_over_old_mitigations_with_the_same_id() {
    let kb = kb();
    assert_eq!(kb.object(one(kb, "T1174")).kind, Kind::Mitigation);
    let found = skills::lookup(kb, "t1003.001", &[], 5);
    assert_eq!(found.matched_by, MatchedBy::Id);
    let card = &found.objects[0];
    assert_eq!(card.object.id, "T1003.001");
    assert_eq!(card.parent.as_ref().unwrap().id, "T1003");
    assert_eq!(card.tactics[0].id, "TA0006");
    assert_eq!(card.used_by_groups[0].id, "G0007");
    for id in ["T1003.001", "T1003", "TA0006", "G0007"] {
        assert!(
            found.citations.contains(&id.to_owned()),
            "{id} cited: {:?}",
            found.citations
        );
    }
}

#[test]
fn lookup_by_name_alias_and_qualified_name() {
    let kb = kb();
    let by_alias = skills::lookup(kb, "fancy bear", &[], 5);
    assert_eq!(by_alias.matched_by, MatchedBy::Name);
    let apt28 = &by_alias.objects[0];
    assert_eq!(apt28.object.id, "G0007");
    let techniques: Vec<&str> = apt28.techniques.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(
        techniques,
        ["T1003.001", "T1566.001"],
        "revoked T1086 is left out"
    );
    assert_eq!(apt28.software[0].id, "S0002");

    // An object's own name beats another object's alias (APT28 has the alias "Mimikatz").
    let own_name = skills::lookup(kb, "mimikatz", &[], 5);
    let ids: Vec<&str> = own_name
        .objects
        .iter()
        .map(|c| c.object.id.as_str())
        .collect();
    assert_eq!(ids, ["S0002", "G0007"]);

    let qualified = skills::lookup(kb, "OS Credential Dumping: LSASS Memory", &[], 5);
    assert_eq!(qualified.objects[0].object.id, "T1003.001");
    // "PowerShell" names both the current sub-technique and the revoked one: current first.
    let powershell = skills::lookup(kb, "PowerShell", &[Kind::Technique], 5);
    assert_eq!(powershell.objects[0].object.id, "T1059.001");
    assert_eq!(powershell.objects[1].object.status, Some("revoked"));
    assert_eq!(
        powershell.objects[1].revoked_by.as_ref().unwrap().id,
        "T1059.001"
    );
    // Search is the fallback.
    let searched = skills::lookup(kb, "dump lsass credentials", &[Kind::Technique], 3);
    assert_eq!(searched.matched_by, MatchedBy::Search);
    assert_eq!(searched.objects[0].object.id, "T1003.001");
    assert_eq!(
        skills::lookup(kb, "zzzz", &[], 3).matched_by,
        MatchedBy::None
    );
}

#[test]
fn bm25_ranks_the_relevant_objects_first() {
    let kb = kb();
    let top = |q: &str| {
        kb.object(kb.search(q, 1, |o| o.is_current())[0].0)
            .id()
            .to_owned()
    };
    assert_eq!(top("spearphishing email attachment"), "T1566.001");
    assert_eq!(top("vetted library persistence layers"), "CWE-89");
    assert_eq!(top("prepared statements"), kb.object(kb.by_name("Use prepared statements (parameterized queries) instead of building SQL from user input.")[0]).id());
    assert_eq!(top("listing of valid accounts"), "T1087");
    // How mitigations apply, and analytics, are searchable.
    assert_eq!(top("credential guard"), "T1003.001");
    assert_eq!(top("heuristics signatures"), "M1049");
    assert_eq!(top("PROCESS_VM_READ handle"), "AN0001");
}

#[test]
fn mitigations_of_technique_capec_and_cwe() {
    let kb = kb();
    let m = skills::mitigations(kb, "T1003.001").unwrap();
    assert_eq!(m.mitigations.len(), 1);
    assert_eq!(m.mitigations[0].mitigation.id, "M1043");
    assert!(m.mitigations[0].how.contains("Credential Guard"));
    assert_eq!(m.citations, ["T1003.001", "M1043"]);
    let parent = skills::mitigations(kb, "T1003").unwrap();
    assert!(
        parent.mitigations.is_empty(),
        "the deprecated mitigation T1174 is left out"
    );

    let capec = skills::mitigations(kb, "CAPEC-66").unwrap();
    assert!(capec.mitigations[0].how.contains("prepared statements"));
    let cwe = skills::mitigations(kb, "CWE-89").unwrap();
    assert!(cwe.guidance[0].starts_with("Libraries or Frameworks: "));
    assert!(
        skills::mitigations(kb, "T9999")
            .unwrap_err()
            .contains("T9999")
    );
}

#[test]
fn detections_from_strategies_data_components_and_guidance() {
    let kb = kb();
    let d = skills::detections(kb, "T1003.001").unwrap();
    assert_eq!(d.strategies[0].strategy.id, "DET0001");
    assert_eq!(d.strategies[0].analytics[0].analytic.id, "AN0001");
    assert_eq!(d.strategies[0].analytics[0].platforms, ["Windows"]);
    assert_eq!(d.guidance.len(), 1);
    assert_eq!(d.citations, ["T1003.001", "DET0001", "AN0001"]);
    let old_style = skills::detections(kb, "T1087").unwrap();
    assert_eq!(old_style.strategies[0].strategy.id, "DC0032");
    assert!(old_style.strategies[0].how.contains("net.exe"));
    assert!(
        skills::detections(kb, "CWE-89").unwrap().guidance[0]
            .starts_with("Automated Static Analysis")
    );
}

#[test]
fn links_between_cwe_capec_and_attack() {
    let kb = kb();
    let from_cwe = skills::links(kb, "CWE-451").unwrap();
    assert_eq!(from_cwe.capec[0].object.id, "CAPEC-98");
    let attack: Vec<(&str, &[String])> = from_cwe
        .attack
        .iter()
        .map(|l| (l.object.id.as_str(), l.via.as_slice()))
        .collect();
    assert_eq!(
        attack,
        [
            ("T1566", &["CAPEC-98".to_owned()][..]),
            ("T1566.001", &["CAPEC-98".to_owned()][..])
        ]
    );
    let from_technique = skills::links(kb, "T1566").unwrap();
    assert_eq!(from_technique.capec[0].object.id, "CAPEC-98");
    assert_eq!(from_technique.cwe[0].object.id, "CWE-451");
    // CWE-89 links both ways; CAPEC-108 is referenced but not loaded.
    let sqli = skills::links(kb, "CWE-89").unwrap();
    let capec: Vec<&str> = sqli.capec.iter().map(|l| l.object.id.as_str()).collect();
    assert_eq!(capec, ["CAPEC-7", "CAPEC-66", "CAPEC-108"]);
    assert_eq!(sqli.capec[2].object.name, "");
    let from_capec = skills::links(kb, "CAPEC-66").unwrap();
    let cwe: Vec<&str> = from_capec
        .cwe
        .iter()
        .map(|l| l.object.id.as_str())
        .collect();
    assert_eq!(cwe, ["CWE-89", "CWE-1286"]);
    // CAPEC's bare ATT&CK number "1078" becomes T1078.
    assert_eq!(
        skills::links(kb, "CAPEC-600").unwrap().attack[0].object.id,
        "T1078"
    );
    assert!(skills::links(kb, "G0007").is_err());
}

#[test]
fn answers_cite_their_objects() {
    let kb = kb();
    let what = skills::answer(kb, "What is T1003.001?", 5);
    assert_eq!(what.intent, "describe");
    assert_eq!(what.results[0].object.id, "T1003.001");
    assert!(
        what.answer
            .starts_with("T1003.001 (OS Credential Dumping: LSASS Memory) is an ATT&CK technique")
    );

    let tactics = skills::answer(kb, "Which tactics does Valid Accounts belong to?", 5);
    assert_eq!(tactics.intent, "tactics");
    assert_eq!(tactics.citations, ["T1078", "TA0001", "TA0006", "TA0008"]);

    let group = skills::answer(kb, "Which techniques does Fancy Bear use?", 5);
    assert_eq!(group.intent, "techniques");
    assert!(group.citations.contains(&"T1566.001".to_owned()));

    let mitigate = skills::answer(kb, "How can I mitigate LSASS credential dumping?", 5);
    assert_eq!(mitigate.intent, "mitigations");
    assert_eq!(mitigate.citations, ["T1003.001", "M1043"]);

    // Without a named subject the best hit of a suitable kind is the subject:
    // a technique, not the detection strategy whose name matches best.
    let detect = skills::answer(kb, "how to detect lsass memory access", 5);
    assert_eq!(detect.intent, "detections");
    assert_eq!(detect.citations, ["T1003.001", "DET0001"]);
    let groups = skills::answer(kb, "Which groups use Mimikatz?", 5);
    assert_eq!(groups.intent, "groups");
    assert_eq!(groups.citations, ["S0002", "G0007"]);

    let links = skills::answer(kb, "Which CAPEC patterns are linked to CWE-89?", 5);
    assert_eq!(links.intent, "links");
    assert!(links.citations.contains(&"CAPEC-66".to_owned()));

    // A name mentioned in passing in a longer text does not make it the subject.
    let passing = skills::answer(
        kb,
        "Keylogging is used to acquire credentials for new access when OS Credential Dumping is not effective and keystrokes must be intercepted",
        5,
    );
    assert_eq!(passing.intent, "search");
    let named = skills::answer(kb, "What is OS Credential Dumping?", 5);
    assert_eq!(named.intent, "describe");
    assert_eq!(named.results[0].object.id, "T1003");
    assert!(
        named.results.len() > 1,
        "other candidates follow the subject"
    );

    let search = skills::answer(kb, "emails with malicious attachments", 3);
    assert_eq!(search.intent, "search");
    assert_eq!(search.results[0].object.id, "T1566.001");
    assert!(search.answer.contains("malicious attachment"));
    assert!(search.results.len() <= 3);
}

#[test]
fn verify_accepts_a_consistent_chain() {
    let kb = kb();
    let v = skills::verify(
        kb,
        &steps(&["T1566.001", "T1059.001", "T1003.001", "T1087", "T1021"]),
    );
    assert_eq!(v.verdict, Verdict::Valid, "{:?}", v.problems);
    // Valid Accounts can be lateral movement after discovery.
    let v = skills::verify(kb, &steps(&["T1566", "T1087", "T1078"]));
    assert_eq!(v.verdict, Verdict::Valid, "{:?}", v.problems);
    assert_eq!(
        v.steps[2].assigned_tactic.as_deref(),
        Some("lateral-movement")
    );
    assert!(v.citations.contains(&"TA0008".to_owned()));
    // Inside the network tactics recur in any order (execution after discovery).
    let v = skills::verify(
        kb,
        &steps(&["T1566", "T1003.001", "T1087", "T1059.001", "T1021"]),
    );
    assert_eq!(v.verdict, Verdict::Valid, "{:?}", v.problems);
    assert_eq!(v.steps[3].assigned_tactic.as_deref(), Some("execution"));
}

#[test]
fn verify_catches_fake_malformed_and_non_technique_ids() {
    let kb = kb();
    let v = skills::verify(
        kb,
        &steps(&["T1566", "T9999", "T1003.999", "lsass dump", "T1174"]),
    );
    assert_eq!(v.verdict, Verdict::Invalid);
    let kinds: Vec<(usize, ProblemKind)> = v.problems.iter().map(|p| (p.step, p.kind)).collect();
    assert_eq!(
        kinds,
        [
            (1, ProblemKind::Unknown),
            (2, ProblemKind::Unknown),
            (3, ProblemKind::Malformed),
            (4, ProblemKind::NotATechnique)
        ]
    );
    assert!(v.problems.iter().all(|p| p.severity == Severity::Error));
    assert!(v.problems[0].suggestion.is_none());
    assert_eq!(
        v.problems[1].suggestion.as_ref().unwrap().id,
        "T1003",
        "parent suggested"
    );
    assert_eq!(v.problems[2].suggestion.as_ref().unwrap().id, "T1003.001");
}

#[test]
fn verify_flags_revoked_ids_with_their_replacement_and_deprecated_ids() {
    let kb = kb();
    let v = skills::verify(kb, &steps(&["T1566", "T1086", "T1064"]));
    assert_eq!(v.verdict, Verdict::Revise);
    assert_eq!(v.problems[0].kind, ProblemKind::Revoked);
    assert_eq!(v.problems[0].suggestion.as_ref().unwrap().id, "T1059.001");
    assert!(v.problems[0].message.contains("use T1059.001"));
    assert_eq!(v.problems[1].kind, ProblemKind::Deprecated);
    assert!(v.citations.contains(&"T1059.001".to_owned()));
}

#[test]
fn verify_flags_out_of_order_tactics_and_times() {
    let kb = kb();
    let v = skills::verify(kb, &steps(&["T1003.001", "T1566.001", "T1021"]));
    assert_eq!(v.verdict, Verdict::Revise);
    assert_eq!(v.problems.len(), 1, "{:?}", v.problems);
    assert_eq!(v.problems[0].kind, ProblemKind::TacticOrder);
    assert_eq!(v.problems[0].step, 1);
    assert!(
        v.problems[0].message.contains("credential-access"),
        "{}",
        v.problems[0].message
    );

    // With timestamps the chain is checked in time order: this one is fine
    // in time, though listed out of order.
    let timed = |id: &str, t: &str| ChainStep {
        technique: id.to_owned(),
        timestamp: Some(t.to_owned()),
    };
    let v = skills::verify(
        kb,
        &[
            timed("T1003.001", "2024-05-01T10:05:00Z"),
            timed("T1566.001", "2024-05-01T10:00:00Z"),
            timed("T1021", "2024-05-01T10:09:00Z"),
        ],
    );
    let kinds: Vec<ProblemKind> = v.problems.iter().map(|p| p.kind).collect();
    assert_eq!(kinds, [ProblemKind::TimeOrder]);
    let v = skills::verify(kb, &[timed("T1566", "not a time")]);
    assert_eq!(v.problems[0].kind, ProblemKind::BadTimestamp);
}

#[test]
fn expert_reports_missing_data() {
    let missing = Config {
        attack_path: Some(fixture("nope.json")),
        ..Config::default()
    };
    let error = expert(&missing).unwrap_err();
    assert!(
        error.contains("nope.json") && error.contains("cannot open"),
        "{error}"
    );
    assert!(
        expert(&Config::default())
            .unwrap_err()
            .contains("attack_path")
    );
    let not_stix = Config {
        cwe_path: Some(fixture("cwe/V")),
        ..Config::default()
    };
    assert!(
        expert(&not_stix)
            .unwrap_err()
            .contains("no ATT&CK technique")
    );
}

#[tokio::test]
async fn expert_serves_every_skill_through_the_sdk() {
    let expert = TestExpert::new(expert(&config()).unwrap()).unwrap();
    let mut names = expert.server().skill_names();
    names.sort();
    assert_eq!(
        names,
        [
            "answer",
            "detections",
            "links",
            "lookup",
            "mitigations",
            "verify"
        ]
    );

    let found = expert
        .call("lookup", json!({ "query": "Mimikatz" }))
        .await
        .unwrap();
    assert_eq!(found.output["objects"][0]["id"], "S0002");
    assert_eq!(found.output["objects"][0]["kind"], "software");
    assert_eq!(found.confidence, 0.95);

    let only_groups = expert
        .call(
            "lookup",
            json!({ "query": "apt28", "kinds": ["group"], "limit": 1 }),
        )
        .await
        .unwrap();
    assert_eq!(only_groups.output["citations"][0], "G0007");

    for (skill, id, field) in [
        ("mitigations", "T1566", "mitigations"),
        ("detections", "T1087", "strategies"),
        ("links", "CWE-89", "capec"),
    ] {
        let out = expert.call(skill, json!({ "id": id })).await.unwrap();
        assert!(
            !out.output[field].as_array().unwrap().is_empty(),
            "{skill}: {}",
            out.output
        );
    }
    let bad = expert
        .call("mitigations", json!({ "id": "T0000" }))
        .await
        .unwrap_err();
    assert!(bad.to_string().contains("T0000"), "{bad}");

    let answered = expert
        .call("answer", json!({ "question": "who uses T1003.001?" }))
        .await
        .unwrap();
    assert_eq!(answered.output["intent"], "groups");
    assert_eq!(answered.output["citations"], json!(["T1003.001", "G0007"]));

    let verified = expert
        .call(
            "verify",
            json!({ "chain": ["T1566", { "technique_id": "T1086", "timestamp": 1714557600 }, { "technique": "T9999" }] }),
        )
        .await
        .unwrap();
    assert_eq!(verified.output["verdict"], "invalid");
    assert_eq!(
        verified.output["problems"][0]["suggestion"]["id"],
        "T1059.001"
    );
    assert_eq!(verified.confidence, 0.2);
    // An attack chain artifact with `steps` and other fields is accepted too.
    let artifact = expert
        .call(
            "verify",
            json!({ "steps": [{ "technique_id": "T1566.001", "tactic": "initial-access" }, { "technique_id": "T1003.001" }], "confidence": 0.7 }),
        )
        .await
        .unwrap();
    assert_eq!(artifact.output["verdict"], "valid");
    let rejected = expert
        .call("verify", json!({ "chain": [{ "time": 1 }] }))
        .await;
    assert!(rejected.is_err(), "schema requires a technique id");

    // The same base can be shared by several experts.
    let shared = Arc::new(config().load().unwrap());
    assert!(TestExpert::new(expert_with_base(shared)).is_ok());
}

#[test]
fn builds_from_values_and_rejects_non_bundles() {
    let technique = json!({
        "type": "attack-pattern", "id": "attack-pattern--1", "name": "Phishing",
        "external_references": [{ "source_name": "mitre-attack", "external_id": "T1566" }]
    });
    let cwe = json!({ "Weaknesses": [{ "ID": 79, "Name": "XSS", "Description": "d", "RelatedAttackPatterns": [63] }] });
    let kb = synod_expert_knowledge::from_values(&[json!([technique])], &[cwe]).unwrap();
    assert_eq!(kb.object(kb.by_id("T1566")[0]).name, "Phishing");
    assert_eq!(kb.object(kb.by_id("CWE-79")[0]).cites, ["CAPEC-63"]);
    assert!(kb.tactic_order().is_empty());
    let error = synod_expert_knowledge::from_values(&[json!("x")], &[]).unwrap_err();
    assert!(error.contains("STIX bundle"), "{error}");
}
