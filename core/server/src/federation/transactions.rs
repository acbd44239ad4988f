//! Transactions already received, so a retried one is answered again
//! instead of processed twice (spec: "the same transaction ID from the
//! same origin" is the same transaction).
//!
//! Per shard and in memory: a retry that lands on another shard, or comes
//! after a restart, is processed again, which is harmless for PDUs (an
//! event already stored is accepted as is).

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};

use bytes::Bytes;

/// Answers remembered per shard; the oldest are forgotten first.
const REMEMBERED: usize = 4096;

/// `(origin, transaction ID)` → the answer given.
#[derive(Default)]
pub struct Seen {
    answers: RefCell<HashMap<(String, String), Bytes>>,
    order: RefCell<VecDeque<(String, String)>>,
}

impl Seen {
    /// The answer given to this transaction, if it was seen.
    pub fn get(&self, key: &(String, String)) -> Option<Bytes> {
        self.answers.borrow().get(key).cloned()
    }

    /// Remembers the answer to a transaction.
    pub fn insert(&self, key: (String, String), answer: Bytes) {
        let mut order = self.order.borrow_mut();
        let mut answers = self.answers.borrow_mut();
        if answers.insert(key.clone(), answer).is_none() {
            order.push_back(key);
        }
        while order.len() > REMEMBERED {
            if let Some(oldest) = order.pop_front() {
                answers.remove(&oldest);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_answers_are_forgotten_first_and_the_count_stays_bounded() {
        let seen = Seen::default();
        for i in 0..REMEMBERED + 10 {
            seen.insert(("a".into(), i.to_string()), Bytes::from_static(b"{}"));
        }
        assert!(seen.get(&("a".into(), "0".into())).is_none());
        assert!(seen.get(&("a".into(), (REMEMBERED + 9).to_string())).is_some());
        assert_eq!(seen.answers.borrow().len(), REMEMBERED);
    }
}
