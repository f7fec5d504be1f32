//! The first admin token: when the token table is empty at start, the
//! server creates an admin token and writes it to a file only its owner can
//! read (mode 0600). The log names the file, never the token.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::guard::Authenticator;
use super::role::Role;

/// The subject of the bootstrap token.
pub const BOOTSTRAP_SUBJECT: &str = "bootstrap-admin";

/// Creates the bootstrap admin token and writes it to `file` when no token
/// exists yet. Returns the file when it wrote one.
pub async fn ensure_bootstrap_token(
    auth: &Authenticator,
    file: &Path,
) -> anyhow::Result<Option<PathBuf>> {
    if !auth
        .tokens()
        .list_tokens()
        .await
        .context("cannot read the token table")?
        .is_empty()
    {
        return Ok(None);
    }
    let issued = auth
        .issue(BOOTSTRAP_SUBJECT, &[Role::Admin.as_str().to_owned()], None)
        .await?;
    write_private(file, &format!("{}\n", issued.text)).with_context(|| {
        format!(
            "cannot write the bootstrap admin token to {}; choose another place with --admin-token-file",
            file.display()
        )
    })?;
    tracing::warn!(
        file = %file.display(),
        token_id = %issued.record.token_id,
        "no API token existed: created an admin token and wrote it to this file (mode 0600); \
         the CLI reads it from there; create tokens for people and experts with \
         `synod token create` and revoke this one when done"
    );
    Ok(Some(file.to_owned()))
}

/// Writes `text` to `path`, readable and writable by the owner only.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    #[cfg(unix)]
    {
        // The mode above applies only to a new file.
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::auth::AuthConfig;

    #[tokio::test]
    async fn written_once_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("admin.token");
        let auth = Authenticator::new(
            &AuthConfig {
                enabled: true,
                ..AuthConfig::default()
            },
            Arc::new(synod_store::MemoryTokenStore::new()),
        );
        assert_eq!(
            ensure_bootstrap_token(&auth, &file).await.unwrap(),
            Some(file.clone())
        );
        let token = std::fs::read_to_string(&file).unwrap();
        assert!(token.starts_with("synod_"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let principal = auth
            .authorize(Some(token.trim()), crate::auth::Access::Role(Role::Admin))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(principal.subject, BOOTSTRAP_SUBJECT);
        // A table with tokens gets no new one.
        assert_eq!(ensure_bootstrap_token(&auth, &file).await.unwrap(), None);
    }
}
