//! Accuracy and latency of the knowledge skills on questions generated from
//! the real ATT&CK / CAPEC / CWE data.
//!
//! ```text
//! zstd -dc ../shared/datasets/attack-stix/enterprise-attack.json.zst > /tmp/kn/ea.json
//! zstd -dc ../shared/datasets/attack-stix/stix-capec.json.zst > /tmp/kn/capec.json
//! zstd -dc ../shared/datasets/cwe/cwe-4.19.1-json.tar.zst | tar -x -C /tmp/kn
//! cargo run --release -p synod-expert-knowledge --example knowledge_eval -- \
//!     --attack /tmp/kn/ea.json --capec /tmp/kn/capec.json --cwe /tmp/kn/json_repo [--json out.json] \\
//!     [--steps ../shared/datasets/adversary-emulation-plans/steps.csv]
//! ```
//!
//! The ground truth is read from the raw JSON here, independently of the
//! crate's loader: id→name, name→id, technique→tactics, group→techniques
//! (current objects only) and CWE→CAPEC (`RelatedAttackPatterns`). Each
//! question is asked twice: through the structured skill (`lookup`/`links`)
//! and as a free-text question to `answer`. An answer counts as correct only
//! if it is right and cites the expected objects.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use synod_expert_knowledge::skills;
use synod_expert_knowledge::{Config, KnowledgeBase};

/// One generated question with its expected answer.
#[derive(Debug)]
struct Question {
    family: &'static str,
    subject: String,
    /// Expected ids (or the expected name for id→name).
    expected: BTreeSet<String>,
    /// The same question in words, for `answer`.
    text: String,
}

#[derive(Debug, Default)]
struct Tally {
    asked: usize,
    correct: usize,
    cited: usize,
    times: Vec<Duration>,
    failures: Vec<String>,
}

impl Tally {
    fn record(
        &mut self,
        correct: bool,
        cited: bool,
        time: Duration,
        failure: impl FnOnce() -> String,
    ) {
        self.asked += 1;
        self.correct += usize::from(correct && cited);
        self.cited += usize::from(cited);
        self.times.push(time);
        if !(correct && cited) && self.failures.len() < 5 {
            self.failures.push(failure());
        }
    }

    fn percentile(&self, p: f64) -> Duration {
        let mut times = self.times.clone();
        times.sort();
        if times.is_empty() {
            return Duration::ZERO;
        }
        times[((times.len() - 1) as f64 * p).round() as usize]
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map(PathBuf::from)
    };
    let (Some(attack), Some(capec), Some(cwe)) = (arg("--attack"), arg("--capec"), arg("--cwe"))
    else {
        return Err("usage: knowledge_eval --attack enterprise-attack.json --capec stix-capec.json --cwe json_repo/ [--json report.json] (decompress the .zst files of ../shared/datasets first)".into());
    };
    let started = Instant::now();
    let config = Config {
        attack_path: Some(attack.clone()),
        capec_path: Some(capec),
        cwe_path: Some(cwe.clone()),
    };
    let kb = config.load()?;
    let load_time = started.elapsed();
    eprintln!("loaded {} objects in {load_time:.2?}", kb.objects().len());

    let questions = generate(&attack, &cwe)?;
    let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
    for question in &questions {
        let (correct, cited, time, got) = ask_structured(&kb, question);
        tallies
            .entry(format!("{} (skill)", question.family))
            .or_default()
            .record(correct, cited, time, || {
                format!(
                    "{}: expected {:?}, got {got}",
                    question.subject, question.expected
                )
            });
        let (correct, cited, time, got) = ask_free_text(&kb, question);
        tallies
            .entry(format!("{} (answer)", question.family))
            .or_default()
            .record(correct, cited, time, || {
                format!(
                    "{:?}: expected {:?}, got {got}",
                    question.text, question.expected
                )
            });
    }
    report(&tallies, load_time, arg("--json").as_deref())?;
    search_recall(&kb);
    if let Some(steps) = arg("--steps") {
        verify_plans(&kb, &steps)?;
    }
    Ok(())
}

