//! The five scenarios. Each sets up what it needs (users, rooms) in
//! unmeasured phases, then runs one measured phase on all worker threads
//! and turns the merged metrics into a [`Report`].

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use serde::Deserialize;
use tessera_net::runtime::{sleep, spawn, Duration};

use crate::config::{Common, FanoutArgs, InitialSyncArgs, MessagingArgs, Plan, RegisterArgs, Scenario, VersionsArgs};
use crate::matrix::{self, call, parse_sync, sync_path, ApiError, Marker, Session, TIMELINE_FILTER, TOKEN_ONLY_FILTER};
use crate::runner::{parallel, run_workers, sleep_until, wait_for, Ctx, Pacer, PASSWORD};
use crate::server;
use crate::stats::{CpuTime, Metrics, Report, RunInfo};
use crate::target::Target;

/// Long-poll time-out of the receivers' /sync, milliseconds.
const SYNC_TIMEOUT_MS: u64 = 30_000;

/// Runs a validated plan.
pub fn run(plan: Plan) -> Result<Report, String> {
    let target = Target::parse(&plan.common.url).map_err(|e| e.to_string())?;
    raise_fd_limit();
    let ctx = Arc::new(Ctx::new(target, plan.common));
    let info = RunInfo {
        scenario: plan.scenario.name(),
        target: ctx.common.url.clone(),
        params: plan.scenario.params(),
        options: serde_json::to_value(&ctx.common).expect("options serialise"),
        threads: ctx.common.threads,
    };
    eprintln!("{} against {} with {} threads; run id {:x}", info.scenario, info.target, info.threads, ctx.run);
    match &plan.scenario {
        Scenario::Versions(a) => versions(&ctx, info, a),
        Scenario::Register(a) => register(&ctx, info, a),
        Scenario::Messaging(a) => messaging(&ctx, info, a),
        Scenario::InitialSync(a) => initial_sync(&ctx, info, a),
        Scenario::Fanout(a) => fanout(&ctx, info, a),
    }
}

/// Every long-polling user holds a socket: lift the soft descriptor limit
/// to the hard one so thousands of members do not fail with EMFILE.
fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit on a zeroed struct of the right type.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// The measured phase's clock: wall and CPU time from its start.
struct Measure {
    wall: Instant,
    cpu: CpuTime,
    server: Option<server::Snapshot>,
}

impl Measure {
    fn start(common: &Common) -> Self {
        Self { wall: Instant::now(), cpu: CpuTime::now(), server: server::Snapshot::take(&common.server_pids) }
    }

    fn report(self, info: RunInfo, active: Option<Duration>, metrics: Metrics, ops: &str) -> Report {
        let wall = self.wall.elapsed();
        let mut report = Report::new(info, wall, active.unwrap_or(wall), CpuTime::now().since(self.cpu), metrics, ops);
        report.server = self.server.map(|s| s.usage_since(report.wall_secs, report.requests));
        report
    }
}

fn merge_all(parts: impl IntoIterator<Item = Metrics>) -> Metrics {
    let mut all = Metrics::default();
    for m in parts {
        all.merge(m);
    }
    all
}

/// `GET /_matrix/client/versions` on `connections` keep-alive connections,
/// each sending its next request as soon as the last one is answered.
fn versions(ctx: &Arc<Ctx>, info: RunInfo, args: &VersionsArgs) -> Result<Report, String> {
    let (threads, connections) = (ctx.common.threads, args.connections);
    let measure = Measure::start(&ctx.common);
    let deadline = measure.wall + Duration::from_secs_f64(ctx.common.duration);
    let shared = ctx.clone();
    let per_thread = run_workers(ctx, "requests", move |thread| {
        let ctx = shared.clone();
        async move {
            let handles: Vec<_> = (thread..connections)
                .step_by(threads)
                .map(|_| {
                    let ctx = ctx.clone();
                    spawn(async move {
                        let progress = ctx.progress();
                        let (mut conn, mut m) = (ctx.conn(), Metrics::default());
                        while Instant::now() < deadline {
                            let t0 = Instant::now();
                            match call(&mut conn, &mut m, "GET", "/_matrix/client/versions", None, None).await {
                                Ok(r) if r.status == 200 => {
                                    m.record("request", t0.elapsed());
                                    progress.op(thread);
                                    continue;
                                }
                                Ok(r) => m.error(&format!("{} status", r.status), || {
                                    String::from_utf8_lossy(&r.body).into_owned()
                                }),
                                Err(e) => m.error(&e.kind(), || e.to_string()),
                            }
                            progress.error(thread);
                            // Do not spin on a refused connection.
                            sleep(Duration::from_millis(10)).await;
                        }
                        m
                    })
                })
                .collect();
            let mut m = Metrics::default();
            for h in handles {
                m.merge(h.await);
            }
            m
        }
    })?;
    Ok(measure.report(info, None, merge_all(per_thread), "request"))
}

