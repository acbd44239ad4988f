//! Matrix event authorisation rules and state resolution (v1, v2, v2.1), over a
//! trait for event access so it runs on any runtime and is testable alone.
//! This crate is a leaf of the workspace.
//!
//! Map:
//! - [`event`]: the [`Event`] trait the crate reads PDUs through.
//! - [`rules`]: [`RoomRules`], one struct of flags per room version.
//! - [`auth`]: the authorisation rules ([`check_auth`], [`check_auth_events`]).
//! - [`auth_chain`]: [`RoomGraph`], the dense auth-chain index of a room.
//! - [`resolve`](mod@resolve): state resolution, in one go or in budgeted steps.

pub mod auth;
pub mod auth_chain;
mod canonical_json;
pub mod event;
pub mod resolve;
pub mod rules;
#[cfg(feature = "test-util")]
pub mod testing;

pub use auth::{check_auth, check_auth_events, Rejection, StateView};
pub use auth_chain::{EventIdx, GraphError, KeyIdx, RoomGraph};
pub use event::{Event, Membership};
pub use resolve::{resolve, resolve_yielding, Resolution, ResolvedState};
pub use rules::{RoomRules, StateResAlgorithm};
