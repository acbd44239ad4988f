//! Group commit for the embedded backend: one committer thread per shard.
//!
//! A shard never writes to disk itself. `submit` hands the operations to its
//! committer thread and awaits the answer; the thread takes every submission
//! waiting at that moment, applies them as one atomic fjall batch, makes the
//! journal durable with one fsync, and answers them all. While an fsync is
//! in progress new submissions queue up and share the next one, so under
//! load the cost of an fsync is spread over every write that arrived during
//! the previous one. The shard's reactor thread never blocks on the disk.

use std::collections::HashSet;
use std::sync::Arc;
use std::thread;

use futures_channel::oneshot;

use super::Inner;
use crate::error::{Result, StorageError};
use crate::ops::Op;
use crate::records::OneTimeKeyRecord;

/// Most submissions committed together; bounds a batch's memory and the
/// latency of its first member.
const MAX_GROUP: usize = 4096;

struct Submission {
    ops: Vec<Op>,
    /// Answered with the one-time keys its claims took.
    done: oneshot::Sender<Result<Vec<OneTimeKeyRecord>>>,
}

/// The shard's end of its committer thread.
pub(crate) struct Committer {
    tx: Option<flume::Sender<Submission>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Committer {
    pub(crate) fn start(inner: Arc<Inner>, name: String) -> Result<Self> {
        let (tx, rx) = flume::unbounded::<Submission>();
        let thread = thread::Builder::new()
            .name(name)
            .spawn(move || run(&inner, &rx))
            .map_err(|e| StorageError::Backend(format!("cannot start committer thread: {e}")))?;
        Ok(Self { tx: Some(tx), thread: Some(thread) })
    }

    /// Commits `ops`; answers the one-time keys their claims took, in order.
    pub(crate) async fn submit(&self, ops: Vec<Op>) -> Result<Vec<OneTimeKeyRecord>> {
        let (done, answer) = oneshot::channel();
        let tx = self.tx.as_ref().ok_or(StorageError::Closed)?;
        tx.send(Submission { ops, done }).map_err(|_| StorageError::Closed)?;
        answer.await.map_err(|_| StorageError::Closed)?
    }
}

impl Drop for Committer {
    /// Lets the thread commit what is queued, then waits for it.
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(inner: &Inner, rx: &flume::Receiver<Submission>) {
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        group.extend(rx.try_iter().take(MAX_GROUP - 1));
        // A dropped receiver means the request went away; the write
        // happened all the same.
        match commit(inner, &group) {
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
}

/// Commits the group; answers, per submission, the one-time keys its claims
/// took.
fn commit(inner: &Inner, group: &[Submission]) -> Result<Vec<Vec<OneTimeKeyRecord>>> {
    let mut batch = inner.db.batch();
    // Claims read the committed state, where a key taken earlier in this
    // batch is still present: they skip the keys listed here.
    let mut taken = HashSet::new();
    let claimed = group
        .iter()
        .map(|submission| {
            let mut claimed = Vec::new();
            for op in &submission.ops {
                claimed.extend(inner.stage(&mut batch, op, &mut taken)?);
            }
            Ok(claimed)
        })
        .collect::<Result<Vec<_>>>()?;
    batch.commit()?;
    if inner.sync_writes {
        inner.db.persist(fjall::PersistMode::SyncAll)?;
    }
    Ok(claimed)
}
