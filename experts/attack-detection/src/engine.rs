//! A rule set: rules loaded from files or text, the rules that failed with
//! their reasons, and an index by log source so each event is only tested
//! against the rules of its channel and event id.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::event::Event;
use crate::logsource::Route;
use crate::matcher::Placeholders;
use crate::prefilter::Prefilter;
use crate::rule::Rule;

/// A rule file (or document) that could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadFailure {
    /// The file (or source name).
    pub source: String,
    /// Why, e.g. `selection `sel`: `Image|foo`: unknown modifier `foo``.
    pub reason: String,
}

impl fmt::Display for LoadFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.source, self.reason)
    }
}

#[derive(Debug, Default)]
struct ChannelBucket {
    /// Rules for every event of the channel.
    all: Vec<usize>,
    /// Rules for some event ids only.
    by_id: HashMap<u32, Vec<usize>>,
}

/// Compiled rules, indexed by log source.
#[derive(Debug, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
    failures: Vec<LoadFailure>,
    /// Indices of Windows rules whose category or service has no channel mapping.
    unmapped: Vec<usize>,
    by_channel: HashMap<&'static str, ChannelBucket>,
    any_windows: Vec<usize>,
    non_windows: Vec<usize>,
    /// Built on first use, reset when a rule is added.
    prefilter: OnceLock<Prefilter>,
    /// Values for the `expand` modifier.
    placeholders: Placeholders,
}

impl RuleSet {
    /// An empty rule set.
    pub fn new() -> Self {
        RuleSet::default()
    }

    /// Uses `placeholders` for the `expand` modifier of rules added from now on.
    #[must_use]
    pub fn with_placeholders(mut self, placeholders: Placeholders) -> Self {
        self.placeholders = placeholders;
        self
    }

    /// Loads every `*.yml` / `*.yaml` file under `dirs` (recursively; a
    /// path may also be a single file). Files that cannot be read or
    /// compiled are recorded in [`RuleSet::failures`], never dropped silently.
    pub fn load_paths<P: AsRef<Path>>(&mut self, paths: &[P]) {
        let mut files = Vec::new();
        for path in paths {
            collect_rule_files(path.as_ref(), &mut files, &mut self.failures);
        }
        files.sort();
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        for (file, parsed) in files
            .iter()
            .zip(parse_files(&files, threads, &self.placeholders))
        {
            match parsed {
                Ok(rules) => rules.into_iter().for_each(|rule| self.add_rule(rule)),
                Err(reason) => self.failures.push(LoadFailure {
                    source: file.display().to_string(),
                    reason,
                }),
            }
        }
    }

    /// Adds the rules of one YAML text (a file's content); a failure is recorded.
    pub fn add_yaml(&mut self, yaml: &str, source: &str) {
        match Rule::parse_all_with(yaml, source, &self.placeholders) {
            Ok(rules) => rules.into_iter().for_each(|rule| self.add_rule(rule)),
            Err(reason) => self.failures.push(LoadFailure {
                source: source.to_owned(),
                reason,
            }),
        }
    }

    /// Adds a compiled rule.
    pub fn add_rule(&mut self, rule: Rule) {
        self.prefilter = OnceLock::new();
        let index = self.rules.len();
        let (route, unmapped) = rule.meta.logsource.route();
        if unmapped {
            self.unmapped.push(index);
        }
        match route {
            Route::Channels(filters) => {
                for filter in filters {
                    let bucket = self.by_channel.entry(filter.channel).or_default();
                    if filter.event_ids.is_empty() {
                        bucket.all.push(index);
                    } else {
                        for id in filter.event_ids {
                            bucket.by_id.entry(*id).or_default().push(index);
                        }
                    }
                }
            }
            Route::AnyWindows => self.any_windows.push(index),
            Route::NonWindows => self.non_windows.push(index),
        }
        self.rules.push(rule);
    }

    /// The loaded rules.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The rules that failed to load, with reasons.
    pub fn failures(&self) -> &[LoadFailure] {
        &self.failures
    }

    /// Windows rules whose category or service is not mapped to a channel;
    /// they are tested against every Windows event.
    pub fn unmapped(&self) -> impl Iterator<Item = &Rule> {
        self.unmapped.iter().map(|i| &self.rules[*i])
    }

    /// Calls `hit` with the index of every rule matching `event`, in rule order
    /// within each routing bucket.
    pub fn for_each_match(&self, event: &Event, hit: impl FnMut(usize)) {
        let admitted = self
            .prefilter
            .get_or_init(|| Prefilter::build(&self.rules))
            .candidates(event);
        self.for_each_routed_match(event, &admitted, hit);
    }

    /// Tests the rules routed to `event` that `admitted` lets through.
    fn for_each_routed_match(&self, event: &Event, admitted: &[bool], mut hit: impl FnMut(usize)) {
        let mut test = |indices: &[usize]| {
            for &i in indices {
                if admitted[i] && self.rules[i].matches(event) {
                    hit(i);
                }
            }
        };
        match event.channel() {
            Some(channel) => {
                if let Some(bucket) = self.by_channel.get(channel) {
                    test(&bucket.all);
                    if let Some(ids) = event.event_id().and_then(|id| bucket.by_id.get(&id)) {
                        test(ids);
                    }
                }
                test(&self.any_windows);
            }
            None => test(&self.non_windows),
        }
    }

    /// Indices of the rules matching `event`.
    pub fn matches(&self, event: &Event) -> Vec<usize> {
        let mut hits = Vec::new();
        self.for_each_match(event, |i| hits.push(i));
        hits
    }
}

