//! Graceful shutdown: a shard-local latch, and the signal thread that trips
//! it on every shard.
//!
//! On SIGTERM or SIGINT every shard stops accepting, lets in-flight requests
//! finish, closes idle keep-alive connections and returns from its main
//! future; the process then flushes and exits 0. A second signal exits at
//! once, for operators who do not want to wait.

use std::cell::Cell;
use std::rc::Rc;
use std::{io, thread};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::wait_list::WaitList;

/// A one-way latch: once tripped, every current and future `wait` completes.
#[derive(Default)]
pub struct Shutdown {
    tripped: Cell<bool>,
    waiters: WaitList,
}

impl Shutdown {
    /// A new, untripped latch.
    pub fn new() -> Rc<Self> {
        Rc::new(Self::default())
    }

    /// Trips the latch and wakes every waiter.
    pub fn trigger(&self) {
        if !self.tripped.replace(true) {
            self.waiters.wake_all();
        }
    }

    /// Whether shutdown has begun.
    pub fn is_triggered(&self) -> bool {
        self.tripped.get()
    }

    /// Completes once shutdown has begun.
    pub async fn wait(&self) {
        self.waiters.wait_until(|| self.tripped.get()).await
    }
}

/// Starts the thread that turns SIGTERM/SIGINT into `on_signal()` (once) and
/// a second signal into an immediate exit with status 130.
pub fn on_termination_signal(on_signal: impl FnOnce() + Send + 'static) -> io::Result<()> {
    let mut signals = Signals::new([SIGTERM, SIGINT])?;
    thread::Builder::new().name("signals".into()).spawn(move || {
        let mut on_signal = Some(on_signal);
        for signal in signals.forever() {
            match on_signal.take() {
                Some(f) => {
                    tracing::info!(signal, "shutting down: finishing in-flight requests");
                    f();
                }
                None => {
                    tracing::warn!(signal, "second signal: exiting without waiting");
                    std::process::exit(130);
                }
            }
        }
    })?;
    Ok(())
}
