//! The stepping API: a resolution run on a small budget takes many bounded
//! steps and ends with exactly the state a one-shot resolution gives.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use tessera_statres::testing::{random_forks, Pdu, Shape};
use tessera_statres::{resolve, resolve_yielding, EventIdx, Resolution, RoomGraph};

fn fixture(version: &str) -> (RoomGraph<Pdu>, Vec<Vec<EventIdx>>) {
    let forks = random_forks(version, 7, Shape { members: 400, moderators: 6, forks: 3, actions: 300 });
    let graph = forks[0].graph();
    let sets = forks.iter().map(|fork| fork.state_indices(&graph)).collect();
    (graph, sets)
}

#[test]
fn small_budget_takes_many_bounded_steps_and_gives_the_same_state() {
    for version in ["1", "11", "12"] {
        let (graph, sets) = fixture(version);
        let expected = resolve(&graph, &sets);
        let budget = 64;
        let mut resolution = Resolution::new(&graph, &sets);
        let mut steps = 0u64;
        let mut largest_step = 0;
        let result = loop {
            let before = resolution.work_done();
            let poll = resolution.step(budget);
            steps += 1;
            largest_step = largest_step.max(resolution.work_done() - before);
            if let Poll::Ready(state) = poll {
                break state;
            }
        };
        assert_eq!(result, expected, "v{version}");
        // Steps are bounded (below), so the number of steps grows with the work.
        let work = resolution.work_done();
        assert!(steps > 5 && steps >= work / (budget + 2 * 256), "v{version}: {steps} steps for {work} units");
        // A step may overrun its budget by at most one chunk of work (256
        // units) or one sort of the events it orders.
        assert!(largest_step <= budget + 2 * 256 + sets[0].len() as u64, "v{version}: a step did {largest_step} units");
    }
}

/// Pending once, like a runtime's `yield_now`.
struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();
    fn poll(mut self: std::pin::Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        if std::mem::replace(&mut self.0, true) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

#[test]
fn yielding_resolution_returns_to_the_executor_between_steps_and_gives_the_same_state() {
    let (graph, sets) = fixture("12");
    let expected = resolve(&graph, &sets);
    let mut future = pin!(resolve_yielding(&graph, &sets, 100, || YieldNow(false)));
    let mut returns_to_executor = 0;
    let result = loop {
        match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(result) => break result,
            Poll::Pending => returns_to_executor += 1,
        }
    };
    assert_eq!(result, expected);
    assert!(returns_to_executor > 20, "only {returns_to_executor} returns to the executor");
}
