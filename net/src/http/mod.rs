//! HTTP/1.1: the server (parsing, routing, connections, listeners) and the
//! client for requests to other servers.

mod chunked;
mod client;
mod conn;
mod date;
mod forwarded;
mod head;
mod request;
mod response;
mod router;
mod server;

pub use client::{
    client_tls_config, root_store, ClientError, ClientLimits, HttpClient, OutRequest, OutResponse, Target,
};
pub use forwarded::TrustedProxies;
pub use request::{Headers, Method, Request};
pub use response::Response;
pub use router::{Endpoint, Handler, HandlerFuture, Route, Router};
pub use server::{Limits, Listener};

/// Entry points for cargo-fuzz (`net/fuzz`); not part of the API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    /// Parses `data` as a stream of pipelined requests, heads and chunked
    /// bodies, as a connection would. Must never panic.
    pub fn parse_stream(data: &[u8]) {
        let mut rest = data;
        while let Ok(Some((head, used))) = super::head::parse(rest) {
            rest = &rest[used..];
            if head.framing == super::head::Framing::Chunked {
                let mut decoder = super::chunked::ChunkedDecoder::new(1 << 16);
                let mut body = Vec::new();
                match decoder.feed(rest, &mut body) {
                    Ok(n) if decoder.is_done() => rest = &rest[n..],
                    _ => return,
                }
            } else if let super::head::Framing::Length(n) = head.framing {
                rest = &rest[rest.len().min(n as usize)..];
            }
            let _ = head.headers.get("x-forwarded-for");
        }
    }
}
