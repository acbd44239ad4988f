//! Per-shard request metrics and their Prometheus rendering.
//!
//! Each shard counts its own requests in plain `Cell`s and histograms (no
//! atomics, no locks); `/metrics` asks every shard for a snapshot over the
//! mesh and merges them. Histograms are created on an endpoint's first
//! request, so hundreds of idle routes cost no memory.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::rc::Rc;
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::mesh::MeshStatsSnapshot;

/// Highest latency the histograms track (longer is clamped): long-polls
/// last up to a few minutes.
const MAX_LATENCY_US: u64 = 600_000_000;

/// Request statistics of one listener on one shard.
pub struct HttpMetrics {
    listener: Rc<str>,
    rows: RefCell<Vec<Row>>,
    open_connections: std::cell::Cell<u64>,
}

struct Row {
    name: Rc<str>,
    by_class: [u64; 5],
    latency: Option<Histogram<u64>>,
}

/// The metric row for requests that match no route or are malformed.
const UNMATCHED: &str = "unmatched";

impl HttpMetrics {
    /// Metrics for a listener whose router has these endpoint names (by id).
    /// Two extra rows follow them: unmatched and malformed requests.
    pub fn new(listener: &str, endpoint_names: impl Iterator<Item = Rc<str>>) -> Self {
        let mut rows: Vec<Row> = endpoint_names.map(|name| Row { name, by_class: [0; 5], latency: None }).collect();
        rows.push(Row { name: UNMATCHED.into(), by_class: [0; 5], latency: None });
        Self { listener: listener.into(), rows: RefCell::new(rows), open_connections: Default::default() }
    }

    /// The row index for unmatched requests.
    pub fn unmatched(&self) -> usize {
        self.rows.borrow().len() - 1
    }

    /// Records one request on row `row`.
    pub fn record(&self, row: usize, status: u16, elapsed: Duration) {
        let mut rows = self.rows.borrow_mut();
        let row = &mut rows[row];
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        row.by_class[class] += 1;
        let latency = row.latency.get_or_insert_with(new_histogram);
        latency.saturating_record((elapsed.as_micros() as u64).clamp(1, MAX_LATENCY_US));
    }

    pub(crate) fn connection_opened(&self) {
        self.open_connections.set(self.open_connections.get() + 1);
    }

    pub(crate) fn connection_closed(&self) {
        self.open_connections.set(self.open_connections.get() - 1);
    }

    /// A copy of the counters, to send to the shard that renders `/metrics`.
    pub fn snapshot(&self) -> HttpSnapshot {
        let rows = self.rows.borrow();
        HttpSnapshot {
            open_connections: BTreeMap::from([(self.listener.to_string(), self.open_connections.get())]),
            requests_by_shard: BTreeMap::new(),
            endpoints: rows
                .iter()
                .filter(|r| r.latency.is_some())
                .map(|r| {
                    let key = (self.listener.to_string(), r.name.to_string());
                    (key, (r.by_class, r.latency.clone().unwrap_or_else(new_histogram)))
                })
                .collect(),
        }
    }
}

fn new_histogram() -> Histogram<u64> {
    // Two significant figures: ±1% on every quantile is plenty for latency
    // and keeps one histogram near 20 KiB.
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 2).expect("valid histogram bounds")
}

/// Mergeable request statistics, keyed by (listener, endpoint).
#[derive(Clone, Debug, Default)]
pub struct HttpSnapshot {
    open_connections: BTreeMap<String, u64>,
    requests_by_shard: BTreeMap<usize, u64>,
    endpoints: BTreeMap<(String, String), ([u64; 5], Histogram<u64>)>,
}

impl HttpSnapshot {
    /// Records this snapshot's request total as shard `shard`'s, so uneven
    /// spreading of connections over shards shows in `/metrics`.
    pub fn attribute_to_shard(&mut self, shard: usize) {
        let total = self.endpoints.values().map(|(classes, _)| classes.iter().sum::<u64>()).sum();
        self.requests_by_shard.insert(shard, total);
    }

    /// Adds `other` into `self` (across listeners and shards).
    pub fn merge(&mut self, other: HttpSnapshot) {
        for (shard, n) in other.requests_by_shard {
            *self.requests_by_shard.entry(shard).or_default() += n;
        }
        for (listener, n) in other.open_connections {
            *self.open_connections.entry(listener).or_default() += n;
        }
        for (key, (classes, hist)) in other.endpoints {
            match self.endpoints.get_mut(&key) {
                Some((c, h)) => {
                    c.iter_mut().zip(classes).for_each(|(a, b)| *a += b);
                    // Same bounds on both sides, so adding cannot fail.
                    let _ = h.add(&hist);
                }
                None => {
                    self.endpoints.insert(key, (classes, hist));
                }
            }
        }
    }
}

