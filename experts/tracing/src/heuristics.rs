//! Behavioural detections the tracer adds to alerts: well-known, specific
//! process, access, thread, service, registry, logon and script behaviours
//! mapped to ATT&CK techniques. Each rule is a pure test of one record;
//! they are deliberately narrow (a named tool with its tell-tale arguments,
//! LSASS memory read by a non-system process) so they rarely fire on
//! ordinary activity. Sigma alerts passed in `alerts` remain the main
//! source of detections.

use crate::record::{Action, ProcessRef, Record, file_name, is_user_writable};

/// One behavioural detection on one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// ATT&CK technique id.
    pub technique: &'static str,
    /// The tactic the behaviour serves here.
    pub tactic: &'static str,
    /// Why (shown in the chain).
    pub reason: &'static str,
}

const fn finding(technique: &'static str, tactic: &'static str, reason: &'static str) -> Finding {
    Finding {
        technique,
        tactic,
        reason,
    }
}

/// `PROCESS_VM_READ`: reading another process's memory.
const PROCESS_VM_READ: u64 = 0x10;

/// Processes that legitimately read LSASS memory or inject threads.
const SYSTEM_TOOLS: [&str; 14] = [
    "wmiprvse.exe",
    "svchost.exe",
    "csrss.exe",
    "wininit.exe",
    "services.exe",
    "lsm.exe",
    "msmpeng.exe",
    "mssense.exe",
    "vmtoolsd.exe",
    "vboxservice.exe",
    "system",
    "searchindexer.exe",
    "taskmgr.exe",
    "smss.exe",
];

/// Findings for `record` (most records have none).
pub fn detect(record: &Record) -> Vec<Finding> {
    match &record.action {
        Action::ProcessCreate { process, parent } => process_creation(process, parent),
        Action::ProcessAccess {
            source,
            target,
            access,
        } => {
            let target = target.image_name().unwrap_or_default();
            let source = source.image_name().unwrap_or_default();
            if target == "lsass.exe"
                && access & PROCESS_VM_READ != 0
                && !SYSTEM_TOOLS.contains(&source.as_str())
            {
                vec![finding(
                    "T1003.001",
                    "credential-access",
                    "LSASS memory opened for reading by a non-system process",
                )]
            } else {
                Vec::new()
            }
        }
        Action::RemoteThread { source, target } => {
            let source_name = source.image_name().unwrap_or_default();
            if source.image_name() != target.image_name()
                && !SYSTEM_TOOLS.contains(&source_name.as_str())
            {
                vec![finding(
                    "T1055",
                    "defense-evasion",
                    "thread created in another process",
                )]
            } else {
                Vec::new()
            }
        }
        Action::ServiceInstall { image_path, .. } if suspicious_service(image_path) => {
            vec![finding(
                "T1543.003",
                "persistence",
                "service whose command is a shell, script host, rundll32 or a user-writable path",
            )]
        }
        Action::Registry { key, details, .. } => registry(key, details.as_deref()),
        Action::File {
            process,
            path,
            deleted: false,
        } if dropped_tool(process, path) => vec![finding(
            "T1105",
            "command-and-control",
            "executable or script written by a program running from a user-writable folder",
        )],
        Action::Logon { logon, failed } if !failed => {
            let seclogo = logon
                .logon_process
                .as_deref()
                .is_some_and(|p| p.eq_ignore_ascii_case("seclogo"));
            match logon.logon_type {
                Some(9) if seclogo => vec![finding(
                    "T1550.002",
                    "lateral-movement",
                    "new-credentials logon (type 9, seclogo): pass-the-hash / runas /netonly",
                )],
                Some(10) if logon.source_ip.is_some() => vec![finding(
                    "T1021.001",
                    "lateral-movement",
                    "remote desktop logon from another host",
                )],
                _ => Vec::new(),
            }
        }
        Action::Script { text, .. } => script(text),
        Action::LogCleared { .. } => {
            vec![finding("T1070.001", "defense-evasion", "event log cleared")]
        }
        Action::Network {
            process, outbound, ..
        } if *outbound
            && process.image.as_deref().is_some_and(|i| {
                is_user_writable(i) && i.to_ascii_lowercase().ends_with(".exe")
            }) =>
        {
            vec![finding(
                "T1071",
                "command-and-control",
                "outbound connection by a program running from a user-writable folder",
            )]
        }
        _ => Vec::new(),
    }
}

