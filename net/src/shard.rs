//! Shards: one pinned OS thread per core, each with its own io_uring runtime.
//!
//! A [`Shard`] is what code on that thread sees: its index, the application's
//! shard-local state, and its port on the cross-core [`mesh`](crate::mesh).
//! Nothing in a shard is `Send`; other shards reach it only through the mesh.

use std::future::Future;
use std::io;
use std::rc::Rc;
use std::thread;

use crate::mesh::{Inbox, Mesh, MeshPort};
use crate::runtime::build_shard_runtime;

/// The per-thread context of one shard.
pub struct Shard<S> {
    id: usize,
    /// The application's shard-local state.
    pub state: S,
    pub(crate) port: MeshPort<S>,
}

impl<S: 'static> Shard<S> {
    pub(crate) fn new(id: usize, state: S, mesh: Mesh<S>) -> Rc<Self> {
        Rc::new(Self { id, state, port: MeshPort::new(mesh) })
    }

    /// This shard's index, `0..shard_count`.
    pub fn id(&self) -> usize {
        self.id
    }

    /// How many shards the process runs.
    pub fn shard_count(&self) -> usize {
        self.port.mesh().shard_count()
    }

    /// The process-wide mesh handle (cloneable, usable from any thread).
    pub fn mesh(&self) -> &Mesh<S> {
        self.port.mesh()
    }
}

/// What each shard thread needs to start: its index, mesh inbox and a
/// factory for its state.
pub struct ShardSpec<S> {
    /// Shard index.
    pub id: usize,
    /// The CPU to pin to, if pinning is on.
    pub cpu: Option<usize>,
    /// This shard's end of the mesh.
    pub inbox: Inbox<S>,
}

/// The CPUs this process may run on, in ascending order (from the affinity
/// mask, so `taskset` and cgroup cpusets are respected).
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: `set` is a plain bitmask that sched_getaffinity fills in; the
    // size we pass is its real size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return (0..thread::available_parallelism().map_or(1, |n| n.get())).collect();
        }
        (0..libc::CPU_SETSIZE as usize).filter(|&cpu| libc::CPU_ISSET(cpu, &set)).collect()
    }
}

/// Nice value of the process's background threads: storage flushes and
/// compactions, blocking helpers. They share the shards' cores; at the
/// default priority a compaction preempted a reactor for milliseconds and
/// set the tail of message latency (p99 at 1,000 messages/s: 6.8–11.5 ms
/// with fjall's worker at nice 0, 3.0–4.5 ms at a lower priority;
/// docs/benchmarks.md). At 10 they still get about a tenth of a busy core,
/// so flushes keep up with a flat-out load.
pub const BACKGROUND_NICE: i32 = 10;

/// Lowers the calling thread to [`BACKGROUND_NICE`]; threads it starts
/// inherit the value. (On Linux the nice value belongs to the thread.)
pub fn lower_current_thread_priority() {
    // SAFETY: setpriority takes plain integers; on failure (a restricted
    // container) the thread keeps its priority.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, BACKGROUND_NICE);
    }
}

/// Runs `f` on a short-lived thread at background priority and returns its
/// result: for opening a library that starts its worker threads when it is
/// opened (fjall), so they inherit the lower priority.
pub fn start_in_background<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    thread::scope(|scope| {
        scope
            .spawn(|| {
                lower_current_thread_priority();
                f()
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

fn pin_current_thread(cpu: usize) -> io::Result<()> {
    // SAFETY: as above; the set holds exactly one CPU.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Starts `count` shard threads. Thread `i` is pinned to the `i`-th allowed
/// CPU (when `pin` is set and there are enough), builds its io_uring runtime
/// and runs `main(spec)` to completion.
///
/// Returns the join handles; a thread's result is the error that stopped it,
/// if any (for example io_uring being unavailable).
pub fn launch<S, F, Fut>(
    name: &str,
    pin: bool,
    inboxes: Vec<Inbox<S>>,
    main: F,
) -> io::Result<Vec<thread::JoinHandle<io::Result<()>>>>
where
    S: 'static,
    F: Fn(ShardSpec<S>) -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = io::Result<()>> + 'static,
{
    let cpus = allowed_cpus();
    let pin = pin && inboxes.len() <= cpus.len();
    let mut handles = Vec::with_capacity(inboxes.len());
    for (id, inbox) in inboxes.into_iter().enumerate() {
        let main = main.clone();
        let cpu = pin.then(|| cpus[id]);
        let handle = thread::Builder::new().name(format!("{name}-{id}")).spawn(move || -> io::Result<()> {
            if let Some(cpu) = cpu {
                pin_current_thread(cpu)?;
            }
            let mut runtime = build_shard_runtime()
                .map_err(|e| io::Error::new(e.kind(), format!("shard {id}: cannot set up io_uring: {e}")))?;
            runtime.block_on(main(ShardSpec { id, cpu, inbox }))
        })?;
        handles.push(handle);
    }
    Ok(handles)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nice_of_current_thread() -> i32 {
        // SAFETY: getpriority takes plain integers.
        unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) }
    }

    #[test]
    fn threads_started_in_background_do_not_compete_with_reactors() {
        let before = nice_of_current_thread();
        let (opener, worker) = start_in_background(|| {
            let worker = thread::spawn(nice_of_current_thread).join().unwrap();
            (nice_of_current_thread(), worker)
        });
        // A runner already below the background priority stays there.
        let expected = before.max(BACKGROUND_NICE);
        assert_eq!((opener, worker), (expected, expected));
        assert_eq!(nice_of_current_thread(), before, "the caller keeps its priority");
    }
}
