//! Events as the engine sees them: flat maps from field name to one or more
//! scalar values, built from EVTX-style JSON (`Event.System`,
//! `Event.EventData`, `Event.UserData`) or from already flat JSON (OTRF
//! Security-Datasets, Sysmon forwarded as JSON).
//!
//! Field names are looked up case-insensitively (Sigma rules and log
//! producers disagree on case, e.g. `SourceProcessGuid` versus Sysmon's
//! `SourceProcessGUID`). Every value keeps its text, its lowercase form for
//! case-insensitive matching and, when it reads as one, its number.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use serde_json::{Map, Value};

/// FxHash (as in rustc): fast for the short field names of events, which
/// are looked up thousands of times per event. Not DoS-resistant, which
/// does not matter for maps built from one event's own field names.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        for byte in chunks.remainder() {
            self.add(u64::from(*byte));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type FieldMap = HashMap<String, Field, BuildHasherDefault<FxHasher>>;

/// One scalar value of a field.
#[derive(Debug, Clone, PartialEq)]
pub struct Scalar {
    /// The value as text (numbers in decimal, booleans as `true`/`false`).
    pub text: String,
    /// `text` lowercased, for case-insensitive matching.
    pub lower: String,
    /// The value as a number, when it is one (decimal or `0x` hexadecimal).
    pub number: Option<f64>,
    /// Whether the value is JSON `null`.
    pub is_null: bool,
}

impl Scalar {
    /// A scalar from text.
    pub fn text(text: impl Into<String>) -> Self {
        let text = text.into();
        let number = parse_number(&text);
        Scalar {
            lower: lowercase(&text),
            text,
            number,
            is_null: false,
        }
    }

    fn null() -> Self {
        Scalar {
            text: String::new(),
            lower: String::new(),
            number: None,
            is_null: true,
        }
    }

    fn from_json(value: &Value) -> Option<Self> {
        match value {
            Value::Null => Some(Scalar::null()),
            Value::Bool(b) => Some(Scalar::text(b.to_string())),
            Value::Number(n) => Some(Scalar::text(n.to_string())),
            Value::String(s) => Some(Scalar::text(s.as_str())),
            Value::Array(_) | Value::Object(_) => None,
        }
    }
}

/// Lowercases `text`, cheaply when it is ASCII.
pub(crate) fn lowercase(text: &str) -> String {
    if text.is_ascii() {
        text.to_ascii_lowercase()
    } else {
        text.to_lowercase()
    }
}

/// The lookup key of a field name: lowercase, without spaces, so that
/// Defender's `Threat Name` answers to Sigma's `ThreatName`.
pub(crate) fn field_key(name: &str) -> String {
    let lower = lowercase(name);
    if lower.contains(' ') {
        lower.replace(' ', "")
    } else {
        lower
    }
}

/// Reads `text` as a number: decimal integer or float, or `0x` hexadecimal.
pub(crate) fn parse_number(text: &str) -> Option<f64> {
    let t = text.trim();
    if t.is_empty() || t.len() > 40 {
        return None;
    }
    if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return u64::from_str_radix(hex, 16).ok().map(|n| n as f64);
    }
    let first = t.as_bytes()[0];
    if !(first.is_ascii_digit() || first == b'-' || first == b'+') {
        return None;
    }
    t.parse::<f64>().ok().filter(|n| n.is_finite())
}

/// A field of an event: its name as written and its values.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// The field name as the log producer wrote it.
    pub name: String,
    /// One value, or several for list fields (e.g. classic PowerShell `Data`).
    pub values: Vec<Scalar>,
}

/// One event, flattened.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Event {
    /// Fields by [`field_key`].
    fields: FieldMap,
    /// Lowercase `Channel`, for routing rules by log source.
    channel: Option<String>,
    /// `EventID`, for routing rules by log source.
    event_id: Option<u32>,
}

impl Event {
    /// An event from JSON: EVTX-style (`{"Event": {"System": .., "EventData": ..}}`)
    /// or flat (`{"EventID": 1, "Channel": .., "Image": ..}`). Nested objects
    /// of flat events are reachable by dotted path and by leaf name.
    pub fn from_json(value: &Value) -> Self {
        let mut event = Event::default();
        match value {
            Value::Object(map) => match map.get("Event").and_then(Value::as_object) {
                Some(inner) if inner.contains_key("System") => event.add_evtx(inner),
                _ => event.add_flat(map, ""),
            },
            other => {
                if let Some(scalar) = Scalar::from_json(other) {
                    event.push("_raw", scalar);
                }
            }
        }
        event.finish();
        event
    }

