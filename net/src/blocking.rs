//! Helper threads for work that must not run on a shard's reactor: CPU-heavy
//! calls (password hashing takes tens of milliseconds by design) and
//! blocking system calls. A shard awaits the answer; its reactor keeps
//! serving other connections meanwhile.
//!
//! One small pool per process, started on first use, sized to the allowed
//! CPUs: the work is CPU-bound, so more threads than cores would only queue
//! inside the kernel instead of here. The threads run at background
//! priority ([`crate::shard::BACKGROUND_NICE`]): a password hash must not
//! preempt the reactors it shares cores with.

use std::future::Future;
use std::sync::OnceLock;

type Job = Box<dyn FnOnce() + Send>;

fn pool() -> &'static flume::Sender<Job> {
    static POOL: OnceLock<flume::Sender<Job>> = OnceLock::new();
    POOL.get_or_init(|| {
        let (tx, rx) = flume::unbounded::<Job>();
        let threads = crate::shard::allowed_cpus().len().max(1);
        for i in 0..threads {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("blocking-{i}"))
                .spawn(move || {
                    crate::shard::lower_current_thread_priority();
                    while let Ok(job) = rx.recv() {
                        job();
                    }
                })
                .expect("cannot start a blocking helper thread");
        }
        tx
    })
}

/// Runs `f` on a helper thread and resolves to its result. A panic in `f`
/// is re-raised in the awaiting task (where the HTTP layer turns it into a
/// 500), not lost with the helper thread.
pub fn run<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> impl Future<Output = R> {
    let (tx, rx) = futures_channel::oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = tx.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)));
    });
    // The receiver lives as long as the process: the send cannot fail.
    let _ = pool().send(job);
    async move {
        match rx.await {
            Ok(Ok(value)) => value,
            Ok(Err(panic)) => std::panic::resume_unwind(panic),
            Err(_) => unreachable!("blocking helper threads never drop a job unanswered"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_off_the_calling_thread_and_returns_the_result() {
        let mut rt = crate::runtime::build_shard_runtime().unwrap();
        let caller = std::thread::current().id();
        let (value, helper) = rt.block_on(run(|| (6 * 7, std::thread::current().id())));
        assert_eq!(value, 42);
        assert_ne!(helper, caller);
    }

    #[test]
    #[should_panic(expected = "boom")]
    fn panic_in_the_job_reaches_the_awaiting_task() {
        let mut rt = crate::runtime::build_shard_runtime().unwrap();
        rt.block_on(run(|| panic!("boom")));
    }
}