/// Renders the Prometheus text exposition format (version 0.0.4).
pub fn render(http: &HttpSnapshot, mesh: &MeshStatsSnapshot) -> String {
    let mut out = String::with_capacity(4096);
    let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    out.push_str(
        "# HELP tessera_http_requests_total HTTP requests answered, by listener, endpoint and status class.\n",
    );
    out.push_str("# TYPE tessera_http_requests_total counter\n");
    for ((listener, endpoint), (classes, _)) in &http.endpoints {
        for (i, n) in classes.iter().enumerate().filter(|(_, n)| **n > 0) {
            let _ = writeln!(
                out,
                "tessera_http_requests_total{{listener=\"{}\",endpoint=\"{}\",status=\"{}xx\"}} {n}",
                esc(listener),
                esc(endpoint),
                i + 1
            );
        }
    }
    out.push_str("# HELP tessera_http_request_duration_seconds Time from request head parsed to response ready.\n");
    out.push_str("# TYPE tessera_http_request_duration_seconds summary\n");
    for ((listener, endpoint), (_, hist)) in &http.endpoints {
        let labels = format!("listener=\"{}\",endpoint=\"{}\"", esc(listener), esc(endpoint));
        for q in [0.5, 0.9, 0.99, 0.999] {
            let secs = hist.value_at_quantile(q) as f64 / 1e6;
            let _ = writeln!(out, "tessera_http_request_duration_seconds{{{labels},quantile=\"{q}\"}} {secs}");
        }
        let sum = hist.mean() * hist.len() as f64 / 1e6;
        let _ = writeln!(out, "tessera_http_request_duration_seconds_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "tessera_http_request_duration_seconds_count{{{labels}}} {}", hist.len());
    }
    out.push_str("# HELP tessera_http_open_connections Connections open now, by listener.\n");
    out.push_str("# TYPE tessera_http_open_connections gauge\n");
    for (listener, n) in &http.open_connections {
        let _ = writeln!(out, "tessera_http_open_connections{{listener=\"{}\"}} {n}", esc(listener));
    }
    out.push_str("# HELP tessera_shard_http_requests_total HTTP requests answered, by shard.\n");
    out.push_str("# TYPE tessera_shard_http_requests_total counter\n");
    for (shard, n) in &http.requests_by_shard {
        let _ = writeln!(out, "tessera_shard_http_requests_total{{shard=\"{shard}\"}} {n}");
    }
    out.push_str("# HELP tessera_mesh_batches_total Cross-core batches sent, by sending and receiving shard.\n");
    out.push_str("# TYPE tessera_mesh_batches_total counter\n");
    out.push_str("# HELP tessera_mesh_jobs_total Cross-core jobs sent, by sending and receiving shard.\n");
    out.push_str("# TYPE tessera_mesh_jobs_total counter\n");
    for from in 0..mesh.shards {
        for to in 0..mesh.shards {
            let i = from * mesh.shards + to;
            let _ = writeln!(out, "tessera_mesh_batches_total{{from=\"{from}\",to=\"{to}\"}} {}", mesh.batches[i]);
            let _ = writeln!(out, "tessera_mesh_jobs_total{{from=\"{from}\",to=\"{to}\"}} {}", mesh.jobs[i]);
        }
    }
    out.push_str("# HELP tessera_shard_queue_depth Jobs waiting in each shard's mesh inbox.\n");
    out.push_str("# TYPE tessera_shard_queue_depth gauge\n");
    for (shard, n) in mesh.queued.iter().enumerate() {
        let _ = writeln!(out, "tessera_shard_queue_depth{{shard=\"{shard}\"}} {n}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_snapshots_add_counts_and_latencies() {
        let a = HttpMetrics::new("client", ["GET /x".into()].into_iter());
        let b = HttpMetrics::new("client", ["GET /x".into()].into_iter());
        a.record(0, 200, Duration::from_micros(100));
        b.record(0, 404, Duration::from_micros(300));
        let mut merged = a.snapshot();
        merged.merge(b.snapshot());
        let text = render(&merged, &MeshStatsSnapshot::default());
        assert!(text.contains("endpoint=\"GET /x\",status=\"2xx\"} 1"), "{text}");
        assert!(text.contains("endpoint=\"GET /x\",status=\"4xx\"} 1"), "{text}");
        assert!(text.contains("tessera_http_request_duration_seconds_count{listener=\"client\",endpoint=\"GET /x\"} 2"));
    }

    #[test]
    fn idle_endpoints_allocate_no_histogram() {
        let m = HttpMetrics::new("client", ["GET /idle".into()].into_iter());
        assert!(m.snapshot().endpoints.is_empty());
    }
}
