//! The client side: which token the CLI sends, and a gRPC channel that sends
//! it as `authorization: Bearer <token>` metadata.
//!
//! Precedence: `--token` (set with [`set_cli_token`]), then the
//! `SYNOD_TOKEN` environment variable, then the bootstrap admin token file
//! (`SYNOD_TOKEN_FILE`, default `./synod-admin.token`, the file `synod
//! serve`/`synod up` write next to their SQLite database on first start).

use std::path::PathBuf;
use std::sync::Mutex;

use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// The bootstrap token file's name.
pub const BOOTSTRAP_TOKEN_FILE_NAME: &str = "synod-admin.token";

/// A gRPC channel sending the CLI's token on every call.
pub type AuthChannel = InterceptedService<Channel, BearerInterceptor>;

static CLI_TOKEN: Mutex<Option<String>> = Mutex::new(None);

/// Sets the token given on the command line (`--token`), which wins over the
/// environment and the file.
pub fn set_cli_token(token: Option<String>) {
    *CLI_TOKEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = token;
}

/// The token file the CLI reads when neither `--token` nor `SYNOD_TOKEN`
/// is given.
pub fn token_file() -> PathBuf {
    std::env::var_os("SYNOD_TOKEN_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(BOOTSTRAP_TOKEN_FILE_NAME))
}

/// The token to send, by precedence; `None`: send none.
pub fn resolve_token() -> Option<String> {
    let flag = CLI_TOKEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    if let Some(token) = flag.filter(|t| !t.trim().is_empty()) {
        return Some(token.trim().to_owned());
    }
    if let Ok(token) = std::env::var("SYNOD_TOKEN")
        && !token.trim().is_empty()
    {
        return Some(token.trim().to_owned());
    }
    let text = std::fs::read_to_string(token_file()).ok()?;
    let token = text.trim();
    (!token.is_empty()).then(|| token.to_owned())
}

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Clone)]
pub struct BearerInterceptor {
    value: Option<MetadataValue<Ascii>>,
}

impl std::fmt::Debug for BearerInterceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BearerInterceptor")
            .field("has_token", &self.value.is_some())
            .finish()
    }
}

impl BearerInterceptor {
    /// Sends `token` (none when `None` or not valid header text).
    pub fn new(token: Option<&str>) -> Self {
        let value = token.and_then(|token| format!("Bearer {token}").parse().ok());
        BearerInterceptor { value }
    }
}

impl tonic::service::Interceptor for BearerInterceptor {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.value {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// `channel` sending the CLI's token ([`resolve_token`]).
pub fn with_cli_token(channel: Channel) -> AuthChannel {
    InterceptedService::new(channel, BearerInterceptor::new(resolve_token().as_deref()))
}
