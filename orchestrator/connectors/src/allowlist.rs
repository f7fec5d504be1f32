//! Which destinations bindings may call, from the server config.
//!
//! A rule is written `[scheme://]host[:port]`:
//! - `scheme` is `https` (the default when omitted) or `http`;
//! - `host` is an exact DNS name (`tickets.example.org`), a wildcard `*.example.com`
//!   (any subdomain at any depth, not `example.com` itself), or an IP literal
//!   (`10.0.0.5`, `[::1]`);
//! - `port` defaults to the scheme's default port (443 or 80); `:*` allows any port.
//!
//! Host names compare case-insensitively and without a trailing dot. Everything not
//! matched by a rule is refused before any connection is made.

use std::fmt;
use std::net::IpAddr;

use url::Url;

/// The server config key holding the allowlist; named in every refusal.
pub const ALLOWLIST_CONFIG_KEY: &str = "bindings.allowed_destinations";

/// One allowed destination pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowRule {
    scheme: Scheme,
    host: HostPattern,
    port: PortPattern,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Http,
    Https,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Exact(String),
    /// `*.suffix`; stores `.suffix` (with the dot, without the `*`).
    Wildcard(String),
    Ip(IpAddr),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PortPattern {
    Default,
    Any,
    Exact(u16),
}

/// The set of allowed destinations. An empty list allows nothing.
///
/// In a config file it is a list of rule strings (`serde` reads and writes that form).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(try_from = "Vec<String>", into = "Vec<String>")]
pub struct Allowlist {
    rules: Vec<AllowRule>,
}

/// A rule in the server config that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{ALLOWLIST_CONFIG_KEY}` entry `{rule}` is invalid: {reason}; write e.g. `https://tickets.example.org`, `https://*.example.com:8443` or `http://10.0.0.5:8080`"
)]
pub struct AllowlistError {
    /// The entry as written.
    pub rule: String,
    /// What is wrong with it.
    pub reason: String,
}

/// A destination the allowlist refuses. The message names the scheme, host and port only
/// (never the path or query, which may carry templated data) and the config key to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.message())]
pub struct DestinationError {
    /// The scheme of the refused URL.
    pub scheme: String,
    /// The host of the refused URL (empty when the URL has none).
    pub host: String,
    /// The effective port of the refused URL.
    pub port: Option<u16>,
    /// Why it was refused.
    pub reason: DestinationRefusal,
    /// The allowlist entries, for the message.
    pub allowed: Vec<String>,
}

/// Why a destination was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DestinationRefusal {
    /// Only `http` and `https` URLs can be bindings.
    UnsupportedScheme,
    /// The URL embeds `user:password@`; credentials belong in a header from `secrets`.
    Credentials,
    /// The URL has no host.
    NoHost,
    /// No rule matches.
    NotAllowed,
    /// A rule names this host, but with another scheme or port.
    SchemeOrPortNotAllowed,
}

// === impl AllowRule ===

impl AllowRule {
    /// Parses one `[scheme://]host[:port]` rule.
    pub fn parse(rule: &str) -> Result<AllowRule, AllowlistError> {
        let error = |reason: &str| AllowlistError {
            rule: rule.to_owned(),
            reason: reason.to_owned(),
        };
        let text = rule.trim();
        let (scheme, rest) = match text.split_once("://") {
            Some(("https", rest)) => (Scheme::Https, rest),
            Some(("http", rest)) => (Scheme::Http, rest),
            Some((other, _)) => {
                return Err(error(&format!(
                    "scheme `{other}` is not supported (use `https` or `http`)"
                )));
            }
            None => (Scheme::Https, text),
        };
        if rest.contains(['/', '?', '#', '@']) {
            return Err(error(
                "only scheme, host and port are allowed (no path, query or credentials)",
            ));
        }
        let (host_text, port_text) = split_host_port(rest).map_err(&error)?;
        let port = match port_text {
            None => PortPattern::Default,
            Some("*") => PortPattern::Any,
            Some(digits) => match digits.parse::<u16>() {
                Ok(port) if port > 0 => PortPattern::Exact(port),
                _ => {
                    return Err(error(&format!(
                        "port `{digits}` is not a number in 1-65535"
                    )));
                }
            },
        };
        let host = parse_host_pattern(host_text).map_err(|reason| error(&reason))?;
        Ok(AllowRule { scheme, host, port })
    }

