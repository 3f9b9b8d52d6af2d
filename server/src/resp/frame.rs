//! RESP frames: the request parser used by the server and a general RESP2/RESP3 frame
//! parser (for clients, tests and fuzzing).
//!
//! Both first check that a whole frame is in the buffer; a partial frame is the normal
//! [`FrameError::Incomplete`] (read more and retry), not a failure. Every length is checked
//! against [`Limits`] before anything is allocated, and protocol violations carry Redis's
//! exact error text. This module does not execute anything and does no I/O.

use bytes::{Buf, Bytes, BytesMut};

use super::config::Limits;

/// Why a buffer could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Not enough bytes yet; read more and try again.
    #[error("incomplete frame")]
    Incomplete,
    /// A protocol violation; the text follows `ERR Protocol error: ` in Redis's reply.
    #[error("Protocol error: {0}")]
    Protocol(String),
    /// The request's bytes plus [`ARG_OVERHEAD`] per argument would pass
    /// `client-query-buffer-limit`: the connection is closed without a reply, as Redis
    /// closes a client whose query buffer passes the limit.
    #[error("request of {args} arguments passes client-query-buffer-limit ({limit} bytes)")]
    QueryBufferLimit {
        /// Arguments the request announced.
        args: usize,
        /// The limit.
        limit: usize,
    },
}

/// Deepest nesting accepted by [`Frame::parse`] (the server never needs nesting).
pub const MAX_DEPTH: usize = 64;

fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i + 1 < buf.len() {
        match memchr_cr(&buf[i..buf.len() - 1]) {
            Some(off) => {
                let pos = i + off;
                if buf[pos + 1] == b'\n' {
                    return Some(pos);
                }
                i = pos + 1;
            }
            None => return None,
        }
    }
    None
}

fn memchr_cr(hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == b'\r')
}

/// Parses a signed decimal the way Redis's `string2ll` does: no `+`, no spaces, no
/// leading zeros, fits in an `i64`.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    let (neg, digits) = match s[0] {
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || (digits[0] == b'0' && (digits.len() > 1 || neg)) {
        return None;
    }
    let mut v: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        let digit = i64::from(d - b'0');
        v = if neg {
            v.checked_mul(10)?.checked_sub(digit)?
        } else {
            v.checked_mul(10)?.checked_add(digit)?
        };
    }
    Some(v)
}

fn proto(msg: impl Into<String>) -> FrameError {
    FrameError::Protocol(msg.into())
}

/// Bytes each argument of a request is charged on top of its own bytes when a request is
/// held against `client-query-buffer-limit`: its range while parsing and its `Bytes`
/// handle afterwards.
pub const ARG_OVERHEAD: usize =
    std::mem::size_of::<(usize, usize)>() + std::mem::size_of::<Bytes>();

/// Parses one client request from the front of `buf` into `args` (cleared first).
///
/// Returns `Ok(true)` and removes the request's bytes when a whole request was there (an
/// empty `args` is an empty request, which Redis ignores), `Ok(false)` when more bytes are
/// needed. `authed` is false while the connection still has to authenticate: Redis then
/// accepts only small requests. Stateless: a connection that reads a large request in many
/// pieces should keep a [`RequestParser`], which does not rescan what it already checked.
///
/// # Errors
/// [`FrameError::Protocol`] with Redis's text; the connection must reply and close.
pub fn parse_request(
    buf: &mut BytesMut,
    limits: &Limits,
    authed: bool,
    args: &mut Vec<Bytes>,
) -> Result<bool, FrameError> {
    RequestParser::default().parse(buf, limits, authed, args)
}

/// A request parser that remembers how far it got through a multibulk request that is not
/// wholly in the buffer yet, so a request of millions of arguments arriving in thousands of
/// reads is scanned once, not once per read.
///
/// Between calls the caller may only append to the buffer. Counts follow Redis 7: up to
/// `i32::MAX` arguments ([`Limits::max_multibulk_len`]); memory is bounded instead by
/// `client-query-buffer-limit`, which the request's bytes plus [`ARG_OVERHEAD`] per argument
/// must stay within (Redis bounds only the bytes; this is the same bound, made honest about
/// what each argument costs us).
#[derive(Debug, Default)]
pub struct RequestParser {
    /// Arguments of the multibulk request in progress; 0 when none is.
    count: usize,
    /// Where the next argument's `$` line starts.
    pos: usize,
    /// Payload ranges of the arguments checked so far.
    ranges: Vec<(usize, usize)>,
}