fn process_creation(process: &ProcessRef, parent: &ProcessRef) -> Vec<Finding> {
    let image = process.image_name().unwrap_or_default();
    let command = process
        .command_line
        .as_deref()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let has = |needle: &str| command.contains(needle);
    let mut found = Vec::new();
    let mut add = |technique, tactic, reason| found.push(finding(technique, tactic, reason));
    match image.as_str() {
        "whoami.exe" => add("T1033", "discovery", "whoami: current user and groups"),
        "systeminfo.exe" | "hostname.exe" => add("T1082", "discovery", "system information"),
        "tasklist.exe" | "qprocess.exe" => add("T1057", "discovery", "process listing"),
        "ipconfig.exe" | "route.exe" | "arp.exe" | "nbtstat.exe" => {
            add("T1016", "discovery", "network configuration")
        }
        "netstat.exe" => add("T1049", "discovery", "network connections"),
        "nltest.exe" => add("T1482", "discovery", "domain trust discovery"),
        "net.exe" | "net1.exe" => {
            if has(" user") && has("/add") {
                add(
                    "T1136.001",
                    "persistence",
                    "local account created with net user /add",
                );
            } else if has(" user") || has(" group") || has(" localgroup") {
                add("T1087", "discovery", "account discovery with net");
            } else if has(" view") {
                add(
                    "T1018",
                    "discovery",
                    "remote system discovery with net view",
                );
            } else if has(" share") {
                add("T1135", "discovery", "network share discovery");
            }
        }
        "reg.exe" => {
            if has(" save") && (has("\\sam") || has("\\security") || has("\\system")) {
                add(
                    "T1003.002",
                    "credential-access",
                    "registry hive saved (SAM/SECURITY/SYSTEM)",
                );
            } else if has(" add") && has("\\currentversion\\run") {
                add("T1547.001", "persistence", "run key added with reg.exe");
            } else if has(" query") {
                add("T1012", "discovery", "registry query");
            }
        }
        "rundll32.exe" if has("comsvcs") && has("minidump") => add(
            "T1003.001",
            "credential-access",
            "LSASS dump with comsvcs.dll MiniDump",
        ),
        "procdump.exe" | "procdump64.exe" if has("lsass") => {
            add("T1003.001", "credential-access", "LSASS dump with procdump")
        }
        "schtasks.exe" if has("/create") => {
            add("T1053.005", "persistence", "scheduled task created")
        }
        "wmic.exe" if has("process") && has("call") && has("create") => {
            add("T1047", "execution", "process created through WMI")
        }
        "vssadmin.exe" if has("delete") && has("shadows") => {
            add("T1490", "impact", "volume shadow copies deleted")
        }
        "wevtutil.exe" if has(" cl ") || has("clear-log") => add(
            "T1070.001",
            "defense-evasion",
            "event log cleared with wevtutil",
        ),
        "certutil.exe" if has("urlcache") || has("-split") => add(
            "T1105",
            "command-and-control",
            "file download with certutil",
        ),
        "mshta.exe" => add("T1218.005", "defense-evasion", "mshta proxy execution"),
        "sc.exe" if has(" create") => add("T1543.003", "persistence", "service created with sc"),
        "ntdsutil.exe" if has("ifm") => add(
            "T1003.003",
            "credential-access",
            "NTDS.dit copied with ntdsutil ifm",
        ),
        "powershell.exe" | "pwsh.exe" if has(" -enc") || has(" -e ") || has("-encodedcommand") => {
            add(
                "T1059.001",
                "execution",
                "PowerShell with an encoded command",
            )
        }
        _ => {}
    }
    let parent_image = parent.image_name().unwrap_or_default();
    let shell = matches!(
        image.as_str(),
        "cmd.exe"
            | "powershell.exe"
            | "pwsh.exe"
            | "rundll32.exe"
            | "mshta.exe"
            | "cscript.exe"
            | "wscript.exe"
    );
    match parent_image.as_str() {
        "wmiprvse.exe" if shell => add(
            "T1047",
            "execution",
            "shell or script host started by WMI (wmiprvse.exe)",
        ),
        "services.exe" if image == "cmd.exe" && has("echo") && has("\\\\.\\pipe\\") => add(
            "T1134.001",
            "privilege-escalation",
            "service command writes to a named pipe (Meterpreter/Cobalt Strike getsystem impersonation)",
        ),
        "services.exe" if image == "rundll32.exe" && has(".dll,a") && has("/p:") => add(
            "T1134.001",
            "privilege-escalation",
            "rundll32 service with `,a /p:` (Meterpreter getsystem token duplication)",
        ),
        "services.exe" if shell => add(
            "T1569.002",
            "execution",
            "shell, script host or rundll32 started directly by services.exe",
        ),
        "wsmprovhost.exe" | "winrshost.exe" => add(
            "T1021.006",
            "lateral-movement",
            "process started through Windows Remote Management",
        ),
        "w3wp.exe" | "httpd.exe" | "nginx.exe" | "php-cgi.exe" if shell => add(
            "T1505.003",
            "persistence",
            "shell started by a web server process (web shell)",
        ),
        _ => {}
    }
    let launched_by_user = matches!(
        parent_image.as_str(),
        "explorer.exe" | "outlook.exe" | "winword.exe" | "excel.exe" | "chrome.exe" | "msedge.exe"
    );
    if launched_by_user
        && image.ends_with(".exe")
        && process.image.as_deref().is_some_and(|i| {
            let lower = i.to_ascii_lowercase();
            lower.contains("\\downloads\\")
                || lower.contains("\\temp\\")
                || lower.contains("\\content.outlook\\")
        })
    {
        add(
            "T1204.002",
            "execution",
            "user ran a program from Downloads, Temp or an Outlook attachment folder",
        );
    }
    found
}

