//! Push notifications (spec: client-server API, "Push Notifications").
//!
//! Each user's push rules ([`rules`]), which clients read at start-up and
//! edit from their notification settings; their evaluation against events
//! ([`evaluate`]); and the unread notification counts `/sync` reports
//! ([`counts`]). Sending to push gateways comes later, on the same
//! evaluation.

pub mod counts;
pub mod evaluate;
pub mod rules;
