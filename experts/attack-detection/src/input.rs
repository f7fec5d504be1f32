//! Reading events from files: EVTX (parsed by the `evtx` crate into the
//! same JSON shape `evtx_dump` writes), JSON (one event or an array) and
//! JSON lines (OTRF Security-Datasets).

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use serde_json::Value;

use crate::event::Event;

/// Where an event came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRef {
    /// File path, or `input` for events passed inline.
    pub source: String,
    /// Position of the event in its source, from 0.
    pub index: usize,
    /// EVTX record id, when known.
    pub record_id: Option<u64>,
}

/// Events passed inline in a skill input (`"events": [...]`), each with its
/// reference (`source: "input"`, its index in the array).
pub(crate) fn inline_events(values: &[Value]) -> impl Iterator<Item = (EventRef, Event)> + '_ {
    values.iter().enumerate().map(|(index, value)| {
        let reference = EventRef {
            source: "input".to_owned(),
            index,
            record_id: None,
        };
        (reference, Event::from_json(value))
    })
}

/// A file that could not be read as events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    /// The file.
    pub path: String,
    /// What went wrong and where.
    pub reason: String,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.reason)
    }
}

impl std::error::Error for InputError {}

/// What reading one file produced besides events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadStats {
    /// Events read.
    pub events: usize,
    /// Records or lines that could not be parsed (skipped).
    pub bad_records: usize,
}

/// The kind of a file, by extension or, failing that, by its first bytes.
fn is_evtx(path: &Path, head: &[u8]) -> bool {
    head.starts_with(b"ElfFile\0")
        || path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("evtx"))
}

/// Reads the events of `path` (EVTX, JSON or JSON lines), calling `each`
/// with each event and its reference. Unparsable records are skipped and
/// counted; a file that cannot be opened or parsed at all is an error.
pub fn read_file(
    path: &Path,
    mut each: impl FnMut(EventRef, Event),
) -> Result<ReadStats, InputError> {
    let error = |reason: String| InputError {
        path: path.display().to_string(),
        reason,
    };
    let cannot_read = |e: std::io::Error| error(format!("cannot read: {e}"));
    let mut file = BufReader::new(File::open(path).map_err(cannot_read)?);
    let head = file.fill_buf().map_err(cannot_read)?;
    let source = path.display().to_string();
    let mut stats = ReadStats::default();
    if is_evtx(path, &head[..head.len().min(8)]) {
        drop(file);
        let mut parser = evtx::EvtxParser::from_path(path)
            .map_err(|e| error(format!("not a valid EVTX file: {e}")))?;
        for (index, record) in parser.records_json_value().enumerate() {
            match record {
                Ok(record) => {
                    stats.events += 1;
                    let reference = EventRef {
                        source: source.clone(),
                        index,
                        record_id: Some(record.event_record_id),
                    };
                    each(reference, Event::from_json(&record.data));
                }
                Err(_) => stats.bad_records += 1,
            }
        }
        return Ok(stats);
    }
    // JSON lines are streamed (OTRF recordings reach gigabytes); anything
    // else (an array, a pretty-printed object) is parsed whole.
    if head.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
        && stream_json_lines(file, &source, &mut stats, &mut each).map_err(error)?
    {
        return Ok(stats);
    }
    let bytes = std::fs::read(path).map_err(cannot_read)?;
    let text = String::from_utf8(bytes).map_err(|e| error(format!("not UTF-8 text: {e}")))?;
    read_json_text(&text, &source, &mut stats, &mut each).map_err(error)?;
    Ok(stats)
}

/// Reads JSON lines from `reader`. Returns `false`, having emitted nothing,
/// when the first non-empty line is not a JSON value (the text is then not
/// JSON lines, e.g. a pretty-printed object).
fn stream_json_lines(
    mut reader: impl BufRead,
    source: &str,
    stats: &mut ReadStats,
    each: &mut impl FnMut(EventRef, Event),
) -> Result<bool, String> {
    let mut line = String::new();
    let mut index = 0usize;
    loop {
        line.clear();
        let read = reader
            .read_line(&mut line)
            .map_err(|e| format!("cannot read line {}: {e}", index + stats.bad_records + 1))?;
        if read == 0 {
            return Ok(true);
        }
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(&line) {
            Ok(value) => {
                stats.events += 1;
                let reference = EventRef {
                    source: source.to_owned(),
                    index,
                    record_id: record_id(&value),
                };
                each(reference, Event::from_json(&value));
                index += 1;
            }
            Err(_) if index == 0 && stats.bad_records == 0 => return Ok(false),
            Err(_) => stats.bad_records += 1,
        }
    }
}