/// Registers accounts, `concurrency` at a time, at `rate` per second in
/// total or flat out. A registration's latency covers all its requests
/// (both user-interactive auth steps, or nonce and register).
fn register(ctx: &Arc<Ctx>, info: RunInfo, args: &RegisterArgs) -> Result<Report, String> {
    let (threads, lanes, rate, max) = (ctx.common.threads, args.concurrency, args.rate, args.max_accounts);
    let attempts = Arc::new(AtomicU64::new(0));
    let measure = Measure::start(&ctx.common);
    let start = measure.wall;
    let deadline = start + Duration::from_secs_f64(ctx.common.duration);
    let shared = ctx.clone();
    let per_thread = run_workers(ctx, "accounts", move |thread| {
        let (ctx, attempts) = (shared.clone(), attempts.clone());
        async move {
            let handles: Vec<_> = (thread..lanes)
                .step_by(threads)
                .map(|lane| {
                    let (ctx, attempts) = (ctx.clone(), attempts.clone());
                    spawn(async move {
                        let progress = ctx.progress();
                        let (mut conn, mut m) = (ctx.conn(), Metrics::default());
                        let mut pacer = rate.map(|r| Pacer::new(start, r, lane, lanes));
                        loop {
                            let intended = match &mut pacer {
                                Some(p) => p.next_send(),
                                None => Instant::now(),
                            };
                            // At a fixed rate a slow target leaves the lane behind
                            // schedule; the run still ends on time, and the report
                            // compares operations made to operations offered.
                            if intended >= deadline || Instant::now() >= deadline {
                                break;
                            }
                            let n = attempts.fetch_add(1, Ordering::Relaxed);
                            if n >= max {
                                break;
                            }
                            sleep_until(intended).await;
                            let name = ctx.username(n);
                            let mode = ctx.common.registration;
                            let secret = ctx.common.shared_secret.as_deref();
                            match matrix::register(&mut conn, &mut m, mode, secret, &name, PASSWORD).await {
                                Ok(_) => {
                                    m.record("register", intended.elapsed());
                                    progress.op(thread);
                                }
                                Err(e) => {
                                    m.error(&e.kind(), || e.to_string());
                                    // Do not spin on a failing target.
                                    sleep(Duration::from_millis(10)).await;
                                    progress.error(thread);
                                }
                            }
                        }
                        m
                    })
                })
                .collect();
            let mut m = Metrics::default();
            for h in handles {
                m.merge(h.await);
            }
            m
        }
    })?;
    let mut report = measure.report(info, None, merge_all(per_thread), "register");
    behind_schedule(&mut report, rate, ctx.common.duration, max);
    Ok(report)
}

/// At a fixed rate, warns when the target completed fewer operations than
/// were offered: the latencies then include the time spent behind schedule.
fn behind_schedule(report: &mut Report, rate: Option<f64>, duration: f64, max: u64) {
    let Some(rate) = rate else { return };
    let offered = ((rate * duration).floor() as u64).min(max);
    report.counters.insert("offered", offered);
    if (report.requests + report.error_count) * 100 < offered * 99 {
        report.warnings.push(format!(
            "the target kept up with {} of {offered} operations offered at {rate}/s; latencies count from the \
             intended send times, so they include the time spent behind schedule",
            report.requests
        ));
    }
}

/// Registers users `0..n` of this run.
fn register_users(ctx: &Arc<Ctx>, n: usize) -> Result<Vec<Session>, String> {
    eprintln!("setup: registering {n} users");
    let (sessions, _) = parallel(ctx, "registering users", (0..n as u64).collect(), |ctx, conn, m, i| {
        Box::pin(async move {
            let name = ctx.username(i);
            let secret = ctx.common.shared_secret.as_deref();
            matrix::register(conn, m, ctx.common.registration, secret, &name, PASSWORD).await
        })
    })?;
    Ok(sessions)
}

