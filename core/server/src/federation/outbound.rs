//! Sending to other servers (server-server API § Transactions): "a
//! transaction is a message between an origin homeserver and a destination
//! homeserver", carrying up to 50 PDUs and 100 EDUs.
//!
//! Each destination has one queue, on the shard its name hashes to, so all
//! of a destination's traffic leaves in order over that shard's
//! connections, one transaction at a time, whichever shard produced it.
//! The room's shard hands a new event to the queues of the room's other
//! servers once it is stored; a queue sends what accumulated while the
//! previous transaction was in flight as the next one.
//!
//! A destination that fails is retried with a growing delay (5 s doubling
//! to an hour, as Synapse backs off) while its queue keeps collecting, up
//! to [`MAX_QUEUED`] items; beyond that the oldest are dropped, as Synapse
//! drops PDUs for a destination it backs off from. The queues are memory
//! only: what was queued when the process stopped is not sent after a
//! restart (the store's outbound queue records are for that, not used
//! yet).

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tessera_net::http::Method;

use super::request::request;
use crate::request::{now_ms, query_encode};
use crate::state::AppShard;

/// Spec: "A transaction can contain up to 50 PDUs and 100 EDUs."
const PDUS_PER_TRANSACTION: usize = 50;
const EDUS_PER_TRANSACTION: usize = 100;

/// Items a destination's queue holds while it cannot be reached.
const MAX_QUEUED: usize = 10_000;

/// First retry delay after a failure, and the longest.
const FIRST_RETRY: Duration = Duration::from_secs(5);
const LONGEST_RETRY: Duration = Duration::from_secs(3600);

/// A PDU or EDU, shared between the queues it goes to.
pub type Item = Arc<Value>;

/// A shard's destination queues.
#[derive(Default)]
pub struct Outbox {
    queues: RefCell<HashMap<String, Queue>>,
    /// Numbers this shard's transaction IDs.
    next_txn: Cell<u64>,
}

#[derive(Default)]
struct Queue {
    pdus: VecDeque<Item>,
    edus: VecDeque<Item>,
    /// A task is sending (or waiting to retry); it takes what is queued.
    sending: bool,
}

/// Queues `pdu` for each of `destinations` (never this server), from any
/// shard.
pub fn send_pdu(shard: &AppShard, destinations: Vec<String>, pdu: Item) {
    hand_over(shard, destinations, pdu, false);
}

/// Queues `edu` (`{"edu_type", "content"}`) for each of `destinations`.
pub fn send_edu(shard: &AppShard, destinations: Vec<String>, edu: Item) {
    hand_over(shard, destinations, edu, true);
}

fn hand_over(shard: &AppShard, destinations: Vec<String>, item: Item, edu: bool) {
    let us = &shard.state.config.server_name;
    let placement = &shard.state.placement;
    let mut per_shard: Vec<Vec<String>> = vec![Vec::new(); placement.shard_count()];
    for destination in destinations.into_iter().filter(|d| d != us) {
        per_shard[placement.shard(&destination)].push(destination);
    }
    for (k, destinations) in per_shard.into_iter().enumerate() {
        if destinations.is_empty() {
            continue;
        }
        let item = item.clone();
        shard.tell(k, move |shard| {
            for destination in destinations {
                enqueue(shard, destination, item.clone(), edu);
            }
        });
    }
}

/// On the destination's shard: adds the item and starts a sender if none
/// runs.
fn enqueue(shard: &AppShard, destination: String, item: Item, edu: bool) {
    let outbox = &shard.state.federation.outbox;
    let mut queues = outbox.queues.borrow_mut();
    let queue = queues.entry(destination.clone()).or_default();
    let list = if edu { &mut queue.edus } else { &mut queue.pdus };
    list.push_back(item);
    if list.len() > MAX_QUEUED {
        list.pop_front();
        tracing::warn!(destination, "outbound queue full; the oldest item is dropped");
    }
    if !queue.sending {
        queue.sending = true;
        tessera_net::runtime::spawn(drain(shard.clone(), destination));
    }
}

/// Sends the destination's queue as transactions until it is empty,
/// backing off after failures.
async fn drain(shard: AppShard, destination: String) {
    let outbox = &shard.state.federation.outbox;
    let mut failures = 0u32;
    loop {
        let (pdus, edus) = {
            let mut queues = outbox.queues.borrow_mut();
            let Some(queue) = queues.get_mut(&destination) else { return };
            if queue.pdus.is_empty() && queue.edus.is_empty() {
                queues.remove(&destination);
                return;
            }
            let take = |list: &mut VecDeque<Item>, n: usize| list.drain(..n.min(list.len())).collect::<Vec<_>>();
            (take(&mut queue.pdus, PDUS_PER_TRANSACTION), take(&mut queue.edus, EDUS_PER_TRANSACTION))
        };
        let txn_id = format!("{}_{}_{}", shard.id(), now_ms(), outbox.next_txn.get());
        outbox.next_txn.set(outbox.next_txn.get() + 1);
        match transmit(&shard, &destination, &txn_id, &pdus, &edus).await {
            Ok(()) => failures = 0,
            Err(reason) => {
                failures += 1;
                let delay = FIRST_RETRY.saturating_mul(1 << failures.min(10).saturating_sub(1)).min(LONGEST_RETRY);
                tracing::info!(destination, reason, retry_in = ?delay, "transaction failed");
                // Put them back in front, in order, for the retry.
                if let Some(queue) = outbox.queues.borrow_mut().get_mut(&destination) {
                    for pdu in pdus.into_iter().rev() {
                        queue.pdus.push_front(pdu);
                    }
                    for edu in edus.into_iter().rev() {
                        queue.edus.push_front(edu);
                    }
                    queue.pdus.truncate(MAX_QUEUED);
                    queue.edus.truncate(MAX_QUEUED);
                }
                tessera_net::runtime::sleep(delay).await;
            }
        }
    }
}

/// One `PUT /send/{txnId}`. The remote's per-PDU errors are its verdict
/// on our events, not a failure to deliver: they are logged, not retried.
async fn transmit(
    shard: &AppShard,
    destination: &str,
    txn_id: &str,
    pdus: &[Item],
    edus: &[Item],
) -> Result<(), String> {
    let list = |items: &[Item]| items.iter().map(|i| Value::clone(i)).collect::<Vec<_>>();
    let body = serde_json::json!({
        "origin": shard.state.config.server_name,
        "origin_server_ts": now_ms(),
        "pdus": list(pdus),
        "edus": list(edus),
    });
    let path = format!("/_matrix/federation/v1/send/{}", query_encode(txn_id));
    let answer = request(shard, destination, Method::Put, &path, Some(&body)).await.map_err(|e| e.to_string())?;
    if let Some(results) = answer.get("pdus").and_then(|p| p.as_object()) {
        for (event_id, result) in results {
            if let Some(error) = result.get("error") {
                tracing::info!(destination, event_id, %error, "destination refused our event");
            }
        }
    }
    Ok(())
}
