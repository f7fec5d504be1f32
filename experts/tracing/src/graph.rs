//! The provenance graph: processes, logon sessions, users, addresses,
//! domains, files, registry keys and services as nodes; what one did to
//! another (spawned, injected into, accessed, connected, wrote, …) as
//! edges, each with its first time and the events that show it.
//!
//! [`ProvenanceGraph::build`] sorts the records by time and resolves
//! process identities: Sysmon `ProcessGuid` when present, otherwise host +
//! pid (the latest process with that pid, checked against the image name),
//! so a Security 4688 and the Sysmon 1 of the same process become one node.

use std::collections::{BTreeSet, HashMap};

use petgraph::Direction;
use petgraph::graph::{DiGraph, EdgeIndex, NodeIndex};
use petgraph::visit::EdgeRef;

use crate::record::{Action, LogonInfo, ProcessRef, Record, file_name};

/// What a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeKind {
    /// A process (one execution).
    Process,
    /// A logon session (Security 4624).
    Logon,
    /// A user account.
    User,
    /// A network address.
    Ip,
    /// A DNS name.
    Domain,
    /// A file.
    File,
    /// A registry key or value.
    Registry,
    /// A Windows service.
    Service,
}

impl NodeKind {
    /// The kind's name in outputs (`process`, `logon`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Process => "process",
            NodeKind::Logon => "logon",
            NodeKind::User => "user",
            NodeKind::Ip => "ip",
            NodeKind::Domain => "domain",
            NodeKind::File => "file",
            NodeKind::Registry => "registry",
            NodeKind::Service => "service",
        }
    }
}

/// What an edge says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EdgeKind {
    /// Process created process.
    Spawned,
    /// Process created a thread in process.
    InjectedInto,
    /// Process opened a handle to process.
    Accessed,
    /// Process connected to address (or address to process, inbound).
    Connected,
    /// Process looked up a name.
    Resolved,
    /// Process wrote a file or registry value.
    Wrote,
    /// Process deleted a file.
    Deleted,
    /// File loaded as a module into process.
    Loaded,
    /// File (image) or service (command) ran as process.
    Executed,
    /// Logon session belongs to user.
    LoggedOnAs,
    /// Process runs in logon session (session -> process).
    Session,
    /// Address the logon came from (address -> session).
    LogonFrom,
    /// Process used a user's explicit credentials.
    UsedCredentials,
    /// Process installed a service.
    Installed,
}

impl EdgeKind {
    /// The kind's name in outputs (`spawned`, `injected-into`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            EdgeKind::Spawned => "spawned",
            EdgeKind::InjectedInto => "injected-into",
            EdgeKind::Accessed => "accessed",
            EdgeKind::Connected => "connected",
            EdgeKind::Resolved => "resolved",
            EdgeKind::Wrote => "wrote",
            EdgeKind::Deleted => "deleted",
            EdgeKind::Loaded => "loaded",
            EdgeKind::Executed => "executed",
            EdgeKind::LoggedOnAs => "logged-on-as",
            EdgeKind::Session => "session",
            EdgeKind::LogonFrom => "logon-from",
            EdgeKind::UsedCredentials => "used-credentials",
            EdgeKind::Installed => "installed",
        }
    }
}

/// A node of the graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Stable id: `process:<host>:<guid or pid:image@time>`, `ip:<addr>`, ….
    pub id: String,
    /// What it is.
    pub kind: NodeKind,
    /// Host it lives on (`None` for addresses, domains and users).
    pub host: Option<String>,
    /// Human-readable name (image, path, `DOMAIN\user`, address).
    pub label: String,
    /// Earliest time it was seen.
    pub first_seen: Option<String>,
    /// Process details (empty for other kinds).
    pub process: ProcessRef,
    /// Record index of the process creation, when logged.
    pub created_by_record: Option<usize>,
    /// Logon details (logon nodes).
    pub logon: Option<LogonInfo>,
    /// Logon got special privileges (Security 4672).
    pub privileged: bool,
    /// A service's command (service nodes).
    pub service_command: Option<String>,
}

