//! Events reduced to what provenance needs: who (host, process, logon) did
//! what (created a process, opened another, connected, wrote a file or a
//! registry value, logged on, installed a service) to what, and when.
//!
//! [`Record::from_event`] reads the field names of Sysmon (event ids 1, 3, 7,
//! 8, 10, 11, 12-14, 15, 22, 23, 26), Security (4624, 4625, 4648, 4672, 4688,
//! 4697, 5156, 1102), System (7045, 104) and PowerShell (4104) events, in
//! EVTX-style or flat JSON as [`Event`] flattens them. It is pure: no I/O.

use serde_json::{Value, json};
use synod_expert_attack_detection::{Event, EventRef};

/// A process as an event names it; every part is optional because events
/// differ in what they carry (Sysmon has GUIDs, Security only pids).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessRef {
    /// Sysmon `ProcessGuid`, lowercase, without braces.
    pub guid: Option<String>,
    /// Process id (Sysmon decimal, Security hexadecimal, both read).
    pub pid: Option<u64>,
    /// Image path as written.
    pub image: Option<String>,
    /// Command line, when the event has it.
    pub command_line: Option<String>,
    /// `DOMAIN\user`, when the event has it.
    pub user: Option<String>,
    /// Logon id as lowercase hexadecimal (`0x3e7`).
    pub logon_id: Option<String>,
}

impl ProcessRef {
    /// Whether the reference identifies anything at all.
    pub fn is_known(&self) -> bool {
        self.guid.is_some() || self.pid.is_some() || self.image.is_some()
    }

    /// Lowercase file name of the image (`cmd.exe`).
    pub fn image_name(&self) -> Option<String> {
        self.image.as_deref().map(file_name)
    }
}

/// A logon session from a Security logon event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogonInfo {
    /// `DOMAIN\user` logged on.
    pub user: String,
    /// The new session's logon id (`0x…`), when the event gives one.
    pub logon_id: Option<String>,
    /// Windows logon type (2 interactive, 3 network, 9 new credentials,
    /// 10 remote interactive, 11 cached interactive, …).
    pub logon_type: Option<u32>,
    /// Remote address, when not local (`-`, `::1` and `127.0.0.1` dropped).
    pub source_ip: Option<String>,
    /// Remote workstation name, when given.
    pub workstation: Option<String>,
    /// `LogonProcessName`, trimmed (`seclogo`, `NtLmSsp`, `User32`).
    pub logon_process: Option<String>,
    /// `AuthenticationPackageName`.
    pub package: Option<String>,
}

/// What an event did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Sysmon 1 / Security 4688: `parent` created `process`.
    ProcessCreate {
        /// The new process.
        process: ProcessRef,
        /// Its parent.
        parent: ProcessRef,
    },
    /// Sysmon 10: `source` opened `target` with `access` rights.
    ProcessAccess {
        /// The process opening the handle.
        source: ProcessRef,
        /// The opened process.
        target: ProcessRef,
        /// `GrantedAccess` mask.
        access: u64,
    },
    /// Sysmon 8: `source` created a thread in `target`.
    RemoteThread {
        /// The injecting process.
        source: ProcessRef,
        /// The process the thread runs in.
        target: ProcessRef,
    },
    /// Sysmon 3 / Security 5156: a network connection.
    Network {
        /// The local process.
        process: ProcessRef,
        /// Remote address.
        remote_ip: String,
        /// Remote port.
        remote_port: Option<u64>,
        /// Remote host name, when Sysmon resolved it.
        remote_host: Option<String>,
        /// Whether the local process initiated it (outbound).
        outbound: bool,
    },
    /// Sysmon 22: a DNS query.
    Dns {
        /// The querying process.
        process: ProcessRef,
        /// The name asked for, lowercase.
        query: String,
    },
    /// Sysmon 11, 15 (written) and 23, 26 (deleted).
    File {
        /// The writing process.
        process: ProcessRef,
        /// Target path.
        path: String,
        /// Whether the file was deleted rather than written.
        deleted: bool,
    },
    /// Sysmon 12, 13, 14: registry key created, value set, renamed.
    Registry {
        /// The writing process.
        process: ProcessRef,
        /// `TargetObject`.
        key: String,
        /// `Details` (the value written), when given.
        details: Option<String>,
    },
    /// Sysmon 7 of a module worth tracking (unsigned, or from a
    /// user-writable folder).
    ImageLoad {
        /// The loading process.
        process: ProcessRef,
        /// The module path.
        module: String,
    },
    /// Security 4624 (success) and 4625 (failure).
    Logon {
        /// The session.
        logon: LogonInfo,
        /// Whether the logon failed (4625).
        failed: bool,
    },
    /// Security 4648: `process` used explicit credentials of `target_user`.
    ExplicitCredentials {
        /// The process using them.
        process: ProcessRef,
        /// `DOMAIN\user` whose credentials were used.
        target_user: String,
        /// The server they were used against.
        target_server: Option<String>,
    },
    /// Security 4672: special privileges assigned to a new logon.
    SpecialPrivileges {
        /// The session's logon id.
        logon_id: String,
        /// `DOMAIN\user`.
        user: String,
    },
    /// System 7045 / Security 4697: a service was installed.
    ServiceInstall {
        /// Service name.
        name: String,
        /// Its command (`ImagePath` / `ServiceFileName`).
        image_path: String,
        /// The installing process, when the event names it (4697).
        process: ProcessRef,
    },
    /// PowerShell 4104: a script block.
    Script {
        /// The PowerShell process (by pid), when known.
        process: ProcessRef,
        /// The script text (first 4 KiB).
        text: String,
    },
    /// Security 1102 / System 104: an event log was cleared.
    LogCleared {
        /// Who cleared it.
        user: Option<String>,
    },
}

