//! State resolution: the entry points and the stepping API.
//!
//! A resolution is a future that charges a work meter as it goes.
//! [`Resolution::step`] runs it for at most about `budget` units of work and
//! returns `Poll::Pending` if it is not finished, so a shard can serve other
//! rooms between steps; [`resolve`] runs it to the end in one go, and
//! [`resolve_yielding`] awaits a caller-supplied yield future between steps.

mod budget;
mod conflicted;
mod iterative;
mod ordering;
mod v1;
mod v2;

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use crate::auth_chain::{EventIdx, RoomGraph};
use crate::event::Event;
use crate::rules::StateResAlgorithm;
use budget::Meter;

/// The resolved state: one event per `(type, state_key)`, ordered by key index.
pub type ResolvedState = Vec<EventIdx>;

/// A state resolution in progress, advanced by [`Resolution::step`].
pub struct Resolution<'a> {
    meter: Rc<Meter>,
    work: Pin<Box<dyn Future<Output = ResolvedState> + 'a>>,
}

impl<'a> Resolution<'a> {
    /// Prepares the resolution of `state_sets` (each a list of state event
    /// indices, one per key) in `graph`'s room. Does no work yet.
    pub fn new<E: Event, S: AsRef<[EventIdx]>>(graph: &'a RoomGraph<E>, state_sets: &'a [S]) -> Self {
        let meter = Rc::new(Meter::default());
        let work_meter = Rc::clone(&meter);
        let work: Pin<Box<dyn Future<Output = ResolvedState> + 'a>> = match graph.rules().state_res {
            StateResAlgorithm::V1 => Box::pin(async move { v1::resolve(graph, state_sets, &work_meter).await }),
            StateResAlgorithm::V2 | StateResAlgorithm::V2_1 => {
                Box::pin(async move { v2::resolve(graph, state_sets, &work_meter).await })
            }
        };
        Resolution { meter, work }
    }

    /// Does at most about `budget` units of work (a unit is one event or state
    /// key touched, or one auth check; a single sort may overrun by the size
    /// of what it sorts). `Poll::Ready` carries the resolved state.
    ///
    /// # Panics
    ///
    /// If called again after it returned `Poll::Ready`, like a finished future.
    pub fn step(&mut self, budget: u64) -> Poll<ResolvedState> {
        self.meter.refill(budget.max(1));
        self.work.as_mut().poll(&mut Context::from_waker(Waker::noop()))
    }

    /// Units of work charged so far.
    pub fn work_done(&self) -> u64 {
        self.meter.spent()
    }
}

/// Resolves `state_sets` in one go.
pub fn resolve<E: Event, S: AsRef<[EventIdx]>>(graph: &RoomGraph<E>, state_sets: &[S]) -> ResolvedState {
    let mut resolution = Resolution::new(graph, state_sets);
    loop {
        if let Poll::Ready(state) = resolution.step(u64::MAX) {
            return state;
        }
    }
}

/// Resolves `state_sets`, awaiting `yield_now()` after every `units_per_step`
/// units of work so that other tasks on the same thread can run.
pub async fn resolve_yielding<E: Event, S: AsRef<[EventIdx]>, F: Future<Output = ()>>(
    graph: &RoomGraph<E>,
    state_sets: &[S],
    units_per_step: u64,
    mut yield_now: impl FnMut() -> F,
) -> ResolvedState {
    let mut resolution = Resolution::new(graph, state_sets);
    loop {
        match resolution.step(units_per_step) {
            Poll::Ready(state) => return state,
            Poll::Pending => yield_now().await,
        }
    }
}