    /// An event from `(name, text)` pairs, for tests and simple inputs.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut event = Event::default();
        for (name, text) in pairs {
            event.push(name, Scalar::text(text));
        }
        event.finish();
        event
    }

    /// The field called `name` (any case, spaces ignored).
    pub fn get(&self, name: &str) -> Option<&Field> {
        self.fields.get(&field_key(name))
    }

    /// The field whose lookup key (lowercase, no spaces) is `key`.
    pub fn get_key(&self, key: &str) -> Option<&Field> {
        self.fields.get(key)
    }

    /// Every field, in no particular order.
    pub fn fields(&self) -> impl Iterator<Item = &Field> {
        self.fields.values()
    }

    /// Lowercase `Channel`, if any.
    pub fn channel(&self) -> Option<&str> {
        self.channel.as_deref()
    }

    /// `EventID`, if any.
    pub fn event_id(&self) -> Option<u32> {
        self.event_id
    }

    /// The first value of `name` as text.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.get(name)
            .and_then(|f| f.values.first())
            .map(|s| s.text.as_str())
    }

    fn push(&mut self, name: &str, scalar: Scalar) {
        self.fields
            .entry(field_key(name))
            .or_insert_with(|| Field {
                name: name.to_owned(),
                values: Vec::new(),
            })
            .values
            .push(scalar);
    }

    /// Adds `name` with the values of `value` (a scalar, a list of scalars,
    /// or an object holding `#text`) unless the field already exists.
    fn add_value(&mut self, name: &str, value: &Value) {
        match value {
            Value::Array(items) => {
                for item in items {
                    if let Some(scalar) = Scalar::from_json(item) {
                        self.push(name, scalar);
                    }
                }
            }
            Value::Object(map) => {
                if let Some(text) = map.get("#text") {
                    self.add_value(name, text);
                }
                if let Some(Value::Object(attributes)) = map.get("#attributes") {
                    for (attribute, v) in attributes {
                        self.add_value(&format!("{name}_{attribute}"), v);
                    }
                }
                for (key, v) in map {
                    if !key.starts_with('#') {
                        self.add_leaves(key, v);
                    }
                }
            }
            scalar => {
                if let Some(scalar) = Scalar::from_json(scalar) {
                    self.push(name, scalar);
                }
            }
        }
    }

    /// Adds the leaves of a nested value under their own names
    /// (`UserData.LogFileCleared.SubjectUserName` -> `SubjectUserName`).
    fn add_leaves(&mut self, name: &str, value: &Value) {
        match value {
            Value::Object(map)
                if !map.contains_key("#text") && !map.contains_key("#attributes") =>
            {
                for (key, v) in map {
                    self.add_leaves(key, v);
                }
            }
            other => self.add_value(name, other),
        }
    }

    fn add_evtx(&mut self, event: &Map<String, Value>) {
        if let Some(Value::Object(system)) = event.get("System") {
            for (key, value) in system {
                self.add_value(key, value);
            }
        }
        for section in ["EventData", "UserData"] {
            match event.get(section) {
                Some(Value::Object(data)) => {
                    for (key, value) in data {
                        if key == "#attributes" {
                            continue;
                        }
                        if key == "#text" {
                            self.add_value("Data", value);
                        } else if key == "Data" && self.add_named_data(value) {
                            // xmltodict style: [{"@Name": "Image", "#text": ".."}]
                        } else {
                            self.add_leaves(key, value);
                        }
                    }
                }
                Some(Value::Null) | None => {}
                Some(other) => self.add_value("Data", other),
            }
        }
        // Some producers put extra fields (RenderingInfo, Message) beside System.
        for (key, value) in event {
            if !matches!(
                key.as_str(),
                "System" | "EventData" | "UserData" | "#attributes"
            ) && !self.fields.contains_key(&field_key(key))
            {
                self.add_leaves(key, value);
            }
        }
    }

    /// Adds `<Data Name="x">v</Data>` items converted by xmltodict-style
    /// tools (`[{"@Name": "x", "#text": "v"}]`); false when `value` is not
    /// such a list.
    fn add_named_data(&mut self, value: &Value) -> bool {
        let Value::Array(items) = value else {
            return false;
        };
        fn name_of(item: &Value) -> Option<&str> {
            item.get("@Name")
                .or_else(|| item.get("Name"))
                .and_then(Value::as_str)
        }
        if items.is_empty() || !items.iter().all(|i| name_of(i).is_some()) {
            return false;
        }
        for item in items {
            if let Some(name) = name_of(item) {
                self.add_value(name, item.get("#text").unwrap_or(&Value::Null));
            }
        }
        true
    }

    fn add_flat(&mut self, map: &Map<String, Value>, prefix: &str) {
        for (key, value) in map {
            let path = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            match value {
                Value::Object(inner) => {
                    self.add_flat(inner, &path);
                    if !prefix.is_empty() || !self.fields.contains_key(&field_key(key)) {
                        // leaf names of nested objects, unless they clash
                        for (leaf, v) in inner {
                            if !v.is_object() && !self.fields.contains_key(&field_key(leaf)) {
                                self.add_value(leaf, v);
                            }
                        }
                    }
                }
                other => self.add_value(&path, other),
            }
        }
    }

    /// Caches routing fields and adds the Sysmon field names to Security
    /// audit events that Sigma's process and network categories also cover
    /// (see [`SECURITY_ALIASES`]).
    fn finish(&mut self) {
        self.channel = self.text("Channel").map(lowercase);
        self.event_id = self
            .get("EventID")
            .and_then(|f| f.values.first())
            .and_then(|s| s.number)
            .filter(|n| *n >= 0.0 && *n <= f64::from(u32::MAX))
            .map(|n| n as u32);
        if self.channel.as_deref() != Some("security") {
            return;
        }
        self.render_parameter_messages();
        let Some(&(_, aliases)) = SECURITY_ALIASES
            .iter()
            .find(|(id, _)| Some(*id) == self.event_id)
        else {
            return;
        };
        for (alias, source) in aliases {
            if self.get(alias).is_none()
                && let Some(field) = self.get(source).cloned()
            {
                self.fields.insert(
                    field_key(alias),
                    Field {
                        name: (*alias).to_owned(),
                        values: field.values,
                    },
                );
            }
        }
        // 5156: Direction %%14593 is outbound, which Sysmon calls Initiated.
        if self.event_id == Some(5156) && self.get("Initiated").is_none() {
            let outbound = self.text("Direction").is_some_and(|d| d == "%%14593");
            self.push("Initiated", Scalar::text(outbound.to_string()));
        }
    }
}

