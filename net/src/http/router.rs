//! Path routing: a trie of path segments with `{param}` wildcards.
//!
//! Lookup tells apart the three answers the spec needs: a handler, a known
//! path with the wrong method (405 `M_UNRECOGNIZED`), and an unknown path
//! (404 `M_UNRECOGNIZED`). Static segments win over parameters; if a static
//! branch dead-ends, the parameter branch is tried (backtracking), so
//! `/rooms/{id}/state` and `/rooms/joined` coexist.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use percent_encoding::percent_decode_str;

use super::request::{Method, Request};
use super::response::Response;

/// A boxed handler future. Handlers run on the shard that accepted the
/// request and may hold `Rc`s, so the future is not `Send`.
pub type HandlerFuture = Pin<Box<dyn Future<Output = Response>>>;

/// What answers a route.
pub enum Handler {
    /// A handler that answers without waiting on anything (no allocation of a
    /// future per request).
    Ready(Box<dyn Fn(Request) -> Response>),
    /// A handler that awaits (storage, other shards, long-polls).
    Async(Box<dyn Fn(Request) -> HandlerFuture>),
}

/// A registered route.
pub struct Endpoint {
    /// Index of the endpoint, used for per-endpoint metrics.
    pub id: usize,
    /// Label for logs and metrics: `METHOD /path/{template}`.
    pub name: Rc<str>,
    /// Largest body accepted, checked before the body is read; `None` means
    /// the listener's limit for JSON bodies. Upload routes set their own.
    pub max_body: Option<usize>,
    /// The handler.
    pub handler: Handler,
}

#[derive(Default)]
struct Node {
    literal: Vec<(Box<str>, Node)>,
    param: Option<Box<Node>>,
    endpoints: Vec<(Method, usize)>,
}

/// The routing table of one listener on one shard.
#[derive(Default)]
pub struct Router {
    root: Node,
    endpoints: Vec<Endpoint>,
}

/// The outcome of a lookup.
pub enum Route<'r> {
    /// A handler, with the percent-decoded path parameters.
    Found(&'r Endpoint, Vec<String>),
    /// The path exists, not with this method.
    MethodNotAllowed,
    /// No route has this path.
    NotFound,
}

impl Router {
    /// An empty router.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a route whose handler answers at once.
    pub fn ready(
        &mut self,
        method: Method,
        template: &str,
        handler: impl Fn(Request) -> Response + 'static,
    ) -> &mut Self {
        self.add(method, template, None, Handler::Ready(Box::new(handler)))
    }

    /// Adds a route whose handler is asynchronous.
    pub fn route<F>(&mut self, method: Method, template: &str, handler: impl Fn(Request) -> F + 'static) -> &mut Self
    where
        F: Future<Output = Response> + 'static,
    {
        let handler = Handler::Async(Box::new(move |req| Box::pin(handler(req))));
        self.add(method, template, None, handler)
    }

    /// Adds a route, with an explicit body limit if `max_body` is set.
    ///
    /// # Panics
    /// If the same method and template are registered twice: that is a
    /// programming error, found by the router tests at start-up.
    pub fn add(&mut self, method: Method, template: &str, max_body: Option<usize>, handler: Handler) -> &mut Self {
        let mut node = &mut self.root;
        for segment in segments(template) {
            node = if segment.starts_with('{') && segment.ends_with('}') {
                node.param.get_or_insert_with(Box::default)
            } else {
                let at = match node.literal.iter().position(|(s, _)| &**s == segment) {
                    Some(at) => at,
                    None => {
                        node.literal.push((segment.into(), Node::default()));
                        node.literal.len() - 1
                    }
                };
                &mut node.literal[at].1
            };
        }
        assert!(
            !node.endpoints.iter().any(|(m, _)| *m == method),
            "route registered twice: {} {template}",
            method.as_str()
        );
        let id = self.endpoints.len();
        node.endpoints.push((method, id));
        let name = format!("{} {template}", method.as_str()).into();
        self.endpoints.push(Endpoint { id, name, max_body, handler });
        self
    }

    /// Every endpoint, by id.
    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    /// Finds the endpoint for a method and a (percent-encoded) path.
    pub fn lookup(&self, method: Method, path: &str) -> Route<'_> {
        let mut params = Vec::new();
        let Some(node) = find(&self.root, path, &mut params) else {
            return Route::NotFound;
        };
        let wanted = if method == Method::Head { Method::Get } else { method };
        match node.endpoints.iter().find(|(m, _)| *m == wanted) {
            Some(&(_, id)) => Route::Found(
                &self.endpoints[id],
                params.iter().map(|p| percent_decode_str(p).decode_utf8_lossy().into_owned()).collect(),
            ),
            None => Route::MethodNotAllowed,
        }
    }
}

