//! Thread-per-core: shard threads, io_uring instances, SO_REUSEPORT spread.

mod common;

use std::fs;

use common::{get, Conn, Server};

/// `PF_IO_WORKER` in a task's `/proc/.../stat` flags.
const PF_IO_WORKER: u64 = 0x10;

fn shard_thread_names(pid: u32) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|t| {
            let dir = t.unwrap().path();
            // io_uring's kernel workers (PF_IO_WORKER) live in our thread
            // group and start with the name of the thread they serve.
            let stat = fs::read_to_string(dir.join("stat")).ok()?;
            let flags: u64 = stat.rsplit(") ").next()?.split(' ').nth(6)?.parse().ok()?;
            (flags & PF_IO_WORKER == 0).then(|| fs::read_to_string(dir.join("comm")).ok())?
        })
        .map(|name| name.trim().to_owned())
        .filter(|name| name.starts_with("shard-"))
        .collect();
    names.sort();
    names
}

fn fd_targets(pid: u32) -> Vec<String> {
    fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| fs::read_link(e.unwrap().path()).ok())
        .map(|p| p.to_string_lossy().into_owned())
        .collect()
}

#[test]
fn two_cores_run_two_shard_threads_each_with_io_uring_and_no_epoll() {
    let server = Server::start(&[("TESSERA_SERVER__CORES", "2")]);
    let pid = server.pid();
    // A thread a shard starts (its storage committer) carries the shard's
    // name until it has named itself; look again until that has settled.
    let mut shard_threads = shard_thread_names(pid);
    for _ in 0..50 {
        if shard_threads.len() == 2 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        shard_threads = shard_thread_names(pid);
    }
    assert_eq!(shard_threads, ["shard-0", "shard-1"]);

    let targets = fd_targets(pid);
    let rings = targets.iter().filter(|t| t.contains("[io_uring]")).count();
    assert_eq!(rings, 2, "one io_uring per shard expected, fds: {targets:?}");
    assert!(!targets.iter().any(|t| t.contains("eventpoll")), "epoll in use: {targets:?}");

    // Each ring's fdinfo shows its submission queue: it is a live io_uring.
    let uring_fd = fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| fs::read_link(p).is_ok_and(|t| t.to_string_lossy().contains("[io_uring]")))
        .unwrap();
    let info =
        fs::read_to_string(format!("/proc/{pid}/fdinfo/{}", uring_fd.file_name().unwrap().to_string_lossy())).unwrap();
    assert!(info.contains("SqMask") || info.contains("SqHead"), "{info}");
}

#[test]
fn both_shards_accept_connections_on_one_port() {
    let server = Server::start(&[("TESSERA_SERVER__CORES", "2")]);
    // The kernel spreads connections by hashing their addresses; with 64
    // connections the chance that one shard gets none is 2^-63.
    let mut conns: Vec<Conn> = (0..64).map(|_| Conn::open(server.client)).collect();
    for conn in &mut conns {
        conn.send(b"GET /health HTTP/1.1\r\n\r\n");
        assert_eq!(conn.read_reply().unwrap().status, 200);
    }
    let text = String::from_utf8(get(server.client, "/metrics").body).unwrap();
    for shard in ["0", "1"] {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("tessera_shard_http_requests_total{{shard=\"{shard}\"}}")))
            .unwrap_or_else(|| panic!("no request counter for shard {shard}:\n{text}"));
        let n: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(n > 0, "shard {shard} served nothing: {line}");
    }
}
