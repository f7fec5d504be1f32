//! Log-source routing: which events a rule applies to, from its
//! `logsource` (product, category, service).
//!
//! Windows services map to event-log channels and Windows categories to a
//! channel plus event ids, following SigmaHQ's conventions (the Sysmon and
//! Windows audit pipelines of pySigma): `process_creation` is Sysmon event 1
//! or Security 4688, `registry_set` is Sysmon 13, `ps_script` is PowerShell
//! 4104, and so on. Events without a `Channel` are not Windows event-log
//! records; they get every rule whose product is not Windows.

use crate::event::lowercase;

const SYSMON: &str = "microsoft-windows-sysmon/operational";
const SECURITY: &str = "security";
const POWERSHELL: &str = "microsoft-windows-powershell/operational";
const POWERSHELL_CORE: &str = "powershellcore/operational";
const POWERSHELL_CLASSIC: &str = "windows powershell";

/// A channel, optionally restricted to some event ids (lowercase channel).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelFilter {
    /// Lowercase channel name.
    pub channel: &'static str,
    /// Event ids, or every event of the channel when empty.
    pub event_ids: &'static [u32],
}

const fn ch(channel: &'static str, event_ids: &'static [u32]) -> ChannelFilter {
    ChannelFilter { channel, event_ids }
}

/// Where a rule applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Windows events of any of these channels.
    Channels(Vec<ChannelFilter>),
    /// Every Windows event (product windows without a mapped category or
    /// service); the rule's own fields (EventID, Provider_Name) decide.
    AnyWindows,
    /// Events that are not Windows event-log records (no `Channel`).
    NonWindows,
}

/// A rule's `logsource`, lowercased.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogSource {
    /// e.g. `windows`, `linux`.
    pub product: Option<String>,
    /// e.g. `process_creation`.
    pub category: Option<String>,
    /// e.g. `security`, `sysmon`.
    pub service: Option<String>,
}

impl LogSource {
    /// A log source from optional product, category and service.
    pub fn new(product: Option<&str>, category: Option<&str>, service: Option<&str>) -> Self {
        LogSource {
            product: product.map(lowercase),
            category: category.map(lowercase),
            service: service.map(lowercase),
        }
    }

    /// `product/category/service` for messages.
    pub fn describe(&self) -> String {
        [&self.product, &self.category, &self.service]
            .iter()
            .map(|p| p.as_deref().unwrap_or("-"))
            .collect::<Vec<_>>()
            .join("/")
    }

    /// The route, and whether a Windows category or service was unknown
    /// (the rule then applies to every Windows event).
    pub fn route(&self) -> (Route, bool) {
        if self.product.as_deref() != Some("windows") {
            return (Route::NonWindows, false);
        }
        if let Some(service) = &self.service {
            return match service_channels(service) {
                Some(channels) => (Route::Channels(channels), false),
                None => (Route::AnyWindows, true),
            };
        }
        if let Some(category) = &self.category {
            return match category_channels(category) {
                Some(channels) => (Route::Channels(channels), false),
                None => (Route::AnyWindows, true),
            };
        }
        (Route::AnyWindows, false)
    }
}

fn service_channels(service: &str) -> Option<Vec<ChannelFilter>> {
    let one = |c: &'static str| Some(vec![ch(c, &[])]);
    match service {
        "security" => one(SECURITY),
        "system" => one("system"),
        "application" => one("application"),
        "sysmon" => one(SYSMON),
        "powershell" => Some(vec![ch(POWERSHELL, &[]), ch(POWERSHELL_CORE, &[])]),
        "powershell-classic" => one(POWERSHELL_CLASSIC),
        "taskscheduler" => one("microsoft-windows-taskscheduler/operational"),
        "wmi" => one("microsoft-windows-wmi-activity/operational"),
        "dns-server" => one("dns server"),
        "dns-server-analytic" => one("microsoft-windows-dns-server/analytical"),
        "dns-server-audit" => one("microsoft-windows-dns-server/audit"),
        "driver-framework" => one("microsoft-windows-driverframeworks-usermode/operational"),
        "ntlm" => one("microsoft-windows-ntlm/operational"),
        "dhcp" => one("microsoft-windows-dhcp-server/operational"),
        "msexchange-management" => one("msexchange management"),
        "applocker" => Some(vec![
            ch("microsoft-windows-applocker/msi and script", &[]),
            ch("microsoft-windows-applocker/exe and dll", &[]),
            ch("microsoft-windows-applocker/packaged app-deployment", &[]),
            ch("microsoft-windows-applocker/packaged app-execution", &[]),
        ]),
        "printservice-admin" => one("microsoft-windows-printservice/admin"),
        "printservice-operational" => one("microsoft-windows-printservice/operational"),
        "codeintegrity-operational" => one("microsoft-windows-codeintegrity/operational"),
        "smbclient-security" => one("microsoft-windows-smbclient/security"),
        "smbclient-connectivity" => one("microsoft-windows-smbclient/connectivity"),
        "smbserver-connectivity" => one("microsoft-windows-smbserver/connectivity"),
        "firewall-as" => one("microsoft-windows-windows firewall with advanced security/firewall"),
        "bits-client" => one("microsoft-windows-bits-client/operational"),
        "windefend" => one("microsoft-windows-windows defender/operational"),
        "terminalservices-localsessionmanager" => {
            one("microsoft-windows-terminalservices-localsessionmanager/operational")
        }
        "microsoft-servicebus-client" => one("microsoft-servicebus-client"),
        "ldap" | "ldap_debug" => one("microsoft-windows-ldap-client/debug"),
        "security-mitigations" => Some(vec![
            ch("microsoft-windows-security-mitigations/kernel mode", &[]),
            ch("microsoft-windows-security-mitigations/user mode", &[]),
        ]),
        "diagnosis-scripted" => one("microsoft-windows-diagnosis-scripted/operational"),
        "shell-core" => one("microsoft-windows-shell-core/operational"),
        "openssh" => one("openssh/operational"),
        "bitlocker" => one("microsoft-windows-bitlocker/bitlocker management"),
        "vhdmp" => one("microsoft-windows-vhdmp-operational"),
        "appxdeployment-server" => one("microsoft-windows-appxdeploymentserver/operational"),
        "appxpackaging-om" => one("microsoft-windows-appxpackaging/operational"),
        "lsa-server" => one("microsoft-windows-lsa/operational"),
        "dns-client" => one("microsoft-windows-dns client events/operational"),
        "appmodel-runtime" => one("microsoft-windows-appmodel-runtime/admin"),
        "capi2" => one("microsoft-windows-capi2/operational"),
        "certificateservicesclient-lifecycle-system" => {
            one("microsoft-windows-certificateservicesclient-lifecycle-system/operational")
        }
        "kernel-shimengine" => Some(vec![
            ch("microsoft-windows-kernel-shimengine/operational", &[]),
            ch("microsoft-windows-kernel-shimengine/diagnostic", &[]),
        ]),
        "hyper-v-worker" => one("microsoft-windows-hyper-v-worker-admin"),
        "iis-configuration" => Some(vec![
            ch("microsoft-iis-configuration/operational", &[]),
            ch("microsoft-iis-configuration/administrative", &[]),
        ]),
        "sense" => one("microsoft-windows-sense/operational"),
        "wmi-activity" => one("microsoft-windows-wmi-activity/operational"),
        _ => None,
    }
}