/// Runs `verify` on each adversary emulation plan (`steps.csv` of
/// ../shared/datasets/adversary-emulation-plans): real chains written
/// against older ATT&CK versions, in the plans' order.
fn verify_plans(kb: &KnowledgeBase, path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let rows = parse_csv(&std::fs::read_to_string(path)?);
    let header = rows.first().ok_or("empty steps.csv")?;
    let column = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .ok_or(format!("steps.csv has no `{name}` column"))
    };
    let (plan, order, technique) = (
        column("plan_file")?,
        column("order")?,
        column("technique_id")?,
    );
    let mut plans: BTreeMap<&str, Vec<(u32, &str)>> = BTreeMap::new();
    for row in &rows[1..] {
        if row.len() > technique.max(order).max(plan) {
            plans
                .entry(&row[plan])
                .or_default()
                .push((row[order].parse().unwrap_or(0), &row[technique]));
        }
    }
    let mut corrupted = Vec::new();
    println!("\n| plan | steps | verdict | unknown | revoked | deprecated | tactic order | time |");
    println!("|---|---|---|---|---|---|---|---|");
    for (name, mut steps) in plans {
        steps.sort_by_key(|s| s.0);
        let chain: Vec<skills::ChainStep> = steps
            .iter()
            .map(|(_, id)| skills::ChainStep {
                technique: (*id).to_owned(),
                timestamp: None,
            })
            .collect();
        let started = Instant::now();
        let checked = skills::verify(kb, &chain);
        let time = started.elapsed();
        let count =
            |kind: skills::ProblemKind| checked.problems.iter().filter(|p| p.kind == kind).count();
        println!(
            "| {name} | {} | {:?} | {} | {} | {} | {} | {time:.2?} |",
            chain.len(),
            checked.verdict,
            count(skills::ProblemKind::Unknown) + count(skills::ProblemKind::Malformed),
            count(skills::ProblemKind::Revoked),
            count(skills::ProblemKind::Deprecated),
            count(skills::ProblemKind::TacticOrder),
        );
        let order_problems = checked
            .problems
            .iter()
            .filter(|p| p.kind == skills::ProblemKind::TacticOrder);
        for problem in checked
            .problems
            .iter()
            .filter(|p| p.kind != skills::ProblemKind::TacticOrder)
            .take(2)
            .chain(order_problems)
        {
            println!("  {:?}: {}", problem.kind, problem.message);
        }
        corrupted.extend(corruptions(kb, &chain));
    }
    println!(
        "\n| corruption of each plan | plans | caught | with the right problem and suggestion |"
    );
    println!("|---|---|---|---|");
    let mut names: Vec<&str> = corrupted.iter().map(|c| c.0).collect();
    names.sort();
    names.dedup();
    for name in names {
        let cases: Vec<&(&str, bool, bool)> = corrupted.iter().filter(|c| c.0 == name).collect();
        let caught = cases.iter().filter(|c| c.1).count();
        let right = cases.iter().filter(|c| c.2).count();
        println!("| {name} | {} | {caught} | {right} |", cases.len());
    }
    Ok(())
}

/// Corrupts a real chain three ways and checks `verify` catches each:
/// (corruption, caught, caught with the right problem kind and suggestion).
fn corruptions(kb: &KnowledgeBase, chain: &[skills::ChainStep]) -> Vec<(&'static str, bool, bool)> {
    let step = |id: &str| skills::ChainStep {
        technique: id.to_owned(),
        timestamp: None,
    };
    let middle = chain.len() / 2;
    let baseline = skills::verify(kb, chain).problems.len();
    let mut cases = Vec::new();
    // A made-up id in the middle.
    let mut fake = chain.to_vec();
    fake.insert(middle, step("T1999.042"));
    let v = skills::verify(kb, &fake);
    let hit = v
        .problems
        .iter()
        .any(|p| p.step == middle && p.kind == skills::ProblemKind::Unknown);
    cases.push(("fake id inserted", v.problems.len() > baseline, hit));
    // A revoked id (T1086 PowerShell, revoked by T1059.001) in the middle.
    let mut revoked = chain.to_vec();
    revoked.insert(middle, step("T1086"));
    let v = skills::verify(kb, &revoked);
    let hit = v.problems.iter().any(|p| {
        p.step == middle
            && p.kind == skills::ProblemKind::Revoked
            && p.suggestion.as_ref().is_some_and(|s| s.id == "T1059.001")
    });
    cases.push(("revoked id inserted", v.problems.len() > baseline, hit));
    // Initial access (spearphishing attachment) appended after the attack.
    let mut late = chain.to_vec();
    late.push(step("T1566.001"));
    let v = skills::verify(kb, &late);
    let hit = v
        .problems
        .iter()
        .any(|p| p.step == chain.len() && p.kind == skills::ProblemKind::TacticOrder);
    cases.push((
        "initial access appended at the end",
        v.problems.len() > baseline,
        hit,
    ));
    cases
}

