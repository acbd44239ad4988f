//! The cross-core mesh between real shard threads.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::mpsc;

use tessera_net::mesh::Mesh;
use tessera_net::runtime::{sleep, spawn, Duration};
use tessera_net::shard::{launch, Shard, ShardSpec};

/// Each shard counts the jobs it ran.
#[derive(Default)]
struct Counter {
    ran: Cell<u64>,
}

/// Runs `body` on shard 0 of a 2-shard mesh, then stops both shards.
fn on_two_shards<F, Fut>(body: F) -> tessera_net::mesh::MeshStatsSnapshot
where
    F: FnOnce(Rc<Shard<Counter>>) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    let (mesh, inboxes) = Mesh::<Counter>::new(2, 16);
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let handles = launch("mesh-test", false, inboxes, move |spec: ShardSpec<Counter>| {
        let body = body.clone();
        let done = done_tx.clone();
        async move {
            let shard = Shard::start(spec.id, spec.inbox, Counter::default());
            if spec.id == 0 {
                body(shard).await;
                let _ = done.send(());
            } else {
                // Shard 1 only serves jobs until the test is over.
                sleep(Duration::from_secs(3600)).await;
            }
            Ok(())
        }
    })
    .unwrap();
    done_rx.recv_timeout(std::time::Duration::from_secs(30)).expect("shard 0 did not finish");
    let stats = mesh.stats();
    drop(handles); // shard 1 sleeps; the test process exits without joining it
    stats
}

#[test]
fn ask_runs_on_the_other_shard_and_returns_its_answer() {
    on_two_shards(|shard| async move {
        let (id, ran) = shard
            .ask(1, |s| {
                s.state.ran.set(s.state.ran.get() + 1);
                (s.id(), s.state.ran.get())
            })
            .await
            .unwrap();
        assert_eq!((id, ran), (1, 1));
    });
}

#[test]
fn concurrent_asks_travel_in_batches_not_one_wake_each() {
    let stats = on_two_shards(|shard| async move {
        let tasks: Vec<_> = (0..1000u64)
            .map(|i| {
                let shard = shard.clone();
                spawn(async move { shard.ask(1, move |_| i * 2).await.unwrap() })
            })
            .collect();
        let mut sum = 0;
        for t in tasks {
            sum += t.await;
        }
        assert_eq!(sum, 999 * 1000);
    });
    // 1000 requests went 0 → 1 and 1000 replies 1 → 0, in a handful of batches.
    assert_eq!(stats.jobs[1], 1000, "{stats:?}");
    assert_eq!(stats.jobs[2], 1000, "{stats:?}");
    assert!(stats.batches[1] <= 10 && stats.batches[2] <= 10, "not batched: {stats:?}");
}

#[test]
fn ask_async_awaits_work_on_the_destination() {
    on_two_shards(|shard| async move {
        let answer = shard
            .ask_async(1, |s| {
                let s = s.clone();
                async move {
                    sleep(Duration::from_millis(5)).await;
                    s.id() + 40
                }
            })
            .await
            .unwrap();
        assert_eq!(answer, 41);
    });
}

#[test]
fn broadcast_reaches_every_shard_including_self() {
    on_two_shards(|shard| async move {
        shard.broadcast(|s| s.state.ran.set(s.state.ran.get() + 1));
        // A round trip to each shard after the broadcast sees its effect,
        // because jobs from one shard to another run in order.
        for k in 0..2 {
            assert_eq!(shard.ask(k, |s| s.state.ran.get()).await.unwrap(), 1, "shard {k}");
        }
    });
}
