//! Alerts: the rules that fired, one alert per rule with its metadata,
//! ATT&CK techniques and tactics, match count and the matched events.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::engine::RuleSet;
use crate::event::Event;
use crate::input::EventRef;
use crate::rule::{LEVELS, Rule, RuleMeta, level_rank};

/// A matched event: where it came from and its key fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchedEvent {
    /// Where the event came from.
    pub reference: EventRef,
    /// `TimeCreated` / `UtcTime` / `@timestamp`, as written.
    pub timestamp: Option<String>,
    /// `Computer` / `Hostname`.
    pub computer: Option<String>,
    /// `Channel`.
    pub channel: Option<String>,
    /// `EventID`.
    pub event_id: Option<u32>,
    /// The event's values of the fields the rule tests (first value, at most
    /// [`MAX_FIELD_CHARS`] characters), by the event's field names.
    pub fields: BTreeMap<String, String>,
}

/// Longest field value copied into a matched event.
pub const MAX_FIELD_CHARS: usize = 1024;

impl MatchedEvent {
    fn new(reference: EventRef, event: &Event, rule: &Rule) -> Self {
        let fields = rule
            .fields()
            .iter()
            .filter_map(|key| event.get_key(key))
            .filter_map(|field| {
                let value = field.values.iter().find(|v| !v.is_null)?;
                Some((
                    field.name.clone(),
                    value.text.chars().take(MAX_FIELD_CHARS).collect(),
                ))
            })
            .collect();
        let first = |names: &[&str]| names.iter().find_map(|n| event.text(n)).map(str::to_owned);
        MatchedEvent {
            reference,
            timestamp: first(&[
                "TimeCreated_SystemTime",
                "TimeCreated",
                "UtcTime",
                "@timestamp",
                "EventTime",
            ]),
            computer: first(&["Computer", "Hostname", "host.name"]),
            channel: first(&["Channel"]),
            event_id: event.event_id(),
            fields,
        }
    }

    fn to_json(&self) -> Value {
        let mut value = json!({
            "source": self.reference.source,
            "index": self.reference.index,
        });
        let object = value.as_object_mut().expect("object literal");
        let mut put = |key: &str, v: Option<Value>| {
            if let Some(v) = v {
                object.insert(key.to_owned(), v);
            }
        };
        put("record_id", self.reference.record_id.map(Value::from));
        put("timestamp", self.timestamp.clone().map(Value::from));
        put("computer", self.computer.clone().map(Value::from));
        put("channel", self.channel.clone().map(Value::from));
        put("event_id", self.event_id.map(Value::from));
        put("fields", Some(json!(self.fields)));
        value
    }
}

/// One rule that fired.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// The rule.
    pub rule: RuleMeta,
    /// How many events matched.
    pub count: usize,
    /// The first matched events (at most the detector's limit).
    pub events: Vec<MatchedEvent>,
}

impl Alert {
    /// The alert as JSON (the `alerts` items of the `detect` skill).
    pub fn to_json(&self) -> Value {
        let rule = &self.rule;
        json!({
            "rule_id": rule.id,
            "title": rule.title,
            "level": rule.level,
            "status": rule.status,
            "author": rule.author,
            "description": rule.description,
            "tags": rule.tags,
            "techniques": rule.techniques(),
            "tactics": rule.tactics(),
            "logsource": rule.logsource.describe(),
            "rule_source": rule.source,
            "falsepositives": rule.falsepositives,
            "count": self.count,
            "events": self.events.iter().map(MatchedEvent::to_json).collect::<Vec<_>>(),
        })
    }
}

/// Feeds events through a rule set and collects alerts.
#[derive(Debug)]
pub struct Detector<'a> {
    rules: &'a RuleSet,
    hits: BTreeMap<usize, (usize, Vec<MatchedEvent>)>,
    max_events_per_alert: usize,
    events: usize,
    matched_events: usize,
    scratch: Vec<usize>,
}

impl<'a> Detector<'a> {
    /// A detector keeping at most `max_events_per_alert` event references per alert.
    pub fn new(rules: &'a RuleSet, max_events_per_alert: usize) -> Self {
        Detector {
            rules,
            hits: BTreeMap::new(),
            max_events_per_alert,
            events: 0,
            matched_events: 0,
            scratch: Vec::new(),
        }
    }

    /// Tests one event.
    pub fn observe(&mut self, reference: EventRef, event: &Event) {
        self.events += 1;
        self.scratch.clear();
        let scratch = &mut self.scratch;
        self.rules.for_each_match(event, |i| scratch.push(i));
        if self.scratch.is_empty() {
            return;
        }
        self.matched_events += 1;
        for &i in &self.scratch {
            let (count, events) = self.hits.entry(i).or_default();
            *count += 1;
            if events.len() < self.max_events_per_alert {
                events.push(MatchedEvent::new(
                    reference.clone(),
                    event,
                    &self.rules.rules()[i],
                ));
            }
        }
    }

    /// Events seen so far.
    pub fn events(&self) -> usize {
        self.events
    }

    /// The alerts, most severe first, then by count, then title.
    pub fn finish(self) -> Report {
        let rules = self.rules.rules();
        let mut alerts: Vec<Alert> = self
            .hits
            .into_iter()
            .map(|(i, (count, events))| Alert {
                rule: rules[i].meta.clone(),
                count,
                events,
            })
            .collect();
        alerts.sort_by(|a, b| {
            level_rank(&b.rule.level)
                .cmp(&level_rank(&a.rule.level))
                .then(b.count.cmp(&a.count))
                .then(a.rule.title.cmp(&b.rule.title))
        });
        Report {
            alerts,
            events: self.events,
            matched_events: self.matched_events,
        }
    }
}

/// The result of a detection run.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// One alert per rule that fired.
    pub alerts: Vec<Alert>,
    /// Events tested.
    pub events: usize,
    /// Events matched by at least one rule.
    pub matched_events: usize,
}

impl Report {
    /// Whether the rule with `id` fired.
    pub fn fired(&self, id: &str) -> Option<&Alert> {
        self.alerts.iter().find(|a| a.rule.id == id)
    }

    /// Counts as JSON: events, matched events, alerts, alerts by level,
    /// matches by ATT&CK technique.
    pub fn counts_json(&self) -> Value {
        let mut by_level: BTreeMap<&str, usize> = LEVELS.iter().map(|l| (*l, 0)).collect();
        let mut by_technique: BTreeMap<String, usize> = BTreeMap::new();
        for alert in &self.alerts {
            *by_level.entry(alert.rule.level.as_str()).or_default() += 1;
            for technique in alert.rule.techniques() {
                *by_technique.entry(technique).or_default() += alert.count;
            }
        }
        json!({
            "events": self.events,
            "matched_events": self.matched_events,
            "alerts": self.alerts.len(),
            "by_level": by_level,
            "by_technique": by_technique,
        })
    }
}