/// Minimal RFC 4180 reader (quoted fields, doubled quotes, newlines in quotes).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let (mut row, mut field, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => row.push(std::mem::take(&mut field)),
            ('\n', false) => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            ('\r', false) => {}
            _ => field.push(c),
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

/// Asks through `lookup` / `links`; returns (correct, cited, time, what came back).
fn ask_structured(kb: &KnowledgeBase, q: &Question) -> (bool, bool, Duration, String) {
    let started = Instant::now();
    if q.family == "cwe->capec" {
        let result = skills::links(kb, &q.subject);
        let time = started.elapsed();
        let Ok(links) = result else {
            return (false, false, time, format!("{result:?}"));
        };
        let got: BTreeSet<String> = links.capec.iter().map(|l| l.object.id.clone()).collect();
        let cited = q.expected.iter().all(|id| links.citations.contains(id));
        return (q.expected.is_subset(&got), cited, time, format!("{got:?}"));
    }
    let found = skills::lookup(kb, &q.subject, &[], 1);
    let time = started.elapsed();
    let Some(card) = found.objects.first() else {
        return (false, false, time, "nothing".to_owned());
    };
    let ids = |cites: &[skills::Cite]| -> BTreeSet<String> {
        cites.iter().map(|c| c.id.clone()).collect()
    };
    let got: BTreeSet<String> = match q.family {
        "id->name" => BTreeSet::from([card.object.name.clone()]),
        "name->id" => BTreeSet::from([card.object.id.clone()]),
        "technique->tactics" => ids(&card.tactics),
        _ => ids(&card.techniques),
    };
    let cited_ids: BTreeSet<String> = if q.family == "id->name" {
        BTreeSet::from([q.subject.clone()])
    } else {
        q.expected.clone()
    };
    let cited = cited_ids.iter().all(|id| found.citations.contains(id));
    (got == q.expected, cited, time, format!("{got:?}"))
}

/// Asks `answer` the question in words.
fn ask_free_text(kb: &KnowledgeBase, q: &Question) -> (bool, bool, Duration, String) {
    let started = Instant::now();
    let answer = skills::answer(kb, &q.text, 5);
    let time = started.elapsed();
    let top = answer.results.first().map(|r| &r.object);
    let cited: BTreeSet<String> = answer.citations.iter().cloned().collect();
    let (correct, cites) = match q.family {
        "id->name" => (
            top.is_some_and(|t| t.id == q.subject && q.expected.contains(&t.name)),
            cited.contains(&q.subject),
        ),
        "name->id" => (
            top.is_some_and(|t| q.expected.contains(&t.id)),
            q.expected.is_subset(&cited),
        ),
        // Related objects are cited after the subject.
        _ => {
            let related: BTreeSet<String> = answer
                .results
                .iter()
                .skip(1)
                .map(|r| r.object.id.clone())
                .collect();
            let right = if q.family == "cwe->capec" {
                q.expected.is_subset(&related)
            } else {
                related == q.expected
            };
            (
                top.is_some_and(|t| t.id == q.subject) && right,
                q.expected.is_subset(&cited),
            )
        }
    };
    (
        correct,
        cites,
        time,
        format!("{} [{}]", answer.answer, answer.intent),
    )
}

