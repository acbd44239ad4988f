//! To-device messages (spec: client-server API, "Send-to-Device
//! messaging"), kept in the recipient device's inbox on the recipient
//! user's shard until the device acknowledges them.
//!
//! A message takes a position of the recipient shard's stream (the one
//! events take, so positions keep increasing across restarts and changes
//! of the core count) and is stored before the send is answered. `/sync`
//! hands a device the messages after its token's to-device position and
//! puts the newest one it handed out into `next_batch`; a sync with that
//! token deletes everything up to it ("the server should delete messages
//! once the client has acknowledged them by syncing with a later token").

use std::collections::{HashMap, HashSet, VecDeque};

use serde_json::{json, Value};
use tessera_storage::records::{StreamPos, ToDeviceRecord};
use tessera_storage::{Op, Store};

use super::UserSync;
use crate::error::ApiError;
use crate::rooms::{dispatch, stream_name};
use crate::state::AppShard;

/// Most messages one sync hands a device (as Synapse); the rest come with
/// the next sync, which returns at once.
pub const MAX_PER_SYNC: usize = 100;

/// What a device's inbox looks like from its user's shard, in this run.
#[derive(Default, Clone, Copy)]
pub struct Inbox {
    /// The newest position stored in this run.
    newest: StreamPos,
    /// Whether the inbox has been read to its end in this run, so that
    /// `newest` covers every stored message.
    complete: bool,
    /// Messages up to here are deleted.
    acknowledged: StreamPos,
}

/// Stores messages from `sender` for the devices of local user `user_id`
/// (`*`: every device of the user), on the user's shard, and wakes the
/// user's waiting syncs. Answers once the messages are durable.
pub async fn deliver(
    shard: &AppShard,
    sender: &str,
    event_type: &str,
    user_id: &str,
    messages: Vec<(String, Value)>,
) -> Result<(), ApiError> {
    let state = &shard.state;
    let vshard = state.placement.vshard(user_id);
    let mut per_device: Vec<(String, Value)> = Vec::with_capacity(messages.len());
    for (device_id, content) in messages {
        if device_id == "*" {
            for device in state.store.devices(vshard, user_id).await? {
                per_device.push((device.device_id, content.clone()));
            }
        } else {
            per_device.push((device_id, content));
        }
    }
    if per_device.is_empty() {
        return Ok(());
    }
    let stream = &state.rooms.stream;
    let mut ops = Vec::with_capacity(per_device.len() + 1);
    let mut positions = Vec::with_capacity(per_device.len());
    let mut newest: HashMap<String, StreamPos> = HashMap::new();
    for (device_id, content) in per_device {
        let pos = stream.allocate();
        positions.push(pos);
        let message = json!({ "sender": sender, "type": event_type, "content": content });
        let message = ToDeviceRecord { pos, message: serde_json::to_vec(&message).expect("a Value serialises") };
        newest.insert(device_id.clone(), pos);
        ops.push(Op::PutToDevice { vshard, user_id: user_id.to_owned(), device_id, message });
    }
    let last = *positions.last().expect("not empty");
    ops.push(Op::SetStreamPosition { stream: stream_name(shard.id()), pos: last });
    let written = state.store.write(ops).await;
    for pos in positions {
        let (released, watermark) = stream.finish(pos, Vec::new());
        dispatch(shard, released, watermark);
    }
    written?;
    if let Some(user) = state.sync.users.borrow().get(user_id) {
        let mut inboxes = user.inboxes.borrow_mut();
        for (device_id, pos) in newest {
            let inbox = inboxes.entry(device_id).or_default();
            inbox.newest = inbox.newest.max(pos);
        }
        drop(inboxes);
        user.wake();
    }
    Ok(())
}

/// A sync's to-device part for one device: deletes what `since`
/// acknowledges, then returns the messages after it and the position to
/// put in `next_batch`.
pub(super) async fn take(
    shard: &AppShard,
    user: &UserSync,
    user_id: &str,
    device_id: &str,
    since: StreamPos,
) -> Result<(Vec<Value>, StreamPos), ApiError> {
    let store = &shard.state.store;
    let vshard = shard.state.placement.vshard(user_id);
    let inbox = user.inboxes.borrow().get(device_id).copied().unwrap_or_default();
    if since > inbox.acknowledged && !(inbox.complete && inbox.newest <= inbox.acknowledged) {
        let op =
            Op::DeleteToDevice { vshard, user_id: user_id.to_owned(), device_id: device_id.to_owned(), up_to: since };
        store.write(vec![op]).await?;
        user.inboxes.borrow_mut().entry(device_id.to_owned()).or_default().acknowledged = since;
    }
    if inbox.complete && inbox.newest <= since {
        // Nothing newer: no read.
        return Ok((Vec::new(), since));
    }
    // Only below the watermark: a message of an earlier position still
    // being written must not be skipped by a token past a later one.
    let durable = shard.state.rooms.stream.durable();
    let mut records = store.to_device(vshard, user_id, device_id, since, MAX_PER_SYNC).await?;
    let read_all = records.len() < MAX_PER_SYNC;
    records.retain(|r| r.pos <= durable);
    let upto = records.last().map_or(since, |r| r.pos);
    if read_all {
        let mut inboxes = user.inboxes.borrow_mut();
        let inbox = inboxes.entry(device_id.to_owned()).or_default();
        inbox.newest = inbox.newest.max(upto);
        inbox.complete = true;
    }
    let events = records.iter().filter_map(|r| serde_json::from_slice(&r.message).ok()).collect();
    Ok((events, upto))
}

/// Transactions a shard's users sent to-device messages in, newest
/// [`SentTxns::CAPACITY`] only: a client retries within seconds, not after
/// thousands of other sends.
#[derive(Default)]
pub struct SentTxns {
    set: HashSet<(String, String, String)>,
    order: VecDeque<(String, String, String)>,
}

impl SentTxns {
    const CAPACITY: usize = 10_000;

    /// Whether `(user, device, transaction ID)` was sent.
    pub fn contains(&self, txn: &(String, String, String)) -> bool {
        self.set.contains(txn)
    }

    /// Records a sent transaction, forgetting the oldest beyond capacity.
    pub fn insert(&mut self, txn: (String, String, String)) {
        if self.set.insert(txn.clone()) {
            self.order.push_back(txn);
        }
        if self.order.len() > Self::CAPACITY {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
    }
}
