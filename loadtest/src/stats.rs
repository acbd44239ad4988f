//! Measurements: latency histograms, counters and errors by kind, kept per
//! worker thread without sharing and merged when the run ends; the live
//! progress counters; and the final report, printed and written as JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::server::ServerUsage;

/// Highest latency recorded exactly (1 hour, in microseconds); longer ones
/// are clamped to it rather than lost.
const MAX_MICROS: u64 = 3_600_000_000;

/// One worker thread's measurements.
#[derive(Default)]
pub struct Metrics {
    latencies: BTreeMap<&'static str, Histogram<u64>>,
    counters: BTreeMap<&'static str, u64>,
    errors: BTreeMap<String, u64>,
    /// The first message seen for each error kind: a count alone does not
    /// say why ("403 M_FORBIDDEN" could be a bad MAC or a closed server).
    error_examples: BTreeMap<String, String>,
}

/// Longest error example kept.
const MAX_EXAMPLE: usize = 300;

impl Metrics {
    /// Records one latency into the histogram `name`.
    pub fn record(&mut self, name: &'static str, latency: Duration) {
        let hist = self.latencies.entry(name).or_insert_with(new_histogram);
        hist.saturating_record((latency.as_micros() as u64).clamp(1, MAX_MICROS));
    }

    /// Adds `n` to the counter `name`.
    pub fn count(&mut self, name: &'static str, n: u64) {
        *self.counters.entry(name).or_default() += n;
    }

    /// Counts one error of kind `kind`; `detail` is asked for the first
    /// one of each kind only.
    pub fn error(&mut self, kind: &str, detail: impl FnOnce() -> String) {
        match self.errors.get_mut(kind) {
            Some(n) => *n += 1,
            None => {
                self.errors.insert(kind.to_owned(), 1);
                let mut detail = detail();
                if detail.len() > MAX_EXAMPLE {
                    let mut end = MAX_EXAMPLE;
                    while !detail.is_char_boundary(end) {
                        end -= 1;
                    }
                    detail.truncate(end);
                }
                self.error_examples.insert(kind.to_owned(), detail);
            }
        }
    }

    /// Folds another thread's measurements into these.
    pub fn merge(&mut self, other: Metrics) {
        for (name, hist) in other.latencies {
            self.latencies.entry(name).or_insert_with(new_histogram).add(hist).expect("same bounds");
        }
        for (name, n) in other.counters {
            *self.counters.entry(name).or_default() += n;
        }
        for (kind, n) in other.errors {
            *self.errors.entry(kind).or_default() += n;
        }
        for (kind, example) in other.error_examples {
            self.error_examples.entry(kind).or_insert(example);
        }
    }

    /// The value of counter `name` (0 if never counted).
    pub fn counter(&self, name: &str) -> u64 {
        self.counters.get(name).copied().unwrap_or(0)
    }

    /// How many latencies were recorded under `name`.
    pub fn samples(&self, name: &str) -> u64 {
        self.latencies.get(name).map_or(0, |h| h.len())
    }
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("valid histogram bounds")
}

/// Percentiles of one latency histogram, in milliseconds.
#[derive(Debug, Serialize, PartialEq)]
pub struct LatencySummary {
    /// Samples.
    pub count: u64,
    /// Mean.
    pub mean_ms: f64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Largest sample.
    pub max_ms: f64,
}

impl LatencySummary {
    fn of(hist: &Histogram<u64>) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            count: hist.len(),
            mean_ms: hist.mean() / 1000.0,
            p50_ms: ms(hist.value_at_quantile(0.50)),
            p90_ms: ms(hist.value_at_quantile(0.90)),
            p99_ms: ms(hist.value_at_quantile(0.99)),
            p999_ms: ms(hist.value_at_quantile(0.999)),
            max_ms: ms(hist.max()),
        }
    }
}

/// The load generator's own CPU time, from `getrusage(RUSAGE_SELF)`, so a
/// reader can tell whether the client was the bottleneck.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct CpuTime {
    /// User CPU seconds.
    pub user_secs: f64,
    /// System CPU seconds.
    pub system_secs: f64,
}

impl CpuTime {
    /// CPU used by this process so far.
    pub fn now() -> Self {
        // SAFETY: getrusage fills the zeroed struct we pass it.
        let usage = unsafe {
            let mut usage: libc::rusage = std::mem::zeroed();
            libc::getrusage(libc::RUSAGE_SELF, &mut usage);
            usage
        };
        let secs = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
        Self { user_secs: secs(usage.ru_utime), system_secs: secs(usage.ru_stime) }
    }

    /// CPU used since `earlier`.
    pub fn since(self, earlier: Self) -> Self {
        Self { user_secs: self.user_secs - earlier.user_secs, system_secs: self.system_secs - earlier.system_secs }
    }
}

/// Counters the main thread reads once a second for the progress line, one
/// cache line per worker so the workers never contend.
pub struct Progress {
    slots: Vec<Slot>,
}

