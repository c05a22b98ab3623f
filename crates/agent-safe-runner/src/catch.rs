//! Containment of executor calls: a panic inside an executor future becomes a value, and a
//! credential is revoked even when the run itself is dropped half-way.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use agent_safe_core::BoxFuture;
use agent_safe_credentials::CredentialVault;

/// Polls `inner`, turning a panic into `Err(message)`. After a panic the future is not polled
/// again (the executor's state is unknown); the runner reports an error instead.
pub(crate) struct CatchUnwind<'a, T> {
    inner: Option<BoxFuture<'a, T>>,
}

impl<'a, T> CatchUnwind<'a, T> {
    pub(crate) fn new(inner: BoxFuture<'a, T>) -> Self {
        Self { inner: Some(inner) }
    }
}

impl<T> Future for CatchUnwind<'_, T> {
    type Output = Result<T, String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(Err("executor future polled after a panic".to_owned()));
        };
        // The executor's future is dropped right after a panic and never observed again, so
        // no broken invariant inside it can be seen.
        match catch_unwind(AssertUnwindSafe(|| inner.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => {
                self.inner = None;
                Poll::Ready(Ok(v))
            }
            Err(payload) => {
                self.inner = None;
                Poll::Ready(Err(panic_message(payload.as_ref())))
            }
        }
    }
}

/// The text of a panic payload (`&str` or `String`), else a placeholder.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_owned()
    }
}

/// Revokes a credential when dropped while still armed: a run that is cancelled (its future
/// dropped by the caller, e.g. on Ctrl-C or an outer timeout) still revokes, on the current
/// tokio runtime. The runner disarms it once it has revoked the credential itself.
pub(crate) struct RevokeOnDrop {
    armed: Option<(Arc<dyn CredentialVault>, String)>,
}

impl RevokeOnDrop {
    pub(crate) fn new(vault: Arc<dyn CredentialVault>, credential_id: String) -> Self {
        Self { armed: Some((vault, credential_id)) }
    }

    /// The runner revokes explicitly from here on.
    pub(crate) fn disarm(&mut self) {
        self.armed = None;
    }
}

impl Drop for RevokeOnDrop {
    fn drop(&mut self) {
        let Some((vault, id)) = self.armed.take() else { return };
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                // Best effort, as every revocation: the credential also expires on its own.
                let _ = vault.revoke(&id).await;
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn panics_become_errors() {
        let ok = CatchUnwind::new(Box::pin(async { 7 })).await;
        assert_eq!(ok, Ok(7));
        let s: BoxFuture<'_, u8> = Box::pin(async { panic!("boom {}", 1) });
        assert_eq!(CatchUnwind::new(s).await, Err("boom 1".to_owned()));
        let s: BoxFuture<'_, u8> = Box::pin(async { std::panic::panic_any(3_u32) });
        assert_eq!(CatchUnwind::new(s).await, Err("a panic with a non-string payload".to_owned()));
    }
}
