//! Slow request bodies cannot hold a connection and an upload slot forever: a body that sends
//! nothing for the idle timeout, or that after that long still averages under the minimum rate,
//! fails; the upload it feeds is abandoned like any interrupted one (nothing is left visible).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Frame, SizeHint};
use tokio::time::Sleep;

use crate::state::AppState;

/// What a request body must keep up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyPace {
    /// The longest silence between two pieces of a body, and the grace period before the
    /// minimum rate applies.
    pub idle_timeout: Duration,
    /// The lowest average rate, in bytes per second, once the grace period is over.
    pub min_bytes_per_second: u64,
}

impl Default for BodyPace {
    fn default() -> Self {
        BodyPace {
            idle_timeout: Duration::from_secs(30),
            min_bytes_per_second: 1024,
        }
    }
}

pub async fn pace_bodies(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let pace = state.settings.body_pace;
    let request = request.map(|body| Body::new(PacedBody::new(body, pace)));
    next.run(request).await
}

struct PacedBody {
    inner: Body,
    pace: BodyPace,
    started: Instant,
    received: u64,
    silence: Pin<Box<Sleep>>,
}

impl PacedBody {
    fn new(inner: Body, pace: BodyPace) -> Self {
        PacedBody {
            inner,
            pace,
            started: Instant::now(),
            received: 0,
            silence: Box::pin(tokio::time::sleep(pace.idle_timeout)),
        }
    }

    fn too_slow(&self) -> bool {
        let elapsed = self.started.elapsed();
        elapsed > self.pace.idle_timeout
            && (self.received as f64)
                < self.pace.min_bytes_per_second as f64 * elapsed.as_secs_f64()
    }
}

fn failure(message: &str) -> axum::Error {
    axum::Error::new(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        message.to_string(),
    ))
}

impl http_body::Body for PacedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.received += data.len() as u64;
                }
                if self.too_slow() {
                    return Poll::Ready(Some(Err(failure(
                        "the request body arrives slower than the minimum rate",
                    ))));
                }
                let deadline = tokio::time::Instant::now() + self.pace.idle_timeout;
                self.silence.as_mut().reset(deadline);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => match self.silence.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(failure(
                    "the request body stalled longer than the idle timeout",
                )))),
                Poll::Pending => Poll::Pending,
            },
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
