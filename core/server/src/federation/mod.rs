//! Talking to other servers: finding them ([`resolve`]), their signing keys
//! ([`keys`]), signing what we send ([`request`]) and checking what they
//! send ([`auth`]).
//!
//! Each shard has its own [`Federation`]: its own HTTP client and
//! connections, its own caches of resolved names and keys. Nothing here is
//! shared between cores; a cache miss on one shard costs one lookup there,
//! and fetched keys are also stored, so other shards and restarts find them.

pub mod acl;
pub mod auth;
pub mod edus;
pub mod graph;
pub mod invite;
pub mod join;
pub mod keys;
pub mod knock;
pub mod leave;
pub mod outbound;
pub mod pdu;
pub mod request;
pub mod resolve;
pub mod transactions;

use std::sync::Arc;

use tessera_net::http::{ClientError, ClientLimits, HttpClient};

use crate::error::ApiError;

/// The server part of a user ID (or any `sigil localpart:server` ID);
/// empty when there is none. Localparts cannot hold `:`, so the first one
/// splits.
pub fn server_of(id: &str) -> &str {
    id.split_once(':').map_or("", |(_, server)| server)
}

/// A shard's federation state.
pub struct Federation {
    /// Connections to other servers.
    pub client: HttpClient,
    /// Where server names lead.
    pub resolver: resolve::Resolver,
    /// Other servers' verify keys.
    pub keys: keys::KeyCache,
    /// Answers to transactions already received.
    pub transactions: transactions::Seen,
    /// What waits to be sent, per destination this shard sends to.
    pub outbox: outbound::Outbox,
}

impl Federation {
    /// State for one shard; `tls` trusts the roots outbound requests accept.
    pub fn new(tls: Arc<rustls::ClientConfig>) -> Self {
        Self {
            client: HttpClient::new(tls, ClientLimits::default()),
            resolver: resolve::Resolver::default(),
            keys: keys::KeyCache::default(),
            transactions: transactions::Seen::default(),
            outbox: outbound::Outbox::default(),
        }
    }
}

/// Why a request to another server failed.
#[derive(Debug, thiserror::Error)]
pub enum FedError {
    #[error("cannot find server {server}: {reason}")]
    Resolve { server: String, reason: String },
    #[error("request to {server} failed: {source}")]
    Http { server: String, source: ClientError },
    #[error("{server} answered {status}: {errcode} {message}")]
    Status {
        server: String,
        status: u16,
        errcode: String,
        message: String,
        /// The answer's other fields (e.g. `room_version` beside
        /// `M_INCOMPATIBLE_ROOM_VERSION`).
        extra: serde_json::Map<String, serde_json::Value>,
    },
    #[error("{server} sent an unusable answer: {reason}")]
    Invalid { server: String, reason: String },
    #[error("storage: {0}")]
    Storage(#[from] tessera_storage::StorageError),
}

impl From<FedError> for ApiError {
    /// What a client sees when a request it caused to another server
    /// failed: the remote's own 400, 403 and 404 are passed on with their
    /// error code (an unknown user or alias, a join the room's rules
    /// refuse, a room version we lack), as Synapse passes them; anything
    /// else (our request refused as unsigned, the remote down) is a bad
    /// gateway.
    fn from(e: FedError) -> Self {
        match e {
            FedError::Status { status: status @ (400 | 403 | 404), errcode, message, extra, .. } => {
                let errcode = if errcode.is_empty() { "M_UNKNOWN".to_owned() } else { errcode };
                let mut error = ApiError::new(status, errcode, message);
                error.extra = extra;
                error
            }
            e @ FedError::Storage(_) => ApiError::internal(e.to_string()),
            e => ApiError::new(502, "M_UNKNOWN", e.to_string()),
        }
    }
}