impl Node {
    fn new(id: String, kind: NodeKind, host: Option<&str>, label: String) -> Node {
        Node {
            id,
            kind,
            host: host.map(str::to_owned),
            label,
            first_seen: None,
            process: ProcessRef::default(),
            created_by_record: None,
            logon: None,
            privileged: false,
            service_command: None,
        }
    }

    /// Lowercase image file name of a process node.
    pub fn image_name(&self) -> Option<String> {
        self.process.image_name()
    }
}

/// Most event references kept per edge (all are counted).
pub const MAX_EDGE_RECORDS: usize = 5;

/// An edge of the graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    /// What it says.
    pub kind: EdgeKind,
    /// Earliest time.
    pub first_seen: Option<String>,
    /// How many events showed it.
    pub count: usize,
    /// The first events that showed it (record indices).
    pub records: Vec<usize>,
    /// OR of the access masks (access edges), or the remote port (connections).
    pub detail: Option<u64>,
}

/// The graph with the records it was built from.
#[derive(Debug)]
pub struct ProvenanceGraph {
    graph: DiGraph<Node, Edge>,
    records: Vec<Record>,
    /// Node each record is about (its actor), by record index.
    subjects: Vec<Option<NodeIndex>>,
    by_id: HashMap<String, NodeIndex>,
    edges: HashMap<(NodeIndex, NodeIndex, EdgeKind), EdgeIndex>,
    by_guid: HashMap<(String, String), NodeIndex>,
    by_pid: HashMap<(String, u64), NodeIndex>,
    /// Services by (host, normalised command).
    by_command: HashMap<(String, String), NodeIndex>,
    /// Logon sessions by host.
    logons: HashMap<String, BTreeSet<NodeIndex>>,
}

/// How far apart (in the normalised timestamp's seconds) a Security 4688 and
/// a Sysmon 1 of one process may be to merge.
const MERGE_WINDOW_MS: i64 = 2_000;

impl ProvenanceGraph {
    /// Builds the graph from records in any order.
    pub fn build(mut records: Vec<Record>) -> ProvenanceGraph {
        records.sort_by(|a, b| a.timestamp.cmp(&b.timestamp));
        let mut builder = ProvenanceGraph {
            graph: DiGraph::new(),
            subjects: vec![None; records.len()],
            records: Vec::new(),
            by_id: HashMap::new(),
            edges: HashMap::new(),
            by_guid: HashMap::new(),
            by_pid: HashMap::new(),
            by_command: HashMap::new(),
            logons: HashMap::new(),
        };
        for (index, record) in records.iter().enumerate() {
            builder.subjects[index] = builder.add(index, record);
        }
        builder.records = records;
        builder
    }

    /// The records, sorted by time.
    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// The node record `index` is about (the acting process, the logon, …).
    pub fn subject(&self, index: usize) -> Option<NodeIndex> {
        self.subjects.get(index).copied().flatten()
    }

    /// The underlying petgraph graph.
    pub fn graph(&self) -> &DiGraph<Node, Edge> {
        &self.graph
    }

    /// Node `index`.
    pub fn node(&self, index: NodeIndex) -> &Node {
        &self.graph[index]
    }

    /// Edges into `node` of `kind`, as (source, edge) pairs, earliest first.
    pub fn incoming(&self, node: NodeIndex, kind: EdgeKind) -> Vec<(NodeIndex, &Edge)> {
        let mut found: Vec<(NodeIndex, &Edge)> = self
            .graph
            .edges_directed(node, Direction::Incoming)
            .filter(|e| e.weight().kind == kind)
            .map(|e| (e.source(), e.weight()))
            .collect();
        found.sort_by(|a, b| a.1.first_seen.cmp(&b.1.first_seen));
        found
    }

    /// The edge `from -> to` of `kind`, if any.
    pub fn edge(&self, from: NodeIndex, to: NodeIndex, kind: EdgeKind) -> Option<&Edge> {
        self.edges.get(&(from, to, kind)).map(|e| &self.graph[*e])
    }