/// Builds the question set from the raw files.
fn generate(attack: &Path, cwe: &Path) -> Result<Vec<Question>, Box<dyn std::error::Error>> {
    let bundle: Value =
        serde_json::from_reader(std::io::BufReader::new(std::fs::File::open(attack)?))?;
    let objects = bundle["objects"]
        .as_array()
        .ok_or("no objects in the ATT&CK bundle")?;
    let current = |o: &Value| {
        !o["revoked"].as_bool().unwrap_or(false)
            && !o["x_mitre_deprecated"].as_bool().unwrap_or(false)
    };
    let attack_id = |o: &Value| -> Option<String> {
        o["external_references"]
            .as_array()?
            .iter()
            .find(|r| r["source_name"] == "mitre-attack")?["external_id"]
            .as_str()
            .map(str::to_owned)
    };
    let by_stix: HashMap<&str, &Value> = objects
        .iter()
        .filter_map(|o| Some((o["id"].as_str()?, o)))
        .collect();
    let mut parent_name: HashMap<&str, &str> = HashMap::new();
    let mut uses: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in objects.iter().filter(|o| o["type"] == "relationship") {
        let (Some(s), Some(t)) = (
            by_stix.get(r["source_ref"].as_str().unwrap_or_default()),
            by_stix.get(r["target_ref"].as_str().unwrap_or_default()),
        ) else {
            continue;
        };
        match r["relationship_type"].as_str() {
            Some("subtechnique-of") => {
                parent_name.insert(
                    s["id"].as_str().unwrap_or_default(),
                    t["name"].as_str().unwrap_or_default(),
                );
            }
            Some("uses")
                if s["type"] == "intrusion-set"
                    && t["type"] == "attack-pattern"
                    && current(s)
                    && current(t) =>
            {
                if let (Some(g), Some(tid)) = (attack_id(s), attack_id(t)) {
                    uses.entry(g).or_default().insert(tid);
                }
            }
            _ => {}
        }
    }
    let tactic_ids: HashMap<&str, String> = objects
        .iter()
        .filter(|o| o["type"] == "x-mitre-tactic")
        .filter_map(|o| Some((o["x_mitre_shortname"].as_str()?, attack_id(o)?)))
        .collect();
    let mut named: Vec<(String, String, &Value)> = Vec::new(); // (id, full name, object)
    for o in objects.iter().filter(|o| current(o)) {
        let kind = o["type"].as_str().unwrap_or_default();
        if !matches!(
            kind,
            "attack-pattern" | "intrusion-set" | "malware" | "tool"
        ) {
            continue;
        }
        let (Some(id), Some(name)) = (attack_id(o), o["name"].as_str()) else {
            continue;
        };
        let full = match parent_name.get(o["id"].as_str().unwrap_or_default()) {
            Some(parent) => format!("{parent}: {name}"),
            None => name.to_owned(),
        };
        named.push((id, full, o));
    }
    let mut name_count: HashMap<String, usize> = HashMap::new();
    for (_, full, _) in &named {
        *name_count.entry(full.to_lowercase()).or_default() += 1;
    }
    let mut questions = Vec::new();
    let mut ambiguous = 0;
    for (id, full, o) in &named {
        questions.push(Question {
            family: "id->name",
            subject: id.clone(),
            expected: BTreeSet::from([full.clone()]),
            text: format!("What is {id}?"),
        });
        if name_count[&full.to_lowercase()] == 1 {
            questions.push(Question {
                family: "name->id",
                subject: full.clone(),
                expected: BTreeSet::from([id.clone()]),
                text: format!("What is the ATT&CK id of \"{full}\"?"),
            });
        } else {
            ambiguous += 1;
        }
        if o["type"] == "attack-pattern" {
            let tactics: BTreeSet<String> = o["kill_chain_phases"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .filter(|p| p["kill_chain_name"] == "mitre-attack")
                .filter_map(|p| tactic_ids.get(p["phase_name"].as_str()?).cloned())
                .collect();
            questions.push(Question {
                family: "technique->tactics",
                subject: id.clone(),
                expected: tactics,
                text: format!("Which tactics does {id} belong to?"),
            });
        }
    }
    eprintln!("{ambiguous} names shared by several current objects: no name->id question for them");
    for (group, techniques) in uses {
        questions.push(Question {
            family: "group->techniques",
            text: format!("Which techniques does {group} use?"),
            subject: group,
            expected: techniques,
        });
    }
    let mut cwe_files: Vec<PathBuf> = std::fs::read_dir(cwe.join("W"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    cwe_files.sort();
    for file in cwe_files {
        let w: Value =
            serde_json::from_reader(std::io::BufReader::new(std::fs::File::open(&file)?))?;
        let status = w["Status"].as_str().unwrap_or_default();
        let capec: BTreeSet<String> = w["RelatedAttackPatterns"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|c| c.as_str().map(|c| format!("CAPEC-{c}")))
            .collect();
        if capec.is_empty() || status == "Deprecated" || status == "Obsolete" {
            continue;
        }
        let id = format!("CWE-{}", w["ID"].as_str().unwrap_or_default());
        questions.push(Question {
            family: "cwe->capec",
            text: format!("Which CAPEC attack patterns are related to {id}?"),
            subject: id,
            expected: capec,
        });
    }
    Ok(questions)
}

fn report(
    tallies: &BTreeMap<String, Tally>,
    load_time: Duration,
    json_path: Option<&Path>,
) -> Result<(), Box<dyn std::error::Error>> {
    println!("| questions | asked | correct+cited | accuracy | cited | p50 | p99 |");
    println!("|---|---|---|---|---|---|---|");
    let mut all = Tally::default();
    let mut rows = Vec::new();
    for (name, t) in tallies {
        let accuracy = t.correct as f64 / t.asked.max(1) as f64;
        println!(
            "| {name} | {} | {} | {:.1}% | {:.1}% | {:.2?} | {:.2?} |",
            t.asked,
            t.correct,
            100.0 * accuracy,
            100.0 * t.cited as f64 / t.asked.max(1) as f64,
            t.percentile(0.5),
            t.percentile(0.99)
        );
        rows.push(json!({
            "questions": name, "asked": t.asked, "correct": t.correct, "cited": t.cited,
            "p50_us": t.percentile(0.5).as_micros() as u64, "p99_us": t.percentile(0.99).as_micros() as u64,
            "failures": t.failures,
        }));
        all.asked += t.asked;
        all.correct += t.correct;
        all.cited += t.cited;
        all.times.extend(&t.times);
    }
    println!(
        "| **all** | {} | {} | {:.1}% | {:.1}% | {:.2?} | {:.2?} |",
        all.asked,
        all.correct,
        100.0 * all.correct as f64 / all.asked.max(1) as f64,
        100.0 * all.cited as f64 / all.asked.max(1) as f64,
        all.percentile(0.5),
        all.percentile(0.99)
    );
    println!("load time {load_time:.2?}");
    for (name, t) in tallies {
        for failure in &t.failures {
            println!("  miss [{name}] {failure}");
        }
    }
    if let Some(path) = json_path {
        let value = json!({ "load_ms": load_time.as_millis() as u64, "rows": rows });
        std::fs::write(path, serde_json::to_string_pretty(&value)?)?;
    }
    Ok(())
}

/// Free-text retrieval: the second sentence of each current technique's
/// description (the first usually paraphrases the name) asked to `answer`;
/// is the technique among the ranked results?
fn search_recall(kb: &KnowledgeBase) {
    let (mut asked, mut top1, mut top5, mut reciprocal) = (0usize, 0usize, 0usize, 0.0f64);
    let mut times = Tally::default();
    let (mut raw1, mut raw5, mut misses) = (0usize, 0usize, Vec::<String>::new());
    for object in kb
        .objects()
        .iter()
        .filter(|o| o.kind == synod_expert_knowledge::Kind::Technique && o.is_current())
    {
        let Some(sentence) = object.description.split(". ").nth(1) else {
            continue;
        };
        if sentence.split_whitespace().count() < 6 {
            continue;
        }
        asked += 1;
        let started = Instant::now();
        let answer = skills::answer(kb, sentence, 5);
        times.times.push(started.elapsed());
        let raw = kb.search(sentence, 5, |o| {
            o.is_current() && o.kind != synod_expert_knowledge::Kind::Analytic
        });
        if let Some(rank) = raw
            .iter()
            .position(|(i, _)| kb.object(*i).id() == object.id())
        {
            raw1 += usize::from(rank == 0);
            raw5 += 1;
        }
        let first = answer.results.first().map_or("-", |r| r.object.id.as_str());
        if misses.len() < 8 && first != object.id() {
            misses.push(format!(
                "{} <- {sentence:?} => {first} [{}]",
                object.id(),
                answer.intent
            ));
        }
        if let Some(rank) = answer
            .results
            .iter()
            .position(|r| r.object.id == object.id())
        {
            top1 += usize::from(rank == 0);
            top5 += 1;
            reciprocal += 1.0 / (rank + 1) as f64;
        }
    }
    let n = asked.max(1) as f64;
    println!(
        "\nsearch (2nd description sentence -> technique, {asked} techniques): top-1 {:.1}%, top-5 {:.1}%, MRR@5 {:.3}, p50 {:.2?}, p99 {:.2?}",
        100.0 * top1 as f64 / n,
        100.0 * top5 as f64 / n,
        reciprocal / n,
        times.percentile(0.5),
        times.percentile(0.99)
    );
    println!(
        "  BM25 alone: top-1 {:.1}%, top-5 {:.1}%",
        100.0 * raw1 as f64 / n,
        100.0 * raw5 as f64 / n
    );
    for miss in misses {
        println!("  miss {miss}");
    }
}
