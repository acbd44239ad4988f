//! Shard-local wait lists: tasks waiting for a condition that another task
//! makes true and announces with [`WaitList::wake_all`].
//!
//! Each waiting future holds one slot, replaced (not added to) when it is
//! polled again and removed when it completes or is dropped. A plain
//! `Vec<Waker>` pushed on every poll grows with every wait that ends some
//! other way (a time-out, a closed connection), and each stale waker keeps
//! its whole task allocated: that leaked about 28 KiB per message under a
//! messaging load (docs/benchmarks.md).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// Tasks waiting on one condition.
#[derive(Default)]
pub struct WaitList {
    next: Cell<u64>,
    wakers: RefCell<HashMap<u64, Waker>>,
}

impl WaitList {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Wakes every waiting task; each then checks its condition again.
    pub fn wake_all(&self) {
        let wakers: Vec<Waker> = self.wakers.borrow_mut().drain().map(|(_, w)| w).collect();
        for waker in wakers {
            waker.wake();
        }
    }

    /// Completes once `ready()` is true, checked now and after every
    /// `wake_all`.
    pub fn wait_until<F: Fn() -> bool>(&self, ready: F) -> Wait<'_, F> {
        Wait { list: self, slot: None, ready }
    }

    /// Tasks waiting now.
    pub fn len(&self) -> usize {
        self.wakers.borrow().len()
    }

    /// Whether no task waits.
    pub fn is_empty(&self) -> bool {
        self.wakers.borrow().is_empty()
    }
}

/// A wait on a [`WaitList`]; see [`WaitList::wait_until`].
pub struct Wait<'a, F> {
    list: &'a WaitList,
    slot: Option<u64>,
    ready: F,
}

impl<F: Fn() -> bool> Future for Wait<'_, F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // No field is structurally pinned.
        let this = unsafe { self.get_unchecked_mut() };
        if (this.ready)() {
            if let Some(slot) = this.slot.take() {
                this.list.wakers.borrow_mut().remove(&slot);
            }
            return Poll::Ready(());
        }
        let slot = *this.slot.get_or_insert_with(|| {
            let id = this.list.next.get();
            this.list.next.set(id + 1);
            id
        });
        this.list.wakers.borrow_mut().insert(slot, cx.waker().clone());
        Poll::Pending
    }
}

impl<F> Drop for Wait<'_, F> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            self.list.wakers.borrow_mut().remove(&slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::rc::Rc;

    use super::*;

    #[test]
    fn abandoned_waits_leave_no_waker_behind() {
        let mut rt = crate::runtime::build_shard_runtime().unwrap();
        rt.block_on(async {
            let list = Rc::new(WaitList::new());
            for _ in 0..100 {
                // Each wait times out (as a long-poll does) instead of being woken.
                let wait = list.wait_until(|| false);
                assert!(crate::runtime::timeout(std::time::Duration::from_millis(1), wait).await.is_err());
            }
            assert!(list.is_empty(), "{} stale wakers", list.len());
        });
    }

    #[test]
    fn repeated_polls_hold_one_slot_and_wake_all_releases_the_waiter() {
        let mut rt = crate::runtime::build_shard_runtime().unwrap();
        rt.block_on(async {
            let list = Rc::new(WaitList::new());
            let flag = Rc::new(Cell::new(false));
            let (l, f) = (list.clone(), flag.clone());
            let waiter = crate::runtime::spawn(async move { l.wait_until(|| f.get()).await });
            for _ in 0..5 {
                crate::runtime::yield_now().await;
                list.wake_all();
            }
            crate::runtime::yield_now().await;
            assert!(list.len() <= 1);
            flag.set(true);
            list.wake_all();
            waiter.await;
            assert!(list.is_empty());
        });
    }
}
