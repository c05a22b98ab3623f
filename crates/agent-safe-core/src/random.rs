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
    let mut out = String::with_capacity(n * 2);
    let mut remaining = n;
    while remaining > 0 {
        let chunk = bytes::<32>();
        crate::hex::encode_into(chunk.get(..remaining).unwrap_or(&chunk), &mut out);
        remaining = remaining.saturating_sub(32);
    }
    out
}

/// A 48-bit identifier that is unique within this process and unpredictable across
/// processes: a per-process random start and key, put through a bijection of the 48-bit
/// space (so two calls in one process never collide), without a system call per id.
/// For ids (audit events), never for secrets or nonces.
pub fn id48() -> u64 {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    const MASK: u64 = (1 << 48) - 1;
    static STATE: OnceLock<(AtomicU64, u64, u64)> = OnceLock::new();
    let (counter, k1, k2) = STATE.get_or_init(|| {
        let b = bytes::<24>();
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[i * 8..i * 8 + 8]);
            u64::from_le_bytes(w)
        };
        (AtomicU64::new(word(0)), word(1) & MASK, word(2) & MASK)
    });
    let mut x = counter.fetch_add(1, Ordering::Relaxed).wrapping_add(*k1) & MASK;
    // Each step is a bijection on 48-bit values: odd multipliers and xor-shifts.
    x = x.wrapping_mul(0x9E37_79B9_7F4B) & MASK;
    x ^= x >> 24;
    x = x.wrapping_mul(0xBF58_476D_1CE5) & MASK;
    x ^= x >> 21;
    x ^ *k2
}

/// A 32-hex-digit nonce (128 random bits), the shape of Python's `uuid4().hex`.
pub fn nonce() -> String {
    hex(16)
}

#[cfg(test)]
mod tests {
    #[test]
    fn id48_never_repeats_within_a_process() {
        let ids: std::collections::HashSet<u64> = (0..200_000).map(|_| super::id48()).collect();
        assert_eq!(ids.len(), 200_000);
        assert!(ids.iter().all(|&id| id < (1 << 48)));
    }

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