impl RequestParser {
    /// Like [`parse_request`], resuming the request in progress.
    ///
    /// # Errors
    /// [`FrameError::Protocol`] with Redis's text: the connection must reply and close;
    /// [`FrameError::QueryBufferLimit`]: it must close. The parser is reset.
    pub fn parse(
        &mut self,
        buf: &mut BytesMut,
        limits: &Limits,
        authed: bool,
        args: &mut Vec<Bytes>,
    ) -> Result<bool, FrameError> {
        args.clear();
        if self.count == 0 {
            if buf.is_empty() {
                return Ok(false);
            }
            if buf[0] != b'*' {
                return parse_inline(buf, limits, args);
            }
            let Some(end) = find_crlf(buf, 1) else {
                if buf.len() > limits.inline_max {
                    return Err(proto("too big mbulk count string"));
                }
                return Ok(false);
            };
            let count = match parse_i64(&buf[1..end]) {
                Some(n) if n <= i64::from(i32::MAX) && n <= limits.max_multibulk_len as i64 => n,
                _ => return Err(proto("invalid multibulk length")),
            };
            if count > 10 && !authed {
                return Err(proto("unauthenticated multibulk length"));
            }
            if count <= 0 {
                buf.advance(end + 2);
                return Ok(true);
            }
            self.count = count as usize;
            self.pos = end + 2;
            self.ranges.clear();
            // Grows with the arguments that actually arrive, not with the announced count.
            self.ranges.reserve(self.count.min(1024));
        }
        match self.scan(buf, limits, authed) {
            Ok(true) => {
                let frame = buf.split_to(self.pos).freeze();
                args.extend(self.ranges.iter().map(|&(s, e)| frame.slice(s..e)));
                self.reset();
                Ok(true)
            }
            Ok(false) => Ok(false),
            Err(e) => {
                self.reset();
                Err(e)
            }
        }
    }

    fn reset(&mut self) {
        self.count = 0;
        self.pos = 0;
        if self.ranges.capacity() > 1024 {
            self.ranges = Vec::new();
        } else {
            self.ranges.clear();
        }
    }

    /// Checks arguments from `self.pos` on; true when all `self.count` are there.
    fn scan(&mut self, buf: &[u8], limits: &Limits, authed: bool) -> Result<bool, FrameError> {
        while self.ranges.len() < self.count {
            let pos = self.pos;
            if pos >= buf.len() {
                return Ok(false);
            }
            let Some(end) = find_crlf(buf, pos) else {
                if buf.len() - pos > limits.inline_max {
                    return Err(proto("too big bulk count string"));
                }
                return Ok(false);
            };
            if buf[pos] != b'$' {
                return Err(proto(format!("expected '$', got '{}'", buf[pos] as char)));
            }
            let len = match parse_i64(&buf[pos + 1..end]) {
                Some(n) if n >= 0 && n as u64 <= limits.proto_max_bulk_len as u64 => n as usize,
                _ => return Err(proto("invalid bulk length")),
            };
            if len > 16384 && !authed {
                return Err(proto("unauthenticated bulk length"));
            }
            let start = end + 2;
            let held = (start + len).saturating_add((self.ranges.len() + 1) * ARG_OVERHEAD);
            if held > limits.query_buffer_limit {
                return Err(FrameError::QueryBufferLimit {
                    args: self.count,
                    limit: limits.query_buffer_limit,
                });
            }
            // Like Redis, the two bytes after the payload are skipped, not checked.
            if buf.len() < start + len + 2 {
                return Ok(false);
            }
            self.ranges.push((start, start + len));
            self.pos = start + len + 2;
        }
        Ok(true)
    }
}

