//! Eight-bytes-at-a-time searches ("SIMD within a register") for the verifier's hot loops.

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Non-zero iff some byte of `v` is below `n` (`n <= 128`).
#[inline]
fn has_less(v: u64, n: u8) -> u64 {
    v.wrapping_sub(LO * u64::from(n)) & !v & HI
}

/// Non-zero iff some byte of `v` equals `b`.
#[inline]
fn has_byte(v: u64, b: u8) -> u64 {
    has_less(v ^ (LO * u64::from(b)), 1)
}

#[inline]
fn word(s: &[u8], i: usize) -> Option<u64> {
    let chunk: [u8; 8] = s.get(i..i + 8)?.try_into().ok()?;
    Some(u64::from_le_bytes(chunk))
}

/// Index of the first `\n` or `\r`.
pub(crate) fn find_newline(s: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(v) = word(s, i) {
        if has_byte(v, b'\n') | has_byte(v, b'\r') != 0 {
            break;
        }
        i += 8;
    }
    s[i..].iter().position(|&b| b == b'\n' || b == b'\r').map(|p| i + p)
}

/// Whether canonical JSON writes `b` raw inside a string.
#[inline]
pub(crate) fn is_plain(b: u8) -> bool {
    (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\'
}

/// Length of the leading run of [`is_plain`] bytes.
pub(crate) fn plain_run(s: &[u8]) -> usize {
    let mut i = 0;
    while let Some(v) = word(s, i) {
        let special = has_less(v, 0x20)
            | (v & HI)
            | has_byte(v, 0x7f)
            | has_byte(v, b'"')
            | has_byte(v, b'\\');
        if special != 0 {
            break;
        }
        i += 8;
    }
    i + s[i..].iter().position(|&b| !is_plain(b)).unwrap_or(s.len() - i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agree_with_bytewise_search_for_every_byte_at_every_offset() {
        for len in 0..20 {
            for at in 0..len {
                for b in 0..=255u8 {
                    let mut s = vec![b'a'; len];
                    s[at] = b;
                    let newline = s.iter().position(|&c| c == b'\n' || c == b'\r');
                    assert_eq!(find_newline(&s), newline, "{s:?}");
                    let run = s.iter().position(|&c| !is_plain(c)).unwrap_or(len);
                    assert_eq!(plain_run(&s), run, "{s:?}");
                }
            }
        }
    }
}
