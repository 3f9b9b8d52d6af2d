//! Transactions in the AOF, through the real binary: EXEC's writes are one `MULTI` ...
//! `EXEC` block that survives kill -9; a file that ends inside that block (a crash in the
//! middle of its append) starts without any of it, as Redis's `aof-load-truncated` does;
//! a block out of order is corruption. A transaction with one write is written bare, as
//! Redis 7.0 writes it.

mod common;

use std::path::{Path, PathBuf};

use common::{Bin, Raw};
use speedlayer_server::resp::frame::Frame;

fn aof_path(data: &Path) -> PathBuf {
    data.join("resp/appendonly.aof")
}

fn members(c: &mut Raw, key: &[u8]) -> Vec<String> {
    let Frame::Array(ms) = c.cmd(&[b"SMEMBERS", key]) else {
        panic!("SMEMBERS reply")
    };
    let mut v: Vec<String> = ms
        .into_iter()
        .map(|m| match m {
            Frame::Bulk(b) => String::from_utf8(b.to_vec()).unwrap(),
            other => panic!("member {other:?}"),
        })
        .collect();
    v.sort();
    v
}

fn ok(f: Frame) {
    assert_eq!(f, Frame::Simple("OK".into()));
}

fn queued(f: Frame) {
    assert_eq!(f, Frame::Simple("QUEUED".into()));
}

/// Runs the workload: one key written before, then a transaction of several writes, and
/// returns where the transaction's block starts in the AOF.
fn before_and_transaction(data: &Path) -> u64 {
    let s = Bin::start(data, &["--appendfsync", "always"]);
    let mut c = Raw::connect(s.addr);
    assert_eq!(c.cmd(&[b"SADD", b"before", b"x"]), Frame::Integer(1));
    // One write in a transaction: written bare.
    ok(c.cmd(&[b"MULTI"]));
    queued(c.cmd(&[b"SADD", b"single", b"s"]));
    assert_eq!(c.cmd(&[b"EXEC"]), Frame::Array(vec![Frame::Integer(1)]));
    let block_at = std::fs::metadata(aof_path(data)).unwrap().len();
    ok(c.cmd(&[b"MULTI"]));
    queued(c.cmd(&[b"SADD", b"tx", b"a", b"b"]));
    queued(c.cmd(&[b"SREM", b"before", b"x"]));
    queued(c.cmd(&[b"SCARD", b"tx"]));
    queued(c.cmd(&[b"EXPIRE", b"tx", b"notanumber"]));
    queued(c.cmd(&[b"SUNIONSTORE", b"tx2", b"tx", b"single"]));
    let Frame::Array(replies) = c.cmd(&[b"EXEC"]) else {
        panic!("EXEC reply")
    };
    assert_eq!(replies.len(), 5);
    assert!(matches!(replies[3], Frame::Error(_)), "{replies:?}");
    s.kill9();
    block_at
}

#[test]
fn a_transaction_is_one_multi_exec_block_that_survives_kill9() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let block_at = before_and_transaction(&data);
    let bytes = std::fs::read(aof_path(&data)).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    // The single-write transaction is not wrapped: the only MULTI is the second one's,
    // and the *STORE inside it is not wrapped a second time.
    assert_eq!(text.matches("MULTI").count(), 1, "{text}");
    assert_eq!(text.matches("EXEC").count(), 1, "{text}");
    let block = &text[block_at as usize..];
    assert!(block.starts_with("*1\r\n$5\r\nMULTI\r\n"), "{block}");
    assert!(block.ends_with("*1\r\n$4\r\nEXEC\r\n"), "{block}");
    let s = Bin::start(&data, &[]);
    let mut c = Raw::connect(s.addr);
    assert_eq!(members(&mut c, b"tx"), ["a", "b"]);
    assert_eq!(members(&mut c, b"tx2"), ["a", "b", "s"]);
    assert_eq!(members(&mut c, b"single"), ["s"]);
    assert_eq!(c.cmd(&[b"EXISTS", b"before"]), Frame::Integer(0));
    assert!(s.stop());
}

#[test]
fn an_aof_ending_inside_a_transaction_starts_without_any_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let block_at = before_and_transaction(&data);
    let whole = std::fs::read(aof_path(&data)).unwrap();
    // Cuts right after MULTI, inside a command, between two commands, and one byte short
    // of the end of EXEC.
    let after_multi = block_at as usize + b"*1\r\n$5\r\nMULTI\r\n".len();
    let between = after_multi
        + whole[after_multi..]
            .windows(4)
            .skip(1)
            .position(|w| w == b"*3\r\n" || w == b"*2\r\n" || w == b"*4\r\n")
            .unwrap()
        + 1;
    for cut in [after_multi, after_multi + 7, between, whole.len() - 1] {
        std::fs::write(aof_path(&data), &whole[..cut]).unwrap();
        let s = Bin::start(&data, &[]);
        let mut c = Raw::connect(s.addr);
        assert_eq!(members(&mut c, b"before"), ["x"], "cut at {cut}");
        assert_eq!(members(&mut c, b"single"), ["s"], "cut at {cut}");
        for k in [&b"tx"[..], b"tx2"] {
            assert_eq!(c.cmd(&[b"EXISTS", k]), Frame::Integer(0), "cut at {cut}");
        }
        assert!(
            s.stderr()
                .contains("truncating the file to the last whole command"),
            "cut at {cut}: {}",
            s.stderr()
        );
        drop(c);
        // The server was killed, not stopped: the cut file is what the next run reads.
        s.kill9();
        assert_eq!(
            std::fs::metadata(aof_path(&data)).unwrap().len(),
            block_at,
            "cut at {cut}: the open block is removed from the file"
        );
    }
}

#[test]
fn an_exec_without_its_multi_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let block_at = before_and_transaction(&data) as usize;
    let mut bytes = std::fs::read(aof_path(&data)).unwrap();
    // Drop the MULTI: the block's EXEC is then out of order, which no crash produces.
    bytes.drain(block_at..block_at + b"*1\r\n$5\r\nMULTI\r\n".len());
    std::fs::write(aof_path(&data), &bytes).unwrap();
    let err = Bin::try_start(&data, &[])
        .err()
        .expect("must refuse to start");
    assert!(err.contains("MULTI/EXEC out of order"), "{err}");
}
