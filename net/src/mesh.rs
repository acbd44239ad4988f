//! The cross-core mesh: bounded, batched message passing between shards.
//!
//! Shards never share data; they ship closures to each other, which run on
//! the receiving shard with access to its state (the Seastar `submit_to`
//! model). A cross-core wake costs ~25 µs one way on this VM, far more than
//! the work most messages carry, so nothing is sent per item: jobs for a
//! destination collect in a shard-local outbox until the sending shard has
//! run every task that was ready, then leave as one batch. Replies to
//! [`Shard::ask`] travel the same way, so a burst of N asks costs two wakes,
//! not 2N.
//!
//! Each shard has one bounded inbox (a flume channel of batches). A full
//! inbox makes the sender's flush wait, and an outbox above its high-water
//! mark makes `ask` wait, so a slow shard pushes back on the shards feeding
//! it instead of growing queues without limit.
//!
//! Hot path: no locks besides the inbox channel's own (shared by the sending
//! and the receiving shard only), no blocking calls.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::rc::Rc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Poll, Waker};

use futures_channel::oneshot;

use crate::runtime::{spawn, yield_now};
use crate::shard::Shard;

/// A closure shipped to another shard, run there with that shard's context.
pub type Job<S> = Box<dyn FnOnce(&Rc<Shard<S>>) + Send>;

/// Most jobs one batch carries; a larger outbox leaves as several batches so
/// the receiver interleaves its own work between them.
const MAX_BATCH: usize = 1024;

/// Outbox length at which [`Shard::ask`] waits for the flusher to catch up.
const OUTBOX_HIGH_WATER: usize = 8 * MAX_BATCH;

struct Batch<S> {
    jobs: Vec<Job<S>>,
}

/// The process-wide handle to the mesh. Cheap to clone and usable from any
/// thread (signal handlers and helper threads use [`Mesh::inject`]).
pub struct Mesh<S> {
    inner: Arc<MeshInner<S>>,
}

impl<S> Clone for Mesh<S> {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone() }
    }
}

struct MeshInner<S> {
    senders: Box<[flume::Sender<Batch<S>>]>,
    stats: MeshStats,
}

/// One shard's receiving end, handed to its thread at start-up.
pub struct Inbox<S> {
    rx: flume::Receiver<Batch<S>>,
    mesh: Mesh<S>,
}

/// Counters of mesh traffic, indexed `[from * shards + to]`. Each counter has
/// a single writer (the sending or the receiving shard), so relaxed atomics
/// suffice and no cache line is fought over on the hot path except by the
/// two shards of a pair.
pub struct MeshStats {
    shards: usize,
    batches: Box<[AtomicU64]>,
    jobs: Box<[AtomicU64]>,
    /// Jobs sent to each shard and not yet taken off its inbox.
    queued: Box<[AtomicI64]>,
}

/// A point-in-time copy of [`MeshStats`], for `/metrics`.
#[derive(Clone, Debug, Default)]
pub struct MeshStatsSnapshot {
    /// Number of shards.
    pub shards: usize,
    /// Batches sent, `[from * shards + to]`.
    pub batches: Vec<u64>,
    /// Jobs sent, `[from * shards + to]`.
    pub jobs: Vec<u64>,
    /// Jobs waiting in each shard's inbox.
    pub queued: Vec<i64>,
}

