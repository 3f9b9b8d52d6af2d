//! Every request message of the `Data` and `Admin` services, decoded with prost
//! from arbitrary bytes and converted into storage types as the handlers do: no panic.
//! The body is `speedlayer_server::fuzzing::grpc_request`, which the stable corpus replay
//! test runs too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| speedlayer_server::fuzzing::grpc_request(data));