/// One event as provenance sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Where the event came from.
    pub reference: EventRef,
    /// `EventID`.
    pub event_id: u32,
    /// `Channel` as written.
    pub channel: String,
    /// Lowercase computer name (`Computer`, `Hostname`), or `unknown`.
    pub host: String,
    /// UTC timestamp normalised by [`normalize_timestamp`].
    pub timestamp: Option<String>,
    /// What happened.
    pub action: Action,
}

/// Longest script text kept.
const MAX_SCRIPT_CHARS: usize = 4096;

impl Record {
    /// Reads `event`; `None` when the event says nothing provenance uses.
    pub fn from_event(reference: EventRef, event: &Event) -> Option<Record> {
        let event_id = event.event_id()?;
        let channel = event.text("Channel").unwrap_or_default().to_owned();
        let lower = channel.to_ascii_lowercase();
        let action = if lower.contains("sysmon") {
            sysmon_action(event_id, event)
        } else if lower == "security" {
            security_action(event_id, event)
        } else if lower == "system" {
            system_action(event_id, event)
        } else if lower.contains("powershell") && event_id == 4104 {
            Some(Action::Script {
                process: ProcessRef {
                    pid: number(
                        event,
                        &["Execution_ProcessID", "ExecutionProcessID", "ProcessID"],
                    ),
                    ..ProcessRef::default()
                },
                text: text(event, "ScriptBlockText")?
                    .chars()
                    .take(MAX_SCRIPT_CHARS)
                    .collect(),
            })
        } else {
            None
        }?;
        let host = first_text(event, &["Computer", "Hostname", "host.name"])
            .map_or_else(|| "unknown".to_owned(), |h| h.to_ascii_lowercase());
        let timestamp = first_text(
            event,
            &[
                "TimeCreated_SystemTime",
                "@timestamp",
                "TimeCreated",
                "UtcTime",
                "EventTime",
            ],
        )
        .and_then(normalize_timestamp);
        Some(Record {
            reference,
            event_id,
            channel,
            host,
            timestamp,
            action,
        })
    }

    /// The evidence reference of this record as JSON:
    /// `{source, index, record_id?, event_id, channel}`.
    pub fn evidence(&self) -> Value {
        let mut value = json!({
            "source": self.reference.source,
            "index": self.reference.index,
            "event_id": self.event_id,
            "channel": self.channel,
        });
        if let Some(id) = self.reference.record_id {
            value["record_id"] = json!(id);
        }
        value
    }
}