    /// Every edge touching `node`, as (source, target, edge).
    pub fn edges_of(&self, node: NodeIndex) -> Vec<(NodeIndex, NodeIndex, &Edge)> {
        let outgoing = self.graph.edges_directed(node, Direction::Outgoing);
        let incoming = self.graph.edges_directed(node, Direction::Incoming);
        outgoing
            .chain(incoming)
            .map(|e| (e.source(), e.target(), e.weight()))
            .collect()
    }

    /// The node with id `id`.
    pub fn find(&self, id: &str) -> Option<NodeIndex> {
        self.by_id.get(id).copied()
    }

    /// Logon nodes of `host`.
    pub fn logons_on(&self, host: &str) -> Vec<NodeIndex> {
        self.logons
            .get(host)
            .map(|set| set.iter().copied().collect())
            .unwrap_or_default()
    }

    // === building ===

    fn add(&mut self, index: usize, record: &Record) -> Option<NodeIndex> {
        let host = record.host.as_str();
        let time = record.timestamp.as_deref();
        match &record.action {
            Action::ProcessCreate { process, parent } => {
                let child = self.create_process(host, process, time, index);
                if let Some(parent) = self.process_or_stub(host, parent, time) {
                    self.link(parent, child, EdgeKind::Spawned, index, time, None);
                }
                self.link_session(host, child, process, index, time);
                if let Some(image) = &process.image {
                    let file_id = format!("file:{host}:{}", image.to_ascii_lowercase());
                    if let Some(file) = self.find(&file_id) {
                        self.link(file, child, EdgeKind::Executed, index, time, None);
                    }
                }
                self.link_service(host, child, process, index, time);
                Some(child)
            }
            Action::ProcessAccess {
                source,
                target,
                access,
            } => {
                let from = self.process_or_stub(host, source, time)?;
                let to = self.process_or_stub(host, target, time)?;
                self.link(from, to, EdgeKind::Accessed, index, time, Some(*access));
                Some(from)
            }
            Action::RemoteThread { source, target } => {
                let from = self.process_or_stub(host, source, time)?;
                let to = self.process_or_stub(host, target, time)?;
                self.link(from, to, EdgeKind::InjectedInto, index, time, None);
                Some(from)
            }
            Action::Network {
                process,
                remote_ip,
                remote_port,
                remote_host,
                outbound,
            } => {
                let local = self.process_or_stub(host, process, time)?;
                let ip = self.global(NodeKind::Ip, remote_ip, time);
                let (from, to) = if *outbound { (local, ip) } else { (ip, local) };
                self.link(from, to, EdgeKind::Connected, index, time, *remote_port);
                if let Some(name) = remote_host {
                    let domain = self.global(NodeKind::Domain, name, time);
                    self.link(local, domain, EdgeKind::Resolved, index, time, None);
                }
                Some(local)
            }
            Action::Dns { process, query } => {
                let local = self.process_or_stub(host, process, time)?;
                let domain = self.global(NodeKind::Domain, query, time);
                self.link(local, domain, EdgeKind::Resolved, index, time, None);
                Some(local)
            }
            Action::File {
                process,
                path,
                deleted,
            } => {
                let local = self.process_or_stub(host, process, time)?;
                let file = self.on_host(NodeKind::File, host, path, time);
                let kind = if *deleted {
                    EdgeKind::Deleted
                } else {
                    EdgeKind::Wrote
                };
                self.link(local, file, kind, index, time, None);
                Some(local)
            }
            Action::Registry {
                process,
                key,
                details,
            } => {
                let local = self.process_or_stub(host, process, time)?;
                let value = self.on_host(NodeKind::Registry, host, key, time);
                self.link(local, value, EdgeKind::Wrote, index, time, None);
                if let (Some(name), Some(command)) = (service_of_key(key), details) {
                    let service = self.service(host, &name, command, time);
                    self.link(local, service, EdgeKind::Installed, index, time, None);
                    // the record is about the service it configures
                    return Some(service);
                }
                Some(local)
            }
            Action::ImageLoad { process, module } => {
                let local = self.process_or_stub(host, process, time)?;
                let file = self.on_host(NodeKind::File, host, module, time);
                self.link(file, local, EdgeKind::Loaded, index, time, None);
                Some(local)
            }
            Action::Logon { logon, failed } => {
                let user = self.user(&logon.user, time);
                if *failed {
                    if let Some(ip) = &logon.source_ip {
                        let ip = self.global(NodeKind::Ip, ip, time);
                        self.link(ip, user, EdgeKind::LogonFrom, index, time, None);
                    }
                    return Some(user);
                }
                let logon_id = logon.logon_id.as_deref()?;
                let label = format!(
                    "{} (logon type {})",
                    logon.user,
                    logon
                        .logon_type
                        .map_or_else(|| "?".to_owned(), |t| t.to_string())
                );
                let id = format!("logon:{host}:{logon_id}");
                let session = self.intern(id, NodeKind::Logon, Some(host), &label, time);
                self.graph[session].logon = Some(logon.clone());
                self.logons
                    .entry(host.to_owned())
                    .or_default()
                    .insert(session);
                self.link(session, user, EdgeKind::LoggedOnAs, index, time, None);
                if let Some(ip) = &logon.source_ip {
                    let ip = self.global(NodeKind::Ip, ip, time);
                    self.link(ip, session, EdgeKind::LogonFrom, index, time, None);
                }
                Some(session)
            }
            Action::SpecialPrivileges { logon_id, .. } => {
                let session = self.find(&format!("logon:{host}:{logon_id}"))?;
                self.graph[session].privileged = true;
                Some(session)
            }
            Action::ExplicitCredentials {
                process,
                target_user,
                ..
            } => {
                let local = self.process_or_stub(host, process, time)?;
                let user = self.user(target_user, time);
                self.link(local, user, EdgeKind::UsedCredentials, index, time, None);
                Some(local)
            }
            Action::ServiceInstall {
                name,
                image_path,
                process,
            } => {
                let service = self.service(host, name, image_path, time);
                if let Some(installer) = self.process(host, process, time) {
                    self.link(installer, service, EdgeKind::Installed, index, time, None);
                }
                Some(service)
            }
            Action::Script { process, .. } => self.process(host, process, time),
            Action::LogCleared { .. } => None,
        }
    }