    fn matches(&self, scheme: Scheme, host: &HostName, port: u16) -> bool {
        if self.scheme != scheme {
            return false;
        }
        let port_ok = match self.port {
            PortPattern::Any => true,
            PortPattern::Default => port == scheme.default_port(),
            PortPattern::Exact(allowed) => port == allowed,
        };
        port_ok && self.matches_host(host)
    }

    fn matches_host(&self, host: &HostName) -> bool {
        match (&self.host, host) {
            (HostPattern::Exact(allowed), HostName::Dns(name)) => allowed == name,
            (HostPattern::Wildcard(suffix), HostName::Dns(name)) => name
                .strip_suffix(suffix.as_str())
                .is_some_and(|prefix| !prefix.is_empty()),
            (HostPattern::Ip(allowed), HostName::Ip(ip)) => allowed == ip,
            _ => false,
        }
    }
}

impl fmt::Display for AllowRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = self.scheme.as_str();
        match &self.host {
            HostPattern::Exact(name) => write!(f, "{scheme}://{name}")?,
            HostPattern::Wildcard(suffix) => write!(f, "{scheme}://*{suffix}")?,
            HostPattern::Ip(IpAddr::V6(ip)) => write!(f, "{scheme}://[{ip}]")?,
            HostPattern::Ip(IpAddr::V4(ip)) => write!(f, "{scheme}://{ip}")?,
        }
        match self.port {
            PortPattern::Default => Ok(()),
            PortPattern::Any => f.write_str(":*"),
            PortPattern::Exact(port) => write!(f, ":{port}"),
        }
    }
}

fn split_host_port(text: &str) -> Result<(&str, Option<&str>), &'static str> {
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or("an IPv6 address needs a closing `]`")?;
        return match after {
            "" => Ok((host, None)),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok((host, Some(port))),
                None => Err("unexpected text after `]`"),
            },
        };
    }
    match text.rsplit_once(':') {
        Some((host, _)) if host.contains(':') => {
            Err("write IPv6 addresses in brackets, e.g. `[::1]:8080`")
        }
        Some((host, port)) => Ok((host, Some(port))),
        None => Ok((text, None)),
    }
}

fn parse_host_pattern(text: &str) -> Result<HostPattern, String> {
    if text.is_empty() {
        return Err("the host is empty".to_owned());
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(HostPattern::Ip(ip));
    }
    let lower = text.trim_end_matches('.').to_ascii_lowercase();
    let (wildcard, name) = match lower.strip_prefix("*.") {
        Some(suffix) => (true, suffix.to_owned()),
        None => (false, lower),
    };
    if name.contains('*') {
        return Err(
            "`*` is only allowed as the whole first label, as in `*.example.com`".to_owned(),
        );
    }
    for label in name.split('.') {
        let valid = !label.is_empty()
            && label.len() <= 63
            && label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid {
            return Err(format!(
                "`{text}` is not a host name (labels of letters, digits, `-`, `_`; IDNs in punycode)"
            ));
        }
    }
    if wildcard {
        if !name.contains('.') {
            return Err(format!(
                "wildcard `*.{name}` is too broad; name at least a second-level domain"
            ));
        }
        Ok(HostPattern::Wildcard(format!(".{name}")))
    } else {
        Ok(HostPattern::Exact(name))
    }
}

// === impl Allowlist ===

impl Allowlist {
    /// Parses every rule, reporting all invalid entries at once.
    pub fn parse<S: AsRef<str>>(rules: &[S]) -> Result<Allowlist, Vec<AllowlistError>> {
        let mut parsed = Vec::new();
        let mut errors = Vec::new();
        for rule in rules {
            match AllowRule::parse(rule.as_ref()) {
                Ok(rule) => parsed.push(rule),
                Err(error) => errors.push(error),
            }
        }
        if errors.is_empty() {
            Ok(Allowlist { rules: parsed })
        } else {
            Err(errors)
        }
    }

    /// The rules, in config order.
    pub fn rules(&self) -> &[AllowRule] {
        &self.rules
    }