fn sysmon_action(event_id: u32, event: &Event) -> Option<Action> {
    let subject = || process(event, "");
    Some(match event_id {
        1 => Action::ProcessCreate {
            process: subject(),
            parent: process(event, "Parent"),
        },
        3 => Action::Network {
            process: subject(),
            outbound: text(event, "Initiated").is_none_or(|v| v.eq_ignore_ascii_case("true")),
            remote_ip: text(event, "DestinationIp")?.to_owned(),
            remote_port: number(event, &["DestinationPort"]),
            remote_host: text(event, "DestinationHostname")
                .filter(|h| !h.is_empty() && *h != "-")
                .map(str::to_ascii_lowercase),
        },
        7 => {
            let module = text(event, "ImageLoaded")?;
            let unsigned = text(event, "Signed").is_some_and(|s| s.eq_ignore_ascii_case("false"));
            if !unsigned && !is_user_writable(module) {
                return None;
            }
            Action::ImageLoad {
                process: subject(),
                module: module.to_owned(),
            }
        }
        8 => Action::RemoteThread {
            source: process(event, "Source"),
            target: process(event, "Target"),
        },
        10 => Action::ProcessAccess {
            source: process(event, "Source"),
            target: process(event, "Target"),
            access: number(event, &["GrantedAccess"]).unwrap_or(0),
        },
        11 | 15 | 23 | 26 => Action::File {
            process: subject(),
            path: text(event, "TargetFilename")?.to_owned(),
            deleted: matches!(event_id, 23 | 26),
        },
        12..=14 => Action::Registry {
            process: subject(),
            key: text(event, "TargetObject")?.to_owned(),
            details: text(event, "Details")
                .or_else(|| text(event, "NewName"))
                .map(str::to_owned),
        },
        22 => Action::Dns {
            process: subject(),
            query: text(event, "QueryName")?.to_ascii_lowercase(),
        },
        _ => return None,
    })
}

fn security_action(event_id: u32, event: &Event) -> Option<Action> {
    Some(match event_id {
        4688 => Action::ProcessCreate {
            process: ProcessRef {
                pid: number(event, &["NewProcessId"]),
                image: text(event, "NewProcessName").map(str::to_owned),
                command_line: text(event, "CommandLine")
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned),
                // TargetLogonId is the new process's session when it differs
                // from the creator's (e.g. runas); 0x0 means "same as subject".
                logon_id: logon_id(event, "TargetLogonId")
                    .filter(|id| id != "0x0")
                    .or_else(|| logon_id(event, "SubjectLogonId")),
                // the new process runs as the target account when one is given
                user: user(event, "Target").or_else(|| user(event, "Subject")),
                ..ProcessRef::default()
            },
            parent: ProcessRef {
                pid: number(event, &["ProcessId"]),
                image: text(event, "ParentProcessName").map(str::to_owned),
                ..ProcessRef::default()
            },
        },
        4624 | 4625 => Action::Logon {
            logon: LogonInfo {
                user: user(event, "Target")?,
                logon_id: logon_id(event, "TargetLogonId"),
                logon_type: number(event, &["LogonType"]).map(|n| n as u32),
                source_ip: text(event, "IpAddress")
                    .filter(|ip| !matches!(*ip, "-" | "" | "::1" | "127.0.0.1"))
                    .map(str::to_owned),
                workstation: text(event, "WorkstationName")
                    .filter(|w| !matches!(*w, "-" | ""))
                    .map(str::to_owned),
                logon_process: text(event, "LogonProcessName").map(|p| p.trim().to_owned()),
                package: text(event, "AuthenticationPackageName").map(str::to_owned),
            },
            failed: event_id == 4625,
        },
        4648 => Action::ExplicitCredentials {
            process: ProcessRef {
                pid: number(event, &["ProcessId"]),
                image: text(event, "ProcessName")
                    .filter(|p| *p != "-")
                    .map(str::to_owned),
                logon_id: logon_id(event, "SubjectLogonId"),
                user: user(event, "Subject"),
                ..ProcessRef::default()
            },
            target_user: user(event, "Target")?,
            target_server: text(event, "TargetServerName").map(str::to_owned),
        },
        4672 => Action::SpecialPrivileges {
            logon_id: logon_id(event, "SubjectLogonId")?,
            user: user(event, "Subject")?,
        },
        4697 => Action::ServiceInstall {
            name: text(event, "ServiceName")?.to_owned(),
            image_path: text(event, "ServiceFileName")?.to_owned(),
            process: ProcessRef {
                logon_id: logon_id(event, "SubjectLogonId"),
                user: user(event, "Subject"),
                ..ProcessRef::default()
            },
        },
        5156 => Action::Network {
            process: ProcessRef {
                pid: number(event, &["ProcessID", "ProcessId"]),
                image: text(event, "Application").map(str::to_owned),
                ..ProcessRef::default()
            },
            remote_ip: text(event, "DestAddress")?.to_owned(),
            remote_port: number(event, &["DestPort"]),
            remote_host: None,
            outbound: text(event, "Direction").is_some_and(|d| d == "%%14593"),
        },
        1102 => Action::LogCleared {
            user: user(event, "Subject"),
        },
        _ => return None,
    })
}

