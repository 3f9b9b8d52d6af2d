//! Compiles `proto/speedlayer/v1/*.proto` with `protox` (pure Rust, no system `protoc`),
//! generates prost messages and tonic clients/servers, and writes the file descriptor set
//! that the server's reflection service exposes.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/speedlayer/v1/speedlayer.proto";
    println!("cargo:rerun-if-changed={proto}");
    let fds = protox::compile([proto], ["proto"])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    // `compile_fds` does not run protoc, so it does not write the descriptor set: do it here.
    std::fs::write(
        out_dir.join("speedlayer_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    tonic_prost_build::configure()
        // Row keys and values cross the wire and storage without copies.
        .bytes(".speedlayer.v1")
        .compile_fds(fds)?;
    Ok(())
}
