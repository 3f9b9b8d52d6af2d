//! Shared harness for the cross-crate integration tests in `tests/tests/`: locating the
//! workspace's binaries, starting them on `127.0.0.1:0`, and starting real peers (tansu,
//! redis-server, etcd) on loopback.

pub mod bins;
pub mod certs;
pub mod cluster;
pub mod etcd;
pub mod link;
pub mod netns;
pub mod server;
pub mod tansu;
pub mod webdriver;
