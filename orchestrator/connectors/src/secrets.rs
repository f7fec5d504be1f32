//! Resolution of `${{ secrets.X }}`.
//!
//! A secret `X` is looked up, in order:
//! 1. the environment variable `SYNOD_SECRET_X` (then `SYNOD_SECRET_<X upper-cased>`);
//! 2. the file `X` in the secrets directory (e.g. a mounted Kubernetes secret), with
//!    trailing `\n`/`\r\n` removed.
//!
//! Names are letters, digits and `_` (so they are valid env var names and cannot escape
//! the secrets directory). Values are held in [`SecretValue`], which never prints itself.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::redact::Redactor;

/// Prefix of the environment variables holding secrets.
pub const SECRET_ENV_PREFIX: &str = "SYNOD_SECRET_";

/// A validated secret name (`[A-Za-z_][A-Za-z0-9_]*`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SecretName(String);

/// A secret's value. `Debug` and `Display` print `***`; read it with [`SecretValue::expose`].
/// It deliberately implements no `Serialize`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(String);

/// Where secrets come from: an environment snapshot and an optional directory.
#[derive(Clone, Default)]
pub struct Secrets {
    env: HashMap<String, String>,
    dir: Option<PathBuf>,
}

/// Secrets resolved for one run, with the [`Redactor`] that masks them.
#[derive(Clone, Default)]
pub struct ResolvedSecrets {
    values: BTreeMap<SecretName, SecretValue>,
}

/// A secret that cannot be resolved. Messages never contain a secret value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// The name is not a valid secret name.
    #[error(
        "`secrets.{name}` is not a valid secret name: use letters, digits and `_`, starting with a letter or `_`"
    )]
    InvalidName {
        /// The name as written.
        name: String,
    },
    /// Neither the env var nor the file exists.
    #[error("unknown secret `{name}`: set the environment variable `{SECRET_ENV_PREFIX}{name}`{}", dir_hint(.dir.as_deref(), name))]
    Missing {
        /// The secret name.
        name: String,
        /// The secrets directory searched, if any.
        dir: Option<PathBuf>,
    },
    /// The secret exists but is empty.
    #[error("secret `{name}` from {origin} is empty; give it a value")]
    Empty {
        /// The secret name.
        name: String,
        /// Where it came from, e.g. "env `SYNOD_SECRET_X`" or "file `/run/secrets/X`".
        origin: String,
    },
    /// The secret file exists but cannot be read as UTF-8 text.
    #[error("cannot read secret `{name}` from `{}`", path.display())]
    Unreadable {
        /// The secret name.
        name: String,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

fn dir_hint(dir: Option<&Path>, name: &str) -> String {
    match dir {
        Some(dir) => format!(" or create the file `{}`", dir.join(name).display()),
        None => " (no secrets directory is configured)".to_owned(),
    }
}

// === impl SecretName ===

impl SecretName {
    /// Validates a secret name.
    pub fn new(name: &str) -> Result<SecretName, SecretError> {
        let mut chars = name.chars();
        let valid = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if valid {
            Ok(SecretName(name.to_owned()))
        } else {
            Err(SecretError::InvalidName {
                name: name.to_owned(),
            })
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SecretName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

// === impl SecretValue ===

impl SecretValue {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> SecretValue {
        SecretValue(value.into())
    }

    /// The plain value, for building the request that is actually sent.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue(***)")
    }
}

impl fmt::Display for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(crate::redact::MASK)
    }
}

// === impl Secrets ===

impl Secrets {
    /// Secrets from the process environment (snapshot taken now) and an optional directory.
    pub fn from_process_env(dir: Option<PathBuf>) -> Secrets {
        Secrets::from_vars(std::env::vars(), dir)
    }

    /// Secrets from the given variables (only `SYNOD_SECRET_*` ones are kept) and directory.
    pub fn from_vars(
        vars: impl IntoIterator<Item = (String, String)>,
        dir: Option<PathBuf>,
    ) -> Secrets {
        let env = vars
            .into_iter()
            .filter(|(key, _)| key.starts_with(SECRET_ENV_PREFIX))
            .collect();
        Secrets { env, dir }
    }

    /// Resolves one secret.
    pub fn resolve(&self, name: &str) -> Result<SecretValue, SecretError> {
        let name = SecretName::new(name)?;
        let exact = format!("{SECRET_ENV_PREFIX}{name}");
        let upper = format!("{SECRET_ENV_PREFIX}{}", name.as_str().to_ascii_uppercase());
        for var in [exact, upper] {
            if let Some(value) = self.env.get(&var) {
                return non_empty(&name, value.clone(), || format!("env `{var}`"));
            }
        }
        if let Some(dir) = &self.dir {
            let path = dir.join(name.as_str());
            match std::fs::read_to_string(&path) {
                Ok(mut text) => {
                    while text.ends_with('\n') || text.ends_with('\r') {
                        text.pop();
                    }
                    return non_empty(&name, text, || format!("file `{}`", path.display()));
                }
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(SecretError::Unreadable {
                        name: name.0,
                        path,
                        source,
                    });
                }
            }
        }
        Err(SecretError::Missing {
            name: name.0,
            dir: self.dir.clone(),
        })
    }

    /// Resolves every named secret, reporting all failures at once.
    pub fn resolve_all<S: AsRef<str>>(
        &self,
        names: &[S],
    ) -> Result<ResolvedSecrets, Vec<SecretError>> {
        let mut resolved = ResolvedSecrets::default();
        let mut errors = Vec::new();
        for name in names {
            match self.resolve(name.as_ref()) {
                Ok(value) => {
                    resolved
                        .values
                        .insert(SecretName(name.as_ref().to_owned()), value);
                }
                Err(error) => errors.push(error),
            }
        }
        if errors.is_empty() {
            Ok(resolved)
        } else {
            Err(errors)
        }
    }
}

