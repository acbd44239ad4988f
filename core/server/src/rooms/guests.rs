//! Guests leave a room that stops admitting them (spec: client-server API,
//! "Guest Access": "if the `m.room.guest_access` state changes to something
//! other than `can_join`, guests already in the room are removed"; Synapse
//! makes each guest leave).

use serde_json::{json, Value};
use tessera_storage::Store;

use crate::error::ApiError;
use crate::rooms::event::Draft;
use crate::rooms::{on_room, send};
use crate::state::AppShard;

/// Makes every guest joined to `room_id` leave it.
pub async fn remove_guests(shard: &AppShard, room_id: &str) -> Result<(), ApiError> {
    let suffix = format!(":{}", shard.state.config.server_name);
    let joined = on_room(shard, room_id, move |_, room| async move {
        let room = room.borrow();
        Ok(room
            .state
            .of_type("m.room.member")
            .filter(|(u, e)| {
                u.ends_with(&suffix) && e.content.get("membership").and_then(Value::as_str) == Some("join")
            })
            .map(|(u, _)| u.clone())
            .collect::<Vec<_>>())
    })
    .await?;
    for user_id in joined {
        let vshard = shard.state.placement.vshard(&user_id);
        if !shard.state.store.user(vshard, &user_id).await?.is_some_and(|u| u.is_guest) {
            continue;
        }
        let draft = Draft {
            sender: user_id.clone(),
            event_type: "m.room.member".into(),
            state_key: Some(user_id.clone()),
            content: json!({ "membership": "leave", "kind": "guest" }),
            redacts: None,
        };
        if let Err(e) = send(shard, room_id, draft, None).await {
            tracing::warn!(user = user_id, room = room_id, error = e.message, "guest not removed");
        }
    }
    Ok(())
}