/// One initial /sync per user (no rooms, not waiting), returning each
/// user's `next_batch`: the receivers then start from "now", and nothing
/// sent after this is missed.
fn sync_tokens(ctx: &Arc<Ctx>, sessions: &[Session]) -> Result<Vec<String>, String> {
    eprintln!("setup: first /sync of {} users", sessions.len());
    let tokens: Vec<String> = sessions.iter().map(|s| s.access_token.clone()).collect();
    let (since, _) = parallel(ctx, "first syncs", tokens, |ctx, conn, m, token| {
        Box::pin(async move {
            let path = sync_path(None, 0, Some(TOKEN_ONLY_FILTER));
            let resp = call(conn, m, "GET", &path, Some(&token), None).await?;
            if resp.status != 200 {
                return Err(ApiError::Status { status: resp.status, errcode: String::new(), error: "sync".into() });
            }
            parse_sync(&resp.body, ctx.run).map(|b| b.next_batch).map_err(ApiError::BadJson)
        })
    })?;
    Ok(since)
}

/// Joins each (user, room) pair.
fn join_all(ctx: &Arc<Ctx>, pairs: Vec<(String, String)>) -> Result<(), String> {
    eprintln!("setup: {} joins", pairs.len());
    parallel(ctx, "joining", pairs, |_, conn, m, (token, room)| {
        Box::pin(async move { matrix::join(conn, m, &token, &room).await })
    })?;
    Ok(())
}

/// What a receiver does with the markers it finds.
trait OnMarker: Send + Sync + 'static {
    fn delivered(&self, marker: &Marker);
}

/// Long-polls /sync for one user until `stop`, recording each marker's
/// delivery latency (from its send time) as `delivery`.
async fn receive(
    ctx: Arc<Ctx>,
    thread: usize,
    token: String,
    mut since: String,
    stop: Arc<AtomicBool>,
    on_marker: Arc<dyn OnMarker>,
) -> Metrics {
    let progress = ctx.progress();
    let (mut conn, mut m) = (ctx.conn(), Metrics::default());
    while !stop.load(Ordering::Relaxed) {
        let path = sync_path(Some(&since), SYNC_TIMEOUT_MS, Some(TIMELINE_FILTER));
        let got = monoio::select! {
            r = call(&mut conn, &mut m, "GET", &path, Some(&token), None) => Some(r),
            _ = wait_for(|| stop.load(Ordering::Relaxed)) => None,
        };
        let Some(result) = got else { break };
        let (failure, detail) = match result {
            Ok(resp) if resp.status == 200 => match parse_sync(&resp.body, ctx.run) {
                Ok(batch) => {
                    let now = ctx.now_ns();
                    for marker in &batch.markers {
                        m.record("delivery", Duration::from_nanos(now.saturating_sub(marker.sent_ns)));
                        on_marker.delivered(marker);
                    }
                    m.count("timelines_limited", batch.limited);
                    since = batch.next_batch;
                    continue;
                }
                Err(e) => ("sync bad_json".to_owned(), e),
            },
            Ok(resp) => (format!("sync {} status", resp.status), String::from_utf8_lossy(&resp.body).into_owned()),
            Err(e) => (format!("sync {}", e.kind()), e.to_string()),
        };
        m.error(&failure, || detail);
        progress.error(thread);
        sleep(Duration::from_millis(100)).await;
    }
    m
}

/// Counters the messaging scenario's threads share.
#[derive(Default)]
struct MessagingState {
    next_id: AtomicU64,
    senders_done: AtomicUsize,
    expected: AtomicU64,
    delivered: AtomicU64,
}

impl OnMarker for MessagingState {
    fn delivered(&self, _: &Marker) {
        self.delivered.fetch_add(1, Ordering::Relaxed);
    }
}

