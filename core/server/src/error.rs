//! The Client-Server API's error envelope (spec: client-server API,
//! "Standard error response"): a status code, an `errcode` and a message,
//! sometimes with extra fields.

use std::borrow::Cow;

use serde_json::{Map, Value};
use tessera_net::http::Response;
use tessera_storage::StorageError;

/// An error answer of an endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// The spec's `errcode`, e.g. `M_FORBIDDEN` (owned only when passed on
    /// from another server's answer).
    pub errcode: Cow<'static, str>,
    /// Human-readable message.
    pub message: String,
    /// Fields beside `errcode` and `error` (e.g. `soft_logout`).
    pub extra: Map<String, Value>,
}

/// What endpoint handlers return.
pub type ApiResult = Result<Response, ApiError>;

impl ApiError {
    /// An error with any status and code.
    pub fn new(status: u16, errcode: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self { status, errcode: errcode.into(), message: message.into(), extra: Map::new() }
    }

    /// Adds a field beside `errcode` and `error`.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extra.insert(key.to_owned(), value.into());
        self
    }

    /// 400 `M_BAD_JSON`: well-formed JSON of the wrong shape.
    pub fn bad_json(message: impl Into<String>) -> Self {
        Self::new(400, "M_BAD_JSON", message)
    }

    /// 400 `M_NOT_JSON`: the body is not JSON at all.
    pub fn not_json(message: impl Into<String>) -> Self {
        Self::new(400, "M_NOT_JSON", message)
    }

    /// 400 `M_INVALID_PARAM`.
    pub fn invalid_param(message: impl Into<String>) -> Self {
        Self::new(400, "M_INVALID_PARAM", message)
    }

    /// 400 `M_MISSING_PARAM`.
    pub fn missing_param(message: impl Into<String>) -> Self {
        Self::new(400, "M_MISSING_PARAM", message)
    }

    /// 403 `M_FORBIDDEN`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "M_FORBIDDEN", message)
    }

    /// 404 `M_NOT_FOUND`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, "M_NOT_FOUND", message)
    }

    /// 500 `M_UNKNOWN`: our fault, not the client's.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "M_UNKNOWN", message)
    }

    /// 400 `M_UNKNOWN` for requests the spec gives no better code for.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "M_UNKNOWN", message)
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        tracing::error!(error = %e, "storage error");
        Self::internal("storage error")
    }
}

impl From<tessera_net::mesh::ShardGone> for ApiError {
    fn from(_: tessera_net::mesh::ShardGone) -> Self {
        Self::new(503, "M_UNKNOWN", "the server is shutting down")
    }
}

impl From<ApiError> for Response {
    fn from(e: ApiError) -> Self {
        let mut body = e.extra;
        body.insert("errcode".into(), e.errcode.into_owned().into());
        body.insert("error".into(), e.message.into());
        Response::with_status(e.status, "application/json", Value::Object(body).to_string())
    }
}