fn system_action(event_id: u32, event: &Event) -> Option<Action> {
    match event_id {
        7045 => Some(Action::ServiceInstall {
            name: text(event, "ServiceName")?.to_owned(),
            image_path: text(event, "ImagePath")?.to_owned(),
            process: ProcessRef::default(),
        }),
        104 => Some(Action::LogCleared {
            user: user(event, "Subject"),
        }),
        _ => None,
    }
}

/// The process whose fields start with `prefix` (`""`, `Parent`, `Source`,
/// `Target`), Sysmon naming.
fn process(event: &Event, prefix: &str) -> ProcessRef {
    let field = |name: &str| text(event, &format!("{prefix}{name}")).map(str::to_owned);
    ProcessRef {
        guid: field("ProcessGuid")
            .map(|g| {
                g.trim_matches(|c| c == '{' || c == '}')
                    .to_ascii_lowercase()
            })
            .filter(|g| !g.is_empty() && !g.starts_with("00000000-0000")),
        pid: number(event, &[&format!("{prefix}ProcessId")]),
        image: field("Image").filter(|i| !i.is_empty() && i != "-"),
        command_line: field("CommandLine").filter(|c| !c.is_empty()),
        user: field("User").filter(|u| !u.is_empty() && u != "-"),
        logon_id: if prefix.is_empty() {
            logon_id(event, "LogonId")
        } else {
            None
        },
    }
}

fn text<'a>(event: &'a Event, name: &str) -> Option<&'a str> {
    event
        .get(name)?
        .values
        .iter()
        .find(|v| !v.is_null)
        .map(|v| v.text.as_str())
}

fn first_text<'a>(event: &'a Event, names: &[&str]) -> Option<&'a str> {
    names.iter().find_map(|n| text(event, n))
}

fn number(event: &Event, names: &[&str]) -> Option<u64> {
    names.iter().find_map(|name| {
        event
            .get(name)?
            .values
            .iter()
            .find_map(|v| v.number)
            .filter(|n| *n >= 0.0)
            .map(|n| n as u64)
    })
}

/// A logon id as lowercase hexadecimal (`0x3e7`), whatever its notation.
fn logon_id(event: &Event, name: &str) -> Option<String> {
    number(event, &[name]).map(|n| format!("{n:#x}"))
}

/// `DOMAIN\user` from `{prefix}UserName` and `{prefix}DomainName`.
fn user(event: &Event, prefix: &str) -> Option<String> {
    let name = text(event, &format!("{prefix}UserName")).filter(|n| !n.is_empty() && *n != "-")?;
    match text(event, &format!("{prefix}DomainName")).filter(|d| !d.is_empty() && *d != "-") {
        Some(domain) => Some(format!("{domain}\\{name}")),
        None => Some(name.to_owned()),
    }
}

/// Lowercase file name of a Windows or Unix path.
pub fn file_name(path: &str) -> String {
    path.rsplit(['\\', '/'])
        .next()
        .unwrap_or(path)
        .to_ascii_lowercase()
}

/// Whether `path` is in a folder users can write to (profiles, temp,
/// ProgramData, public), where dropped tools live.
pub fn is_user_writable(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    [
        "\\users\\",
        "\\temp\\",
        "\\programdata\\",
        "\\appdata\\",
        "\\perflogs\\",
    ]
    .iter()
    .any(|dir| lower.contains(dir))
}

