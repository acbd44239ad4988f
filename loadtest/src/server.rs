//! The server's side of a run: CPU time and resident memory of the
//! homeserver's processes (`--server-pid`), read from `/proc` at the start
//! and end of the measured phase, so a report says what each operation cost
//! the server and not only how long it took. Only meaningful because targets
//! are on this machine (loopback only, see [`crate::target`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

/// CPU and memory of the server processes over the measured phase.
#[derive(Clone, Debug, Serialize)]
pub struct ServerUsage {
    /// CPU seconds (user + system) of the given processes and their
    /// descendants (a PostgreSQL postmaster's backends, Synapse's workers),
    /// including descendants that exited and were reaped meanwhile.
    pub cpu_secs: f64,
    /// `cpu_secs` divided by the phase's wall time.
    pub cpu_cores_busy: f64,
    /// `cpu_secs` per measured operation, in microseconds.
    pub cpu_us_per_op: f64,
    /// Resident memory of each given process at the end (not descendants:
    /// PostgreSQL backends share their buffers, summing them double counts).
    pub processes: Vec<ProcessMemory>,
}

/// One process's resident memory.
#[derive(Clone, Debug, Serialize)]
pub struct ProcessMemory {
    pub pid: u32,
    /// `VmRSS` at the end of the phase, KiB.
    pub rss_kib: u64,
    /// Highest `VmRSS` seen during the phase (sampled every 50 ms), KiB.
    pub phase_peak_rss_kib: u64,
    /// `VmHWM`, the peak since the process started (setup included), KiB.
    pub peak_rss_kib: u64,
}

/// The server processes at the start of the phase, and a thread sampling
/// their resident memory until the phase ends.
pub struct Snapshot {
    start: Ticks,
    stop: Arc<AtomicBool>,
    sampler: std::thread::JoinHandle<Vec<u64>>,
}

impl Snapshot {
    /// Starts measuring the trees under `pids`. An empty list measures nothing.
    pub fn take(pids: &[u32]) -> Option<Self> {
        if pids.is_empty() {
            return None;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, watched) = (stop.clone(), pids.to_vec());
        let sampler = std::thread::spawn(move || {
            let mut peaks = vec![0; watched.len()];
            while !flag.load(Ordering::Relaxed) {
                for (peak, &pid) in peaks.iter_mut().zip(&watched) {
                    *peak = (*peak).max(status_kib(pid, "VmRSS:").unwrap_or(0));
                }
                std::thread::sleep(SAMPLE_EVERY);
            }
            peaks
        });
        Some(Self { start: Ticks::read(pids), stop, sampler })
    }

    /// Usage between the start and now.
    pub fn usage_since(self, wall_secs: f64, ops: u64) -> ServerUsage {
        let end = Ticks::read(&self.start.pids);
        self.stop.store(true, Ordering::Relaxed);
        let phase_peaks = self.sampler.join().unwrap_or_default();
        // A process that exited during the phase is only counted through its
        // parent's reaped ticks; one that started counts from zero.
        let start = &self.start;
        let live: u64 =
            end.own.iter().map(|(pid, &t)| t.saturating_sub(start.own.get(pid).copied().unwrap_or(0))).sum();
        let ticks = live + end.reaped.saturating_sub(start.reaped);
        let cpu_secs = ticks as f64 / clock_ticks_per_sec();
        let processes = start
            .pids
            .iter()
            .zip(phase_peaks.into_iter().chain(std::iter::repeat(0)))
            .filter_map(|(&pid, phase_peak)| {
                let rss_kib = status_kib(pid, "VmRSS:")?;
                Some(ProcessMemory {
                    pid,
                    rss_kib,
                    phase_peak_rss_kib: phase_peak.max(rss_kib),
                    peak_rss_kib: status_kib(pid, "VmHWM:")?,
                })
            })
            .collect();
        ServerUsage {
            cpu_secs,
            cpu_cores_busy: if wall_secs > 0.0 { cpu_secs / wall_secs } else { 0.0 },
            cpu_us_per_op: if ops > 0 { cpu_secs * 1e6 / ops as f64 } else { 0.0 },
            processes,
        }
    }
}

const SAMPLE_EVERY: Duration = Duration::from_millis(50);

/// CPU ticks of process trees at one moment.
struct Ticks {
    pids: Vec<u32>,
    /// Own ticks of every live process in the trees.
    own: HashMap<u32, u64>,
    /// Reaped children's ticks of the roots.
    reaped: u64,
}

impl Ticks {
    fn read(pids: &[u32]) -> Self {
        let stats = all_stats();
        let mut own = HashMap::new();
        let mut reaped = 0;
        for &root in pids {
            if let Some(s) = stats.get(&root) {
                reaped += s.children_ticks;
            }
            collect_tree(root, &stats, &mut own);
        }
        Self { pids: pids.to_vec(), own, reaped }
    }
}

struct Stat {
    ppid: u32,
    ticks: u64,
    children_ticks: u64,
}

/// `/proc/<pid>/stat` of every process: parent, own and reaped children's
/// user+system ticks.
fn all_stats() -> HashMap<u32, Stat> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return HashMap::new() };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)?)))
        .collect()
}

/// Fields after the parenthesised command name (which may hold spaces):
/// state, ppid, ... utime (14th field), stime, cutime, cstime.
fn parse_stat(line: &str) -> Option<Stat> {
    let rest = &line[line.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    let num = |i: usize| f.get(i)?.parse::<u64>().ok();
    Some(Stat { ppid: num(1)? as u32, ticks: num(11)? + num(12)?, children_ticks: num(13)? + num(14)? })
}

fn collect_tree(root: u32, stats: &HashMap<u32, Stat>, out: &mut HashMap<u32, u64>) {
    let mut stack = vec![root];
    while let Some(pid) = stack.pop() {
        if let Some(s) = stats.get(&pid) {
            if out.insert(pid, s.ticks).is_none() {
                stack.extend(stats.iter().filter(|(_, c)| c.ppid == pid).map(|(&c, _)| c));
            }
        }
    }
}

/// A `kB` line of `/proc/<pid>/status`.
fn status_kib(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix(key)?.trim().strip_suffix("kB")?.trim().parse::<u64>().ok())
}

fn clock_ticks_per_sec() -> f64 {
    // SAFETY: sysconf only reads a system constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_line_with_spaces_and_parens_in_the_name_parses() {
        let line = "42 (my (odd) name) S 7 42 42 0 -1 4194560 100 0 0 0 250 50 3 4 20 0 1 0 100 0 0";
        let s = parse_stat(line).unwrap();
        assert_eq!((s.ppid, s.ticks, s.children_ticks), (7, 300, 7));
    }

    #[test]
    fn own_process_is_measured_and_busy_work_shows_as_cpu() {
        let me = std::process::id();
        let start = Snapshot::take(&[me]).unwrap();
        let t0 = std::time::Instant::now();
        let mut x = 0u64;
        while t0.elapsed().as_millis() < 200 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let usage = start.usage_since(0.2, 10);
        assert!(usage.cpu_secs >= 0.1, "{usage:?}");
        assert_eq!(usage.processes.len(), 1);
        let p = &usage.processes[0];
        assert!(p.rss_kib > 0 && p.phase_peak_rss_kib >= p.rss_kib && p.peak_rss_kib >= p.phase_peak_rss_kib, "{p:?}");
    }

    #[test]
    fn no_pids_measure_nothing() {
        assert!(Snapshot::take(&[]).is_none());
    }
}
