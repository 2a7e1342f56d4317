//! A request body that says when it has all arrived, so that a request timeout can tell
//! a slow client (408) from a slow server (503).

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes, HttpBody};
use http_body::{Frame, SizeHint};

/// `body`, setting `received` once its end has been read.
pub(super) struct Tracked {
    body: Body,
    received: Arc<AtomicBool>,
}

impl Tracked {
    /// Wraps `body`, and gives the flag (set already when it is empty).
    pub(super) fn wrap(body: Body) -> (Body, Arc<AtomicBool>) {
        let received = Arc::new(AtomicBool::new(body.is_end_stream()));
        let tracked = Self {
            body,
            received: received.clone(),
        };
        (Body::new(tracked), received)
    }
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) || self.body.is_end_stream() {
            self.received.store(true, Ordering::Relaxed);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
