//! Store calls bounded by the configured timeout; failures become 503s.

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use crate::StoreError;
use crate::error::AuthError;
use crate::metrics;

pub(crate) fn unavailable(e: StoreError) -> AuthError {
    tracing::warn!(error = %e, "session store failed");
    AuthError::unavailable("session store unavailable")
}

/// Runs a store call within `timeout`. A store that answers at once (the memory store)
/// never arms a timer; the first poll gets the task's waker, so a pending store is
/// woken as usual.
pub(crate) async fn timed<T>(
    op: &'static str,
    timeout: Duration,
    f: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, AuthError> {
    let timer = metrics::Timer::start();
    let mut f = pin!(f);
    let first = poll_fn(|cx| Poll::Ready(f.as_mut().poll(cx))).await;
    let result = match first {
        Poll::Ready(r) => Ok(r),
        Poll::Pending => tokio::time::timeout(timeout, f).await,
    };
    match result {
        Ok(Ok(v)) => {
            metrics::store_call(op, "ok", timer);
            Ok(v)
        }
        Ok(Err(e)) => {
            metrics::store_call(op, "error", timer);
            Err(unavailable(e))
        }
        Err(_) => {
            metrics::store_call(op, "timeout", timer);
            Err(unavailable(StoreError::new("timed out")))
        }
    }
}