impl Event {
    /// Adds, next to each value holding `%%NNNN` parameter-message codes of
    /// the Security log, the text Event Viewer renders (`%%4417` ->
    /// `WriteData (or AddFile)`), since some rules are written against
    /// rendered logs. The raw value stays.
    fn render_parameter_messages(&mut self) {
        for field in self.fields.values_mut() {
            let rendered: Vec<Scalar> = field
                .values
                .iter()
                .filter(|s| s.text.contains("%%"))
                .filter_map(|s| render_codes(&s.text))
                .map(Scalar::text)
                .collect();
            field.values.extend(rendered);
        }
    }
}

/// `text` with every known `%%NNNN` code replaced, or `None` if none is known.
fn render_codes(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len() + 32);
    let mut rest = text;
    let mut changed = false;
    while let Some(at) = rest.find("%%") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        let message = after[..digits]
            .parse::<u32>()
            .ok()
            .and_then(|code| PARAMETER_MESSAGES.iter().find(|(c, _)| *c == code))
            .map(|(_, m)| *m);
        match message {
            Some(message) => {
                out.push_str(message);
                changed = true;
            }
            None => out.push_str(&rest[at..at + 2 + digits]),
        }
        rest = &after[digits..];
    }
    out.push_str(rest);
    changed.then_some(out)
}

/// Security-log parameter messages (msobjs.dll) as Event Viewer renders them.
const PARAMETER_MESSAGES: [(u32, &str); 23] = [
    (1537, "DELETE"),
    (1538, "READ_CONTROL"),
    (1539, "WRITE_DAC"),
    (1540, "WRITE_OWNER"),
    (1541, "SYNCHRONIZE"),
    (1542, "ACCESS_SYS_SEC"),
    (4416, "ReadData (or ListDirectory)"),
    (4417, "WriteData (or AddFile)"),
    (
        4418,
        "AppendData (or AddSubdirectory or CreatePipeInstance)",
    ),
    (4419, "ReadEA"),
    (4420, "WriteEA"),
    (4421, "Execute/Traverse"),
    (4422, "DeleteChild"),
    (4423, "ReadAttributes"),
    (4424, "WriteAttributes"),
    (4432, "Query key value"),
    (4433, "Set key value"),
    (4434, "Create sub-key"),
    (4435, "Enumerate sub-keys"),
    (4436, "Notify about changes to keys"),
    (4437, "Create Link"),
    (14592, "Inbound"),
    (14593, "Outbound"),
];

