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
mod v2;

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use crate::auth_chain::{EventIdx, RoomGraph};
use crate::event::Event;
use budget::Meter;

/// The resolved state: one event per `(type, state_key)`, ordered by key index.
pub type ResolvedState = Vec<EventIdx>;

/// Why a resolution was not started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResolveError {
    /// Room version 1 state resolution is not implemented by this crate yet.
    UnsupportedAlgorithm,
}

impl std::fmt::Display for ResolveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("room version 1 state resolution is not supported")
    }
}

impl std::error::Error for ResolveError {}

/// A state resolution in progress, advanced by [`Resolution::step`].
pub struct Resolution<'a> {
    meter: Rc<Meter>,
    work: Pin<Box<dyn Future<Output = ResolvedState> + 'a>>,
}

impl<'a> Resolution<'a> {
    /// Prepares the resolution of `state_sets` (each a list of state event
    /// indices, one per key) in `graph`'s room. Does no work yet.
    pub fn new<E: Event, S: AsRef<[EventIdx]>>(
        graph: &'a RoomGraph<E>,
        state_sets: &'a [S],
    ) -> Result<Self, ResolveError> {
        if graph.rules().state_res == crate::rules::StateResAlgorithm::V1 {
            return Err(ResolveError::UnsupportedAlgorithm);
        }
        let meter = Rc::new(Meter::default());
        let work_meter = Rc::clone(&meter);
        let work = Box::pin(async move { v2::resolve(graph, state_sets, &work_meter).await });
        Ok(Resolution { meter, work })
    }

    /// Does at most about `budget` units of work (a unit is one event or state
    /// key touched, or one auth check; a single sort may overrun by the size
    /// of what it sorts). `Poll::Ready` carries the resolved state.
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
pub fn resolve<E: Event, S: AsRef<[EventIdx]>>(
    graph: &RoomGraph<E>,
    state_sets: &[S],
) -> Result<ResolvedState, ResolveError> {
    let mut resolution = Resolution::new(graph, state_sets)?;
    loop {
        if let Poll::Ready(state) = resolution.step(u64::MAX) {
            return Ok(state);
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
) -> Result<ResolvedState, ResolveError> {
    let mut resolution = Resolution::new(graph, state_sets)?;
    loop {
        match resolution.step(units_per_step) {
            Poll::Ready(state) => return Ok(state),
            Poll::Pending => yield_now().await,
        }
    }
}