/// Reads and compiles `files` on `threads` threads, results in file order.
fn parse_files(
    files: &[PathBuf],
    threads: usize,
    placeholders: &Placeholders,
) -> Vec<Result<Vec<Rule>, String>> {
    let parse = |file: &PathBuf| {
        std::fs::read_to_string(file)
            .map_err(|e| format!("cannot read: {e}"))
            .and_then(|text| Rule::parse_all_with(&text, &file.display().to_string(), placeholders))
    };
    let chunk = files.len().div_ceil(threads.max(1)).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(parse).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

fn collect_rule_files(path: &Path, files: &mut Vec<PathBuf>, failures: &mut Vec<LoadFailure>) {
    let fail = |failures: &mut Vec<LoadFailure>, reason: String| {
        failures.push(LoadFailure {
            source: path.display().to_string(),
            reason,
        });
    };
    if path.is_file() {
        files.push(path.to_owned());
        return;
    }
    let entries = match std::fs::read_dir(path) {
        Ok(entries) => entries,
        Err(e) => return fail(failures, format!("cannot list rule directory: {e}")),
    };
    for entry in entries {
        match entry {
            Ok(entry) => {
                let child = entry.path();
                if child.is_dir() {
                    collect_rule_files(&child, files, failures);
                } else if child.extension().is_some_and(|e| {
                    e.eq_ignore_ascii_case("yml") || e.eq_ignore_ascii_case("yaml")
                }) {
                    files.push(child);
                }
            }
            Err(e) => fail(failures, format!("cannot list rule directory: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SYSMON_RULE: &str = "title: s\nid: s\nlogsource: {product: windows, category: process_creation}\ndetection: {sel: {Image|endswith: '\\x.exe'}, condition: sel}\n";
    const SECURITY_RULE: &str = "title: c\nid: c\nlogsource: {product: windows, service: security}\ndetection: {sel: {EventID: 1102}, condition: sel}\n";
    const LINUX_RULE: &str = "title: l\nid: l\nlogsource: {product: linux, category: process_creation}\ndetection: {sel: {Image|endswith: '/x.exe'}, condition: sel}\n";

    fn set() -> RuleSet {
        let mut set = RuleSet::new();
        set.add_yaml(SYSMON_RULE, "s.yml");
        set.add_yaml(SECURITY_RULE, "c.yml");
        set.add_yaml(LINUX_RULE, "l.yml");
        set.add_yaml("title: broken", "b.yml");
        set
    }

    #[test]
    fn routes_by_channel_and_event_id() {
        let set = set();
        assert_eq!(set.rules().len(), 3);
        assert_eq!(set.failures().len(), 1);
        assert_eq!(set.failures()[0].source, "b.yml");
        let sysmon = Event::from_pairs([
            ("Channel", "Microsoft-Windows-Sysmon/Operational"),
            ("EventID", "1"),
            ("Image", "C:\\x.exe"),
        ]);
        assert_eq!(set.matches(&sysmon), vec![0]);
        let wrong_id = Event::from_pairs([
            ("Channel", "Microsoft-Windows-Sysmon/Operational"),
            ("EventID", "7"),
            ("Image", "C:\\x.exe"),
        ]);
        assert!(set.matches(&wrong_id).is_empty());
        let cleared = Event::from_pairs([("Channel", "Security"), ("EventID", "1102")]);
        assert_eq!(set.matches(&cleared), vec![1]);
        let linux = Event::from_pairs([("Image", "/tmp/x.exe")]);
        assert_eq!(set.matches(&linux), vec![2]);
    }

    #[test]
    fn prefilter_never_changes_results() {
        let mut set = RuleSet::builtin();
        set.add_yaml(SYSMON_RULE, "s.yml");
        set.add_yaml(SECURITY_RULE, "c.yml");
        set.add_yaml("title: n\nlogsource: {product: windows, category: process_creation}\ndetection: {sel: {Image|endswith: '.exe'}, f: {CommandLine|contains: 'x'}, condition: sel and not f}\n", "n.yml");
        let sysmon = "Microsoft-Windows-Sysmon/Operational";
        let events = [
            Event::from_pairs([
                ("Channel", sysmon),
                ("EventID", "1"),
                ("Image", "C:\\x.exe"),
                ("CommandLine", "x /all"),
            ]),
            Event::from_pairs([
                ("Channel", sysmon),
                ("EventID", "1"),
                ("Image", "C:\\w\\whoami.exe"),
                ("CommandLine", "whoami /priv"),
            ]),
            Event::from_pairs([
                ("Channel", sysmon),
                ("EventID", "10"),
                ("TargetImage", "C:\\lsass.exe"),
                ("GrantedAccess", "0x1010"),
                ("SourceImage", "C:\\t\\m.exe"),
            ]),
            Event::from_pairs([
                ("Channel", "Security"),
                ("EventID", "1102"),
                ("Provider_Name", "Microsoft-Windows-Eventlog"),
            ]),
        ];
        let everything = vec![true; set.rules().len()];
        let mut total = 0;
        for event in &events {
            let mut brute = Vec::new();
            set.for_each_routed_match(event, &everything, |i| brute.push(i));
            assert_eq!(set.matches(event), brute);
            total += brute.len();
        }
        assert_eq!(total, 6);
    }

    #[test]
    fn missing_directory_is_a_failure() {
        let mut set = RuleSet::new();
        set.load_paths(&["/nonexistent/synod/rules"]);
        assert_eq!(set.failures().len(), 1);
        assert!(set.failures()[0].reason.contains("cannot list"));
    }
}
