//! synod's gRPC contracts, generated from `proto/` with protox (no system
//! `protoc` needed), plus lossless conversion between JSON values and
//! `google.protobuf.Struct`.
//!
//! Layout:
//! - [`expert`]: `synod.expert.v1`, the service every expert implements.
//! - [`orchestrator`]: `synod.orchestrator.v1`, registry, runs, workflows.
//! - [`json`]: `serde_json::Value` <-> `prost_types::Struct`/`Value`.
//! - [`FILE_DESCRIPTOR_SET`]: encoded descriptors for gRPC server reflection.

pub mod json;

/// Generated code, nested as the proto packages are (`synod.expert.v1`, …).
#[allow(
    missing_docs,
    unreachable_pub,
    missing_debug_implementations,
    clippy::all
)]
pub mod generated {
    /// `synod.*` packages.
    pub mod synod {
        /// `synod.expert.*`
        pub mod expert {
            /// `synod.expert.v1`
            pub mod v1 {
                tonic::include_proto!("synod.expert.v1");
            }
        }
        /// `synod.orchestrator.*`
        pub mod orchestrator {
            /// `synod.orchestrator.v1`
            pub mod v1 {
                tonic::include_proto!("synod.orchestrator.v1");
            }
        }
    }
}

/// `synod.expert.v1`: the contract every expert implements.
pub use generated::synod::expert::v1 as expert;
/// `synod.orchestrator.v1`: registry, runs, run events and workflows.
pub use generated::synod::orchestrator::v1 as orchestrator;

/// Encoded `FileDescriptorSet` of every synod proto, for
/// `tonic_reflection::server::Builder::register_encoded_file_descriptor_set`.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/synod_descriptor.bin"));

/// Fully qualified gRPC service name of the expert service.
pub const EXPERT_SERVICE_NAME: &str = "synod.expert.v1.Expert";
