//! The contract every [`NonceStore`] keeps (feature `test-util`): run by this crate's tests
//! against the memory and file stores and by `agent-safe-postgres`'s against PostgreSQL, so
//! every backend is held to the same rules.

use std::sync::Arc;

use time::OffsetDateTime;

use super::{MAX_NONCE_LEN, NonceStore, NonceStoreError};

/// A nonce unique to `tag` and `i`.
fn nonce(tag: &str, i: usize) -> String {
    format!("{tag}-{i:032x}")
}

/// Single use: a nonce is recorded once, `contains` does not record, malformed nonces are
/// refused with the message naming the rule. `expires_at` is any time after the store's clock.
pub fn single_use(store: &dyn NonceStore, expires_at: OffsetDateTime) {
    assert!(!store.contains("abc").unwrap());
    assert!(!store.contains("abc").unwrap(), "contains does not record");
    assert!(store.check_and_set("abc", expires_at).unwrap());
    assert!(store.contains("abc").unwrap());
    assert!(!store.check_and_set("abc", expires_at).unwrap());
    assert!(store.check_and_set("abd", expires_at).unwrap());
    for bad in ["", "a b", "a\n", "é", "a'; DROP TABLE x; --", &"a".repeat(MAX_NONCE_LEN + 1)] {
        assert!(
            matches!(store.check_and_set(bad, expires_at), Err(NonceStoreError::InvalidNonce(_))),
            "{bad:?}"
        );
    }
    assert!(store.check_and_set(&"a".repeat(MAX_NONCE_LEN), expires_at).unwrap());
    assert_eq!(
        store.check_and_set("a b", expires_at).unwrap_err().to_string(),
        "invalid nonce `a b`: expected 1 to 128 characters from `A-Z`, `a-z`, `0-9`, `-` and `_`"
    );
}

/// Two handles on one store (two processes, two replicas): a nonce recorded through one is
/// used for the other.
pub fn shared(a: &dyn NonceStore, b: &dyn NonceStore, expires_at: OffsetDateTime) {
    for i in 0..10 {
        let (first, second) = if i % 2 == 0 { (a, b) } else { (b, a) };
        let n = nonce("shared", i);
        assert!(first.check_and_set(&n, expires_at).unwrap(), "{n}");
        assert!(second.contains(&n).unwrap(), "{n}");
        assert!(!second.check_and_set(&n, expires_at).unwrap(), "{n}");
    }
}

/// Eight threads, spread over `stores` (handles on one store), race on each of `rounds`
/// nonces: exactly one wins each time.
pub fn racing(stores: &[Arc<dyn NonceStore>], rounds: usize, expires_at: OffsetDateTime) {
    for round in 0..rounds {
        let n = nonce("race", round);
        let wins: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|t| {
                    let store = stores[t % stores.len()].clone();
                    let n = n.clone();
                    s.spawn(move || usize::from(store.check_and_set(&n, expires_at).unwrap()))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(wins, 1, "round {round}");
    }
}
