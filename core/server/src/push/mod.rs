//! Push notifications (spec: client-server API, "Push Notifications").
//!
//! Today: each user's push rules ([`rules`]), which clients read at start-up
//! and edit from their notification settings. Evaluating the rules against
//! new events (notification counts, highlights) and sending to push
//! gateways come later, on top of the same rule sets.

pub mod rules;