fn parse_inline(
    buf: &mut BytesMut,
    limits: &Limits,
    args: &mut Vec<Bytes>,
) -> Result<bool, FrameError> {
    let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
        if buf.len() > limits.inline_max {
            return Err(proto("too big inline request"));
        }
        return Ok(false);
    };
    if nl > limits.inline_max {
        return Err(proto("too big inline request"));
    }
    let line = buf.split_to(nl + 1).freeze();
    let mut end = nl;
    if end > 0 && line[end - 1] == b'\r' {
        end -= 1;
    }
    let text = &line[..end];
    if !text
        .iter()
        .any(|&b| matches!(b, b'"' | b'\'' | 0 | 0x0B | 0x0C))
    {
        // Fast path, no quoting: arguments are slices of the line, no copies.
        let mut i = 0;
        while i < end {
            while i < end && is_space(text[i]) {
                i += 1;
            }
            let start = i;
            while i < end && !is_space(text[i]) {
                i += 1;
            }
            if i > start {
                args.push(line.slice(start..i));
            }
        }
        return Ok(true);
    }
    match split_args(text) {
        Some(v) => {
            args.extend(v.into_iter().map(Bytes::from));
            Ok(true)
        }
        None => Err(proto("unbalanced quotes in request")),
    }
}

/// `isspace()` in the C locale, as `sdssplitargs` uses it.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0B | 0x0C | b'\r')
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Splits an inline command line like Redis's `sdssplitargs`: spaces separate arguments,
/// `"..."` supports `\n \r \t \b \a \\ \" \xHH`, `'...'` supports `\'`. A closing quote
/// must be followed by a space or the end. Returns `None` for unbalanced quotes.
pub fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut i = 0;
    let n = line.len();
    loop {
        while i < n && is_space(line[i]) {
            i += 1;
        }
        if i >= n {
            return Some(out);
        }
        let mut cur = Vec::new();
        let mut inq = false;
        let mut insq = false;
        loop {
            if inq {
                if i >= n {
                    return None;
                }
                if line[i] == b'\\'
                    && i + 3 < n
                    && line[i + 1] == b'x'
                    && hex(line[i + 2]).is_some()
                    && hex(line[i + 3]).is_some()
                {
                    let hi = hex(line[i + 2]).unwrap_or(0);
                    let lo = hex(line[i + 3]).unwrap_or(0);
                    cur.push(hi * 16 + lo);
                    i += 3;
                } else if line[i] == b'\\' && i + 1 < n {
                    i += 1;
                    cur.push(match line[i] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        c => c,
                    });
                } else if line[i] == b'"' {
                    if i + 1 < n && !is_space(line[i + 1]) {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(line[i]);
                }
            } else if insq {
                if i >= n {
                    return None;
                }
                if line[i] == b'\\' && i + 1 < n && line[i + 1] == b'\'' {
                    i += 1;
                    cur.push(b'\'');
                } else if line[i] == b'\'' {
                    if i + 1 < n && !is_space(line[i + 1]) {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(line[i]);
                }
            } else {
                if i >= n {
                    break;
                }
                match line[i] {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => {
                        i += 1;
                        break;
                    }
                    b'"' => inq = true,
                    b'\'' => insq = true,
                    c => cur.push(c),
                }
            }
            i += 1;
        }
        out.push(cur);
    }
}

/// A RESP2 or RESP3 value, as a client sees replies.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// `+text`
    Simple(String),
    /// `-text`
    Error(String),
    /// `:n`
    Integer(i64),
    /// `$n` payload
    Bulk(Bytes),
    /// `$-1`, `*-1` or `_`
    Null,
    /// `*n`
    Array(Vec<Frame>),
    /// `~n` (RESP3)
    Set(Vec<Frame>),
    /// `%n` key/value pairs (RESP3)
    Map(Vec<(Frame, Frame)>),
    /// `#t` / `#f` (RESP3)
    Boolean(bool),
    /// `,` (RESP3), kept as text
    Double(String),
    /// `(` (RESP3), kept as text
    BigNumber(String),
    /// `!n` (RESP3)
    BulkError(Bytes),
    /// `=n` format and payload (RESP3)
    Verbatim(String, Bytes),
    /// `>n` (RESP3)
    Push(Vec<Frame>),
    /// `|n` attribute map followed by the value it annotates (RESP3)
    Attribute(Vec<(Frame, Frame)>, Box<Frame>),
}

