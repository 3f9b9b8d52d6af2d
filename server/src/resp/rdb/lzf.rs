//! LZF decompression, for the compressed strings Redis writes into RDB files (`0xC3`). We
//! never compress; this only reads. Every back-reference and literal run is bounds-checked:
//! a bad stream is an error, never a panic or an over-long output.

/// Decompresses `input` into exactly `expected` bytes.
///
/// # Errors
/// A description of what is wrong when the stream is malformed or does not produce exactly
/// `expected` bytes.
pub fn decompress(input: &[u8], expected: usize) -> Result<Vec<u8>, String> {
    let mut out: Vec<u8> = Vec::with_capacity(expected);
    let mut ip = 0;
    while ip < input.len() {
        let ctrl = usize::from(input[ip]);
        ip += 1;
        if ctrl < 32 {
            // Literal run of ctrl + 1 bytes.
            let n = ctrl + 1;
            let Some(lit) = input.get(ip..ip + n) else {
                return Err("LZF literal run past the end of the input".into());
            };
            if out.len() + n > expected {
                return Err("LZF output longer than declared".into());
            }
            out.extend_from_slice(lit);
            ip += n;
        } else {
            let mut len = ctrl >> 5;
            if len == 7 {
                let Some(&more) = input.get(ip) else {
                    return Err("LZF back-reference length past the end".into());
                };
                len += usize::from(more);
                ip += 1;
            }
            let Some(&low) = input.get(ip) else {
                return Err("LZF back-reference offset past the end".into());
            };
            ip += 1;
            let back = ((ctrl & 0x1f) << 8) + usize::from(low) + 1;
            let len = len + 2;
            if back > out.len() {
                return Err("LZF back-reference before the start of the output".into());
            }
            if out.len() + len > expected {
                return Err("LZF output longer than declared".into());
            }
            let start = out.len() - back;
            // Byte by byte: the reference may overlap what it produces.
            for i in 0..len {
                let b = out[start + i];
                out.push(b);
            }
        }
    }
    if out.len() != expected {
        return Err(format!(
            "LZF output is {} bytes, {} declared",
            out.len(),
            expected
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::decompress;

    #[test]
    fn literals_and_overlapping_references() {
        // "abcabcabcabc": literal "abc", then a reference 3 back of length 9 (7 + 2).
        let stream = [2, b'a', b'b', b'c', (7 << 5), 0, 2];
        assert_eq!(decompress(&stream, 12).unwrap(), b"abcabcabcabc".to_vec());
    }

    #[test]
    fn malformed_streams_are_errors() {
        assert!(decompress(&[5, b'a'], 6).is_err()); // run past the end
        assert!(decompress(&[0, b'a', 0x20, 5], 4).is_err()); // reference before start
        assert!(decompress(&[0, b'a'], 2).is_err()); // shorter than declared
        assert!(decompress(&[1, b'a', b'b'], 1).is_err()); // longer than declared
    }
}