impl<S: 'static> Mesh<S> {
    /// Creates the mesh for `shards` shards, each inbox holding up to
    /// `inbox_batches` batches. Returns the handle and one inbox per shard.
    pub fn new(shards: usize, inbox_batches: usize) -> (Self, Vec<Inbox<S>>) {
        let (senders, receivers): (Vec<_>, Vec<_>) = (0..shards).map(|_| flume::bounded(inbox_batches)).unzip();
        let counters = |n| (0..n).map(|_| AtomicU64::new(0)).collect();
        let mesh = Self {
            inner: Arc::new(MeshInner {
                senders: senders.into(),
                stats: MeshStats {
                    shards,
                    batches: counters(shards * shards),
                    jobs: counters(shards * shards),
                    queued: (0..shards).map(|_| AtomicI64::new(0)).collect(),
                },
            }),
        };
        let inboxes = receivers.into_iter().map(|rx| Inbox { rx, mesh: mesh.clone() }).collect();
        (mesh, inboxes)
    }

    /// Number of shards.
    pub fn shard_count(&self) -> usize {
        self.inner.senders.len()
    }

    /// Sends one job from outside any shard (a signal handler, a helper
    /// thread). Blocks while the inbox is full; never call it on a shard.
    pub fn inject(&self, to: usize, job: impl FnOnce(&Rc<Shard<S>>) + Send + 'static) {
        self.inner.stats.queued[to].fetch_add(1, Ordering::Relaxed);
        // A send fails only when the shard has exited, and then there is
        // nobody left to run the job.
        let _ = self.inner.senders[to].send(Batch { jobs: vec![Box::new(job)] });
    }

    /// A copy of the traffic counters.
    pub fn stats(&self) -> MeshStatsSnapshot {
        let s = &self.inner.stats;
        let load = |v: &[AtomicU64]| v.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        MeshStatsSnapshot {
            shards: s.shards,
            batches: load(&s.batches),
            jobs: load(&s.jobs),
            queued: s.queued.iter().map(|c| c.load(Ordering::Relaxed)).collect(),
        }
    }
}

/// A shard's sending side: one outbox per destination, flushed in batches.
pub(crate) struct MeshPort<S> {
    mesh: Mesh<S>,
    outboxes: Box<[RefCell<Vec<Job<S>>>]>,
    flushing: Box<[Cell<bool>]>,
    /// Tasks waiting in `ask` for an outbox to drain below the high-water mark.
    drained: RefCell<Vec<Waker>>,
}

impl<S: 'static> MeshPort<S> {
    pub(crate) fn new(mesh: Mesh<S>) -> Self {
        let n = mesh.shard_count();
        Self {
            mesh,
            outboxes: (0..n).map(|_| RefCell::new(Vec::new())).collect(),
            flushing: (0..n).map(|_| Cell::new(false)).collect(),
            drained: RefCell::new(Vec::new()),
        }
    }

    pub(crate) fn mesh(&self) -> &Mesh<S> {
        &self.mesh
    }
}

