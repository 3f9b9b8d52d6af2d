//! Criterion benches and comparison drivers: a `db_bench`-compatible driver for the storage
//! engine, and scripts that run RocksDB's `db_bench` and `redis-server` in the same run.