/// `users` users, user i in room i mod `rooms`; users `0..senders` send,
/// one message at a time each, into their room; every user long-polls
/// /sync. Send latency and delivery latency (send to each member's sync)
/// both count from the intended send time.
fn messaging(ctx: &Arc<Ctx>, info: RunInfo, args: &MessagingArgs) -> Result<Report, String> {
    let (users, rooms, senders) = (args.users, args.rooms, args.senders);
    let sessions = register_users(ctx, users)?;
    eprintln!("setup: creating {rooms} rooms");
    let creators: Vec<(String, usize)> = (0..rooms).map(|r| (sessions[r].access_token.clone(), r)).collect();
    let (room_ids, _) = parallel(ctx, "creating rooms", creators, |ctx, conn, m, (token, r)| {
        Box::pin(async move { matrix::create_room(conn, m, &token, &format!("loadtest {:x} room {r}", ctx.run)).await })
    })?;
    let joins = (rooms..users).map(|u| (sessions[u].access_token.clone(), room_ids[u % rooms].clone())).collect();
    join_all(ctx, joins)?;
    let since = sync_tokens(ctx, &sessions)?;
    let members_of = move |room: usize| (users - room).div_ceil(rooms) as u64;

    eprintln!("measuring: {senders} senders, {users} receivers, {:.1} s", ctx.common.duration);
    let state = Arc::new(MessagingState::default());
    let stop = Arc::new(AtomicBool::new(false));
    let sessions = Arc::new(sessions);
    let room_ids = Arc::new(room_ids);
    let since = Arc::new(since);
    let measure = Measure::start(&ctx.common);
    let start = measure.wall;
    let deadline = start + Duration::from_secs_f64(ctx.common.duration);
    let send_end_ns = Arc::new(AtomicU64::new(0));
    let (threads, rate, max, grace) = (ctx.common.threads, args.rate, args.max_messages, args.grace);
    let shared = ctx.clone();
    let end = send_end_ns.clone();
    let st = state.clone();
    let per_thread = run_workers(ctx, "messages sent", move |thread| {
        let (ctx, state, stop, sessions, room_ids, since, send_end_ns) =
            (shared.clone(), st.clone(), stop.clone(), sessions.clone(), room_ids.clone(), since.clone(), end.clone());
        async move {
            let mut handles = Vec::new();
            for u in (thread..users).step_by(threads) {
                let on_marker: Arc<dyn OnMarker> = state.clone();
                let token = sessions[u].access_token.clone();
                handles.push(spawn(receive(ctx.clone(), thread, token, since[u].clone(), stop.clone(), on_marker)));
            }
            for s in (thread..senders).step_by(threads) {
                let (ctx, state, token) = (ctx.clone(), state.clone(), sessions[s].access_token.clone());
                let (room, members) = (room_ids[s % rooms].clone(), members_of(s % rooms));
                let send_end_ns = send_end_ns.clone();
                handles.push(spawn(async move {
                    let progress = ctx.progress();
                    let (mut conn, mut m) = (ctx.conn(), Metrics::default());
                    let mut pacer = rate.map(|r| Pacer::new(start, r, s, senders));
                    loop {
                        let intended = match &mut pacer {
                            Some(p) => p.next_send(),
                            None => Instant::now(),
                        };
                        // At a fixed rate a slow target leaves the lane behind
                        // schedule; the run still ends on time, and the report
                        // compares operations made to operations offered.
                        if intended >= deadline || Instant::now() >= deadline {
                            break;
                        }
                        let id = state.next_id.fetch_add(1, Ordering::Relaxed);
                        if id >= max {
                            break;
                        }
                        sleep_until(intended).await;
                        let sent_ns = (intended - ctx.epoch).as_nanos() as u64;
                        let body = Marker { run: ctx.run, id, sent_ns }.body();
                        let txn = format!("lt{:x}m{id}", ctx.run);
                        match matrix::send_text(&mut conn, &mut m, &token, &room, &txn, &body).await {
                            Ok(()) => {
                                m.record("send", intended.elapsed());
                                state.expected.fetch_add(members, Ordering::Relaxed);
                                progress.op(thread);
                            }
                            Err(e) => {
                                m.error(&format!("send {}", e.kind()), || e.to_string());
                                progress.error(thread);
                                // Do not spin on a failing target.
                                sleep(Duration::from_millis(10)).await;
                            }
                        }
                    }
                    send_end_ns.fetch_max(ctx.now_ns(), Ordering::Relaxed);
                    state.senders_done.fetch_add(1, Ordering::Relaxed);
                    m
                }));
            }
            if thread == 0 {
                // The run ends when every sender is done and every expected
                // delivery arrived, or `grace` after the last send.
                wait_for(|| state.senders_done.load(Ordering::Relaxed) == senders).await;
                let sending_ended = Instant::now();
                let grace = Duration::from_secs_f64(grace);
                wait_for(|| {
                    state.delivered.load(Ordering::Relaxed) >= state.expected.load(Ordering::Relaxed)
                        || sending_ended.elapsed() >= grace
                })
                .await;
                stop.store(true, Ordering::Relaxed);
            }
            let mut m = Metrics::default();
            for h in handles {
                m.merge(h.await);
            }
            m
        }
    })?;
    let mut metrics = merge_all(per_thread);
    let (expected, delivered) = (state.expected.load(Ordering::Relaxed), state.delivered.load(Ordering::Relaxed));
    metrics.count("messages_sent", metrics.samples("send"));
    metrics.count("deliveries_expected", expected);
    metrics.count("deliveries_received", delivered);
    metrics.count("deliveries_missing", expected.saturating_sub(delivered));
    let active = Duration::from_nanos(send_end_ns.load(Ordering::Relaxed)).saturating_sub(start - ctx.epoch);
    let mut report = measure.report(info, Some(active), metrics, "send");
    behind_schedule(&mut report, rate, ctx.common.duration, max);
    if delivered < expected {
        report
            .warnings
            .push(format!("{} of {expected} deliveries did not arrive within the grace period", expected - delivered));
    }
    Ok(report)
}