#[repr(align(128))]
#[derive(Default)]
struct Slot {
    ops: AtomicU64,
    errors: AtomicU64,
}

impl Progress {
    /// Counters for `threads` workers.
    pub fn new(threads: usize) -> Self {
        Self { slots: (0..threads).map(|_| Slot::default()).collect() }
    }

    /// Worker `thread` completed one measured operation.
    pub fn op(&self, thread: usize) {
        self.slots[thread].ops.fetch_add(1, Ordering::Relaxed);
    }

    /// Worker `thread` saw one error.
    pub fn error(&self, thread: usize) {
        self.slots[thread].errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Totals over all workers: (operations, errors).
    pub fn totals(&self) -> (u64, u64) {
        self.slots
            .iter()
            .fold((0, 0), |(o, e), s| (o + s.ops.load(Ordering::Relaxed), e + s.errors.load(Ordering::Relaxed)))
    }
}

/// What was run, for the report.
pub struct RunInfo {
    /// Scenario name.
    pub scenario: &'static str,
    /// Target base URL.
    pub target: String,
    /// The scenario's parameters.
    pub params: serde_json::Value,
    /// The shared options (duration, registration mode, time-outs...).
    pub options: serde_json::Value,
    /// Worker threads.
    pub threads: usize,
}

/// The result of one run, as written to `--json`.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Scenario name.
    pub scenario: &'static str,
    /// Target base URL.
    pub target: String,
    /// The scenario's parameters as run.
    pub params: serde_json::Value,
    /// The shared options as run.
    pub options: serde_json::Value,
    /// Worker threads of the load generator.
    pub threads: usize,
    /// Wall-clock seconds of the measured phase.
    pub wall_secs: f64,
    /// Seconds of it in which load was offered (the throughput's divisor).
    pub active_secs: f64,
    /// The load generator's CPU time during the measured phase.
    pub cpu: CpuTime,
    /// The load generator's CPU time divided by wall time (cores busy).
    pub cpu_cores_busy: f64,
    /// Measured operations completed (requests, registrations, messages...).
    pub requests: u64,
    /// `requests` per second of `active_secs`.
    pub throughput_per_sec: f64,
    /// Latency summaries by measurement name.
    pub latency: BTreeMap<&'static str, LatencySummary>,
    /// Scenario-specific counters.
    pub counters: BTreeMap<&'static str, u64>,
    /// Errors by kind.
    pub errors: BTreeMap<String, u64>,
    /// The first message seen for each kind in `errors`.
    pub error_examples: BTreeMap<String, String>,
    /// Sum of `errors`.
    pub error_count: u64,
    /// Responses `429 M_LIMIT_EXCEEDED` (retried after `retry_after_ms`).
    pub rate_limited: u64,
    /// The server's CPU and memory over the phase, with `--server-pid`.
    pub server: Option<ServerUsage>,
    /// Things the reader must know to trust the numbers.
    pub warnings: Vec<String>,
}

impl Report {
    /// Builds a report from merged metrics. `ops` names the histogram whose
    /// sample count is the throughput, over `active` (the part of `wall` in
    /// which load was offered: a scenario that waits for deliveries after
    /// its last send must not count the wait against its send rate).
    pub fn new(info: RunInfo, wall: Duration, active: Duration, cpu: CpuTime, metrics: Metrics, ops: &str) -> Self {
        let wall_secs = wall.as_secs_f64();
        let active_secs = active.as_secs_f64();
        let requests = metrics.samples(ops);
        let rate_limited = metrics.counter(RATE_LIMITED);
        let mut warnings = Vec::new();
        if rate_limited > 0 {
            warnings.push(format!(
                "the target rate-limited {rate_limited} requests (429 M_LIMIT_EXCEEDED): the numbers measure its \
                 limiter, not its capacity; turn rate limits off for load tests"
            ));
        }
        let cpu_cores_busy = if wall_secs > 0.0 { (cpu.user_secs + cpu.system_secs) / wall_secs } else { 0.0 };
        Self {
            scenario: info.scenario,
            target: info.target,
            params: info.params,
            options: info.options,
            threads: info.threads,
            wall_secs,
            active_secs,
            cpu,
            cpu_cores_busy,
            requests,
            throughput_per_sec: if active_secs > 0.0 { requests as f64 / active_secs } else { 0.0 },
            latency: metrics.latencies.iter().map(|(k, h)| (*k, LatencySummary::of(h))).collect(),
            error_count: metrics.errors.values().sum(),
            counters: metrics.counters,
            errors: metrics.errors,
            error_examples: metrics.error_examples,
            rate_limited,
            server: None,
            warnings,
        }
    }

