//! popug's schema registry in Rust: the code generated from the buf module
//! under `proto/`, and the typed catalog of events.
//!
//! Everything generated lives under one path, [`pb`], mirroring the protobuf
//! packages (`pb::popug::events::v1::Envelope`). The encoded descriptor set,
//! [`FILE_DESCRIPTOR_SET`], feeds gRPC server reflection.
//!
//! Event names, versions and routing keys are declared once, in [`events`];
//! services name events by type, never by string.

pub mod events;

/// Code generated from `proto/` at build time.
#[allow(missing_docs, unreachable_pub, clippy::all)]
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/popug.rs"));
}

/// The encoded `FileDescriptorSet` of every file in `proto/` and its imports.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/popug_descriptor.bin"));
