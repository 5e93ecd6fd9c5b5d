//! Bandwidth enforcement for async code: [`Budgets::acquire`], and tokio
//! `AsyncRead`/`AsyncWrite` wrappers that pace a stream to a channel's budget.

use crate::BudgetError;
use crate::budgets::{Budgets, Resource};
use perfkit_core::Clock;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant, SystemTime};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A clock that follows tokio's time, so that tests with a paused runtime
/// (`#[tokio::test(start_paused = true)]`) drive budgets and tokio sleeps together.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioClock;

impl Clock for TokioClock {
    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }

    fn wall(&self) -> SystemTime {
        SystemTime::now()
    }
}

impl Budgets {
    /// Takes `bytes` from a bandwidth channel: returns at once when tokens are there,
    /// waits (without blocking the runtime) while the channel is throttled, and fails fast
    /// with [`BudgetError::Rejected`] when the wait would exceed the channel's `max_wait`.
    ///
    /// A single request larger than the burst plus `max_wait` worth of the rate can never be
    /// granted: split large transfers into chunks (the stream wrappers do).
    pub async fn acquire(&self, channel: Resource, bytes: u64) -> Result<(), BudgetError> {
        let wait = self.try_acquire(channel, bytes)?;
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        Ok(())
    }

    /// Wraps a stream so that the bytes read from and written to it are paced to the
    /// `channel`'s budget: after each transfer the stream pauses until the channel's token
    /// bucket is out of debt. A stream slows down; it never fails because of the budget.
    pub fn limit_stream<S>(&self, channel: Resource, stream: S) -> Budgeted<S> {
        Budgeted {
            inner: stream,
            budgets: self.clone(),
            channel,
            read_pause: None,
            write_pause: None,
        }
    }
}

/// A stream paced by a bandwidth budget: see [`Budgets::limit_stream`].
#[derive(Debug)]
pub struct Budgeted<S> {
    inner: S,
    budgets: Budgets,
    channel: Resource,
    read_pause: Option<Pin<Box<tokio::time::Sleep>>>,
    write_pause: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<S> Budgeted<S> {
    /// The wrapped stream.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Unwraps the stream.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// Accounts `n` bytes and returns how long to pause before the next transfer.
    fn account(&self, n: usize) -> Duration {
        self.budgets.account_transfer(self.channel, n as u64)
    }
}

fn poll_pause(pause: &mut Option<Pin<Box<tokio::time::Sleep>>>, cx: &mut Context<'_>) -> Poll<()> {
    if let Some(sleep) = pause.as_mut() {
        ready!(sleep.as_mut().poll(cx));
        *pause = None;
    }
    Poll::Ready(())
}

fn pause_for(d: Duration) -> Option<Pin<Box<tokio::time::Sleep>>> {
    (!d.is_zero()).then(|| Box::pin(tokio::time::sleep(d)))
}

impl<S: AsyncRead + Unpin> AsyncRead for Budgeted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        ready!(poll_pause(&mut this.read_pause, cx));
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        let n = buf.filled().len() - before;
        if n > 0 {
            this.read_pause = pause_for(this.account(n));
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Budgeted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        ready!(poll_pause(&mut this.write_pause, cx));
        let n = ready!(Pin::new(&mut this.inner).poll_write(cx, buf))?;
        if n > 0 {
            this.write_pause = pause_for(this.account(n));
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
