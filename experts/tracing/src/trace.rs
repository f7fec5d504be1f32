//! Reconstruction: from the provenance graph, the detections (Sigma alerts
//! passed in, plus the tracer's behavioural findings) and any listed
//! techniques, work out the root cause, the attack path, the ATT&CK-ordered
//! chain of steps, the entities involved and the likely groups.
//!
//! **Root cause.** From each detected node, walk causal parents: the
//! process that injected a thread into it, else its parent unless the parent
//! is a Windows launcher ([`is_boundary_process`]: explorer, services,
//! svchost, wmiprvse, …) that was not itself injected, else the process that
//! installed the service that started it. The top of the walk is that
//! node's root; when the root process runs in a network or remote-desktop
//! logon from another address, or was launched by services/WMI right after
//! a network logon, the logon becomes the root. The root shared by the most
//! detected nodes (earliest on ties) is the root cause.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use petgraph::graph::NodeIndex;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::attack::{AttackData, tactic_rank};
use crate::attribution::{Attributor, CAUTION};
use crate::graph::{EdgeKind, NodeKind, ProvenanceGraph, is_boundary_process, millis_between};
use crate::heuristics;
use crate::record::{Action, ProcessRef, Record};

/// One alert of `attack-detection/detect` (unknown fields ignored).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AlertInput {
    /// Sigma rule id.
    pub rule_id: String,
    /// Rule title.
    pub title: String,
    /// Rule level.
    pub level: String,
    /// ATT&CK technique ids.
    pub techniques: Vec<String>,
    /// ATT&CK tactic names (`credential-access`).
    pub tactics: Vec<String>,
    /// Matched events.
    pub events: Vec<AlertEvent>,
}

/// One matched event of an alert.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AlertEvent {
    /// `input` or a file path.
    pub source: Option<String>,
    /// Position in the source.
    pub index: Option<usize>,
    /// EVTX record id.
    pub record_id: Option<u64>,
    /// Timestamp as written.
    pub timestamp: Option<String>,
    /// Computer name.
    pub computer: Option<String>,
    /// Event id.
    pub event_id: Option<u32>,
    /// Fields the rule tested.
    pub fields: BTreeMap<String, String>,
}

/// Limits of one reconstruction.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Groups listed in `attribution`.
    pub attribution: usize,
    /// Evidence references per step.
    pub evidence_per_step: usize,
    /// Nodes in `path`.
    pub path_nodes: usize,
    /// Entries per `entities` list.
    pub entities: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            attribution: 5,
            evidence_per_step: 10,
            path_nodes: 300,
            entities: 100,
        }
    }
}

/// A detection: one technique seen in one place.
#[derive(Debug, Clone)]
struct Detection {
    technique: String,
    tactic: Option<String>,
    record: Option<usize>,
    timestamp: Option<String>,
    host: Option<String>,
    process: Option<String>,
    evidence: Value,
    why: String,
}

/// Everything [`reconstruct`] needs besides the graph.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// Alerts of `attack-detection/detect`.
    pub alerts: &'a [AlertInput],
    /// Techniques known from elsewhere (ids).
    pub techniques: &'a [String],
    /// Whether to add the tracer's behavioural findings.
    pub heuristics: bool,
}