/// Normalises a timestamp to `YYYY-MM-DDTHH:MM:SS.mmmZ` so timestamps from
/// EVTX (`2020-10-20T03:46:16.1234567Z`), Sysmon `UtcTime`
/// (`2020-10-20 03:46:16.123`) and OTRF (`2020-10-20T03:46:16.123Z`) sort
/// together. Offsets other than UTC are not converted (the producers above
/// all write UTC). `None` when `text` is not such a timestamp.
pub fn normalize_timestamp(text: &str) -> Option<String> {
    let text = text.trim();
    let bytes = text.as_bytes();
    if bytes.len() < 19 {
        return None;
    }
    let digits_at = |positions: &[usize]| positions.iter().all(|&i| bytes[i].is_ascii_digit());
    let shape_ok = digits_at(&[0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18])
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && (bytes[10] == b'T' || bytes[10] == b' ')
        && bytes[13] == b':'
        && bytes[16] == b':';
    if !shape_ok {
        return None;
    }
    let mut millis = String::new();
    if bytes.get(19) == Some(&b'.') {
        millis = text[20..]
            .chars()
            .take_while(char::is_ascii_digit)
            .take(3)
            .collect();
    }
    while millis.len() < 3 {
        millis.push('0');
    }
    Some(format!("{}T{}.{millis}Z", &text[..10], &text[11..19]))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn record(value: Value) -> Option<Record> {
        let reference = EventRef {
            source: "input".into(),
            index: 0,
            record_id: None,
        };
        Record::from_event(reference, &Event::from_json(&value))
    }

    #[test]
    fn timestamps() {
        assert_eq!(
            normalize_timestamp("2020-10-20 03:46:16.1"),
            Some("2020-10-20T03:46:16.100Z".into())
        );
        assert_eq!(
            normalize_timestamp("2020-10-20T03:46:16.1234567Z"),
            Some("2020-10-20T03:46:16.123Z".into())
        );
        assert_eq!(
            normalize_timestamp("2020-10-20T03:46:16Z"),
            Some("2020-10-20T03:46:16.000Z".into())
        );
        assert_eq!(normalize_timestamp("yesterday at noon, roughly"), None);
    }

    #[test]
    fn security_process_creation_reads_hex_pids() {
        let r = record(json!({
            "Channel": "Security", "EventID": 4688, "Hostname": "PRD01.lab",
            "TimeCreated": "2023-08-18T08:56:06.238Z",
            "NewProcessId": "0x1d54", "NewProcessName": "C:\\x\\msedge.exe", "ProcessId": "0x13a0",
            "ParentProcessName": "C:\\Windows\\explorer.exe", "SubjectLogonId": "0x20810B",
            "TargetLogonId": "0x0", "SubjectUserName": "pupy", "SubjectDomainName": "LAB"
        }))
        .unwrap();
        assert_eq!(r.host, "prd01.lab");
        let Action::ProcessCreate { process, parent } = r.action else {
            panic!("not a process creation")
        };
        assert_eq!(process.pid, Some(0x1d54));
        assert_eq!(process.logon_id.as_deref(), Some("0x20810b"));
        assert_eq!(process.user.as_deref(), Some("LAB\\pupy"));
        assert_eq!(parent.pid, Some(0x13a0));
    }

    #[test]
    fn sysmon_access_and_uninteresting_events() {
        let r = record(json!({
            "Event": {
                "System": { "EventID": 10, "Channel": "Microsoft-Windows-Sysmon/Operational",
                    "Computer": "WS1", "EventRecordID": 5,
                    "TimeCreated": { "#attributes": { "SystemTime": "2021-01-01T00:00:01.5Z" } } },
                "EventData": { "SourceProcessGUID": "{ABC-1}", "SourceImage": "C:\\t\\x.exe",
                    "TargetImage": "C:\\Windows\\system32\\lsass.exe", "GrantedAccess": "0x1410" }
            }
        }))
        .unwrap();
        assert_eq!(r.timestamp.as_deref(), Some("2021-01-01T00:00:01.500Z"));
        let Action::ProcessAccess { source, access, .. } = r.action else {
            panic!("not an access")
        };
        assert_eq!(source.guid.as_deref(), Some("abc-1"));
        assert_eq!(access, 0x1410);
        assert!(
            record(json!({ "Channel": "Microsoft-Windows-Sysmon/Operational", "EventID": 4 }))
                .is_none()
        );
        // signed module from System32: not tracked
        assert!(
            record(
                json!({ "Channel": "Microsoft-Windows-Sysmon/Operational", "EventID": 7,
                "ImageLoaded": "C:\\Windows\\System32\\ntdll.dll", "Signed": "true" })
            )
            .is_none()
        );
    }
}
