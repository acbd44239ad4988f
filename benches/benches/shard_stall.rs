//! Does a huge state resolution stall the other rooms on its shard?
//!
//! One shard (pinned to the last CPU, Tessera's runtime and HTTP listener)
//! resolves a Matrix-HQ-sized room over and over: 100,000 members, two forks
//! with 1,000 conflicted events (room v11). Meanwhile a client on the other
//! CPU sends requests, one after another, to an endpoint of that same shard
//! (standing in for any other room's request) and records how long each
//! waited. Modes: no resolution (baseline), resolution in one go, and
//! resolution on a work budget that yields to the shard's other tasks
//! between steps (`tessera_statres::resolve_yielding`).
//!
//! `cargo bench -p tessera-benches --bench shard_stall`

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener as StdListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tessera_net::http::{Limits, Listener, Method, Response, Router, TrustedProxies};
use tessera_net::runtime::{build_shard_runtime, sleep, spawn, yield_now};
use tessera_net::shard::allowed_cpus;
use tessera_net::shutdown::Shutdown;
use tessera_statres::testing::hq_forks;
use tessera_statres::{resolve, resolve_yielding, EventIdx};

/// How long each mode runs.
const RUN: Duration = Duration::from_secs(4);

#[derive(Clone, Copy, Debug)]
enum Mode {
    Idle,
    OneShot,
    Yielding(u64),
}

fn pin(cpu: usize) {
    // SAFETY: a plain CPU bitmask with one bit set, of its real size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Runs one mode; returns (resolutions done, request latencies in µs).
fn run(mode: Mode, shard_cpu: usize, client_cpu: usize) -> (u64, Histogram<u64>) {
    let port = StdListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let (ready_tx, ready_rx) = mpsc::channel();
    let shard = std::thread::spawn(move || {
        pin(shard_cpu);
        let mut runtime = build_shard_runtime().unwrap();
        runtime.block_on(async move {
            let forks = hq_forks("11", 100_000, 1_000);
            let graph = forks[0].graph();
            let sets: Vec<Vec<EventIdx>> = forks.iter().map(|fork| fork.state_indices(&graph)).collect();
            let mut router = Router::new();
            router.ready(Method::Get, "/health", |_| Response::with_status(200, "text/plain", "OK"));
            let shutdown = Shutdown::new();
            let listener =
                Listener::new("bench", router, Limits::default(), TrustedProxies::default(), None, shutdown.clone());
            spawn(listener.serve(Listener::bind(addr).unwrap()));
            ready_tx.send(()).unwrap();
            let end = Instant::now() + RUN;
            let mut done = 0;
            while Instant::now() < end {
                match mode {
                    Mode::Idle => sleep(Duration::from_millis(10)).await,
                    Mode::OneShot => {
                        std::hint::black_box(resolve(&graph, &sets));
                        // Only between whole resolutions does anything else run.
                        yield_now().await;
                    }
                    Mode::Yielding(units) => {
                        std::hint::black_box(resolve_yielding(&graph, &sets, units, yield_now).await);
                    }
                }
                done += 1;
            }
            shutdown.trigger();
            done
        })
    });
    ready_rx.recv().unwrap();
    pin(client_cpu);
    let mut latencies = Histogram::<u64>::new_with_bounds(1, 10_000_000, 3).unwrap();
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_nodelay(true).unwrap();
    let mut buf = [0u8; 4096];
    let started = Instant::now();
    // Stop a little before the shard does, so no request meets shutdown.
    while started.elapsed() < RUN - Duration::from_millis(200) {
        let sent = Instant::now();
        conn.write_all(b"GET /health HTTP/1.1\r\n\r\n").unwrap_or_else(|e| panic!("{mode:?}: sending: {e}"));
        let mut got = Vec::new();
        while !(got.ends_with(b"\r\n\r\nOK")) {
            let n = conn.read(&mut buf).unwrap_or_else(|e| {
                panic!(
                    "{mode:?}: reading a response after {} requests, {:?} in: {e}",
                    latencies.len(),
                    started.elapsed()
                )
            });
            assert!(n > 0, "shard closed the connection");
            got.extend_from_slice(&buf[..n]);
        }
        latencies.record(sent.elapsed().as_micros() as u64).unwrap();
    }
    drop(conn);
    (shard.join().unwrap(), latencies)
}

fn main() {
    // `cargo test` runs benches with --bench too; measure only when asked.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let cpus = allowed_cpus();
    let (shard_cpu, client_cpu) = (*cpus.last().unwrap(), cpus[0]);
    println!("mode                     resolutions  requests   p50 µs   p99 µs  p99.9 µs   max µs");
    for mode in [Mode::Idle, Mode::OneShot, Mode::Yielding(10_000), Mode::Yielding(1_000)] {
        let (done, h) = run(mode, shard_cpu, client_cpu);
        println!(
            "{:<24} {:>11} {:>9} {:>8} {:>8} {:>9} {:>8}",
            format!("{mode:?}"),
            done,
            h.len(),
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.99),
            h.value_at_quantile(0.999),
            h.max()
        );
    }
}