/// Reconstructs the attack: the JSON object of the `reconstruct` skill
/// (`root_cause`, `steps`, `path`, `entities`, `attribution`, `summary`,
/// `confidence`, `caution`, `counts`).
pub fn reconstruct(
    graph: &ProvenanceGraph,
    inputs: Inputs<'_>,
    attack: &AttackData,
    attributor: &Attributor,
    limits: Limits,
) -> Value {
    let mut detections = alert_detections(graph, inputs.alerts);
    let alert_detection_count = detections.len();
    if inputs.heuristics {
        detections.extend(heuristic_detections(graph));
    }
    for technique in inputs.techniques {
        detections.push(Detection {
            technique: attack.canonical(technique),
            tactic: None,
            record: None,
            timestamp: None,
            host: None,
            process: None,
            evidence: json!({ "source": "techniques" }),
            why: "listed in the input".to_owned(),
        });
    }
    let mut alerted: Vec<NodeIndex> = detections
        .iter()
        .filter_map(|d| graph.subject(d.record?))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    alerted.sort_by(|a, b| graph.node(*a).first_seen.cmp(&graph.node(*b).first_seen));

    let roots: Vec<(NodeIndex, Root)> =
        alerted.iter().map(|n| (*n, find_root(graph, *n))).collect();
    let chosen = choose_root(graph, &roots);
    let root_cause = chosen.as_ref().map(|root| {
        let covered = roots.iter().filter(|(_, r)| r.node == root.node).count();
        root_json(graph, root, covered, alerted.len())
    });
    let path = path_json(graph, &roots, &detections, &alerted, limits.path_nodes);
    let steps = steps(attack, detections, limits.evidence_per_step);
    let techniques: Vec<String> = steps
        .iter()
        .filter_map(|s| s["technique_id"].as_str().map(str::to_owned))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let attribution = attributor.rank(&techniques, limits.attribution);
    let entities = entities_json(graph, &path, inputs.alerts, limits.entities);
    let tactics: BTreeSet<&str> = steps.iter().filter_map(|s| s["tactic"].as_str()).collect();
    let covered = chosen.as_ref().map_or(0, |root| {
        roots.iter().filter(|(_, r)| r.node == root.node).count()
    });
    let mut confidence: f64 = 0.0;
    if !steps.is_empty() {
        confidence += 0.2;
    }
    if chosen.is_some() {
        confidence += 0.3 + 0.2 * covered as f64 / alerted.len().max(1) as f64;
    }
    if alert_detection_count > 0 {
        confidence += 0.2;
    }
    if tactics.len() >= 3 {
        confidence += 0.1;
    }
    let summary = summary(&root_cause, &steps, &path, &attribution);
    json!({
        "root_cause": root_cause,
        "steps": steps,
        "path": path,
        "entities": entities,
        "attribution": attribution,
        "summary": summary,
        "confidence": (confidence.min(0.95) * 100.0).round() / 100.0,
        "caution": CAUTION,
        "counts": {
            "records": graph.records().len(),
            "nodes": graph.graph().node_count(),
            "edges": graph.graph().edge_count(),
            "alerted_nodes": alerted.len(),
        },
    })
}

// === detections ===

fn alert_detections(graph: &ProvenanceGraph, alerts: &[AlertInput]) -> Vec<Detection> {
    let records = graph.records();
    let mut by_reference: HashMap<(&str, usize), usize> = HashMap::new();
    let mut by_record_id: HashMap<(&str, u64), usize> = HashMap::new();
    for (index, record) in records.iter().enumerate() {
        by_reference.insert(
            (record.reference.source.as_str(), record.reference.index),
            index,
        );
        if let Some(id) = record.reference.record_id {
            by_record_id.insert((record.host.as_str(), id), index);
        }
    }
    let mut detections = Vec::new();
    for alert in alerts {
        for event in &alert.events {
            let host = event.computer.as_deref().map(str::to_ascii_lowercase);
            let record = match (&event.source, event.index) {
                (Some(source), Some(index)) => by_reference.get(&(source.as_str(), index)).copied(),
                _ => None,
            }
            .or_else(|| {
                by_record_id
                    .get(&(host.as_deref().unwrap_or("unknown"), event.record_id?))
                    .copied()
            });
            let process = record
                .and_then(|r| graph.subject(r))
                .filter(|n| graph.node(*n).kind == NodeKind::Process)
                .map(|n| graph.node(n).label.clone())
                .or_else(|| {
                    [
                        "Image",
                        "SourceImage",
                        "NewProcessName",
                        "ProcessName",
                        "Application",
                    ]
                    .iter()
                    .find_map(|f| event.fields.get(*f).cloned())
                });
            let timestamp = record
                .and_then(|r| records[r].timestamp.clone())
                .or_else(|| {
                    event
                        .timestamp
                        .as_deref()
                        .and_then(crate::record::normalize_timestamp)
                });
            let evidence = match record {
                Some(r) => records[r].evidence(),
                None => json!({
                    "source": event.source, "index": event.index, "record_id": event.record_id,
                    "event_id": event.event_id,
                }),
            };
            let techniques: Vec<Option<&String>> = if alert.techniques.is_empty() {
                vec![None]
            } else {
                alert.techniques.iter().map(Some).collect()
            };
            for technique in techniques {
                detections.push(Detection {
                    technique: technique.cloned().unwrap_or_default(),
                    // alert tactics choose among a technique's tactics
                    tactic: Some(alert.tactics.join(",")),
                    record,
                    timestamp: timestamp.clone(),
                    host: host
                        .clone()
                        .or_else(|| record.map(|r| records[r].host.clone())),
                    process: process.clone(),
                    evidence: evidence.clone(),
                    why: format!("alert: {} ({})", alert.title, alert.level),
                });
            }
        }
    }
    detections
}

