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
pub use monoio::time::{sleep, timeout, Duration, Instant};
pub use monoio::{spawn, task::JoinHandle};

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

/// Yields to the other tasks of this shard once.
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
        // Waking ourselves puts this task at the back of the shard's run
        // queue: every task that is already runnable goes first.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