    fn intern(
        &mut self,
        id: String,
        kind: NodeKind,
        host: Option<&str>,
        label: &str,
        time: Option<&str>,
    ) -> NodeIndex {
        if let Some(existing) = self.by_id.get(&id) {
            return *existing;
        }
        let mut node = Node::new(id.clone(), kind, host, label.to_owned());
        node.first_seen = time.map(str::to_owned);
        let index = self.graph.add_node(node);
        self.by_id.insert(id, index);
        index
    }

    /// The node of a per-host object (file, registry key) named `name`.
    fn on_host(&mut self, kind: NodeKind, host: &str, name: &str, time: Option<&str>) -> NodeIndex {
        let id = format!("{}:{host}:{}", kind.as_str(), name.to_ascii_lowercase());
        self.intern(id, kind, Some(host), name, time)
    }

    /// The node of a host-independent object (address, domain) named `name`.
    fn global(&mut self, kind: NodeKind, name: &str, time: Option<&str>) -> NodeIndex {
        let id = format!("{}:{name}", kind.as_str());
        self.intern(id, kind, None, name, time)
    }

    fn user(&mut self, user: &str, time: Option<&str>) -> NodeIndex {
        let id = format!("user:{}", user.to_ascii_lowercase());
        self.intern(id, NodeKind::User, None, user, time)
    }

    fn service(&mut self, host: &str, name: &str, command: &str, time: Option<&str>) -> NodeIndex {
        let id = format!("service:{host}:{}", name.to_ascii_lowercase());
        let service = self.intern(id, NodeKind::Service, Some(host), name, time);
        self.graph[service].service_command = Some(command.to_owned());
        self.by_command
            .insert((host.to_owned(), normalize_command(command)), service);
        service
    }