impl Frame {
    /// Parses one frame from the front of `buf`, returning it and the bytes it used.
    ///
    /// # Errors
    /// [`FrameError::Incomplete`] when more bytes are needed, [`FrameError::Protocol`] for
    /// malformed input or nesting deeper than [`MAX_DEPTH`].
    pub fn parse(buf: &[u8]) -> Result<(Frame, usize), FrameError> {
        let mut pos = 0;
        let f = parse_frame(buf, &mut pos, 0)?;
        Ok((f, pos))
    }
}

fn line<'a>(buf: &'a [u8], pos: &mut usize) -> Result<&'a [u8], FrameError> {
    let end = find_crlf(buf, *pos).ok_or(FrameError::Incomplete)?;
    let l = &buf[*pos..end];
    *pos = end + 2;
    Ok(l)
}

fn text(l: &[u8]) -> Result<String, FrameError> {
    String::from_utf8(l.to_vec()).map_err(|_| proto("invalid UTF-8 in a line"))
}

fn int(l: &[u8]) -> Result<i64, FrameError> {
    parse_i64(l).ok_or_else(|| proto("invalid integer"))
}

fn len_of(l: &[u8], buf_len: usize) -> Result<Option<usize>, FrameError> {
    let n = int(l)?;
    if n == -1 {
        return Ok(None);
    }
    if n < 0 {
        return Err(proto("invalid length"));
    }
    // No aggregate can have more elements than there are bytes left; this bounds
    // allocation by the input size.
    if n as u64 > buf_len as u64 {
        return Err(FrameError::Incomplete);
    }
    Ok(Some(n as usize))
}

fn blob(buf: &[u8], pos: &mut usize, n: usize) -> Result<Bytes, FrameError> {
    if buf.len() < *pos + n + 2 {
        return Err(FrameError::Incomplete);
    }
    if &buf[*pos + n..*pos + n + 2] != b"\r\n" {
        return Err(proto("missing CRLF after bulk payload"));
    }
    let b = Bytes::copy_from_slice(&buf[*pos..*pos + n]);
    *pos += n + 2;
    Ok(b)
}