fn segments(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty())
}

/// Walks the trie one segment of `path` at a time, without allocating
/// (this runs on every request).
fn find<'n, 'p>(node: &'n Node, path: &'p str, params: &mut Vec<&'p str>) -> Option<&'n Node> {
    let path = path.trim_start_matches('/');
    if path.is_empty() {
        return (!node.endpoints.is_empty()).then_some(node);
    }
    let (first, rest) = path.split_once('/').unwrap_or((path, ""));
    if let Some((_, child)) = node.literal.iter().find(|(s, _)| **s == *first) {
        if let Some(found) = find(child, rest, params) {
            return Some(found);
        }
    }
    let child = node.param.as_deref()?;
    params.push(first);
    let found = find(child, rest, params);
    if found.is_none() {
        params.pop();
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router() -> Router {
        let mut r = Router::new();
        r.ready(Method::Get, "/_matrix/client/versions", |_| Response::json_bytes("{}"))
            .ready(Method::Get, "/_matrix/client/v3/rooms/{roomId}/state", |_| Response::json_bytes("{}"))
            .ready(Method::Get, "/_matrix/client/v3/rooms/joined", |_| Response::json_bytes("{}"))
            .ready(Method::Put, "/_matrix/client/v3/rooms/{roomId}/send/{type}/{txn}", |_| Response::json_bytes("{}"));
        r
    }

    #[test]
    fn unknown_path_is_not_found() {
        assert!(matches!(router().lookup(Method::Get, "/_matrix/client/nope"), Route::NotFound));
    }

    #[test]
    fn known_path_with_wrong_method_is_method_not_allowed() {
        assert!(matches!(router().lookup(Method::Post, "/_matrix/client/versions"), Route::MethodNotAllowed));
    }

    #[test]
    fn head_is_routed_as_get() {
        assert!(matches!(router().lookup(Method::Head, "/_matrix/client/versions"), Route::Found(..)));
    }

    #[test]
    fn params_are_percent_decoded() {
        let r = router();
        let Route::Found(ep, params) =
            r.lookup(Method::Put, "/_matrix/client/v3/rooms/%21abc%3Aexample.org/send/m.room.message/t1")
        else {
            panic!("no route");
        };
        assert_eq!(&*ep.name, "PUT /_matrix/client/v3/rooms/{roomId}/send/{type}/{txn}");
        assert_eq!(params, ["!abc:example.org", "m.room.message", "t1"]);
    }

    #[test]
    fn literal_dead_end_backtracks_to_param() {
        let r = router();
        // "joined" matches the literal branch, which has no "state" child.
        let Route::Found(_, params) = r.lookup(Method::Get, "/_matrix/client/v3/rooms/joined/state") else {
            panic!("no route");
        };
        assert_eq!(params, ["joined"]);
        assert!(matches!(r.lookup(Method::Get, "/_matrix/client/v3/rooms/joined"), Route::Found(_, p) if p.is_empty()));
    }

    #[test]
    #[should_panic(expected = "route registered twice")]
    fn duplicate_route_is_refused() {
        let mut r = router();
        r.ready(Method::Get, "/_matrix/client/versions", |_| Response::json_bytes("{}"));
    }
}
