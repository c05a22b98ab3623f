//! The one source of randomness: ids and nonces come from the operating system's CSPRNG.

/// `n` random bytes from the operating system.
///
/// The OS generator failing is not recoverable for a security tool (ids and nonces would
/// be predictable), so this aborts the process rather than returning weak bytes.
pub fn bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    if getrandom::fill(&mut buf).is_err() {
        // No error path can make up for a broken CSPRNG; stop instead of issuing guessable ids.
        std::process::abort();
    }
    buf
}

/// `n` random bytes as `2n` lowercase hex digits.
pub fn hex(n: usize) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(n * 2);
    let mut remaining = n;
    while remaining > 0 {
        let chunk = bytes::<32>();
        for &b in chunk.iter().take(remaining) {
            out.push(char::from(DIGITS[usize::from(b >> 4)]));
            out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
        }
        remaining = remaining.saturating_sub(32);
    }
    out
}

/// A 32-hex-digit nonce (128 random bits), the shape of Python's `uuid4().hex`.
pub fn nonce() -> String {
    hex(16)
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_has_requested_length_and_alphabet() {
        for n in [0, 1, 6, 16, 33, 70] {
            let h = super::hex(n);
            assert_eq!(h.len(), n * 2);
            assert!(h.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        }
        assert_ne!(super::nonce(), super::nonce());
    }
}