    fn link(
        &mut self,
        from: NodeIndex,
        to: NodeIndex,
        kind: EdgeKind,
        record: usize,
        time: Option<&str>,
        detail: Option<u64>,
    ) {
        if from == to {
            return;
        }
        if let Some(edge) = self.edges.get(&(from, to, kind)) {
            let edge = &mut self.graph[*edge];
            edge.count += 1;
            if edge.records.len() < MAX_EDGE_RECORDS {
                edge.records.push(record);
            }
            if kind == EdgeKind::Accessed {
                edge.detail = Some(edge.detail.unwrap_or(0) | detail.unwrap_or(0));
            }
            return;
        }
        let edge = self.graph.add_edge(
            from,
            to,
            Edge {
                kind,
                first_seen: time.map(str::to_owned),
                count: 1,
                records: vec![record],
                detail,
            },
        );
        self.edges.insert((from, to, kind), edge);
    }

    /// An existing process node for `process`, if one matches.
    fn process(
        &mut self,
        host: &str,
        process: &ProcessRef,
        _time: Option<&str>,
    ) -> Option<NodeIndex> {
        if let Some(guid) = &process.guid
            && let Some(node) = self.by_guid.get(&(host.to_owned(), guid.clone()))
        {
            let node = *node;
            self.enrich(node, process);
            return Some(node);
        }
        let pid = process.pid?;
        let node = *self.by_pid.get(&(host.to_owned(), pid))?;
        let known = self.graph[node].image_name();
        if let (Some(known), Some(image)) = (known, process.image_name())
            && known != image
        {
            return None;
        }
        if let Some(guid) = &process.guid {
            if self.graph[node].process.guid.is_some() {
                return None;
            }
            self.by_guid.insert((host.to_owned(), guid.clone()), node);
        }
        self.enrich(node, process);
        Some(node)
    }

    /// An existing process node, or a new one for a process whose creation
    /// was not logged.
    fn process_or_stub(
        &mut self,
        host: &str,
        process: &ProcessRef,
        time: Option<&str>,
    ) -> Option<NodeIndex> {
        if let Some(node) = self.process(host, process, time) {
            return Some(node);
        }
        if !process.is_known() {
            return None;
        }
        Some(self.new_process(host, process, time))
    }

    fn new_process(&mut self, host: &str, process: &ProcessRef, time: Option<&str>) -> NodeIndex {
        let key = match (&process.guid, process.pid) {
            (Some(guid), _) => guid.clone(),
            (None, pid) => format!(
                "pid{}:{}@{}",
                pid.map_or_else(|| "?".to_owned(), |p| p.to_string()),
                process.image_name().unwrap_or_default(),
                time.unwrap_or("?")
            ),
        };
        let label = process
            .image
            .clone()
            .unwrap_or_else(|| format!("pid {}", process.pid.unwrap_or(0)));
        let id = format!("process:{host}:{key}");
        let node = self.intern(id, NodeKind::Process, Some(host), &label, time);
        self.graph[node].process = process.clone();
        if let Some(guid) = &process.guid {
            self.by_guid.insert((host.to_owned(), guid.clone()), node);
        }
        if let Some(pid) = process.pid {
            self.by_pid.insert((host.to_owned(), pid), node);
        }
        node
    }

