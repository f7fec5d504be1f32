//! Registration errors.

/// Why an instance could not be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The endpoint is not an `http://host:port` URI.
    #[error("endpoint `{endpoint}` is not valid: {reason}; write it as `http://host:port`")]
    InvalidEndpoint {
        /// The endpoint as given.
        endpoint: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `Describe` on the endpoint failed or timed out.
    #[error(
        "could not reach the expert at `{endpoint}` to verify it: {reason}; make sure it serves `synod.expert.v1.Expert` and that the endpoint is an address the orchestrator can dial"
    )]
    Unreachable {
        /// The endpoint.
        endpoint: String,
        /// The connection or call failure.
        reason: String,
    },
    /// The card sent with the registration names another expert than the
    /// card the instance serves.
    #[error(
        "the registration names expert `{claimed}` but the instance at `{endpoint}` describes itself as `{served}`; register with the card the instance serves"
    )]
    CardMismatch {
        /// The endpoint.
        endpoint: String,
        /// Expert name in the registration request.
        claimed: String,
        /// Expert name from `Describe`.
        served: String,
    },
    /// The served card is not usable.
    #[error("the expert card served at `{endpoint}` is invalid: {reason}")]
    InvalidCard {
        /// The endpoint.
        endpoint: String,
        /// What is wrong with the card and how to fix it.
        reason: String,
    },
}