/// Reads JSON text: an array of events, one event, or JSON lines.
fn read_json_text(
    text: &str,
    source: &str,
    stats: &mut ReadStats,
    each: &mut impl FnMut(EventRef, Event),
) -> Result<(), String> {
    let mut emit = |index: usize, value: &Value| {
        stats.events += 1;
        let reference = EventRef {
            source: source.to_owned(),
            index,
            record_id: record_id(value),
        };
        each(reference, Event::from_json(value));
    };
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        let value: Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
        for (index, item) in value.as_array().into_iter().flatten().enumerate() {
            emit(index, item);
        }
        return Ok(());
    }
    // a single (possibly pretty-printed) object, or JSON lines
    if let Ok(value) = serde_json::from_str::<Value>(text) {
        emit(0, &value);
        return Ok(());
    }
    let mut good = 0usize;
    let mut first_error = None;
    for (line_number, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(line) {
            Ok(value) => {
                emit(good, &value);
                good += 1;
            }
            Err(e) => {
                stats.bad_records += 1;
                first_error.get_or_insert_with(|| format!("line {}: {e}", line_number + 1));
            }
        }
    }
    match (good, first_error) {
        (0, Some(e)) => Err(format!("neither JSON nor JSON lines ({e})")),
        _ => Ok(()),
    }
}

fn record_id(value: &Value) -> Option<u64> {
    value
        .pointer("/Event/System/EventRecordID")
        .or_else(|| value.get("EventRecordID"))
        .or_else(|| value.get("RecordNumber"))
        .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> (Vec<(EventRef, Event)>, ReadStats) {
        let mut events = Vec::new();
        let mut stats = ReadStats::default();
        read_json_text(text, "t", &mut stats, &mut |r, e| events.push((r, e))).unwrap();
        (events, stats)
    }

    #[test]
    fn json_shapes() {
        let (events, _) = read(r#"[{"EventID": 1}, {"EventID": 2}]"#);
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].0.index, 1);
        let (events, _) =
            read("{\n  \"Event\": {\"System\": {\"EventID\": 4, \"EventRecordID\": 9}}\n}\n");
        assert_eq!(events[0].0.record_id, Some(9));
        assert_eq!(events[0].1.event_id(), Some(4));
        let (events, stats) = read("{\"EventID\": 1}\n\n{\"EventID\": 2}\nnot json\n");
        assert_eq!(events.len(), 2);
        assert_eq!(stats.bad_records, 1);
    }

    #[test]
    fn files_stream_lines_and_fall_back_to_whole_json() {
        let dir = std::env::temp_dir().join(format!("synod-ad-input-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let lines = dir.join("a.jsonl");
        std::fs::write(&lines, "{\"EventID\": 1}\nbroken\n\n{\"EventID\": 2}\n").unwrap();
        let pretty = dir.join("b.json");
        std::fs::write(&pretty, "{\n  \"EventID\": 3\n}\n").unwrap();
        let mut ids = Vec::new();
        let stats = read_file(&lines, |r, e| ids.push((r.index, e.event_id()))).unwrap();
        assert_eq!(
            stats,
            ReadStats {
                events: 2,
                bad_records: 1
            }
        );
        let stats = read_file(&pretty, |r, e| ids.push((r.index, e.event_id()))).unwrap();
        std::fs::remove_dir_all(&dir).ok();
        assert_eq!(stats.events, 1);
        assert_eq!(ids, vec![(0, Some(1)), (1, Some(2)), (0, Some(3))]);
    }

    #[test]
    fn garbage_is_an_error() {
        let mut stats = ReadStats::default();
        let err = read_json_text("hello\nworld", "t", &mut stats, &mut |_, _| {}).unwrap_err();
        assert!(err.contains("line 1"));
        let dir = std::env::temp_dir().join(format!("synod-ad-{}.evtx", std::process::id()));
        std::fs::write(&dir, b"ElfFile\0garbage").unwrap();
        let err = read_file(&dir, |_, _| {}).unwrap_err();
        std::fs::remove_file(&dir).ok();
        assert!(err.reason.contains("EVTX"));
    }
}