    /// Checks a destination URL. Pure: no DNS lookup, no connection.
    pub fn check(&self, url: &Url) -> Result<(), DestinationError> {
        let refuse = |reason| DestinationError {
            scheme: url.scheme().to_owned(),
            host: url.host_str().unwrap_or_default().to_owned(),
            port: url.port_or_known_default(),
            reason,
            allowed: self.rules.iter().map(ToString::to_string).collect(),
        };
        let scheme = match url.scheme() {
            "https" => Scheme::Https,
            "http" => Scheme::Http,
            _ => return Err(refuse(DestinationRefusal::UnsupportedScheme)),
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Err(refuse(DestinationRefusal::Credentials));
        }
        let Some(host) = url.host_str().and_then(HostName::from_url_host) else {
            return Err(refuse(DestinationRefusal::NoHost));
        };
        let port = url.port().unwrap_or(scheme.default_port());
        if self
            .rules
            .iter()
            .any(|rule| rule.matches(scheme, &host, port))
        {
            return Ok(());
        }
        let host_listed = self.rules.iter().any(|rule| rule.matches_host(&host));
        Err(refuse(if host_listed {
            DestinationRefusal::SchemeOrPortNotAllowed
        } else {
            DestinationRefusal::NotAllowed
        }))
    }
}

impl TryFrom<Vec<String>> for Allowlist {
    type Error = String;

    fn try_from(rules: Vec<String>) -> Result<Self, Self::Error> {
        Allowlist::parse(&rules).map_err(|errors| {
            let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
            messages.join("; ")
        })
    }
}

impl From<Allowlist> for Vec<String> {
    fn from(list: Allowlist) -> Self {
        list.rules.iter().map(ToString::to_string).collect()
    }
}

// === impl DestinationError ===

impl DestinationError {
    fn origin(&self) -> String {
        let host = if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match self.port {
            Some(port) => format!("{}://{host}:{port}", self.scheme),
            None => format!("{}://{host}", self.scheme),
        }
    }

    fn message(&self) -> String {
        let origin = self.origin();
        let allowed = if self.allowed.is_empty() {
            "none (the list is empty)".to_owned()
        } else {
            self.allowed.join(", ")
        };
        match self.reason {
            DestinationRefusal::UnsupportedScheme => format!(
                "destination `{origin}` is refused: scheme `{}` is not supported for bindings; use `https` (or `http`)",
                self.scheme
            ),
            DestinationRefusal::Credentials => format!(
                "destination `{origin}` is refused: the URL embeds credentials (`user:password@`); send them in a header such as `Authorization: ${{{{ secrets.X }}}}` instead"
            ),
            DestinationRefusal::NoHost => {
                format!("destination `{origin}` is refused: the URL has no host")
            }
            DestinationRefusal::SchemeOrPortNotAllowed => format!(
                "destination `{origin}` is not allowed for bindings: host `{}` is listed, but not with this scheme and port; add `{origin}` to `{ALLOWLIST_CONFIG_KEY}` in the server config (allowed now: {allowed})",
                self.host
            ),
            DestinationRefusal::NotAllowed => {
                format!(
                    "destination host `{}` (`{origin}`) is not allowed for bindings; add `{origin}` to `{ALLOWLIST_CONFIG_KEY}` in the server config (allowed now: {allowed})",
                    self.host
                )
            }
        }
    }
}

// === helpers ===

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostName {
    Dns(String),
    Ip(IpAddr),
}

impl HostName {
    fn from_url_host(host: &str) -> Option<HostName> {
        if host.is_empty() {
            return None;
        }
        let unbracketed = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = unbracketed.parse::<IpAddr>() {
            return Some(HostName::Ip(ip));
        }
        Some(HostName::Dns(
            host.trim_end_matches('.').to_ascii_lowercase(),
        ))
    }
}

impl Scheme {
    fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(rules: &[&str]) -> Allowlist {
        Allowlist::parse(rules).unwrap()
    }

    fn allowed(list: &Allowlist, url: &str) -> bool {
        list.check(&Url::parse(url).unwrap()).is_ok()
    }

    #[test]
    fn exact_hosts_schemes_and_ports() {
        let list = list(&["tickets.example.org", "http://chat.local:8080"]);
        assert!(allowed(&list, "https://tickets.example.org/api/issues?x=1"));
        assert!(allowed(&list, "https://TICKETS.example.org./api"));
        assert!(allowed(&list, "https://tickets.example.org:443/"));
        assert!(
            !allowed(&list, "http://tickets.example.org/"),
            "scheme defaults to https"
        );
        assert!(
            !allowed(&list, "https://tickets.example.org:8443/"),
            "port defaults to 443"
        );
        assert!(!allowed(&list, "https://evil-tickets.example.org/"));
        assert!(!allowed(&list, "https://tickets.example.org.evil.com/"));
        assert!(allowed(&list, "http://chat.local:8080/hook"));
        assert!(!allowed(&list, "http://chat.local/hook"));
    }