/// A user in `rooms` rooms with `messages_per_room` messages each: the
/// first initial /sync (cold) and `repeats` more (warm), unfiltered, as a
/// client starting from nothing would ask.
fn initial_sync(ctx: &Arc<Ctx>, info: RunInfo, args: &InitialSyncArgs) -> Result<Report, String> {
    let session = register_users(ctx, 1)?.remove(0);
    let token = session.access_token.clone();
    eprintln!("setup: creating {} rooms", args.rooms);
    let (room_ids, _) = parallel(ctx, "creating rooms", (0..args.rooms).collect(), move |ctx, conn, m, r| {
        let token = token.clone();
        Box::pin(async move { matrix::create_room(conn, m, &token, &format!("loadtest {:x} room {r}", ctx.run)).await })
    })?;
    let sends: Vec<(String, usize)> =
        room_ids.iter().flat_map(|room| (0..args.messages_per_room).map(move |k| (room.clone(), k))).collect();
    eprintln!("setup: sending {} messages", sends.len());
    let token = session.access_token.clone();
    parallel(ctx, "sending messages", sends, move |ctx, conn, m, (room, k)| {
        let token = token.clone();
        Box::pin(async move {
            let txn = format!("lt{:x}s{k}{}", ctx.run, matrix::encode(&room));
            matrix::send_text(conn, m, &token, &room, &txn, &format!("message {k}")).await
        })
    })?;

    let (repeats, rooms) = (args.repeats, args.rooms as u64);
    let measure = Measure::start(&ctx.common);
    let deadline = measure.wall + Duration::from_secs_f64(ctx.common.duration);
    let shared = ctx.clone();
    let token = session.access_token;
    let per_thread = run_workers(ctx, "initial syncs", move |thread| {
        let (ctx, token) = (shared.clone(), token.clone());
        async move {
            let mut m = Metrics::default();
            if thread != 0 {
                return m;
            }
            #[derive(Deserialize)]
            struct Rooms {
                #[serde(default)]
                join: serde_json::Map<String, serde_json::Value>,
            }
            #[derive(Deserialize)]
            struct InitialSync {
                rooms: Option<Rooms>,
            }
            let progress = ctx.progress();
            let mut conn = ctx.conn();
            let path = sync_path(None, 0, None);
            for i in 0..=repeats {
                if i > 0 && Instant::now() >= deadline {
                    break;
                }
                let t0 = Instant::now();
                let resp = call(&mut conn, &mut m, "GET", &path, Some(&token), None).await;
                let took = t0.elapsed();
                match resp {
                    Ok(r) if r.status == 200 => {
                        m.record(if i == 0 { "initial_sync_cold" } else { "initial_sync_warm" }, took);
                        progress.op(thread);
                        if i == 0 {
                            let seen = serde_json::from_slice::<InitialSync>(&r.body)
                                .ok()
                                .and_then(|s| s.rooms)
                                .map_or(0, |r| r.join.len() as u64);
                            m.count("rooms_expected", rooms);
                            m.count("rooms_in_cold_response", seen);
                            m.count("cold_response_bytes", r.body.len() as u64);
                        }
                    }
                    Ok(r) => m.error(&format!("{} status", r.status), || String::from_utf8_lossy(&r.body).into_owned()),
                    Err(e) => m.error(&e.kind(), || e.to_string()),
                }
            }
            m
        }
    })?;
    let metrics = merge_all(per_thread);
    let ops = if metrics.samples("initial_sync_warm") > 0 { "initial_sync_warm" } else { "initial_sync_cold" };
    Ok(measure.report(info, None, metrics, ops))
}

/// Per-message delivery counts of the fanout scenario.
struct FanoutState {
    delivered: Vec<AtomicU64>,
}