    /// The human summary printed at the end of a run.
    pub fn human(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "\n== {} against {} ==", self.scenario, self.target);
        let _ = writeln!(out, "params: {}", self.params);
        let _ = writeln!(
            out,
            "wall {:.2} s; load generator CPU user {:.2} s + system {:.2} s = {:.2} cores busy of {} threads",
            self.wall_secs, self.cpu.user_secs, self.cpu.system_secs, self.cpu_cores_busy, self.threads
        );
        let _ = writeln!(
            out,
            "completed {} in {:.2} s of load ({:.1}/s)",
            self.requests, self.active_secs, self.throughput_per_sec
        );
        if !self.latency.is_empty() {
            let _ = writeln!(
                out,
                "{:<20} {:>9} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
                "latency (ms)", "count", "mean", "p50", "p90", "p99", "p99.9", "max"
            );
            for (name, l) in &self.latency {
                let _ = writeln!(
                    out,
                    "{:<20} {:>9} {:>10.3} {:>10.3} {:>10.3} {:>10.3} {:>10.3} {:>10.3}",
                    name, l.count, l.mean_ms, l.p50_ms, l.p90_ms, l.p99_ms, l.p999_ms, l.max_ms
                );
            }
        }
        for (name, n) in &self.counters {
            let _ = writeln!(out, "{name}: {n}");
        }
        if self.errors.is_empty() {
            let _ = writeln!(out, "errors: none");
        } else {
            let _ = writeln!(out, "errors: {} total", self.error_count);
            for (kind, n) in &self.errors {
                let example = self.error_examples.get(kind).map_or("", String::as_str);
                let _ = writeln!(out, "  {kind}: {n} (first: {example})");
            }
        }
        if let Some(server) = &self.server {
            let _ = writeln!(
                out,
                "server CPU {:.2} s = {:.2} cores busy, {:.1} µs per operation",
                server.cpu_secs, server.cpu_cores_busy, server.cpu_us_per_op
            );
            for p in &server.processes {
                let _ = writeln!(
                    out,
                    "server pid {} RSS {:.1} MiB (peak {:.1} MiB)",
                    p.pid,
                    p.rss_kib as f64 / 1024.0,
                    p.peak_rss_kib as f64 / 1024.0
                );
            }
        }
        for w in &self.warnings {
            let _ = writeln!(out, "WARNING: {w}");
        }
        out
    }
}

/// Counter name for 429 responses.
pub const RATE_LIMITED: &str = "rate_limited_429";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_percentiles_of_a_known_distribution() {
        let mut m = Metrics::default();
        // 1..=1000 ms, once each.
        for ms in 1..=1000 {
            m.record("send", Duration::from_millis(ms));
        }
        let s = LatencySummary::of(&m.latencies["send"]);
        assert_eq!(s.count, 1000);
        // Three significant figures: each value within 0.1%.
        let near = |got: f64, want: f64| (got - want).abs() <= want * 0.001 + 0.001;
        assert!(near(s.p50_ms, 500.0), "{s:?}");
        assert!(near(s.p90_ms, 900.0), "{s:?}");
        assert!(near(s.p99_ms, 990.0), "{s:?}");
        assert!(near(s.p999_ms, 999.0), "{s:?}");
        assert!(near(s.max_ms, 1000.0), "{s:?}");
        assert!(near(s.mean_ms, 500.5), "{s:?}");
    }

    #[test]
    fn merge_adds_histograms_counters_and_errors() {
        let mut a = Metrics::default();
        a.record("x", Duration::from_micros(10));
        a.count("sent", 2);
        a.error("timeout", || "timed out".into());
        a.error("timeout", || unreachable!("only the first error of a kind is described"));
        let mut b = Metrics::default();
        b.record("x", Duration::from_micros(30));
        b.record("y", Duration::from_secs(7200)); // clamped, not lost
        b.count("sent", 3);
        b.error("timeout", || "a later example".into());
        b.error("http_500", || "x".repeat(1000));
        a.merge(b);
        assert_eq!(a.samples("x"), 2);
        assert_eq!(a.samples("y"), 1);
        assert_eq!(a.counter("sent"), 5);
        assert_eq!(a.errors.get("timeout"), Some(&3));
        assert_eq!(a.errors.get("http_500"), Some(&1));
        assert_eq!(a.error_examples["timeout"], "timed out");
        assert_eq!(a.error_examples["http_500"].len(), MAX_EXAMPLE);
        let info = RunInfo {
            scenario: "t",
            target: "http://127.0.0.1:1".into(),
            params: serde_json::json!({}),
            options: serde_json::json!({}),
            threads: 2,
        };
        let r = Report::new(info, Duration::from_secs(3), Duration::from_secs(2), CpuTime::default(), a, "x");
        assert_eq!((r.requests, r.throughput_per_sec, r.error_count), (2, 1.0, 4));
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["latency"]["x"]["count"], 2);
        assert!(r.human().contains("timeout: 3 (first: timed out)"), "{}", r.human());
    }

    #[test]
    fn progress_totals_sum_over_threads() {
        let p = Progress::new(3);
        p.op(0);
        p.op(2);
        p.op(2);
        p.error(1);
        assert_eq!(p.totals(), (3, 1));
    }

    #[test]
    fn cpu_time_is_monotonic() {
        let a = CpuTime::now();
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let d = CpuTime::now().since(a);
        assert!(d.user_secs >= 0.0 && d.system_secs >= 0.0);
    }
}