    #[test]
    fn wildcards_match_subdomains_only() {
        let list = list(&["https://*.example.com:*"]);
        assert!(allowed(&list, "https://a.example.com/"));
        assert!(allowed(&list, "https://a.b.example.com:9443/"));
        assert!(!allowed(&list, "https://example.com/"));
        assert!(!allowed(&list, "https://badexample.com/"));
        assert!(!allowed(&list, "https://example.com.evil.org/"));
    }

    #[test]
    fn ip_literals() {
        let list = list(&["http://127.0.0.1:*", "https://[::1]:8443"]);
        assert!(allowed(&list, "http://127.0.0.1:39001/x"));
        assert!(allowed(&list, "https://[::1]:8443/x"));
        assert!(!allowed(&list, "https://[::1]/x"));
        assert!(!allowed(&list, "http://127.0.0.2:39001/x"));
        assert!(
            !allowed(&list, "http://localhost:39001/x"),
            "names do not match IPs"
        );
    }

    #[test]
    fn refusals_name_host_and_config_key_but_not_path() {
        let list = list(&["https://tickets.example.org"]);
        let url = Url::parse("https://evil.example.net/steal?token=abc").unwrap();
        let message = list.check(&url).unwrap_err().to_string();
        assert!(message.contains("`evil.example.net`"), "{message}");
        assert!(message.contains(ALLOWLIST_CONFIG_KEY), "{message}");
        assert!(message.contains("https://tickets.example.org"), "{message}");
        assert!(!message.contains("token=abc"), "{message}");

        let creds = Url::parse("https://user:pw@tickets.example.org/").unwrap();
        let message = list.check(&creds).unwrap_err().to_string();
        assert!(
            message.contains("credentials") && !message.contains("pw"),
            "{message}"
        );

        let port = Url::parse("https://tickets.example.org:8443/").unwrap();
        let message = list.check(&port).unwrap_err().to_string();
        assert!(
            message.contains("is listed, but not with this scheme and port"),
            "{message}"
        );
        assert!(
            message.contains("add `https://tickets.example.org:8443`"),
            "{message}"
        );

        let ftp = Url::parse("ftp://tickets.example.org/").unwrap();
        assert!(list.check(&ftp).unwrap_err().to_string().contains("`ftp`"));
        let empty = Allowlist::default();
        let message = empty
            .check(&Url::parse("https://a.example/").unwrap())
            .unwrap_err();
        assert!(message.to_string().contains("the list is empty"));
    }

    #[test]
    fn invalid_rules_are_all_reported() {
        let errors = Allowlist::parse(&[
            "ftp://x.example",
            "https://x.example/path",
            "*.com",
            "a*.example.com",
            "x.example:0",
            "::1",
            "ok.example",
        ])
        .unwrap_err();
        assert_eq!(errors.len(), 6, "{errors:#?}");
        assert!(errors[0].to_string().contains(ALLOWLIST_CONFIG_KEY));
    }

    #[test]
    fn templated_paths_cannot_move_the_host() {
        // the workflow crate builds URLs as static origin + rendered path; a rendered path
        // that does not start with `/` must not redirect the request elsewhere
        let list = list(&["tickets.example.org"]);
        for rendered in [
            "@evil.example/x",
            ".evil.example/x",
            ":8443@evil.example/",
            "%2F@evil.example",
        ] {
            let url = format!("https://tickets.example.org{rendered}");
            if let Ok(parsed) = Url::parse(&url) {
                let verdict = list.check(&parsed);
                let stays = parsed.host_str() == Some("tickets.example.org")
                    && parsed.port_or_known_default() == Some(443)
                    && parsed.username().is_empty();
                assert!(stays || verdict.is_err(), "{url} was allowed to {parsed}");
            }
        }
    }

    #[test]
    fn reads_and_writes_config_lists() {
        let list: Allowlist =
            serde_json::from_str(r#"["tickets.example.org", "http://10.0.0.5:8080"]"#).unwrap();
        assert_eq!(list.rules().len(), 2);
        assert_eq!(
            serde_json::to_string(&list).unwrap(),
            r#"["https://tickets.example.org","http://10.0.0.5:8080"]"#
        );
        let error = serde_json::from_str::<Allowlist>(r#"["ftp://x.example", "*.com"]"#)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("`ftp://x.example`") && error.contains("`*.com`"),
            "{error}"
        );
    }

    #[test]
    fn rules_print_back() {
        for rule in [
            "https://a.example",
            "http://*.b.example:*",
            "https://[::1]:8443",
            "http://10.0.0.5:80",
        ] {
            assert_eq!(AllowRule::parse(rule).unwrap().to_string(), rule);
        }
    }
}