impl Secrets {
    /// For `--dry-run`: resolves what it can and stands in `***` for every secret that
    /// cannot be resolved, returning those failures as warnings. The result must only be
    /// used to render requests for display, never to send them.
    pub fn resolve_for_dry_run<S: AsRef<str>>(
        &self,
        names: &[S],
    ) -> (ResolvedSecrets, Vec<SecretError>) {
        let mut resolved = ResolvedSecrets::default();
        let mut warnings = Vec::new();
        for name in names {
            let value = match self.resolve(name.as_ref()) {
                Ok(value) => value,
                Err(error) => {
                    warnings.push(error);
                    SecretValue(crate::redact::MASK.to_owned())
                }
            };
            resolved
                .values
                .insert(SecretName(name.as_ref().to_owned()), value);
        }
        (resolved, warnings)
    }
}

fn non_empty(
    name: &SecretName,
    value: String,
    origin: impl FnOnce() -> String,
) -> Result<SecretValue, SecretError> {
    if value.is_empty() {
        Err(SecretError::Empty {
            name: name.0.clone(),
            origin: origin(),
        })
    } else {
        Ok(SecretValue(value))
    }
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.env.keys().map(String::as_str).collect();
        f.debug_struct("Secrets")
            .field("env_vars", &names)
            .field("dir", &self.dir)
            .finish()
    }
}

// === impl ResolvedSecrets ===

impl ResolvedSecrets {
    /// The value of a resolved secret.
    pub fn get(&self, name: &str) -> Option<&SecretValue> {
        self.values.get(&SecretName(name.to_owned()))
    }

    /// Adds a value (e.g. a webhook secret resolved elsewhere).
    pub fn insert(&mut self, name: SecretName, value: SecretValue) {
        self.values.insert(name, value);
    }

    /// The names resolved, sorted.
    pub fn names(&self) -> impl Iterator<Item = &SecretName> {
        self.values.keys()
    }

    /// A redactor masking every resolved value.
    pub fn redactor(&self) -> Redactor {
        let mut redactor = Redactor::new();
        for value in self.values.values() {
            redactor.add(value);
        }
        redactor
    }
}

impl fmt::Debug for ResolvedSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(
                self.values
                    .iter()
                    .map(|(name, value)| (name.as_str(), value)),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("synod-secrets-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn env_wins_then_upper_case_then_file() {
        let dir = temp_dir();
        std::fs::write(dir.join("ticket_token"), "from-file\r\n").unwrap();
        std::fs::write(dir.join("only_file"), "file-value\n\n").unwrap();
        let secrets = Secrets::from_vars(
            [
                (
                    "SYNOD_SECRET_ticket_token".to_owned(),
                    "from-env".to_owned(),
                ),
                ("SYNOD_SECRET_CHAT".to_owned(), "upper".to_owned()),
                ("HOME".to_owned(), "/root".to_owned()),
            ],
            Some(dir.clone()),
        );
        assert_eq!(
            secrets.resolve("ticket_token").unwrap().expose(),
            "from-env"
        );
        assert_eq!(secrets.resolve("chat").unwrap().expose(), "upper");
        assert_eq!(secrets.resolve("only_file").unwrap().expose(), "file-value");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn errors_say_how_to_fix_and_never_print_values() {
        let dir = temp_dir();
        std::fs::write(dir.join("blank"), "\n").unwrap();
        let secrets = Secrets::from_vars([], Some(dir.clone()));
        let missing = secrets.resolve("nope").unwrap_err().to_string();
        assert!(missing.contains("SYNOD_SECRET_nope"), "{missing}");
        assert!(
            missing.contains(&dir.join("nope").display().to_string()),
            "{missing}"
        );
        let invalid = secrets.resolve("../etc/passwd").unwrap_err().to_string();
        assert!(invalid.contains("not a valid secret name"), "{invalid}");
        let empty = secrets.resolve("blank").unwrap_err().to_string();
        assert!(empty.contains("is empty"), "{empty}");
        let errors = secrets.resolve_all(&["nope", "blank", "x-y"]).unwrap_err();
        assert_eq!(errors.len(), 3);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn dry_run_masks_unresolvable_secrets() {
        let secrets =
            Secrets::from_vars([("SYNOD_SECRET_known".to_owned(), "k-1".to_owned())], None);
        let (resolved, warnings) = secrets.resolve_for_dry_run(&["known", "unset"]);
        assert_eq!(resolved.get("known").unwrap().expose(), "k-1");
        assert_eq!(resolved.get("unset").unwrap().expose(), "***");
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].to_string().contains("SYNOD_SECRET_unset"));
    }

    #[test]
    fn values_never_print() {
        let value = SecretValue::new("hunter2");
        assert_eq!(format!("{value}"), "***");
        assert_eq!(format!("{value:?}"), "SecretValue(***)");
        let secrets =
            Secrets::from_vars([("SYNOD_SECRET_pw".to_owned(), "hunter2".to_owned())], None);
        let resolved = secrets.resolve_all(&["pw"]).unwrap();
        assert!(!format!("{resolved:?} {secrets:?}").contains("hunter2"));
        assert_eq!(resolved.redactor().redact("pw=hunter2"), "pw=***");
    }
}
