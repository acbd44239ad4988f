//! HTTP/1.1 server: parsing, routing, connections, listeners.

mod chunked;
mod conn;
mod forwarded;
mod head;
mod request;
mod response;
mod router;
mod server;

pub use forwarded::TrustedProxies;
pub use request::{Headers, Method, Request};
pub use response::Response;
pub use router::{Endpoint, Handler, HandlerFuture, Route, Router};
pub use server::{Limits, Listener};
