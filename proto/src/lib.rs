//! The gRPC contract of the region server, package `speedlayer.v1`.
//!
//! Generated prost messages and tonic clients/servers, built from
//! `proto/speedlayer/v1/speedlayer.proto` by `build.rs` with `protox` (no system `protoc`).
//! Every field is documented in the `.proto` file. This crate knows nothing of storage or
//! of how the server implements the services.

/// Package `speedlayer.v1`: the messages and the `Admin` and `Data` services.
#[allow(clippy::all, missing_docs)]
pub mod v1 {
    tonic::include_proto!("speedlayer.v1");
}

/// The encoded `FileDescriptorSet` of the contract, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("speedlayer_descriptor");

pub use v1::*;

pub mod packed;

#[cfg(test)]
mod tests {
    use prost::Message;

    #[test]
    fn descriptor_set_holds_both_services() {
        let fds = prost_types::FileDescriptorSet::decode(super::FILE_DESCRIPTOR_SET).unwrap();
        let file = fds
            .file
            .iter()
            .find(|f| f.package() == "speedlayer.v1")
            .unwrap();
        let services: Vec<&str> = file.service.iter().map(|s| s.name()).collect();
        assert_eq!(services, ["Admin", "Data"]);
    }

    #[test]
    fn bytes_fields_are_bytes() {
        let cell = super::Cell {
            family: bytes::Bytes::from_static(b"cf1"),
            ..Default::default()
        };
        let back = super::Cell::decode(cell.encode_to_vec().as_slice()).unwrap();
        assert_eq!(back.family, cell.family);
    }
}
