//! A parsed HTTP request as handlers see it.

use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;

/// Request methods the server distinguishes; anything else is `Other` and
/// can only ever be answered with 405.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// GET
    Get,
    /// HEAD: routed as GET, answered without a body.
    Head,
    /// POST
    Post,
    /// PUT
    Put,
    /// DELETE
    Delete,
    /// OPTIONS: answered by the server itself with CORS headers, as the
    /// spec requires ("the server MUST NOT perform any logic defined for the
    /// endpoints when approached with an OPTIONS request").
    Options,
    /// PATCH
    Patch,
    /// Any other token.
    Other,
}

impl Method {
    /// Parses a request-line method token.
    pub fn from_token(token: &str) -> Self {
        match token {
            "GET" => Self::Get,
            "HEAD" => Self::Head,
            "POST" => Self::Post,
            "PUT" => Self::Put,
            "DELETE" => Self::Delete,
            "OPTIONS" => Self::Options,
            "PATCH" => Self::Patch,
            _ => Self::Other,
        }
    }

    /// The method's token.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Head => "HEAD",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Delete => "DELETE",
            Self::Options => "OPTIONS",
            Self::Patch => "PATCH",
            Self::Other => "OTHER",
        }
    }
}

/// Request headers: the raw header block copied once out of the read buffer,
/// with the position of each name and value. One allocation for all
/// headers instead of two per header.
#[derive(Clone, Debug, Default)]
pub struct Headers {
    block: Vec<u8>,
    /// (name start, name end, value start, value end) into `block`.
    spans: Vec<(u32, u32, u32, u32)>,
}

impl Headers {
    pub(crate) fn from_parsed(parsed: &[httparse::Header<'_>]) -> Self {
        let total: usize = parsed.iter().map(|h| h.name.len() + h.value.len()).sum();
        let mut block = Vec::with_capacity(total);
        let mut spans = Vec::with_capacity(parsed.len());
        for h in parsed {
            let n0 = block.len() as u32;
            block.extend_from_slice(h.name.as_bytes());
            let n1 = block.len() as u32;
            block.extend_from_slice(h.value);
            spans.push((n0, n1, n1, block.len() as u32));
        }
        Self { block, spans }
    }

    /// Every header as (name, value), in the order received.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.spans.iter().map(|&(n0, n1, v0, v1)| {
            let name = &self.block[n0 as usize..n1 as usize];
            // httparse only accepts token characters in names, all ASCII.
            (std::str::from_utf8(name).unwrap_or(""), &self.block[v0 as usize..v1 as usize])
        })
    }

    /// The first value of a header, by case-insensitive name.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v)
    }

    /// Every value of a header, by case-insensitive name.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v)
    }
}

/// An HTTP request routed to a handler.
#[derive(Debug)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The path, still percent-encoded, without the query string.
    pub path: String,
    /// The query string after `?`, still percent-encoded.
    pub query: Option<String>,
    /// The request headers.
    pub headers: Headers,
    /// The whole body (chunked bodies arrive already decoded).
    pub body: Bytes,
    /// The TCP peer.
    pub peer: SocketAddr,
    /// The client's address: the peer, or the address a trusted reverse
    /// proxy reported in `X-Forwarded-For`.
    pub client_ip: IpAddr,
    /// Path parameters of the matched route, percent-decoded, in order.
    pub params: Vec<String>,
}
