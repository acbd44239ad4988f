//! State resolution, Tessera (`tessera-statres`) and ruma-state-res side by
//! side on the same synthetic Matrix-HQ-scale room: 100,000 members (99% of
//! the state is memberships) and two forks with 10, 100 or 1,000 conflicted
//! state events across power level changes, for room v11 (state res v2) and
//! v12 (v2.1).
//!
//! Inputs each side keeps between resolutions are built outside the timing:
//! Tessera's auth-chain index (`RoomGraph`), ruma's auth chain sets and
//! conflicted state subgraph. Before timing, both results are checked equal.
//! Peak heap during one resolution is measured by a counting allocator and
//! printed as `peak-heap` lines. `STATRES_MEMBERS` overrides the room size.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashSet;
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use tessera_statres::testing::{hq_forks, named_state, Pdu};
use tessera_statres::{resolve, EventIdx, Resolution, RoomGraph};

#[path = "../../statres/tests/support/ruma_adapter.rs"]
mod ruma_adapter;

use ruma_adapter::RumaInput;

/// Counts live heap bytes and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and returns its result with the peak heap growth while it ran.
fn peak_heap<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let out = f();
    (out, PEAK.load(Ordering::Relaxed) - base)
}

struct Case {
    graph: RoomGraph<Pdu>,
    sets: Vec<Vec<EventIdx>>,
    ruma: RumaInput,
}

fn case(version: &str, members: usize, conflicted: usize) -> Case {
    let forks = hq_forks(version, members, conflicted);
    let graph = forks[0].graph();
    let sets: Vec<Vec<EventIdx>> = forks.iter().map(|fork| fork.state_indices(&graph)).collect();
    let id_sets: Vec<Vec<String>> =
        sets.iter().map(|set| set.iter().map(|&idx| graph.event(idx).event_id.clone()).collect()).collect();
    let ruma = RumaInput::new(version, &forks[0].log(), &id_sets);
    Case { graph, sets, ruma }
}

fn conflicted_events(sets: &[Vec<EventIdx>]) -> usize {
    let common: HashSet<EventIdx> = sets[0].iter().copied().filter(|e| sets.iter().all(|s| s.contains(e))).collect();
    sets.iter().flatten().filter(|e| !common.contains(e)).collect::<HashSet<_>>().len()
}

/// The longest wall time of one `step(budget)`: how long other rooms on the
/// shard could wait behind this resolution.
fn longest_step(case: &Case, budget: u64) -> (Duration, usize) {
    let mut resolution = Resolution::new(&case.graph, &case.sets);
    let (mut longest, mut steps) = (Duration::ZERO, 0);
    loop {
        let start = Instant::now();
        let poll = resolution.step(budget);
        longest = longest.max(start.elapsed());
        steps += 1;
        if poll.is_ready() {
            return (longest, steps);
        }
    }
}

fn statres(c: &mut Criterion) {
    let members: usize = std::env::var("STATRES_MEMBERS").ok().and_then(|m| m.parse().ok()).unwrap_or(100_000);
    let mut group = c.benchmark_group("statres");
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4));
    for version in ["11", "12"] {
        for conflicted in [10, 100, 1_000] {
            let case = case(version, members, conflicted);
            let ours = named_state(&case.graph, &resolve(&case.graph, &case.sets));
            assert_eq!(ours, case.ruma.resolve(), "v{version}/{conflicted}: Tessera and ruma disagree");
            let (_, our_peak) = peak_heap(|| resolve(&case.graph, &case.sets));
            let chains = case.ruma.auth_chain_sets();
            let (_, ruma_peak) = peak_heap(|| case.ruma.resolve_prepared(chains));
            eprintln!(
                "peak-heap v{version} members={members} state={} conflicted={}: tessera {:.2} MiB, ruma {:.2} MiB",
                case.sets[0].len(),
                conflicted_events(&case.sets),
                our_peak as f64 / (1 << 20) as f64,
                ruma_peak as f64 / (1 << 20) as f64,
            );
            let (longest, steps) = longest_step(&case, 10_000);
            eprintln!(
                "stepping v{version} conflicted={conflicted}: budget 10000 units, {steps} steps, longest {longest:?}"
            );
            let id = format!("v{version}/{conflicted}");
            group.bench_function(BenchmarkId::new("tessera", &id), |b| {
                b.iter(|| resolve(black_box(&case.graph), black_box(&case.sets)))
            });
            group.bench_function(BenchmarkId::new("ruma", &id), |b| {
                b.iter_batched(
                    || case.ruma.auth_chain_sets(),
                    |chains| case.ruma.resolve_prepared(chains),
                    BatchSize::LargeInput,
                )
            });
        }
    }
    group.finish();
}

criterion_group!(benches, statres);
criterion_main!(benches);