fn parse_frame(buf: &[u8], pos: &mut usize, depth: usize) -> Result<Frame, FrameError> {
    if depth > MAX_DEPTH {
        return Err(proto("nesting too deep"));
    }
    let Some(&tag) = buf.get(*pos) else {
        return Err(FrameError::Incomplete);
    };
    *pos += 1;
    let l = line(buf, pos)?;
    Ok(match tag {
        b'+' => Frame::Simple(text(l)?),
        b'-' => Frame::Error(text(l)?),
        b':' => Frame::Integer(int(l)?),
        b'_' => Frame::Null,
        b',' => Frame::Double(text(l)?),
        b'(' => Frame::BigNumber(text(l)?),
        b'#' => match l {
            b"t" => Frame::Boolean(true),
            b"f" => Frame::Boolean(false),
            _ => return Err(proto("invalid boolean")),
        },
        b'$' | b'!' | b'=' => match len_of(l, buf.len())? {
            None => Frame::Null,
            Some(n) => {
                let b = blob(buf, pos, n)?;
                match tag {
                    b'$' => Frame::Bulk(b),
                    b'!' => Frame::BulkError(b),
                    _ => {
                        if b.len() < 4 || b[3] != b':' {
                            return Err(proto("invalid verbatim string"));
                        }
                        Frame::Verbatim(text(&b[..3])?, b.slice(4..))
                    }
                }
            }
        },
        b'*' | b'~' | b'>' => match len_of(l, buf.len())? {
            None => Frame::Null,
            Some(n) => {
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    v.push(parse_frame(buf, pos, depth + 1)?);
                }
                match tag {
                    b'*' => Frame::Array(v),
                    b'~' => Frame::Set(v),
                    _ => Frame::Push(v),
                }
            }
        },
        b'%' | b'|' => {
            let n = len_of(l, buf.len())?.ok_or_else(|| proto("null map"))?;
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                let k = parse_frame(buf, pos, depth + 1)?;
                let val = parse_frame(buf, pos, depth + 1)?;
                v.push((k, val));
            }
            if tag == b'%' {
                Frame::Map(v)
            } else {
                let inner = parse_frame(buf, pos, depth + 1)?;
                Frame::Attribute(v, Box::new(inner))
            }
        }
        other => return Err(proto(format!("unknown type byte {other:#04x}"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(input: &[u8]) -> Result<Option<Vec<Bytes>>, FrameError> {
        let mut buf = BytesMut::from(input);
        let mut args = Vec::new();
        let got = parse_request(&mut buf, &Limits::default(), true, &mut args)?;
        Ok(got.then_some(args))
    }

    #[test]
    fn multibulk_and_incomplete() {
        let full = b"*2\r\n$4\r\nPING\r\n$2\r\nhi\r\n";
        for cut in 0..full.len() {
            assert_eq!(req(&full[..cut]), Ok(None), "cut at {cut}");
        }
        assert_eq!(
            req(full).unwrap().unwrap(),
            vec![Bytes::from("PING"), Bytes::from("hi")]
        );
    }

    #[test]
    fn inline_with_quotes() {
        let got = req(b"SADD k \"a b\" 'c\\'d' \"\\x41\\n\"\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(got, vec![&b"SADD"[..], b"k", b"a b", b"c'd", b"A\n"]);
        assert_eq!(
            req(b"SADD \"a\r\n"),
            Err(FrameError::Protocol("unbalanced quotes in request".into()))
        );
    }

    #[test]
    fn bad_lengths_use_redis_text() {
        assert_eq!(req(b"*x\r\n"), Err(proto("invalid multibulk length")));
        assert_eq!(req(b"*1\r\n$-3\r\n"), Err(proto("invalid bulk length")));
        assert_eq!(req(b"*1\r\n:3\r\n"), Err(proto("expected '$', got ':'")));
    }

    #[test]
    fn resumes_a_request_arriving_in_pieces() {
        let mut full = b"*4\r\n$4\r\nSADD\r\n$1\r\nk\r\n$2\r\nab\r\n$0\r\n\r\n".to_vec();
        full.extend_from_slice(b"PING\r\n");
        let mut parser = RequestParser::default();
        let mut buf = BytesMut::new();
        let mut args = Vec::new();
        let mut got = Vec::new();
        for &b in &full {
            buf.extend_from_slice(&[b]);
            while parser.parse(&mut buf, &Limits::default(), true, &mut args) == Ok(true) {
                got.push(args.clone());
            }
        }
        assert_eq!(
            got,
            vec![
                vec![
                    Bytes::from("SADD"),
                    Bytes::from("k"),
                    Bytes::from("ab"),
                    Bytes::new()
                ],
                vec![Bytes::from("PING")]
            ]
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn counts_past_a_million_are_accepted_but_bytes_are_bounded() {
        #[cfg(target_pointer_width = "64")]
        assert_eq!(ARG_OVERHEAD, 48, "server/docs/resp.md says 48");
        assert_eq!(req(b"*2147483647\r\n"), Ok(None));
        assert_eq!(
            req(b"*2147483648\r\n"),
            Err(proto("invalid multibulk length"))
        );
        let limits = Limits {
            query_buffer_limit: 10 * ARG_OVERHEAD,
            ..Limits::default()
        };
        let mut buf = BytesMut::from(&b"*100\r\n"[..]);
        for _ in 0..100 {
            buf.extend_from_slice(b"$1\r\nx\r\n");
        }
        let mut args = Vec::new();
        let got = RequestParser::default().parse(&mut buf, &limits, true, &mut args);
        assert_eq!(
            got,
            Err(FrameError::QueryBufferLimit {
                args: 100,
                limit: 10 * ARG_OVERHEAD
            })
        );
    }

    #[test]
    fn general_frames() {
        let (f, n) = Frame::parse(b"%1\r\n+a\r\n~2\r\n:1\r\n#t\r\nrest").unwrap();
        assert_eq!(n, 20);
        assert_eq!(
            f,
            Frame::Map(vec![(
                Frame::Simple("a".into()),
                Frame::Set(vec![Frame::Integer(1), Frame::Boolean(true)])
            )])
        );
        assert_eq!(Frame::parse(b"$3\r\nab"), Err(FrameError::Incomplete));
    }
}
