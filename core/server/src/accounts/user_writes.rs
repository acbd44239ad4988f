//! Read-modify-write of one user's rows (account, devices and tokens, profile,
//! account data), run on the user's shard, one request at a time per user.
//!
//! Only the user's shard writes a user's rows, but a write awaits the store
//! between its read and its write: without a turn per user, two requests of
//! the same user (say a display name and an avatar set at once, or tags
//! added from two devices) could both read the old row and one update
//! would be lost.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::future::Future;

use futures_channel::oneshot;

use crate::error::ApiError;
use crate::state::AppShard;

thread_local! {
    /// Users whose turn is taken on this thread (a shard's thread), with the
    /// requests waiting for it, first come first served.
    static TURNS: RefCell<HashMap<String, VecDeque<oneshot::Sender<()>>>> = RefCell::default();
}

/// The turn of one user: held until dropped.
struct Turn {
    user_id: String,
}

impl Drop for Turn {
    fn drop(&mut self) {
        TURNS.with(|turns| {
            let mut turns = turns.borrow_mut();
            let Some(queue) = turns.get_mut(&self.user_id) else { return };
            while let Some(next) = queue.pop_front() {
                // A waiter that gave up has dropped its receiver: skip it.
                if next.send(()).is_ok() {
                    return;
                }
            }
            turns.remove(&self.user_id);
        });
    }
}

/// A request waiting for its turn. If it is dropped after the turn was
/// handed to it but before it noticed, it passes the turn on.
struct Waiting {
    user_id: String,
    rx: Option<oneshot::Receiver<()>>,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if let Some(mut rx) = self.rx.take() {
            rx.close();
            if let Ok(Some(())) = rx.try_recv() {
                drop(Turn { user_id: std::mem::take(&mut self.user_id) });
            }
        }
    }
}

/// Waits for `user_id`'s turn on this thread.
async fn turn(user_id: &str) -> Turn {
    let rx = TURNS.with(|turns| {
        let mut turns = turns.borrow_mut();
        match turns.get_mut(user_id) {
            Some(queue) => {
                let (tx, rx) = oneshot::channel();
                queue.push_back(tx);
                Some(rx)
            }
            None => {
                turns.insert(user_id.to_owned(), VecDeque::new());
                None
            }
        }
    });
    if let Some(rx) = rx {
        let mut waiting = Waiting { user_id: user_id.to_owned(), rx: Some(rx) };
        // A sender is only dropped unsent when its holder's thread is gone.
        let _ = waiting.rx.as_mut().expect("set above").await;
        waiting.rx = None;
    }
    Turn { user_id: user_id.to_owned() }
}

/// Runs `f` on `user_id`'s shard, in the user's turn.
pub async fn on_user_shard<R, F, Fut>(shard: &AppShard, user_id: &str, f: F) -> Result<R, ApiError>
where
    R: Send + 'static,
    F: FnOnce(AppShard) -> Fut + Send + 'static,
    Fut: Future<Output = Result<R, ApiError>> + 'static,
{
    let owner = shard.state.placement.shard(user_id);
    let user_id = user_id.to_owned();
    shard
        .ask_async(owner, move |shard| {
            let shard = shard.clone();
            async move {
                let _turn = turn(&user_id).await;
                f(shard).await
            }
        })
        .await?
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;

    use super::*;

    #[test]
    fn turns_of_one_user_run_one_at_a_time_in_arrival_order() {
        let mut rt = tessera_net::runtime::build_shard_runtime().unwrap();
        rt.block_on(async {
            let log = Rc::new(RefCell::new(Vec::new()));
            let first = turn("@a:x").await;
            let waiter = |n: u32| {
                let log = log.clone();
                async move {
                    let _turn = turn("@a:x").await;
                    log.borrow_mut().push(n);
                }
            };
            let (mut second, mut third) = (Box::pin(waiter(2)), Box::pin(waiter(3)));
            let other = turn("@b:x").await; // another user is not held up
            let waker = futures_util::task::noop_waker();
            let mut cx = std::task::Context::from_waker(&waker);
            assert!(second.as_mut().poll(&mut cx).is_pending());
            assert!(third.as_mut().poll(&mut cx).is_pending());
            drop(first);
            assert!(second.as_mut().poll(&mut cx).is_ready());
            assert!(third.as_mut().poll(&mut cx).is_ready());
            assert_eq!(*log.borrow(), [2, 3]);
            drop(other);
            assert!(TURNS.with(|t| t.borrow().is_empty()));
        });
    }

    #[test]
    fn a_waiter_dropped_after_being_handed_the_turn_passes_it_on() {
        let mut rt = tessera_net::runtime::build_shard_runtime().unwrap();
        rt.block_on(async {
            let first = turn("@c:x").await;
            let waker = futures_util::task::noop_waker();
            let mut cx = std::task::Context::from_waker(&waker);
            let mut gone = Box::pin(turn("@c:x"));
            assert!(gone.as_mut().poll(&mut cx).is_pending());
            drop(first);
            drop(gone);
            assert!(TURNS.with(|t| t.borrow().get("@c:x").is_none()));
            drop(turn("@c:x").await);
        });
    }
}
