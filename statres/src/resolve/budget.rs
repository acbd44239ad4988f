//! Work budgets: how a resolution yields so that one huge room never stalls
//! the other rooms of its shard.
//!
//! The algorithm is written as an `async fn` that charges a [`Meter`] for
//! every unit of work (one event or state key touched, one auth check) and
//! suspends when the meter runs dry. [`super::Resolution::step`] polls it
//! with a fresh budget; no runtime is involved.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Units of work processed between two budget checks inside long loops.
pub(crate) const CHUNK: usize = 256;

/// The work left in the current step.
#[derive(Default)]
pub(crate) struct Meter {
    remaining: Cell<u64>,
    spent: Cell<u64>,
}

impl Meter {
    pub fn refill(&self, budget: u64) {
        self.remaining.set(budget);
    }

    /// Total units charged so far.
    pub fn spent(&self) -> u64 {
        self.spent.get()
    }

    /// Charges `units`; suspends once if they exhaust the step's budget.
    pub async fn spend(&self, units: usize) {
        let units = units as u64;
        self.spent.set(self.spent.get() + units);
        let remaining = self.remaining.get();
        if units < remaining {
            self.remaining.set(remaining - units);
        } else {
            self.remaining.set(0);
            YieldOnce(false).await;
        }
    }
}

/// Pending once, then ready.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}