fn heuristic_detections(graph: &ProvenanceGraph) -> Vec<Detection> {
    let mut detections = Vec::new();
    for (index, record) in graph.records().iter().enumerate() {
        for finding in heuristics::detect(&with_parent_image(graph, index, record)) {
            let process = graph
                .subject(index)
                .filter(|n| graph.node(*n).kind == NodeKind::Process)
                .map(|n| graph.node(n).label.clone());
            detections.push(Detection {
                technique: finding.technique.to_owned(),
                tactic: Some(finding.tactic.to_owned()),
                record: Some(index),
                timestamp: record.timestamp.clone(),
                host: Some(record.host.clone()),
                process,
                evidence: record.evidence(),
                why: finding.reason.to_owned(),
            });
        }
    }
    detections
}

/// `record`, with the parent image of a process creation filled in from the
/// graph when the event lacks it (Security 4688 before Windows 10).
fn with_parent_image<'a>(
    graph: &ProvenanceGraph,
    index: usize,
    record: &'a Record,
) -> std::borrow::Cow<'a, Record> {
    if let Action::ProcessCreate { process, parent } = &record.action
        && parent.image.is_none()
        && let Some(child) = graph.subject(index)
        && let Some((parent_node, _)) = graph.incoming(child, EdgeKind::Spawned).first()
        && let Some(image) = graph.node(*parent_node).process.image.clone()
    {
        let mut filled = record.clone();
        filled.action = Action::ProcessCreate {
            process: process.clone(),
            parent: ProcessRef {
                image: Some(image),
                ..parent.clone()
            },
        };
        return std::borrow::Cow::Owned(filled);
    }
    std::borrow::Cow::Borrowed(record)
}

// === root cause ===

