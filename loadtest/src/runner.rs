//! Worker threads and what every scenario shares: the run's context, the
//! phases that run on all workers, parallel setup, pacing.
//!
//! The client side must not be the bottleneck, so it is built like the
//! server: one thread per core, each with Tessera's own io_uring runtime
//! (`tessera_net::shard::launch`, which also pins when asked), and nothing
//! shared between threads on the hot path except a few relaxed atomics.
//! Each task keeps its own [`Metrics`]; they are merged when a phase ends.

use std::collections::VecDeque;
use std::future::Future;
use std::io::Write as _;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tessera_net::mesh::Mesh;
use tessera_net::runtime::{sleep, spawn, Duration};

use crate::config::Common;
use crate::http::Conn;
use crate::matrix::ApiError;
use crate::stats::{Metrics, Progress};
use crate::target::Target;

/// What every task of a run can see.
pub struct Ctx {
    /// Where requests go.
    pub target: Target,
    /// The shared options.
    pub common: Common,
    /// This run's id: part of every user name and message marker, so runs
    /// never collide and a receiver ignores earlier runs' messages.
    pub run: u64,
    /// The clock all threads measure from (message markers carry times
    /// relative to it).
    pub epoch: Instant,
    /// Live counters for the progress line, reset at each phase.
    pub progress: Mutex<Arc<Progress>>,
}

impl Ctx {
    /// A context for one run.
    pub fn new(target: Target, common: Common) -> Self {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        // Seconds and pid: unique across runs on one machine, short in names.
        let run = (nanos.as_secs() << 20) ^ u64::from(std::process::id());
        let progress = Mutex::new(Arc::new(Progress::new(common.threads)));
        Self { target, common, run, epoch: Instant::now(), progress }
    }

    /// A new (unconnected) keep-alive connection to the target.
    pub fn conn(&self) -> Conn {
        Conn::new(self.target.addr, &self.target.host_header, Duration::from_secs_f64(self.common.timeout))
    }

    /// Nanoseconds since [`Ctx::epoch`].
    pub fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// The current phase's progress counters.
    pub fn progress(&self) -> Arc<Progress> {
        self.progress.lock().expect("not poisoned").clone()
    }

    /// A unique user name for user `n` of this run.
    pub fn username(&self, n: u64) -> String {
        format!("lt{:x}u{n}", self.run)
    }
}

/// Password of every user the tool creates (loopback test servers only).
pub const PASSWORD: &str = "tessera-loadtest-password";

/// Runs `work(thread)` on every worker thread, printing a progress line a
/// second labelled `label`, and returns each thread's result in order.
pub fn run_workers<T, F, Fut>(ctx: &Arc<Ctx>, label: &str, work: F) -> Result<Vec<T>, String>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = T> + 'static,
{
    let threads = ctx.common.threads;
    let progress = Arc::new(Progress::new(threads));
    *ctx.progress.lock().expect("not poisoned") = progress.clone();
    // The mesh is not used: launch wants one inbox per shard.
    let (_mesh, inboxes) = Mesh::<()>::new(threads, 1);
    let results: Arc<Mutex<Vec<Option<T>>>> = Arc::new(Mutex::new((0..threads).map(|_| None).collect()));
    let slots = results.clone();
    let handles = tessera_net::shard::launch("loadtest", ctx.common.pin, inboxes, move |spec| {
        let work = work.clone();
        let slots = slots.clone();
        async move {
            let out = work(spec.id).await;
            slots.lock().expect("not poisoned")[spec.id] = Some(out);
            Ok(())
        }
    })
    .map_err(|e| format!("cannot start worker threads: {e}"))?;
    let started = Instant::now();
    let mut next_print = 1;
    let mut last_ops = 0;
    while !handles.iter().all(|h| h.is_finished()) {
        std::thread::sleep(Duration::from_millis(20));
        if started.elapsed().as_secs() >= next_print {
            let (ops, errors) = progress.totals();
            eprintln!("[{:>4}s] {label}: {ops} ({}/s), errors {errors}", next_print, ops - last_ops);
            let _ = std::io::stderr().flush();
            last_ops = ops;
            next_print += 1;
        }
    }
    for h in handles {
        match h.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(format!("worker thread failed: {e}")),
            Err(_) => return Err("worker thread panicked".into()),
        }
    }
    let mut results = results.lock().expect("not poisoned");
    Ok(results.iter_mut().map(|r| r.take().expect("every worker stored its result")).collect())
}

/// A future borrowing a task's connection and metrics.
pub type TaskFuture<'a, O> = Pin<Box<dyn Future<Output = Result<O, ApiError>> + 'a>>;