/// Whether a program running from a user-writable folder (not a browser,
/// mail client or installer) wrote an executable or script: a tool brought in.
fn dropped_tool(process: &ProcessRef, path: &str) -> bool {
    let Some(image) = process.image.as_deref() else {
        return false;
    };
    let writer = file_name(image);
    let carrier = [
        "chrome.exe",
        "msedge.exe",
        "firefox.exe",
        "iexplore.exe",
        "outlook.exe",
        "teams.exe",
        "onedrive.exe",
        "onedrivestandaloneupdater.exe",
        "msiexec.exe",
        "setup.exe",
    ];
    let lower = path.to_ascii_lowercase();
    is_user_writable(image)
        && !carrier.contains(&writer.as_str())
        && !writer.contains("update")
        && [".exe", ".dll", ".ps1", ".bat", ".vbs", ".hta", ".scr"]
            .iter()
            .any(|ext| lower.ends_with(ext))
}

fn suspicious_service(command: &str) -> bool {
    let lower = command.to_ascii_lowercase();
    let first = file_name(lower.split_whitespace().next().unwrap_or_default());
    [
        "cmd.exe",
        "powershell.exe",
        "rundll32.exe",
        "mshta.exe",
        "%comspec%",
    ]
    .iter()
    .any(|tool| first.contains(tool) || lower.contains(&format!("\\{tool}")))
        || is_user_writable(&lower)
}

fn registry(key: &str, details: Option<&str>) -> Vec<Finding> {
    let lower = key.to_ascii_lowercase();
    if lower.contains("\\currentversion\\run\\") || lower.contains("\\currentversion\\runonce\\") {
        return vec![finding("T1547.001", "persistence", "run key value set")];
    }
    if lower.contains("\\services\\")
        && lower.ends_with("\\imagepath")
        && details.is_some_and(suspicious_service)
    {
        return vec![finding(
            "T1543.003",
            "persistence",
            "service ImagePath set to a shell, rundll32 or a user-writable path",
        )];
    }
    Vec::new()
}

