//! Encoding replies into a connection's output buffer, in RESP2 or RESP3.
//!
//! Commands describe their reply once ([`Out::set_len`], [`Out::map_len`], [`Out::null`]);
//! the protocol version chosen with HELLO decides the bytes (`~`/`%`/`_` in RESP3,
//! `*`/`*2n`/`$-1` in RESP2). Nothing is flushed here: the connection writes the buffer once
//! per batch of pipelined requests.

/// The reply buffer of one connection.
#[derive(Debug, Default)]
pub struct Out {
    /// Encoded replies not yet written to the socket.
    pub buf: Vec<u8>,
    /// True after `HELLO 3`.
    pub resp3: bool,
}

fn push_int(buf: &mut Vec<u8>, n: i64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    let neg = n < 0;
    let mut v = n.unsigned_abs();
    loop {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if neg {
        buf.push(b'-');
    }
    buf.extend_from_slice(&tmp[i..]);
}

impl Out {
    fn header(&mut self, tag: u8, n: i64) {
        self.buf.push(tag);
        push_int(&mut self.buf, n);
        self.buf.extend_from_slice(b"\r\n");
    }

    /// `+OK`
    pub fn ok(&mut self) {
        self.buf.extend_from_slice(b"+OK\r\n");
    }

    /// `+text` (must not contain CR/LF).
    pub fn simple(&mut self, s: &str) {
        self.buf.push(b'+');
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.extend_from_slice(b"\r\n");
    }

    /// `-text`: `text` starts with the error code (`ERR`, `WRONGTYPE`, ...). CR and LF are
    /// replaced by spaces as Redis does, so a reply is always one line.
    pub fn error(&mut self, s: &str) {
        self.buf.push(b'-');
        self.buf.extend(
            s.bytes()
                .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
        );
        self.buf.extend_from_slice(b"\r\n");
    }

    /// Like [`Out::error`] for messages that quote client bytes (kept raw, as Redis does).
    pub fn error_bytes(&mut self, s: &[u8]) {
        self.buf.push(b'-');
        self.buf.extend(
            s.iter()
                .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
        );
        self.buf.extend_from_slice(b"\r\n");
    }

    /// `:n`
    /// A `HELP` reply: an array of simple strings, one per line.
    pub fn help(&mut self, lines: &[&str]) {
        self.array_len(lines.len());
        for l in lines {
            self.simple(l);
        }
    }

    pub fn int(&mut self, n: i64) {
        self.header(b':', n);
    }

    /// `$len payload`
    pub fn bulk(&mut self, b: &[u8]) {
        self.header(b'$', b.len() as i64);
        self.buf.extend_from_slice(b);
        self.buf.extend_from_slice(b"\r\n");
    }

    /// Null bulk string: `$-1` (RESP2) or `_` (RESP3).
    pub fn null(&mut self) {
        if self.resp3 {
            self.buf.extend_from_slice(b"_\r\n");
        } else {
            self.buf.extend_from_slice(b"$-1\r\n");
        }
    }

    /// Null array: `*-1` (RESP2) or `_` (RESP3).
    pub fn null_array(&mut self) {
        if self.resp3 {
            self.buf.extend_from_slice(b"_\r\n");
        } else {
            self.buf.extend_from_slice(b"*-1\r\n");
        }
    }

    /// Array header of `n` elements.
    pub fn array_len(&mut self, n: usize) {
        self.header(b'*', n as i64);
    }

    /// Push header (pub/sub replies and messages): `>n` in RESP3, `*n` in RESP2.
    pub fn push_len(&mut self, n: usize) {
        self.header(if self.resp3 { b'>' } else { b'*' }, n as i64);
    }

    /// Set header: `~n` in RESP3, `*n` in RESP2.
    pub fn set_len(&mut self, n: usize) {
        self.header(if self.resp3 { b'~' } else { b'*' }, n as i64);
    }

    /// Map header of `n` pairs: `%n` in RESP3, `*2n` in RESP2.
    pub fn map_len(&mut self, n: usize) {
        if self.resp3 {
            self.header(b'%', n as i64);
        } else {
            self.header(b'*', 2 * n as i64);
        }
    }

    /// Verbatim text (`=len txt:...` in RESP3, a bulk string in RESP2), as INFO uses.
    pub fn verbatim(&mut self, text: &str) {
        if self.resp3 {
            self.header(b'=', text.len() as i64 + 4);
            self.buf.extend_from_slice(b"txt:");
            self.buf.extend_from_slice(text.as_bytes());
            self.buf.extend_from_slice(b"\r\n");
        } else {
            self.bulk(text.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resp2_and_resp3_shapes() {
        let mut o = Out::default();
        o.int(-2);
        o.set_len(1);
        o.map_len(1);
        o.null();
        o.error("ERR a\r\nb");
        assert_eq!(o.buf, b":-2\r\n*1\r\n*2\r\n$-1\r\n-ERR a  b\r\n");
        let mut o = Out {
            resp3: true,
            ..Out::default()
        };
        o.set_len(1);
        o.map_len(1);
        o.null();
        o.verbatim("x");
        assert_eq!(o.buf, b"~1\r\n%1\r\n_\r\n=5\r\ntxt:x\r\n");
    }
}