/// Runs `step` over `items` on all worker threads with
/// `common.setup_concurrency` requests in flight in total, each task on its
/// own keep-alive connection. Setup is not measured, but a failure stops
/// the run: numbers from a half-built scenario would mislead.
pub fn parallel<I, O, F>(ctx: &Arc<Ctx>, label: &str, items: Vec<I>, step: F) -> Result<(Vec<O>, Metrics), String>
where
    I: Send + Sync + Clone + 'static,
    O: Send + 'static,
    F: for<'a> Fn(&'a Ctx, &'a mut Conn, &'a mut Metrics, I) -> TaskFuture<'a, O> + Send + Sync + Clone + 'static,
{
    let threads = ctx.common.threads;
    let items = Arc::new(items);
    let total = items.len();
    let failed = Arc::new(AtomicBool::new(false));
    let shared_ctx = ctx.clone();
    let per_thread = run_workers(ctx, label, move |thread| {
        let (ctx, items, step, failed) = (shared_ctx.clone(), items.clone(), step.clone(), failed.clone());
        async move {
            let queue: VecDeque<(usize, I)> =
                (thread..items.len()).step_by(threads).map(|i| (i, items[i].clone())).collect();
            let tasks = ctx.common.setup_concurrency.div_ceil(threads).min(queue.len()).max(1);
            let queue = std::rc::Rc::new(std::cell::RefCell::new(queue));
            let progress = ctx.progress();
            let handles: Vec<_> = (0..tasks)
                .map(|_| {
                    let (ctx, queue, step, failed, progress) =
                        (ctx.clone(), queue.clone(), step.clone(), failed.clone(), progress.clone());
                    spawn(async move {
                        let mut conn = ctx.conn();
                        let mut metrics = Metrics::default();
                        let mut out = Vec::new();
                        while !failed.load(Ordering::Relaxed) {
                            let Some((i, item)) = queue.borrow_mut().pop_front() else { break };
                            match step(&ctx, &mut conn, &mut metrics, item).await {
                                Ok(o) => out.push((i, o)),
                                Err(e) => {
                                    failed.store(true, Ordering::Relaxed);
                                    return (out, metrics, Some(format!("item {i}: {e}")));
                                }
                            }
                            progress.op(thread);
                        }
                        (out, metrics, None)
                    })
                })
                .collect();
            let mut all = (Vec::new(), Metrics::default(), None);
            for h in handles {
                let (out, metrics, err) = h.await;
                all.0.extend(out);
                all.1.merge(metrics);
                all.2 = all.2.or(err);
            }
            all
        }
    })?;
    let mut outputs = Vec::with_capacity(total);
    let mut metrics = Metrics::default();
    for (out, m, err) in per_thread {
        if let Some(err) = err {
            return Err(format!("setup failed while {label}: {err}"));
        }
        outputs.extend(out);
        metrics.merge(m);
    }
    outputs.sort_unstable_by_key(|(i, _)| *i);
    Ok((outputs.into_iter().map(|(_, o)| o).collect(), metrics))
}

/// Sleeps until `at` (returns at once if it has passed).
pub async fn sleep_until(at: Instant) {
    let now = Instant::now();
    if at > now {
        sleep(at - now).await;
    }
}

/// Send times for one of `lanes` tasks sharing a fixed total rate: lane `k`
/// starts `k / rate` after `start` and then sends every `lanes / rate`, so
/// the lanes interleave evenly.
///
/// Latency is then measured from the intended time, not from when the
/// request actually went out: a server that stalls delays the sends behind
/// the stall too, and measuring from the late send would hide exactly that
/// (coordinated omission).
pub struct Pacer {
    first: Instant,
    interval: Duration,
    sent: u32,
}

impl Pacer {
    /// Lane `lane` of `lanes` at `rate` per second in total.
    pub fn new(start: Instant, rate: f64, lane: usize, lanes: usize) -> Self {
        Self {
            first: start + Duration::from_secs_f64(lane as f64 / rate),
            interval: Duration::from_secs_f64(lanes as f64 / rate),
            sent: 0,
        }
    }

    /// The intended time of the next send.
    pub fn next_send(&mut self) -> Instant {
        let at = self.first + self.interval * self.sent;
        self.sent += 1;
        at
    }
}

/// Waits until `done()` is true, checking every 20 ms. Used to abandon a
/// long-poll when the run ends, instead of waiting out its time-out.
pub async fn wait_for(done: impl Fn() -> bool) {
    while !done() {
        sleep(Duration::from_millis(20)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pacer_lanes_interleave_at_the_total_rate() {
        let start = Instant::now();
        let mut lanes: Vec<Pacer> = (0..4).map(|k| Pacer::new(start, 100.0, k, 4)).collect();
        let mut times: Vec<Duration> = Vec::new();
        for _ in 0..3 {
            for lane in &mut lanes {
                times.push(lane.next_send() - start);
            }
        }
        // 100/s in total: one send every 10 ms across the lanes.
        let want: Vec<Duration> = (0..12).map(|i| Duration::from_millis(10 * i)).collect();
        for (got, want) in times.iter().zip(&want) {
            assert!(got.abs_diff(*want) < Duration::from_micros(1), "{times:?}");
        }
    }
}