    /// The node of a newly created process: a new node, unless the same
    /// creation was already seen in another log (Sysmon 1 and Security 4688).
    fn create_process(
        &mut self,
        host: &str,
        process: &ProcessRef,
        time: Option<&str>,
        record: usize,
    ) -> NodeIndex {
        let existing = process
            .guid
            .as_ref()
            .and_then(|guid| self.by_guid.get(&(host.to_owned(), guid.clone())).copied())
            .or_else(|| {
                let node = *self.by_pid.get(&(host.to_owned(), process.pid?))?;
                let known = &self.graph[node];
                let same_image = known.image_name() == process.image_name();
                let no_conflict = known.process.guid.is_none() || process.guid.is_none();
                let close = match (known.first_seen.as_deref(), time) {
                    (Some(a), Some(b)) => millis_between(a, b) <= MERGE_WINDOW_MS,
                    _ => false,
                };
                (same_image && no_conflict && close).then_some(node)
            });
        let node = match existing {
            Some(node) => {
                self.enrich(node, process);
                if let Some(guid) = &process.guid {
                    self.by_guid.insert((host.to_owned(), guid.clone()), node);
                }
                node
            }
            None => self.new_process(host, process, time),
        };
        if let Some(pid) = process.pid {
            self.by_pid.insert((host.to_owned(), pid), node);
        }
        let known = &mut self.graph[node];
        if known.created_by_record.is_none() {
            known.created_by_record = Some(record);
        }
        if known.first_seen.is_none() {
            known.first_seen = time.map(str::to_owned);
        }
        node
    }

    /// Fills details of a process node from a later reference.
    fn enrich(&mut self, node: NodeIndex, process: &ProcessRef) {
        let known = &mut self.graph[node].process;
        let fill = |slot: &mut Option<String>, value: &Option<String>| {
            if slot.is_none() {
                slot.clone_from(value);
            }
        };
        fill(&mut known.guid, &process.guid);
        fill(&mut known.image, &process.image);
        fill(&mut known.command_line, &process.command_line);
        fill(&mut known.user, &process.user);
        fill(&mut known.logon_id, &process.logon_id);
        if known.pid.is_none() {
            known.pid = process.pid;
        }
        let label = known.image.clone();
        if let Some(label) = label {
            self.graph[node].label = label;
        }
    }

    fn link_session(
        &mut self,
        host: &str,
        child: NodeIndex,
        process: &ProcessRef,
        record: usize,
        time: Option<&str>,
    ) {
        let Some(logon_id) = &process.logon_id else {
            return;
        };
        if let Some(session) = self.find(&format!("logon:{host}:{logon_id}")) {
            self.link(session, child, EdgeKind::Session, record, time, None);
        }
    }

    /// Links a process started by services.exe to the service whose command
    /// it runs.
    fn link_service(
        &mut self,
        host: &str,
        child: NodeIndex,
        process: &ProcessRef,
        record: usize,
        time: Option<&str>,
    ) {
        let Some(command) = process.command_line.as_deref().map(normalize_command) else {
            return;
        };
        let service = self.by_command.get(&(host.to_owned(), command)).copied();
        if let Some(service) = service {
            self.link(service, child, EdgeKind::Executed, record, time, None);
        }
    }
}

/// The service name of a `…\Services\<name>\ImagePath` registry value.
fn service_of_key(key: &str) -> Option<String> {
    let lower = key.to_ascii_lowercase();
    let rest = lower.split("\\services\\").nth(1)?;
    let (name, value) = rest.split_once('\\')?;
    (value == "imagepath").then(|| name.to_owned())
}

