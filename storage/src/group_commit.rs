//! What the two backends' group commit share: a shard hands its writes to
//! its committer (a thread for fjall, a task with its own connection for
//! PostgreSQL) as submissions; the committer takes every submission waiting
//! at that moment, commits them together, and answers each.

use futures_channel::oneshot;

use crate::error::{Result, StorageError};
use crate::ops::Op;
use crate::records::OneTimeKeyRecord;

/// Most submissions committed together; bounds a group's memory and the
/// latency of its first member.
const MAX_GROUP: usize = 4096;

/// One `Store::write` (or key claim) on its way to the committer.
pub(crate) struct Submission {
    pub(crate) ops: Vec<Op>,
    /// Answered with the one-time keys its claims took.
    done: oneshot::Sender<Result<Vec<OneTimeKeyRecord>>>,
}

/// Hands `ops` to the committer behind `queue` and waits until they are
/// committed; returns the one-time keys its claims took.
pub(crate) async fn submit(queue: &flume::Sender<Submission>, ops: Vec<Op>) -> Result<Vec<OneTimeKeyRecord>> {
    let (done, answer) = oneshot::channel();
    queue.send(Submission { ops, done }).map_err(|_| StorageError::Closed)?;
    answer.await.map_err(|_| StorageError::Closed)?
}

/// The group starting with `first`: it and every submission already waiting.
pub(crate) fn gather(first: Submission, queue: &flume::Receiver<Submission>) -> Vec<Submission> {
    let mut group = vec![first];
    group.extend(queue.try_iter().take(MAX_GROUP - 1));
    group
}

/// Answers every submission of a committed group: each with its claimed
/// keys, or all with the group's error.
pub(crate) fn answer(group: Vec<Submission>, result: Result<Vec<Vec<OneTimeKeyRecord>>>) {
    // A dropped receiver means the request went away; the write happened
    // (or failed) all the same.
    match result {
        Ok(claimed) => {
            for (submission, claimed) in group.into_iter().zip(claimed) {
                let _ = submission.done.send(Ok(claimed));
            }
        }
        Err(e) => {
            tracing::error!(error = %e, writes = group.len(), "group commit failed");
            for submission in group {
                let _ = submission.done.send(Err(e.clone()));
            }
        }
    }
}
