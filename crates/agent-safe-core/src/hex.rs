//! Lowercase hexadecimal: the one encoder of digests, key ids, tags and random ids.

/// The sixteen digits, lowercase.
pub const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// The two digits of one byte, as ASCII.
#[inline]
pub fn byte(b: u8) -> [u8; 2] {
    [DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 0x0f)]]
}

/// Lowercase hex of `bytes`.
///
/// ```
/// assert_eq!(agent_safe_core::hex::encode(&[0x00, 0x7f, 0xab]), "007fab");
/// ```
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    encode_into(bytes, &mut out);
    out
}

/// Appends the lowercase hex of `bytes` to `out`.
pub fn encode_into(bytes: &[u8], out: &mut String) {
    out.reserve(bytes.len() * 2);
    for &b in bytes {
        let [hi, lo] = byte(b);
        out.push(char::from(hi));
        out.push(char::from(lo));
    }
}

/// Lowercase hex of a 32-byte digest (SHA-256, HMAC-SHA256) as ASCII bytes, without
/// allocating: the form the audit log's hash chain compares and writes on every line.
#[inline]
pub fn encode_32(digest: &[u8; 32]) -> [u8; 64] {
    let mut out = [0u8; 64];
    for (pair, &b) in out.chunks_exact_mut(2).zip(digest) {
        pair.copy_from_slice(&byte(b));
    }
    out
}

/// The bytes of a hex string (either case); `None` for an odd length or a non-hex character.
///
/// ```
/// assert_eq!(agent_safe_core::hex::decode("007fAB"), Some(vec![0x00, 0x7f, 0xab]));
/// assert_eq!(agent_safe_core::hex::decode("7"), None);
/// ```
pub fn decode(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    let digit = |b: u8| char::from(b).to_digit(16).and_then(|d| u8::try_from(d).ok());
    hex.as_bytes()
        .chunks_exact(2)
        .map(|pair| match pair {
            [hi, lo] => Some(digit(*hi)? << 4 | digit(*lo)?),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(bytes: &[u8], expected: &str) {
        assert_eq!(encode(bytes), expected);
        let mut appended = String::from("x:");
        encode_into(bytes, &mut appended);
        assert_eq!(appended, format!("x:{expected}"));
        assert_eq!(decode(expected).as_deref(), Some(bytes));
        assert_eq!(decode(&expected.to_uppercase()).as_deref(), Some(bytes));
    }

    #[test]
    fn encodes_lowercase_two_digits_per_byte() {
        check(&[], "");
        check(&[0], "00");
        check(&[0x0f, 0xf0], "0ff0");
        check(&[0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef], "0123456789abcdef");
        check(&[0xff; 3], "ffffff");
        // Was `agent_safe_registry::yaml::hex`'s test.
        check(&[0x00, 0xab, 0x0f, 0xff], "00ab0fff");
    }

    #[test]
    fn every_byte_agrees_with_format() {
        let all: Vec<u8> = (0..=255).collect();
        let expected: String = all.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(encode(&all), expected);
        for b in 0..=255u8 {
            assert_eq!(byte(b), format!("{b:02x}").as_bytes());
        }
    }

    #[test]
    fn encode_32_is_encode_without_allocating() {
        let mut digest = [0u8; 32];
        for (i, b) in digest.iter_mut().enumerate() {
            *b = u8::try_from(i * 8 + 1).unwrap();
        }
        assert_eq!(encode_32(&digest).as_slice(), encode(&digest).as_bytes());
        assert_eq!(encode_32(&[0xab; 32]), [b'a', b'b'].repeat(32).as_slice());
    }

    #[test]
    fn decode_refuses_odd_lengths_and_non_hex() {
        assert_eq!(decode("abc"), None);
        assert_eq!(decode("zz"), None);
        assert_eq!(decode("0g"), None);
        assert_eq!(decode("+1"), None);
        assert_eq!(decode("é"), None);
    }
}
