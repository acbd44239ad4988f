//! The thin runtime interface every shard runs on: build, spawn, timers, yield.
//!
//! Everything above `net` reaches monoio only through this module (and the
//! re-exported TCP types), so that swapping the runtime touches one file.
//!
//! The runtime is always built on `IoUringDriver` explicitly. monoio's
//! `FusionDriver` and `#[monoio::main]` silently fall back to epoll when
//! io_uring setup fails, which would hide a 2× performance regression behind
//! a working server; we prefer to fail at start-up with a clear error.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

pub use monoio::net::{TcpListener, TcpStream};
pub use monoio::spawn;
pub use monoio::time::{sleep, timeout, Duration, Instant};

/// The runtime type of a shard: io_uring with the timer wheel.
pub type ShardRuntime = monoio::Runtime<monoio::time::TimeDriver<monoio::IoUringDriver>>;

/// Submission queue size per shard. Large enough that a burst of accepts,
/// reads and writes from a few thousand connections never waits for SQ space.
const RING_ENTRIES: u32 = 4096;

/// Builds the io_uring runtime for the calling thread.
///
/// `IORING_SETUP_COOP_TASKRUN` lets the kernel defer completion task work to
/// our next `io_uring_enter` instead of interrupting the thread with an IPI;
/// on this 2-core VM that is worth about +25% requests/s on small requests.
pub fn build_shard_runtime() -> io::Result<ShardRuntime> {
    let mut uring = io_uring::IoUring::builder();
    uring.setup_coop_taskrun();
    monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
        .uring_builder(uring)
        .with_entries(RING_ENTRIES)
        .enable_timer()
        .build()
}

/// A TCP stream with tokio's I/O traits, for client libraries written for
/// tokio (the PostgreSQL driver). It still runs on this shard's io_uring.
pub type CompatTcpStream = monoio_compat::TcpStreamCompat;

/// Connects a [`CompatTcpStream`].
pub async fn connect_compat(addr: std::net::SocketAddr) -> io::Result<CompatTcpStream> {
    let stream = monoio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(monoio_compat::TcpStreamCompat::new(stream))
}

/// A Unix socket stream with tokio's I/O traits, like [`CompatTcpStream`].
pub type CompatUnixStream = monoio_compat::UnixStreamCompat;

/// Connects a [`CompatUnixStream`] to the socket at `path`.
pub async fn connect_compat_unix(path: &std::path::Path) -> io::Result<CompatUnixStream> {
    Ok(monoio_compat::UnixStreamCompat::new(monoio::net::UnixStream::connect(path).await?))
}

/// Yields to the other tasks of this shard once: every task that is
/// runnable now runs before the caller continues, and the reactor gets to
/// reap I/O completions in between.
///
/// Used to let a batch accumulate (see `mesh`) and by long computations that
/// run on a work budget so they never stall the reactor.
pub fn yield_now() -> YieldNow {
    YieldNow { yielded: false }
}

/// Future of [`yield_now`].
#[must_use = "futures do nothing unless awaited"]
pub struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        // monoio puts a task that wakes itself while being polled back at the
        // *front* of the run queue, so waking ourselves here would run us
        // again at once and starve every other task (and the reactor: a
        // looping task kept a shard's accept loop from ever running). A new
        // task goes to the back of the queue; let it wake us.
        let waker = cx.waker().clone();
        spawn(async move { waker.wake() });
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::rc::Rc;

    use super::*;

    #[test]
    fn yield_now_lets_other_tasks_run() {
        build_shard_runtime().unwrap().block_on(async {
            let other_ran = Rc::new(Cell::new(0u32));
            let counter = other_ran.clone();
            let other = spawn(async move {
                for _ in 0..100 {
                    counter.set(counter.get() + 1);
                    yield_now().await;
                }
            });
            // A looping task that yields between steps must see the other
            // task make progress at every step, not only when it is done.
            for step in 1..=50 {
                yield_now().await;
                assert!(other_ran.get() >= step, "other task starved at step {step}");
            }
            other.await;
        });
    }

    #[test]
    fn yielding_loop_does_not_starve_io() {
        build_shard_runtime().unwrap().block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let accepted = Rc::new(Cell::new(false));
            let flag = accepted.clone();
            spawn(async move {
                if listener.accept().await.is_ok() {
                    flag.set(true);
                }
            });
            let client = std::thread::spawn(move || std::net::TcpStream::connect(addr).map(drop));
            // Busy for up to 5 s, yielding every 100 µs of work.
            let started = Instant::now();
            while !accepted.get() && started.elapsed() < Duration::from_secs(5) {
                let step = std::time::Instant::now();
                while step.elapsed() < Duration::from_micros(100) {
                    std::hint::spin_loop();
                }
                yield_now().await;
            }
            client.join().unwrap().unwrap();
            assert!(accepted.get(), "accept never completed while another task was busy");
            assert!(started.elapsed() < Duration::from_secs(1), "accept took {:?}", started.elapsed());
        });
    }
}