fn category_channels(category: &str) -> Option<Vec<ChannelFilter>> {
    let sysmon = |ids: &'static [u32]| Some(vec![ch(SYSMON, ids)]);
    match category {
        "process_creation" => Some(vec![ch(SYSMON, &[1]), ch(SECURITY, &[4688])]),
        "file_change" => sysmon(&[2]),
        "network_connection" => Some(vec![ch(SYSMON, &[3]), ch(SECURITY, &[5156])]),
        "sysmon_status" => sysmon(&[4, 16]),
        "process_termination" => Some(vec![ch(SYSMON, &[5]), ch(SECURITY, &[4689])]),
        "driver_load" => sysmon(&[6]),
        "image_load" => sysmon(&[7]),
        "create_remote_thread" => sysmon(&[8]),
        "raw_access_thread" | "raw_access_read" => sysmon(&[9]),
        "process_access" => sysmon(&[10]),
        "file_event" => sysmon(&[11]),
        "registry_event" => sysmon(&[12, 13, 14]),
        "registry_add" | "registry_delete" => sysmon(&[12]),
        "registry_set" => sysmon(&[13]),
        "registry_rename" => sysmon(&[14]),
        "create_stream_hash" => sysmon(&[15]),
        "pipe_created" => sysmon(&[17, 18]),
        "wmi_event" => sysmon(&[19, 20, 21]),
        "dns_query" => sysmon(&[22]),
        "file_delete" => sysmon(&[23, 26]),
        "clipboard_capture" => sysmon(&[24]),
        "process_tampering" => sysmon(&[25]),
        "file_delete_detected" => sysmon(&[26]),
        "file_block_executable" => sysmon(&[27]),
        "file_block_shredding" => sysmon(&[28]),
        "file_executable_detected" => sysmon(&[29]),
        "sysmon_error" => sysmon(&[255]),
        "ps_module" => Some(vec![ch(POWERSHELL, &[4103]), ch(POWERSHELL_CORE, &[4103])]),
        "ps_script" => Some(vec![ch(POWERSHELL, &[4104]), ch(POWERSHELL_CORE, &[4104])]),
        "ps_classic_start" => Some(vec![ch(POWERSHELL_CLASSIC, &[400])]),
        "ps_classic_provider_start" => Some(vec![ch(POWERSHELL_CLASSIC, &[600])]),
        "ps_classic_script" => Some(vec![ch(POWERSHELL_CLASSIC, &[800])]),
        "file_access" | "file_rename" => {
            Some(vec![ch("microsoft-windows-kernel-file/analytic", &[])])
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let proc = LogSource::new(Some("Windows"), Some("process_creation"), None);
        let (route, unknown) = proc.route();
        assert!(!unknown);
        assert_eq!(
            route,
            Route::Channels(vec![ch(SYSMON, &[1]), ch(SECURITY, &[4688])])
        );
        let security = LogSource::new(Some("windows"), None, Some("security"));
        assert_eq!(security.route().0, Route::Channels(vec![ch(SECURITY, &[])]));
        assert_eq!(
            LogSource::new(Some("linux"), Some("process_creation"), None)
                .route()
                .0,
            Route::NonWindows
        );
        assert_eq!(
            LogSource::new(None, Some("proxy"), None).route().0,
            Route::NonWindows
        );
        assert_eq!(
            LogSource::new(Some("windows"), Some("new_thing"), None).route(),
            (Route::AnyWindows, true)
        );
        assert_eq!(proc.describe(), "windows/process_creation/-");
    }
}