/// A node's root and how the walk got there.
#[derive(Debug, Clone)]
struct Root {
    node: NodeIndex,
    /// The walk from the detected node up to the root: (child, parent, edge kind).
    links: Vec<(NodeIndex, NodeIndex, &'static str)>,
    /// Why the root is the root.
    reason: String,
}

fn injected(graph: &ProvenanceGraph, node: NodeIndex) -> Option<NodeIndex> {
    graph
        .incoming(node, EdgeKind::InjectedInto)
        .into_iter()
        .map(|(source, _)| source)
        .find(|source| !is_boundary_process(&graph.node(*source).image_name().unwrap_or_default()))
}

/// The process that caused `node`, and the relation.
fn causal_parent(graph: &ProvenanceGraph, node: NodeIndex) -> Option<(NodeIndex, &'static str)> {
    if graph.node(node).kind != NodeKind::Process {
        return None;
    }
    if let Some(injector) = injected(graph, node) {
        return Some((injector, "injected-into"));
    }
    if let Some((parent, _)) = graph.incoming(node, EdgeKind::Spawned).first() {
        let name = graph.node(*parent).image_name().unwrap_or_default();
        if !is_boundary_process(&name) || injected(graph, *parent).is_some() {
            return Some((*parent, "spawned"));
        }
    }
    for (service, _) in graph.incoming(node, EdgeKind::Executed) {
        if graph.node(service).kind != NodeKind::Service {
            continue;
        }
        for (installer, _) in graph.incoming(service, EdgeKind::Installed) {
            let name = graph.node(installer).image_name().unwrap_or_default();
            if !is_boundary_process(&name) {
                return Some((installer, "installed-service-of"));
            }
        }
        return Some((service, "started-service"));
    }
    None
}

/// Network (3) and remote-interactive (10) logons from another address.
fn is_remote_logon(graph: &ProvenanceGraph, logon: NodeIndex) -> bool {
    graph
        .node(logon)
        .logon
        .as_ref()
        .is_some_and(|l| matches!(l.logon_type, Some(3 | 10)) && l.source_ip.is_some())
}

/// How long before a services/WMI child a network logon may come to be its cause.
const REMOTE_EXECUTION_WINDOW_MS: i64 = 10_000;

fn find_root(graph: &ProvenanceGraph, start: NodeIndex) -> Root {
    let mut links = Vec::new();
    let mut seen = HashSet::from([start]);
    let mut top = start;
    while let Some((parent, relation)) = causal_parent(graph, top) {
        if !seen.insert(parent) {
            break;
        }
        links.push((top, parent, relation));
        top = parent;
    }
    let node = graph.node(top);
    if node.kind == NodeKind::Service
        && let Some(logon) = preceding_remote_logon(graph, node)
    {
        links.push((top, logon, "preceded"));
        return Root {
            node: logon,
            links,
            reason: "network logon from another host just before the service was installed (remote service execution)".to_owned(),
        };
    }
    if node.kind != NodeKind::Process {
        let reason = match &node.service_command {
            Some(command) => format!(
                "service installed with command `{command}`; who asked for it is not in the logs (no remote logon just before it)"
            ),
            None => format!("detected {} with no recorded cause", node.kind.as_str()),
        };
        return Root {
            node: top,
            links,
            reason,
        };
    }
    let host = node.host.clone().unwrap_or_default();
    if let Some(logon_id) = &node.process.logon_id
        && let Some(logon) = graph.find(&format!("logon:{host}:{logon_id}"))
        && is_remote_logon(graph, logon)
    {
        links.push((top, logon, "session"));
        return Root {
            node: logon,
            links,
            reason: "the process runs in a logon session opened from another host".to_owned(),
        };
    }
    let parent = graph
        .incoming(top, EdgeKind::Spawned)
        .first()
        .map(|(p, _)| *p);
    let parent_name = parent
        .and_then(|p| graph.node(p).image_name())
        .unwrap_or_default();
    if matches!(parent_name.as_str(), "services.exe" | "wmiprvse.exe")
        && let Some(logon) = preceding_remote_logon(graph, node)
    {
        links.push((top, logon, "preceded"));
        return Root {
            node: logon,
            links,
            reason: format!(
                "network logon from another host just before {parent_name} started the process (remote execution)"
            ),
        };
    }
    let reason = match parent {
        Some(p) => format!(
            "earliest process in the chain that is not a Windows launcher; started by {}",
            graph.node(p).label
        ),
        None => "earliest process in the chain; its parent is not in the logs".to_owned(),
    };
    Root {
        node: top,
        links,
        reason,
    }
}

/// The latest remote logon on `node`'s host at most
/// [`REMOTE_EXECUTION_WINDOW_MS`] before `node` was first seen.
fn preceding_remote_logon(graph: &ProvenanceGraph, node: &crate::graph::Node) -> Option<NodeIndex> {
    let started = node.first_seen.as_deref()?;
    let host = node.host.as_deref()?;
    graph
        .logons_on(host)
        .into_iter()
        .filter(|l| {
            is_remote_logon(graph, *l)
                && graph.node(*l).first_seen.as_deref().is_some_and(|t| {
                    t <= started && millis_between(t, started) <= REMOTE_EXECUTION_WINDOW_MS
                })
        })
        .max_by(|a, b| graph.node(*a).first_seen.cmp(&graph.node(*b).first_seen))
}

fn choose_root(graph: &ProvenanceGraph, roots: &[(NodeIndex, Root)]) -> Option<Root> {
    let mut counts: BTreeMap<NodeIndex, usize> = BTreeMap::new();
    for (_, root) in roots {
        *counts.entry(root.node).or_default() += 1;
    }
    let best = counts.iter().max_by(|a, b| {
        a.1.cmp(b.1).then_with(|| {
            // earlier first_seen wins (reverse order); unknown times lose
            let time = |n: &NodeIndex| {
                graph
                    .node(*n)
                    .first_seen
                    .clone()
                    .unwrap_or_else(|| "~".into())
            };
            time(b.0).cmp(&time(a.0))
        })
    })?;
    roots
        .iter()
        .find(|(_, r)| r.node == *best.0)
        .map(|(_, r)| r.clone())
}

fn root_json(graph: &ProvenanceGraph, root: &Root, covered: usize, total: usize) -> Value {
    let node = graph.node(root.node);
    let mut description = match node.kind {
        NodeKind::Process => {
            let mut text = format!(
                "{} (pid {}) on {}",
                node.label,
                node.process
                    .pid
                    .map_or_else(|| "?".to_owned(), |p| p.to_string()),
                node.host.as_deref().unwrap_or("?")
            );
            if let Some(command) = &node.process.command_line {
                text.push_str(&format!(", command line `{command}`"));
            }
            if let Some(user) = &node.process.user {
                text.push_str(&format!(", as {user}"));
            }
            if let Some(logon_id) = &node.process.logon_id
                && let Some(host) = &node.host
                && let Some(session) = graph.find(&format!("logon:{host}:{logon_id}"))
            {
                text.push_str(&format!(
                    ", in logon session {logon_id} ({})",
                    graph.node(session).label
                ));
            }
            text
        }
        NodeKind::Logon => {
            let logon = node.logon.clone().unwrap_or_default();
            format!(
                "logon of {} (type {}) on {} from {}{}",
                logon.user,
                logon
                    .logon_type
                    .map_or_else(|| "?".to_owned(), |t| t.to_string()),
                node.host.as_deref().unwrap_or("?"),
                logon.source_ip.as_deref().unwrap_or("?"),
                logon
                    .workstation
                    .map(|w| format!(" ({w})"))
                    .unwrap_or_default()
            )
        }
        _ => format!("{} {}", node.kind.as_str(), node.label),
    };
    description.push_str(&format!(
        ": {}; cause of {covered} of {total} detected activities",
        root.reason
    ));
    if node.kind == NodeKind::Process
        && let Some(image) = &node.process.image
        && let Some(host) = &node.host
        && let Some(file) = graph.find(&format!("file:{host}:{}", image.to_ascii_lowercase()))
        && let Some((writer, edge)) = graph.incoming(file, EdgeKind::Wrote).first()
    {
        description.push_str(&format!(
            "; its image was written by {} at {}",
            graph.node(*writer).label,
            edge.first_seen.as_deref().unwrap_or("?")
        ));
    }
    json!({
        "node": node.id,
        "kind": node.kind.as_str(),
        "host": node.host,
        "description": description,
        "timestamp": node.first_seen,
    })
}

// === path ===

fn path_json(
    graph: &ProvenanceGraph,
    roots: &[(NodeIndex, Root)],
    detections: &[Detection],
    alerted: &[NodeIndex],
    max_nodes: usize,
) -> Value {
    let mut nodes: BTreeSet<NodeIndex> = BTreeSet::new();
    let mut edges: BTreeMap<(NodeIndex, NodeIndex, String), Value> = BTreeMap::new();
    for (detected, root) in roots {
        nodes.insert(*detected);
        nodes.insert(root.node);
        for (child, parent, relation) in &root.links {
            nodes.insert(*child);
            nodes.insert(*parent);
            let (from, to, kind) = match *relation {
                "injected-into" => (*parent, *child, EdgeKind::InjectedInto),
                "spawned" => (*parent, *child, EdgeKind::Spawned),
                "session" => (*parent, *child, EdgeKind::Session),
                "started-service" => (*parent, *child, EdgeKind::Executed),
                _ => {
                    edges.insert(
                        (*parent, *child, (*relation).to_owned()),
                        json!({
                            "from": graph.node(*parent).id, "to": graph.node(*child).id,
                            "kind": relation, "first_seen": graph.node(*parent).first_seen,
                            "count": 1, "evidence": [],
                        }),
                    );
                    continue;
                }
            };
            if let Some(edge) = graph.edge(from, to, kind) {
                edges.insert(
                    (from, to, kind.as_str().to_owned()),
                    edge_json(graph, from, to, edge),
                );
            }
        }
    }
    // the objects of detected actions (LSASS opened, thread target, file written)
    for detection in detections {
        let Some(record) = detection.record else {
            continue;
        };
        let Some(subject) = graph.subject(record) else {
            continue;
        };
        for (from, to, edge) in graph.edges_of(subject) {
            if edge.records.contains(&record) {
                nodes.insert(from);
                nodes.insert(to);
                edges.insert(
                    (from, to, edge.kind.as_str().to_owned()),
                    edge_json(graph, from, to, edge),
                );
            }
        }
    }
    let mut ordered: Vec<NodeIndex> = nodes.into_iter().collect();
    ordered.sort_by(|a, b| graph.node(*a).first_seen.cmp(&graph.node(*b).first_seen));
    ordered.truncate(max_nodes);
    let kept: HashSet<NodeIndex> = ordered.iter().copied().collect();
    let alerted: HashSet<NodeIndex> = alerted.iter().copied().collect();
    let nodes_json: Vec<Value> = ordered
        .iter()
        .map(|n| {
            let node = graph.node(*n);
            let mut value = json!({
                "id": node.id,
                "kind": node.kind.as_str(),
                "label": node.label,
                "host": node.host,
                "first_seen": node.first_seen,
                "detected": alerted.contains(n),
            });
            if node.kind == NodeKind::Process {
                value["pid"] = json!(node.process.pid);
                value["command_line"] = json!(node.process.command_line);
                value["user"] = json!(node.process.user);
            }
            value
        })
        .collect();
    let mut edges_json: Vec<Value> = edges
        .into_iter()
        .filter(|((from, to, _), _)| kept.contains(from) && kept.contains(to))
        .map(|(_, value)| value)
        .collect();
    edges_json.sort_by(|a, b| a["first_seen"].as_str().cmp(&b["first_seen"].as_str()));
    json!({ "nodes": nodes_json, "edges": edges_json })
}

fn edge_json(
    graph: &ProvenanceGraph,
    from: NodeIndex,
    to: NodeIndex,
    edge: &crate::graph::Edge,
) -> Value {
    let evidence: Vec<Value> = edge
        .records
        .iter()
        .map(|r| graph.records()[*r].evidence())
        .collect();
    let mut value = json!({
        "from": graph.node(from).id,
        "to": graph.node(to).id,
        "kind": edge.kind.as_str(),
        "first_seen": edge.first_seen,
        "count": edge.count,
        "evidence": evidence,
    });
    if let Some(detail) = edge.detail {
        let key = if edge.kind == EdgeKind::Accessed {
            "access"
        } else {
            "port"
        };
        value[key] = if edge.kind == EdgeKind::Accessed {
            json!(format!("{detail:#x}"))
        } else {
            json!(detail)
        };
    }
    value
}

// === steps ===

fn steps(attack: &AttackData, detections: Vec<Detection>, evidence_per_step: usize) -> Vec<Value> {
    struct Step {
        technique: String,
        tactic: String,
        timestamp: Option<String>,
        host: Option<String>,
        process: Option<String>,
        evidence: Vec<Value>,
        why: BTreeSet<String>,
    }
    let mut merged: BTreeMap<(String, Option<String>, Option<String>), Step> = BTreeMap::new();
    for detection in detections {
        if detection.technique.is_empty() {
            continue;
        }
        let technique = attack.canonical(&detection.technique);
        let known: Vec<String> = attack
            .technique(&technique)
            .map(|t| t.tactics.clone())
            .unwrap_or_default();
        let wanted: Vec<&str> = detection
            .tactic
            .as_deref()
            .map(|t| t.split(',').collect())
            .unwrap_or_default();
        let tactic = known
            .iter()
            .find(|t| wanted.contains(&t.as_str()))
            .or_else(|| known.first())
            .cloned()
            .or_else(|| wanted.first().map(|t| (*t).to_owned()))
            .unwrap_or_default();
        let key = (
            technique.clone(),
            detection.host.clone(),
            detection.process.as_ref().map(|p| p.to_ascii_lowercase()),
        );
        let step = merged.entry(key).or_insert_with(|| Step {
            technique,
            tactic,
            timestamp: detection.timestamp.clone(),
            host: detection.host.clone(),
            process: detection.process.clone(),
            evidence: Vec::new(),
            why: BTreeSet::new(),
        });
        if detection.timestamp.is_some()
            && (step.timestamp.is_none() || detection.timestamp < step.timestamp)
        {
            step.timestamp.clone_from(&detection.timestamp);
        }
        if step.evidence.len() < evidence_per_step && !step.evidence.contains(&detection.evidence) {
            step.evidence.push(detection.evidence);
        }
        step.why.insert(detection.why);
    }
    let mut steps: Vec<Step> = merged.into_values().collect();
    steps.sort_by(|a, b| {
        tactic_rank(&a.tactic)
            .cmp(&tactic_rank(&b.tactic))
            .then_with(|| {
                a.timestamp
                    .clone()
                    .unwrap_or_else(|| "~".into())
                    .cmp(&b.timestamp.clone().unwrap_or_else(|| "~".into()))
            })
    });
    steps
        .into_iter()
        .map(|s| {
            json!({
                "technique_id": s.technique,
                "technique_name": attack.technique_name(&s.technique),
                "tactic": s.tactic,
                "timestamp": s.timestamp,
                "host": s.host,
                "process": s.process,
                "evidence": s.evidence,
                "reasons": s.why.into_iter().collect::<Vec<_>>(),
            })
        })
        .collect()
}

// === entities and summary ===

fn entities_json(
    graph: &ProvenanceGraph,
    path: &Value,
    alerts: &[AlertInput],
    limit: usize,
) -> Value {
    let mut hosts = BTreeSet::new();
    let mut users = BTreeSet::new();
    let mut ips = BTreeSet::new();
    let mut domains = BTreeSet::new();
    let mut files = BTreeSet::new();
    let mut processes: BTreeMap<(String, String, Option<u64>), Value> = BTreeMap::new();
    for node in path["nodes"].as_array().into_iter().flatten() {
        let Some(index) = node["id"].as_str().and_then(|id| graph.find(id)) else {
            continue;
        };
        let node = graph.node(index);
        if let Some(host) = &node.host {
            hosts.insert(host.clone());
        }
        match node.kind {
            NodeKind::Process => {
                if let Some(user) = &node.process.user {
                    users.insert(user.clone());
                }
                let host = node.host.clone().unwrap_or_default();
                processes.insert(
                    (host.clone(), node.label.clone(), node.process.pid),
                    json!({
                        "image": node.label, "pid": node.process.pid, "host": host,
                        "command_line": node.process.command_line,
                    }),
                );
            }
            NodeKind::Logon => {
                if let Some(logon) = &node.logon {
                    users.insert(logon.user.clone());
                    if let Some(ip) = &logon.source_ip {
                        ips.insert(ip.clone());
                    }
                }
            }
            NodeKind::User => {
                users.insert(node.label.clone());
            }
            NodeKind::Ip => {
                ips.insert(node.label.clone());
            }
            NodeKind::Domain => {
                domains.insert(node.label.clone());
            }
            NodeKind::File => {
                files.insert(node.label.clone());
            }
            NodeKind::Registry | NodeKind::Service => {}
        }
    }
    for event in alerts.iter().flat_map(|a| &a.events) {
        if let Some(computer) = &event.computer {
            hosts.insert(computer.to_ascii_lowercase());
        }
        for (name, value) in &event.fields {
            let target = match name.to_ascii_lowercase().as_str() {
                "user" | "targetusername" | "subjectusername" => &mut users,
                "destinationip" | "sourceip" | "ipaddress" => &mut ips,
                "queryname" | "destinationhostname" => &mut domains,
                "targetfilename" => &mut files,
                _ => continue,
            };
            if !value.is_empty() && value != "-" {
                target.insert(value.clone());
            }
        }
    }
    let list = |set: BTreeSet<String>| set.into_iter().take(limit).collect::<Vec<_>>();
    json!({
        "hosts": list(hosts),
        "users": list(users),
        "ips": list(ips),
        "domains": list(domains),
        "processes": processes.into_values().take(limit).collect::<Vec<_>>(),
        "files": list(files),
    })
}

fn summary(
    root: &Option<Value>,
    steps: &[Value],
    path: &Value,
    attribution: &[crate::attribution::Candidate],
) -> String {
    if steps.is_empty() && root.is_none() {
        return "No detection to trace: no alert matched the events, no behaviour the tracer recognises was seen, and no technique was listed.".to_owned();
    }
    let mut text = String::new();
    if let Some(root) = root {
        text.push_str(&format!(
            "Root cause: {} at {}. ",
            root["description"].as_str().unwrap_or_default(),
            root["timestamp"].as_str().unwrap_or("unknown time")
        ));
    }
    let tactics: Vec<&str> =
        steps
            .iter()
            .filter_map(|s| s["tactic"].as_str())
            .fold(Vec::new(), |mut seen, t| {
                if !seen.contains(&t) {
                    seen.push(t);
                }
                seen
            });
    text.push_str(&format!(
        "{} step(s) across {} tactic(s) ({}). Attack path: {} node(s), {} edge(s).",
        steps.len(),
        tactics.len(),
        tactics.join(" -> "),
        path["nodes"].as_array().map_or(0, Vec::len),
        path["edges"].as_array().map_or(0, Vec::len),
    ));
    if let Some(best) = attribution.first() {
        text.push_str(&format!(
            " Closest ATT&CK group by technique overlap: {} ({}, score {:.2}); weak evidence only.",
            best.group, best.group_id, best.score
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn output(events: &[Value]) -> Value {
        crate::trace_records(crate::graph::tests::records(events))
    }

    fn creation(time: &str, pid: &str, image: &str, command: &str, parent: &str) -> Value {
        json!({ "Channel": "Security", "EventID": 4688, "Computer": "SRV2", "TimeCreated": time,
            "NewProcessId": pid, "NewProcessName": image, "CommandLine": command, "ProcessId": parent,
            "SubjectUserName": "eve", "SubjectDomainName": "CORP", "SubjectLogonId": "0x9a0",
            "TargetLogonId": "0x0" })
    }

    /// Security events only (no Sysmon, no parent image names): the chain is
    /// linked by hexadecimal pids, and the RDP session from another host is
    /// the root.
    #[test]
    fn security_only_chain_roots_in_remote_desktop_logon() {
        let out = output(&[
            json!({ "Channel": "Security", "EventID": 4624, "Computer": "SRV2", "TimeCreated": "2026-01-05T09:00:00Z",
                "TargetUserName": "eve", "TargetDomainName": "CORP", "TargetLogonId": "0x9A0",
                "LogonType": "10", "IpAddress": "203.0.113.7", "WorkstationName": "LAPTOP9" }),
            creation(
                "2026-01-05T09:00:05Z",
                "0x100",
                "C:\\Windows\\explorer.exe",
                "explorer.exe",
                "0x50",
            ),
            creation(
                "2026-01-05T09:01:00Z",
                "0x200",
                "C:\\Users\\eve\\AppData\\Local\\Temp\\t.exe",
                "t.exe",
                "0x100",
            ),
            creation(
                "2026-01-05T09:01:05Z",
                "0x300",
                "C:\\Windows\\System32\\cmd.exe",
                "cmd.exe",
                "0x200",
            ),
            creation(
                "2026-01-05T09:01:06Z",
                "0x304",
                "C:\\Windows\\System32\\whoami.exe",
                "whoami /priv",
                "0x300",
            ),
            creation(
                "2026-01-05T09:01:09Z",
                "0x308",
                "C:\\Windows\\System32\\reg.exe",
                "reg save HKLM\\SAM s.hiv",
                "0x300",
            ),
        ]);
        let root = &out["root_cause"];
        assert_eq!(root["node"], "logon:srv2:0x9a0", "{root:#}");
        let description = root["description"].as_str().unwrap();
        assert!(
            description.contains("from 203.0.113.7 (LAPTOP9)"),
            "{description}"
        );
        let steps: Vec<&str> = out["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["technique_id"].as_str().unwrap())
            .collect();
        // user execution from Temp (parent image taken from the graph: 4688
        // has no ParentProcessName here); lateral movement (RDP) sorts after
        // credential access and discovery
        assert_eq!(steps, ["T1204.002", "T1003.002", "T1033", "T1021.001"]);
        let edges = out["path"]["edges"].as_array().unwrap();
        let spawned = edges.iter().filter(|e| e["kind"] == "spawned").count();
        assert_eq!(
            spawned, 4,
            "explorer -> t.exe -> cmd -> whoami, reg: {edges:#?}"
        );
        assert!(edges.iter().any(|e| e["kind"] == "session"));
    }
}