impl OnMarker for FanoutState {
    fn delivered(&self, marker: &Marker) {
        if let Some(n) = self.delivered.get(marker.id as usize) {
            n.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A room with `members` local members, all long-polling /sync; member 0
/// sends one message at a time and waits until every member's sync has it.
/// `fanout_all` is the time from send until the last member had it.
fn fanout(ctx: &Arc<Ctx>, info: RunInfo, args: &FanoutArgs) -> Result<Report, String> {
    let members = args.members;
    let sessions = register_users(ctx, members)?;
    eprintln!("setup: creating the room");
    let creator = sessions[0].access_token.clone();
    let (room, _) = parallel(ctx, "creating the room", vec![creator], |ctx, conn, m, token| {
        Box::pin(async move { matrix::create_room(conn, m, &token, &format!("loadtest {:x} fanout", ctx.run)).await })
    })?;
    let room = room.into_iter().next().expect("one room");
    join_all(ctx, sessions[1..].iter().map(|s| (s.access_token.clone(), room.clone())).collect())?;
    let since = sync_tokens(ctx, &sessions)?;

    eprintln!("measuring: {} messages to {members} members", args.messages);
    let state = Arc::new(FanoutState { delivered: (0..args.messages).map(|_| AtomicU64::new(0)).collect() });
    let stop = Arc::new(AtomicBool::new(false));
    let sessions = Arc::new(sessions);
    let since = Arc::new(since);
    let measure = Measure::start(&ctx.common);
    let deadline = measure.wall + Duration::from_secs_f64(ctx.common.duration);
    let (threads, messages, grace) = (ctx.common.threads, args.messages, Duration::from_secs_f64(args.grace));
    let shared = ctx.clone();
    let st = state.clone();
    let per_thread = run_workers(ctx, "messages delivered to every member", move |thread| {
        let (ctx, state, stop, sessions, since, room) =
            (shared.clone(), st.clone(), stop.clone(), sessions.clone(), since.clone(), room.clone());
        async move {
            let mut handles = Vec::new();
            for u in (thread..members).step_by(threads) {
                let on_marker: Arc<dyn OnMarker> = state.clone();
                let token = sessions[u].access_token.clone();
                handles.push(spawn(receive(ctx.clone(), thread, token, since[u].clone(), stop.clone(), on_marker)));
            }
            let mut m = Metrics::default();
            if thread == 0 {
                let progress = ctx.progress();
                let mut conn = ctx.conn();
                let token = sessions[0].access_token.clone();
                for id in 0..messages {
                    if id > 0 && Instant::now() >= deadline {
                        break;
                    }
                    // Let every receiver get back into its long-poll.
                    sleep(Duration::from_millis(500)).await;
                    let sent = Instant::now();
                    let marker = Marker { run: ctx.run, id, sent_ns: (sent - ctx.epoch).as_nanos() as u64 };
                    let txn = format!("lt{:x}f{id}", ctx.run);
                    if let Err(e) = matrix::send_text(&mut conn, &mut m, &token, &room, &txn, &marker.body()).await {
                        m.error(&format!("send {}", e.kind()), || e.to_string());
                        progress.error(thread);
                        continue;
                    }
                    m.record("send", sent.elapsed());
                    let arrived = &state.delivered[id as usize];
                    wait_for(|| arrived.load(Ordering::Relaxed) >= members as u64 || sent.elapsed() >= grace).await;
                    if arrived.load(Ordering::Relaxed) >= members as u64 {
                        m.record("fanout_all", sent.elapsed());
                        progress.op(thread);
                    } else {
                        m.count("messages_not_delivered_to_all", 1);
                    }
                }
                stop.store(true, Ordering::Relaxed);
            }
            for h in handles {
                m.merge(h.await);
            }
            m
        }
    })?;
    let mut metrics = merge_all(per_thread);
    let sent = metrics.samples("send");
    let delivered: u64 = state.delivered.iter().map(|n| n.load(Ordering::Relaxed)).sum();
    metrics.count("members", members as u64);
    metrics.count("deliveries_expected", sent * members as u64);
    metrics.count("deliveries_received", delivered);
    let mut report = measure.report(info, None, metrics, "fanout_all");
    if delivered < sent * members as u64 {
        report.warnings.push(format!(
            "{} of {} deliveries did not arrive within {:.0} s",
            sent * members as u64 - delivered,
            sent * members as u64,
            args.grace
        ));
    }
    Ok(report)
}