/// A command line for comparison: lowercase, without quotes and extra
/// spaces, the program reduced to its file name (services register
/// `%COMSPEC%` or `\\SystemRoot\\…` where the process shows the full path).
fn normalize_command(command: &str) -> String {
    let lower = command
        .to_ascii_lowercase()
        .replace("%%comspec%%", "cmd.exe")
        .replace("%comspec%", "cmd.exe")
        .replace('"', "");
    let mut words = lower.split_whitespace();
    let program = words.next().map(file_name).unwrap_or_default();
    std::iter::once(program)
        .chain(words.map(str::to_owned))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Milliseconds between two normalised timestamps (absolute), or
/// `i64::MAX` when they are on different days or unreadable.
pub fn millis_between(a: &str, b: &str) -> i64 {
    match (millis_of_day(a), millis_of_day(b)) {
        (Some((day_a, ms_a)), Some((day_b, ms_b))) if day_a == day_b => (ms_a - ms_b).abs(),
        _ => i64::MAX,
    }
}

/// (date, milliseconds since midnight) of a normalised timestamp.
fn millis_of_day(timestamp: &str) -> Option<(&str, i64)> {
    let date = timestamp.get(..10)?;
    let field = |range: std::ops::Range<usize>| timestamp.get(range)?.parse::<i64>().ok();
    let ms = ((field(11..13)? * 60 + field(14..16)?) * 60 + field(17..19)?) * 1000 + field(20..23)?;
    Some((date, ms))
}

/// Whether `image` is a process that hosts or launches other programs as
/// part of Windows itself, so ancestry above it is not the attack's cause.
pub fn is_boundary_process(image_name: &str) -> bool {
    const BOUNDARY: [&str; 16] = [
        "explorer.exe",
        "services.exe",
        "svchost.exe",
        "wmiprvse.exe",
        "winlogon.exe",
        "userinit.exe",
        "wininit.exe",
        "smss.exe",
        "csrss.exe",
        "lsass.exe",
        "taskeng.exe",
        "taskhostw.exe",
        "system",
        "dllhost.exe",
        "runtimebroker.exe",
        "sihost.exe",
    ];
    BOUNDARY.contains(&image_name)
}

#[cfg(test)]
pub(crate) mod tests {
    use serde_json::json;
    use synod_expert_attack_detection::{Event, EventRef};

    use super::*;

    pub(crate) fn records(events: &[serde_json::Value]) -> Vec<Record> {
        events
            .iter()
            .enumerate()
            .filter_map(|(index, value)| {
                let reference = EventRef {
                    source: "input".into(),
                    index,
                    record_id: None,
                };
                Record::from_event(reference, &Event::from_json(value))
            })
            .collect()
    }

    #[test]
    fn security_and_sysmon_creation_of_one_process_merge() {
        let sysmon = "Microsoft-Windows-Sysmon/Operational";
        let graph = ProvenanceGraph::build(records(&[
            json!({ "Channel": "Security", "EventID": 4688, "Hostname": "h", "TimeCreated": "2023-01-01T00:00:00.100Z",
                "NewProcessId": "0x10", "NewProcessName": "C:\\t\\a.exe", "ProcessId": "0x4",
                "ParentProcessName": "C:\\Windows\\explorer.exe" }),
            json!({ "Channel": sysmon, "EventID": 1, "Hostname": "h", "TimeCreated": "2023-01-01T00:00:00.150Z",
                "ProcessGuid": "{G-A}", "ProcessId": "16", "Image": "C:\\t\\a.exe", "CommandLine": "a.exe -x",
                "ParentProcessGuid": "{G-E}", "ParentProcessId": "4", "ParentImage": "C:\\Windows\\explorer.exe" }),
            json!({ "Channel": sysmon, "EventID": 10, "Hostname": "h", "TimeCreated": "2023-01-01T00:00:01.000Z",
                "SourceProcessGUID": "{G-A}", "SourceProcessId": "16", "SourceImage": "C:\\t\\a.exe",
                "TargetProcessGUID": "{G-L}", "TargetProcessId": "600", "TargetImage": "C:\\Windows\\system32\\lsass.exe",
                "GrantedAccess": "0x1010" }),
        ]));
        let processes: Vec<&Node> = graph
            .graph()
            .node_weights()
            .filter(|n| n.kind == NodeKind::Process)
            .collect();
        // a.exe (one node for both creations), explorer, lsass
        assert_eq!(processes.len(), 3, "{processes:#?}");
        let a = graph
            .find("process:h:pid16:a.exe@2023-01-01T00:00:00.100Z")
            .unwrap();
        assert_eq!(graph.node(a).process.guid.as_deref(), Some("g-a"));
        assert_eq!(graph.incoming(a, EdgeKind::Spawned).len(), 1);
        assert_eq!(graph.subject(2), Some(a));
        assert_eq!(
            millis_between("2023-01-01T00:00:00.100Z", "2023-01-01T00:00:01.000Z"),
            900
        );
        assert_eq!(
            service_of_key("HKLM\\System\\CurrentControlSet\\Services\\x1\\ImagePath"),
            Some("x1".into())
        );
    }
}
