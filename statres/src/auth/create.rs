//! Authorisation rule 1: "If type is `m.room.create`".

use super::power_levels::is_valid_user_id;
use super::Rejection;
use crate::event::{server_of, Event};
use crate::rules::RoomRules;

pub(super) fn check<E: Event>(rules: &RoomRules, event: &E) -> Result<(), Rejection> {
    // 1.1
    if event.prev_events().len() > 0 {
        return Err(Rejection("m.room.create has prev_events"));
    }
    // 1.2: a domain-matching room ID before v12, no room ID at all in v12.
    if rules.create_in_auth_events {
        let room_server = event.room_id().and_then(server_of);
        if room_server.is_none() || room_server != server_of(event.sender()) {
            return Err(Rejection("m.room.create room ID domain is not the sender's"));
        }
    } else if event.room_id().is_some() {
        return Err(Rejection("m.room.create has a room_id"));
    }
    let content = event.content();
    // 1.3
    if let Some(version) = content.get("room_version") {
        if version.as_str().and_then(RoomRules::for_version).is_none() {
            return Err(Rejection("m.room.create has an unrecognised room_version"));
        }
    }
    // 1.4 (v1–v10): a creator property.
    if rules.creator_field && content.get("creator").is_none() {
        return Err(Rejection("m.room.create has no creator"));
    }
    // 1.4 (v12): additional_creators is an array of valid user IDs.
    if rules.privileged_creators {
        if let Some(additional) = content.get("additional_creators") {
            let valid = additional
                .as_array()
                .is_some_and(|list| list.iter().all(|user| user.as_str().is_some_and(is_valid_user_id)));
            if !valid {
                return Err(Rejection("m.room.create additional_creators is not an array of user IDs"));
            }
        }
    }
    Ok(())
}
