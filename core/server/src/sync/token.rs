//! Sync tokens: one stream position per shard, plus the epoch (the process
//! start) they were issued in. Within an epoch, a user's shard knows which
//! rooms changed after any position it handed out; a token of another
//! epoch makes it check every room of the user.
//!
//! It also carries the user's stream version (the user's shard counts, per
//! user, the changes of their account data and the presence updates it
//! receives for them) and the position of the newest to-device message the device was sent
//! (syncing with the token acknowledges it and every older one).
//!
//! Text form: `s{epoch}_{user stream}_{to-device}_{pos shard 0}_{pos shard
//! 1}…`, e.g. `s1j2k3_4_0_57_60`, with the epoch in base 36.

use tessera_storage::records::StreamPos;

/// A parsed `since` / `next_batch` token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncToken {
    pub epoch: u64,
    pub user_stream: u64,
    pub to_device: StreamPos,
    pub positions: Vec<StreamPos>,
}

impl SyncToken {
    /// Parses a token; `None` if it is not one of ours.
    pub fn parse(s: &str) -> Option<Self> {
        let mut parts = s.strip_prefix('s')?.split('_');
        let epoch = u64::from_str_radix(parts.next()?, 36).ok()?;
        let user_stream = parts.next()?.parse().ok()?;
        let to_device = parts.next()?.parse().ok()?;
        let positions = parts.map(|p| p.parse().ok()).collect::<Option<Vec<_>>>()?;
        (!positions.is_empty() && positions.len() <= 1024).then_some(Self { epoch, user_stream, to_device, positions })
    }

    /// The position for shard `k` of `shards`. A token from a run with
    /// another shard count has no position per current shard; the lowest
    /// of its positions is safe for all (positions never decrease).
    pub fn position(&self, k: usize, shards: usize) -> StreamPos {
        if self.positions.len() == shards {
            self.positions[k]
        } else {
            self.positions.iter().copied().min().unwrap_or(0)
        }
    }
}

impl std::fmt::Display for SyncToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s{}_{}_{}", to_base36(self.epoch), self.user_stream, self.to_device)?;
        for pos in &self.positions {
            write!(f, "_{pos}")?;
        }
        Ok(())
    }
}

fn to_base36(mut n: u64) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).expect("ASCII digits")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_foreign_tokens() {
        let token = SyncToken { epoch: 1_732_368_000_123, user_stream: 4, to_device: 9, positions: vec![57, 0, 60] };
        assert_eq!(SyncToken::parse(&token.to_string()), Some(token));
        for bad in ["", "s", "sxyz", "t1_2_3_4", "s1_2_3_a", "s1_2_3_", "s1_2_3", "s1_2", "s1"] {
            assert_eq!(SyncToken::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn token_of_another_shard_count_uses_its_lowest_position() {
        let token = SyncToken { epoch: 1, user_stream: 0, to_device: 0, positions: vec![9, 4] };
        assert_eq!(token.position(1, 2), 4);
        assert_eq!(token.position(0, 3), 4);
    }
}
