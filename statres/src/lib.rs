//! Matrix event authorisation rules and state resolution (v1, v2, v2.1),
//! over a trait for event access so it runs on any runtime and is testable
//! alone. Built by the statres issue; this crate is a leaf of the workspace.
