//! Redis's CRC-64 (Jones polynomial `0xad93d23594c935a9`, reflected, initial value 0, no
//! final xor), the checksum at the end of an RDB file. Table-driven, one byte at a time.

/// The reflected Jones polynomial.
const POLY: u64 = 0x95ac_9329_ac4b_c9b5;

const fn table() -> [u64; 256] {
    let mut t = [0u64; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u64;
        let mut k = 0;
        while k < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ POLY
            } else {
                crc >> 1
            };
            k += 1;
        }
        t[i] = crc;
        i += 1;
    }
    t
}

static TABLE: [u64; 256] = table();

/// Continues the CRC-64 `crc` over `data` (start with 0).
pub fn update(mut crc: u64, data: &[u8]) -> u64 {
    for &b in data {
        crc = TABLE[((crc ^ u64::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    crc
}

#[cfg(test)]
mod tests {
    #[test]
    fn redis_check_value() {
        // Redis's crc64 self-test: crc64(0, "123456789") == 0xe9c6d914c4b8d9ca.
        assert_eq!(super::update(0, b"123456789"), 0xe9c6_d914_c4b8_d9ca);
        let split = super::update(super::update(0, b"1234"), b"56789");
        assert_eq!(split, 0xe9c6_d914_c4b8_d9ca);
    }
}
