//! Server access control lists (server-server API § Server Access Control
//! Lists): a room's `m.room.server_acl` names the servers allowed and
//! denied in it, as case-insensitive globs matched against the server name
//! without its port, and may deny IP literals. A denied server's requests
//! about the room are refused (403 `M_FORBIDDEN`), its PDUs and its typing
//! and receipt EDUs for the room ignored.

use std::net::IpAddr;

use serde_json::Value;
use wildmatch::WildMatch;

use crate::error::ApiError;
use crate::rooms::room::Room;

/// Whether the room's ACL lets `server` take part (yes when it has none).
pub fn allows(room: &Room, server: &str) -> bool {
    let Some(acl) = room.state.event("m.room.server_acl", "") else { return true };
    let content = &acl.content;
    let host = host_of(server);
    // Spec: `allow_ip_literals` "defaults to true if missing or otherwise
    // not a boolean".
    let ip_literals = content.get("allow_ip_literals").and_then(Value::as_bool).unwrap_or(true);
    if !ip_literals && is_ip_literal(host) {
        return false;
    }
    let matches = |key: &str| {
        content
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .any(|glob| WildMatch::new_case_insensitive(glob).matches(host))
    };
    !matches("deny") && matches("allow")
}

/// 403 `M_FORBIDDEN` when the room's ACL denies `server`.
pub fn require_allowed(room: &Room, server: &str) -> Result<(), ApiError> {
    match allows(room, server) {
        true => Ok(()),
        false => Err(ApiError::forbidden(format!("{server} is denied by the room's server ACL"))),
    }
}

/// The server name without its port: `host`, `1.2.3.4`, `[::1]`.
fn host_of(server: &str) -> &str {
    if server.starts_with('[') {
        return server.find(']').map_or(server, |end| &server[..=end]);
    }
    server.rsplit_once(':').map_or(server, |(host, _)| host)
}

fn is_ip_literal(host: &str) -> bool {
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    bare.parse::<IpAddr>().is_ok()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;
    use tessera_proto::room_version::RoomVersionRules;

    use super::*;
    use crate::placement::Placement;
    use crate::rooms::event::RoomEvent;

    fn room_with_acl(content: Value) -> Room {
        let pdu = json!({
            "room_id": "!r:x", "sender": "@a:x", "type": "m.room.server_acl", "state_key": "", "content": content,
            "origin_server_ts": 1, "depth": 1, "prev_events": [], "auth_events": [],
        });
        let bytes = serde_json::to_vec(&pdu).unwrap();
        let mut event = RoomEvent::from_pdu(&bytes).unwrap();
        event.event_id = "$acl".into();
        let mut room = Room::empty("!r:x".into(), 0, 0, RoomVersionRules::get("11").unwrap()).unwrap();
        room.adopt_state(vec![(Arc::new(event), bytes)], Vec::new(), &Placement::new(4, 1), &mut Vec::new());
        room
    }

    #[test]
    fn a_denied_glob_wins_over_an_allowed_one_and_unlisted_servers_are_out() {
        let room = room_with_acl(json!({ "allow": ["*"], "deny": ["*.evil.com", "EVIL.org"] }));
        assert!(allows(&room, "good.org:8448"));
        assert!(!allows(&room, "a.evil.com"), "glob");
        assert!(!allows(&room, "evil.org:443"), "case-insensitive, port ignored");
        assert!(allows(&room, "10.0.0.1"), "IP literals allowed by default");
        let strict = room_with_acl(json!({ "allow": ["good.org"], "allow_ip_literals": false }));
        assert!(allows(&strict, "good.org") && !allows(&strict, "other.org"));
        assert!(!allows(&strict, "[::1]:8448"));
        let empty = room_with_acl(json!({}));
        assert!(!allows(&empty, "good.org"), "no allow list allows nobody");
    }

    #[test]
    fn ports_are_ignored_and_ipv6_literals_kept_whole() {
        assert_eq!(host_of("example.org:8448"), "example.org");
        assert_eq!(host_of("example.org"), "example.org");
        assert_eq!(host_of("[::1]:8448"), "[::1]");
        assert!(is_ip_literal("[::1]") && is_ip_literal("10.0.0.1") && !is_ip_literal("evil.com"));
    }
}