fn script(text: &str) -> Vec<Finding> {
    let lower = text.to_ascii_lowercase();
    if lower.contains("invoke-mimikatz") || lower.contains("sekurlsa::") {
        vec![finding(
            "T1003.001",
            "credential-access",
            "Mimikatz in a PowerShell script block",
        )]
    } else if lower.contains("minidumpwritedump") {
        vec![finding(
            "T1003.001",
            "credential-access",
            "MiniDumpWriteDump in a PowerShell script block",
        )]
    } else {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spawn(image: &str, command: &str, parent: &str) -> Vec<&'static str> {
        let process = ProcessRef {
            image: Some(image.to_owned()),
            command_line: Some(command.to_owned()),
            ..ProcessRef::default()
        };
        let parent = ProcessRef {
            image: Some(parent.to_owned()),
            ..ProcessRef::default()
        };
        process_creation(&process, &parent)
            .into_iter()
            .map(|f| f.technique)
            .collect()
    }

    #[test]
    fn process_rules() {
        let cmd = "C:\\Windows\\System32\\cmd.exe";
        assert_eq!(
            spawn("C:\\Windows\\System32\\whoami.exe", "whoami /groups", cmd),
            ["T1033"]
        );
        assert_eq!(
            spawn(
                "C:\\Windows\\System32\\rundll32.exe",
                "rundll32.exe C:\\windows\\System32\\comsvcs.dll MiniDump 628 C:\\t\\l.dmp full",
                "C:\\Windows\\System32\\svchost.exe"
            ),
            ["T1003.001"]
        );
        assert_eq!(
            spawn(
                "C:\\Users\\bob\\Downloads\\invoice.exe",
                "invoice.exe",
                "C:\\Windows\\explorer.exe"
            ),
            ["T1204.002"]
        );
        assert_eq!(
            spawn(
                "C:\\Windows\\System32\\net.exe",
                "net user eve P@ss /add",
                cmd
            ),
            ["T1136.001"]
        );
        assert!(spawn("C:\\Windows\\System32\\notepad.exe", "notepad", cmd).is_empty());
        assert_eq!(
            spawn(
                cmd,
                "cmd.exe /Q /c cd 1> \\\\127.0.0.1\\ADMIN$\\__1 2>&1",
                "C:\\Windows\\System32\\wbem\\WmiPrvSE.exe"
            ),
            ["T1047"]
        );
        assert!(
            spawn(
                "C:\\Windows\\System32\\rundll32.exe",
                "rundll32 shell32.dll,Control_RunDLL",
                cmd
            )
            .is_empty()
        );
    }

    #[test]
    fn dropped_tools() {
        let payload = ProcessRef {
            image: Some("C:\\Users\\bob\\Downloads\\payload.exe".to_owned()),
            ..ProcessRef::default()
        };
        assert!(dropped_tool(
            &payload,
            "C:\\Users\\bob\\AppData\\Local\\Temp\\procdump64.exe"
        ));
        assert!(!dropped_tool(&payload, "C:\\Users\\bob\\notes.txt"));
        let browser = ProcessRef {
            image: Some("C:\\Users\\bob\\AppData\\Local\\Google\\chrome.exe".to_owned()),
            ..ProcessRef::default()
        };
        assert!(!dropped_tool(&browser, "C:\\Users\\bob\\Downloads\\x.exe"));
        let pipe = spawn(
            "C:\\Windows\\System32\\cmd.exe",
            "cmd.exe /c echo qfhaer > \\\\.\\pipe\\qfhaer",
            "C:\\Windows\\System32\\services.exe",
        );
        assert_eq!(pipe, ["T1134.001"]);
    }

    #[test]
    fn services_and_registry() {
        assert!(suspicious_service(
            "%COMSPEC% /b /c start /b /min powershell -nop"
        ));
        assert!(suspicious_service(
            "rundll32.exe C:\\Users\\P\\AppData\\Local\\Temp\\q.dll,a"
        ));
        assert!(!suspicious_service(
            "\"C:\\Program Files\\Vendor\\agent.exe\" -service"
        ));
        assert_eq!(
            registry(
                "HKU\\S-1\\Software\\Microsoft\\Windows\\CurrentVersion\\Run\\x",
                Some("c:\\x.exe")
            )[0]
            .technique,
            "T1547.001"
        );
    }
}
