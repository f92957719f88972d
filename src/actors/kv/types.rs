//! IronKV's keys, ranges, messages and timers.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use stateright::actor::Id;

/// A key of the hash table; ranges of keys are what hosts own and delegate.
pub type Key = u64;

/// A value (bytes).
pub type Value = Vec<u8>;

/// A slice of the hash table, as a delegation carries it.
pub type Pairs = Arc<BTreeMap<Key, Value>>;

/// A half-open key range `[lo, hi)`; `hi = None` is "to infinity".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct KeyRange {
    /// Lowest key in the range.
    pub lo: Key,
    /// First key past the range (`None`: no end).
    pub hi: Option<Key>,
}

impl KeyRange {
    /// Every key.
    pub const ALL: KeyRange = KeyRange { lo: 0, hi: None };

    /// `[lo, hi)`.
    pub fn new(lo: Key, hi: Option<Key>) -> Self {
        KeyRange { lo, hi }
    }

    /// Whether `k` is in the range.
    pub fn contains(&self, k: Key) -> bool {
        k >= self.lo && self.hi.is_none_or(|h| k < h)
    }

    /// Whether the range holds no key.
    pub fn is_empty(&self) -> bool {
        self.hi.is_some_and(|h| h <= self.lo)
    }

    /// Parses `A..B` or `A..` (no end).
    pub fn parse(s: &str) -> Result<Self, String> {
        let (a, b) = s
            .split_once("..")
            .ok_or_else(|| format!("'{s}' is not a range: use A..B or A.."))?;
        let lo = a
            .trim()
            .parse()
            .map_err(|_| format!("'{a}' is not a key (u64)"))?;
        let hi = if b.trim().is_empty() {
            None
        } else {
            Some(
                b.trim()
                    .parse()
                    .map_err(|_| format!("'{b}' is not a key (u64)"))?,
            )
        };
        let r = KeyRange { lo, hi };
        if r.is_empty() {
            return Err(format!("'{s}' is an empty range"));
        }
        Ok(r)
    }
}

impl fmt::Display for KeyRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.hi {
            Some(h) => write!(f, "[{}..{})", self.lo, h),
            None => write!(f, "[{}..)", self.lo),
        }
    }
}

/// What IronKV's hosts and clients say to each other (inside [`KvMsg::Single`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum KvPayload {
    /// Read a key.
    Get {
        /// The key to read; a host that does not own it redirects.
        key: Key,
    },
    /// Write a key (`None`: delete it).
    Set {
        /// The key to write; a host that does not own it redirects.
        key: Key,
        /// The value to store, or `None` to delete the key.
        value: Option<Value>,
    },
    /// The answer to a Get (the value) or a Set (the value written).
    Reply {
        /// The key the request named.
        key: Key,
        /// For a Get the value held (`None`: absent); for a Set the value written.
        value: Option<Value>,
        /// Whether it answers a Set.
        write: bool,
    },
    /// Ask the owner this host believes in.
    Redirect {
        /// The key the request named.
        key: Key,
        /// Who owns it, as far as the sender knows.
        owner: Id,
    },
    /// Admin: move `range` from the receiving host to `recipient`.
    Shard {
        /// The keys to move; the receiver must own all of them.
        range: KeyRange,
        /// The host that is to own them.
        recipient: Id,
    },
    /// The owner hands `range` and its pairs to the receiver.
    Delegate {
        /// The keys the receiver now owns.
        range: KeyRange,
        /// Every pair of the range the sender held.
        pairs: Pairs,
    },
}

/// IronKV's wire message: every payload travels through [`super::SingleDelivery`].
pub type KvMsg = super::single_delivery::SdMsg<KvPayload>;

fn show(v: &Option<Value>) -> String {
    match v {
        None => "none".into(),
        Some(b) => match std::str::from_utf8(b) {
            Ok(s) if b.len() <= 16 => format!("{s:?}"),
            _ => format!("<{} bytes>", b.len()),
        },
    }
}

impl fmt::Display for KvPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KvPayload::Get { key } => write!(f, "Get({key})"),
            KvPayload::Set { key, value } => write!(f, "Set({key}, {})", show(value)),
            KvPayload::Reply { key, value, write } => {
                write!(
                    f,
                    "Reply({key}, {}{})",
                    show(value),
                    if *write { ", set" } else { "" }
                )
            }
            KvPayload::Redirect { key, owner } => {
                write!(f, "Redirect({key} -> {})", usize::from(*owner))
            }
            KvPayload::Shard { range, recipient } => {
                write!(f, "Shard({range} -> {})", usize::from(*recipient))
            }
            KvPayload::Delegate { range, pairs } => {
                let p: Vec<String> = pairs
                    .iter()
                    .map(|(k, v)| format!("{k}:{}", show(&Some(v.clone()))))
                    .collect();
                write!(f, "Delegate({range}, {{{}}})", p.join(", "))
            }
        }
    }
}

/// IronKV's one timer: retransmit unacknowledged messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum KvTimer {
    /// Resend every unacknowledged message.
    Retransmit,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_and_contain() {
        let r = KeyRange::parse("3..7").unwrap();
        assert!(r.contains(3) && r.contains(6) && !r.contains(7) && !r.contains(2));
        let open = KeyRange::parse("5..").unwrap();
        assert!(open.contains(u64::MAX) && !open.contains(4));
        assert!(KeyRange::parse("7..3").is_err());
        assert!(KeyRange::parse("x..3").is_err());
        assert!(KeyRange::parse("3").is_err());
        assert_eq!(open.to_string(), "[5..)");
    }
}