/// Sysmon field names (alias, Security field) for Security audit events, as
/// SigmaHQ's Windows audit pipeline maps them: 4688 process creation, 4689
/// process termination, 5156 network connection.
const SECURITY_ALIASES: [(u32, &[(&str, &str)]); 3] = [
    (
        4688,
        &[
            ("Image", "NewProcessName"),
            ("ParentImage", "ParentProcessName"),
        ],
    ),
    (4689, &[("Image", "ProcessName")]),
    (
        5156,
        &[
            ("Image", "Application"),
            ("DestinationIp", "DestAddress"),
            ("DestinationPort", "DestPort"),
            ("SourceIp", "SourceAddress"),
        ],
    ),
];

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn flattens_evtx_json() {
        let event = Event::from_json(&json!({
            "Event": {
                "#attributes": { "xmlns": "x" },
                "System": {
                    "Provider": { "#attributes": { "Name": "Microsoft-Windows-Sysmon" } },
                    "EventID": 1,
                    "Channel": "Microsoft-Windows-Sysmon/Operational",
                    "Security": { "#attributes": { "UserID": "S-1-5-18" } },
                    "Correlation": null
                },
                "EventData": { "Image": "C:\\Windows\\System32\\cmd.exe", "ProcessId": 7876 }
            }
        }));
        assert_eq!(
            event.text("Provider_Name"),
            Some("Microsoft-Windows-Sysmon")
        );
        assert_eq!(event.text("security_userid"), Some("S-1-5-18"));
        assert_eq!(event.text("Image"), Some("C:\\Windows\\System32\\cmd.exe"));
        assert_eq!(
            event.get("ProcessId").unwrap().values[0].number,
            Some(7876.0)
        );
        assert!(event.get("Correlation").unwrap().values[0].is_null);
        assert_eq!(
            event.channel(),
            Some("microsoft-windows-sysmon/operational")
        );
        assert_eq!(event.event_id(), Some(1));
    }

    #[test]
    fn flattens_user_data_and_text_data() {
        let event = Event::from_json(&json!({
            "Event": {
                "System": { "EventID": { "#attributes": { "Qualifiers": 0 }, "#text": 400 }, "Channel": "Windows PowerShell" },
                "EventData": { "Data": { "#text": ["Available", "None", "HostName=ConsoleHost"] } },
                "UserData": { "LogFileCleared": { "SubjectUserName": "bob" } }
            }
        }));
        assert_eq!(event.event_id(), Some(400));
        assert_eq!(event.get("Data").unwrap().values.len(), 3);
        assert_eq!(event.text("SubjectUserName"), Some("bob"));
        assert_eq!(event.text("EventID_Qualifiers"), Some("0"));
    }

    #[test]
    fn named_data_lists() {
        let event = Event::from_json(&json!({
            "Event": {
                "System": { "EventID": "1", "Channel": "Microsoft-Windows-Sysmon/Operational" },
                "EventData": { "Data": [
                    { "@Name": "Image", "#text": "C:\\x.exe" },
                    { "@Name": "ParentImage" }
                ] }
            }
        }));
        assert_eq!(event.text("Image"), Some("C:\\x.exe"));
        assert!(event.get("ParentImage").unwrap().values[0].is_null);
        assert_eq!(event.event_id(), Some(1));
    }

    #[test]
    fn flat_json_and_security_aliases() {
        let event = Event::from_json(&json!({
            "EventID": 4688, "Channel": "Security", "NewProcessName": "C:\\x\\whoami.exe",
            "host": { "name": "ws1" }
        }));
        assert_eq!(event.text("Image"), Some("C:\\x\\whoami.exe"));
        let connection = Event::from_json(&json!({
            "EventID": 5156, "Channel": "Security", "Direction": "%%14593", "DestAddress": "8.8.8.8"
        }));
        assert_eq!(connection.text("DestinationIp"), Some("8.8.8.8"));
        assert_eq!(connection.text("Initiated"), Some("true"));
        assert_eq!(event.text("host.name"), Some("ws1"));
        assert_eq!(event.text("name"), Some("ws1"));
        let defender = Event::from_json(&json!({ "Threat Name": "EICAR" }));
        assert_eq!(defender.text("ThreatName"), Some("EICAR"));
    }

    #[test]
    fn renders_parameter_messages() {
        let event = Event::from_json(&json!({
            "EventID": 5145, "Channel": "Security", "AccessList": "%%1538\n\t\t\t\t%%4417\n\t\t\t\t%%9999"
        }));
        let values: Vec<&str> = event
            .get("AccessList")
            .unwrap()
            .values
            .iter()
            .map(|s| s.text.as_str())
            .collect();
        assert_eq!(values.len(), 2);
        assert_eq!(
            values[1],
            "READ_CONTROL\n\t\t\t\tWriteData (or AddFile)\n\t\t\t\t%%9999"
        );
        assert_eq!(render_codes("no codes"), None);
        assert_eq!(render_codes("%%"), None);
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_number("0x1410"), Some(5136.0));
        assert_eq!(parse_number("-3.5"), Some(-3.5));
        assert_eq!(parse_number("abc"), None);
        assert_eq!(parse_number("inf"), None);
    }
}
