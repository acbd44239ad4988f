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

use super::Inner;
use crate::error::{Result, StorageError};
use crate::group_commit::{self, Submission};
use crate::ops::Op;
use crate::records::OneTimeKeyRecord;

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
        group_commit::submit(self.tx.as_ref().ok_or(StorageError::Closed)?, ops).await
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
        let group = group_commit::gather(first, rx);
        let result = commit(inner, &group);
        group_commit::answer(group, result);
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
    inner.bound_write_buffer()?;
    Ok(claimed)
}