impl<S: 'static> Shard<S> {
    /// Starts this shard's side of the mesh: the task that runs jobs arriving
    /// in `inbox`. Returns the shard context for the application to use.
    pub fn start(id: usize, inbox: Inbox<S>, state: S) -> Rc<Self> {
        let shard = Shard::new(id, state, inbox.mesh.clone());
        spawn(run_inbox(shard.clone(), inbox.rx));
        shard
    }

    /// Queues `job` to run on shard `to` (possibly this one) with that shard's
    /// context. Returns at once; the job leaves with the next batch.
    pub fn tell(self: &Rc<Self>, to: usize, job: impl FnOnce(&Rc<Shard<S>>) + Send + 'static) {
        self.enqueue(to, Box::new(job));
    }

    /// Runs `job` on every shard, this one included.
    pub fn broadcast(self: &Rc<Self>, job: impl Fn(&Rc<Shard<S>>) + Send + Sync + Clone + 'static) {
        for to in 0..self.shard_count() {
            let job = job.clone();
            self.enqueue(to, Box::new(move |shard| job(shard)));
        }
    }

    /// Runs `f` on shard `to` and returns its answer. The answer comes back
    /// batched with the other traffic from that shard.
    pub async fn ask<R: Send + 'static>(
        self: &Rc<Self>,
        to: usize,
        f: impl FnOnce(&Rc<Shard<S>>) -> R + Send + 'static,
    ) -> Result<R, ShardGone> {
        self.ask_async(to, move |shard| std::future::ready(f(shard))).await
    }

    /// Like [`ask`](Self::ask) for work that is itself asynchronous on the
    /// destination (storage, another ask): `f` builds a future there, which
    /// runs as a task of that shard.
    pub async fn ask_async<R, Fut>(
        self: &Rc<Self>,
        to: usize,
        f: impl FnOnce(&Rc<Shard<S>>) -> Fut + Send + 'static,
    ) -> Result<R, ShardGone>
    where
        R: Send + 'static,
        Fut: std::future::Future<Output = R> + 'static,
    {
        self.wait_below_high_water(to).await;
        let (tx, rx) = oneshot::channel();
        let from = self.id();
        self.enqueue(
            to,
            Box::new(move |shard: &Rc<Shard<S>>| {
                let fut = f(shard);
                let shard = shard.clone();
                spawn(async move {
                    let answer = fut.await;
                    // The asker may have given up (its connection closed);
                    // then nobody is waiting and the answer is dropped.
                    shard.tell(from, move |_| drop(tx.send(answer)));
                });
            }),
        );
        rx.await.map_err(|_| ShardGone)
    }

    fn enqueue(self: &Rc<Self>, to: usize, job: Job<S>) {
        self.port.outboxes[to].borrow_mut().push(job);
        if !self.port.flushing[to].replace(true) {
            spawn(flush(self.clone(), to));
        }
    }

    async fn wait_below_high_water(&self, to: usize) {
        poll_fn(|cx| {
            if self.port.outboxes[to].borrow().len() < OUTBOX_HIGH_WATER {
                Poll::Ready(())
            } else {
                self.port.drained.borrow_mut().push(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }
}

/// Error of an `ask` whose destination shard stopped before answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the destination shard has stopped")]
pub struct ShardGone;

/// Sends the outbox for `to` as batches until it stays empty.
async fn flush<S: 'static>(shard: Rc<Shard<S>>, to: usize) {
    let port = &shard.port;
    let stats = &port.mesh.inner.stats;
    let pair = shard.id() * stats.shards + to;
    loop {
        // Let every task that is already runnable add to the batch first.
        yield_now().await;
        let jobs = {
            let mut outbox = port.outboxes[to].borrow_mut();
            if outbox.is_empty() {
                port.flushing[to].set(false);
                return;
            }
            if outbox.len() <= MAX_BATCH {
                std::mem::take(&mut *outbox)
            } else {
                outbox.drain(..MAX_BATCH).collect()
            }
        };
        for waker in port.drained.borrow_mut().drain(..) {
            waker.wake();
        }
        stats.batches[pair].fetch_add(1, Ordering::Relaxed);
        stats.jobs[pair].fetch_add(jobs.len() as u64, Ordering::Relaxed);
        stats.queued[to].fetch_add(jobs.len() as i64, Ordering::Relaxed);
        if to == shard.id() {
            // Local jobs skip the channel: same batching, no wake.
            run_batch(&shard, jobs);
        } else if port.mesh.inner.senders[to].send_async(Batch { jobs }).await.is_err() {
            // The destination has exited (shutdown); its jobs are moot.
            port.outboxes[to].borrow_mut().clear();
            port.flushing[to].set(false);
            return;
        }
    }
}

fn run_batch<S: 'static>(shard: &Rc<Shard<S>>, jobs: Vec<Job<S>>) {
    shard.port.mesh.inner.stats.queued[shard.id()].fetch_sub(jobs.len() as i64, Ordering::Relaxed);
    for job in jobs {
        job(shard);
    }
}

async fn run_inbox<S: 'static>(shard: Rc<Shard<S>>, rx: flume::Receiver<Batch<S>>) {
    while let Ok(batch) = rx.recv_async().await {
        run_batch(&shard, batch.jobs);
        // Drain what else has arrived without another wake-up.
        while let Ok(batch) = rx.try_recv() {
            run_batch(&shard, batch.jobs);
        }
    }
}
