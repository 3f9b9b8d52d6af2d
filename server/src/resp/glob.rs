//! Redis glob patterns (`KEYS`, `SCAN MATCH`, `CONFIG GET`): `*`, `?`, `[abc]`, `[^a]`,
//! `[a-z]` and `\` escapes, matched over raw bytes like Redis's `stringmatchlen`.
//!
//! Iterative with single-star backtracking, so matching is O(pattern × text) at worst.

fn class(p: &[u8], mut i: usize, c: u8, nocase: bool) -> (bool, usize) {
    // `i` points just after '['. Returns (matched, index after ']').
    let norm = |b: u8| if nocase { b.to_ascii_lowercase() } else { b };
    let negate = p.get(i) == Some(&b'^');
    if negate {
        i += 1;
    }
    let mut matched = false;
    loop {
        match p.get(i) {
            None => break, // unterminated class: Redis treats the end as ']'
            Some(b']') => {
                i += 1;
                break;
            }
            Some(b'\\') if i + 1 < p.len() => {
                if norm(p[i + 1]) == norm(c) {
                    matched = true;
                }
                i += 2;
            }
            Some(&lo) if p.get(i + 1) == Some(&b'-') && i + 2 < p.len() => {
                // Redis compares range bounds as C `char`s, signed on x86-64 and aarch64
                // Linux builds: bytes above 0x7F sort below 0x00, so `[a-\xff]` is the
                // signed range -1..=97, i.e. 0xFF and 0x00..=b'a', and not 0x80.
                let signed = |b: u8| norm(b) as i8;
                let (lo, hi, cc) = (signed(lo), signed(p[i + 2]), signed(c));
                let (a, b) = if lo <= hi { (lo, hi) } else { (hi, lo) };
                if cc >= a && cc <= b {
                    matched = true;
                }
                i += 3;
            }
            Some(&b) => {
                if norm(b) == norm(c) {
                    matched = true;
                }
                i += 1;
            }
        }
    }
    (matched != negate, i)
}

/// True when `text` matches the glob `pat`.
pub fn matches(pat: &[u8], text: &[u8], nocase: bool) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    let eq = |a: u8, b: u8| {
        if nocase {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    loop {
        if p < pat.len() {
            match pat[p] {
                b'*' => {
                    while p < pat.len() && pat[p] == b'*' {
                        p += 1;
                    }
                    if p == pat.len() {
                        return true;
                    }
                    star = Some((p, t));
                    continue;
                }
                b'?' if t < text.len() => {
                    p += 1;
                    t += 1;
                    continue;
                }
                b'[' if t < text.len() => {
                    let (ok, next) = class(pat, p + 1, text[t], nocase);
                    if ok {
                        p = next;
                        t += 1;
                        continue;
                    }
                }
                b'\\' if p + 1 < pat.len() && t < text.len() && eq(pat[p + 1], text[t]) => {
                    p += 2;
                    t += 1;
                    continue;
                }
                c if t < text.len()
                    && c != b'?'
                    && c != b'['
                    && (c != b'\\' || p + 1 == pat.len())
                    && eq(c, text[t]) =>
                {
                    p += 1;
                    t += 1;
                    continue;
                }
                _ => {}
            }
        } else if t == text.len() {
            return true;
        }
        // Mismatch: let the last star swallow one more byte.
        match star {
            Some((sp, st)) if st < text.len() => {
                star = Some((sp, st + 1));
                p = sp;
                t = st + 1;
            }
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn redis_glob_cases() {
        let m = |p: &str, t: &str| matches(p.as_bytes(), t.as_bytes(), false);
        assert!(m("*", ""));
        assert!(m("2026*", "20261122"));
        assert!(m("h?llo", "hello"));
        assert!(!m("h?llo", "hllo"));
        assert!(m("h[ae]llo", "hallo"));
        assert!(!m("h[^e]llo", "hello"));
        assert!(m("h[a-b]llo", "hbllo"));
        assert!(m("h\\*llo", "h*llo"));
        assert!(!m("h\\*llo", "hello"));
        assert!(m("*a*b*c", "xxaybzzc"));
        assert!(!m("*a*b*c", "xxaybzz"));
        assert!(matches(b"SAVE", b"save", true));
    }

    #[test]
    fn ranges_compare_bytes_as_signed_chars() {
        // [a-\xff] is -1..=97 signed: 0xFF and 0x00..='a', not 0x80..=0xFE.
        assert!(matches(b"[a-\xff]", b"\xff", false));
        assert!(!matches(b"[a-\xff]", b"\x80", false));
        assert!(matches(b"[a-\xff]", b"A", false));
        assert!(!matches(b"[a-\xff]", b"b", false));
        assert!(matches(b"[\x80-\xfe]", b"\x90", false));
        assert!(!matches(b"[\x80-\xfe]", b"\xff", false));
        assert!(!matches(b"[\x00-\x7f]", b"\x80", false));
    }
}
