//! When a request went on the wire: the HTTP client reads a request's body
//! only once it holds a connection and writes the request, so a body that
//! notes its first read tells a pace when its call really left, after any
//! connect and any wait in the client's own queue.
//!
//! A pace that counted from the moment a call was handed to the client let
//! two calls meet at a strict server: in the first second of a large run a
//! partition's first call waited tens of milliseconds (up to 165) for the
//! client and the server, its second one half a second later did not, and a
//! bucket of one token throttled one partition in three (5.7 % of all calls
//! at 800 ms).

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::Instant;

/// The latest instant one of a partition's requests was written; shared by
/// the partition's pace and the bodies of its calls in flight.
#[derive(Debug, Default)]
pub struct Written {
    last: Mutex<Option<Instant>>,
}

impl Written {
    pub fn new() -> Arc<Self> {
        Arc::new(Written::default())
    }

    /// A request was written now (later than any noted before, or kept).
    pub fn mark(&self) {
        let now = Instant::now();
        let mut last = super::lock(&self.last);
        *last = (*last).max(Some(now));
    }

    /// The latest instant a request was written.
    pub fn last(&self) -> Option<Instant> {
        *super::lock(&self.last)
    }
}

/// A request body of one buffer that marks `written` when the client reads it.
pub struct MarkedBody {
    data: Option<Bytes>,
    len: u64,
    written: Arc<Written>,
}

impl MarkedBody {
    pub fn new(data: Bytes, written: Arc<Written>) -> Self {
        MarkedBody {
            len: data.len() as u64,
            data: Some(data),
            written,
        }
    }
}

impl Body for MarkedBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        Poll::Ready(this.data.take().map(|d| {
            this.written.mark();
            Ok(Frame::data(d))
        }))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(match self.data {
            Some(_) => self.len,
            None => 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn frame(body: &mut MarkedBody) -> Option<Result<Frame<Bytes>, Infallible>> {
        std::future::poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await
    }

    #[tokio::test]
    async fn a_body_marks_when_it_is_read_not_when_it_is_made() {
        let w = Written::new();
        let mut body = MarkedBody::new(Bytes::from_static(b"{}"), w.clone());
        assert_eq!(body.size_hint().exact(), Some(2));
        assert!(w.last().is_none());
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let before = Instant::now();
        let data = frame(&mut body).await.unwrap().unwrap();
        assert_eq!(data.into_data().unwrap(), Bytes::from_static(b"{}"));
        assert!(w.last().unwrap() >= before);
        assert!(body.is_end_stream());
        assert!(frame(&mut body).await.is_none());
    }

    #[test]
    fn the_last_mark_is_the_latest() {
        let w = Written::new();
        w.mark();
        let first = w.last().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2));
        w.mark();
        let second = w.last().unwrap();
        assert!(second > first);
    }
}
