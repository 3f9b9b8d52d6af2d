//! The gRPC contract of the region server, package `speedlayer.v1`.
//!
//! It will hold the generated prost/tonic types, built from `proto/*.proto` without a
//! system `protoc`. It knows nothing of storage.
