//! IronKV's keys, ranges, messages and timers.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use stateright::actor::Id;

/// A key of the hash table: a byte string, ordered lexicographically (as range-sharded stores
/// order keys); ranges of keys are what hosts own and delegate. The empty key is the smallest.
/// IronKV's keys were u64; models keep small keys (`Key::from(1)` is the one-byte key `"1"`).
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Key(pub Vec<u8>);

impl Key {
    /// The smallest key (empty): every delegation map has an owner for it.
    pub const MIN: Key = Key(Vec::new());

    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl From<&str> for Key {
    fn from(s: &str) -> Self {
        Key(s.as_bytes().to_vec())
    }
}

impl From<Vec<u8>> for Key {
    fn from(b: Vec<u8>) -> Self {
        Key(b)
    }
}

/// A number's decimal digits as a key (so `Key::from(150)` is `"150"`, the key `kv set 150 ...`
/// writes). Decimal keys order as strings: `"10" < "9"`.
impl From<u64> for Key {
    fn from(n: u64) -> Self {
        Key(n.to_string().into_bytes())
    }
}

impl fmt::Display for Key {
    /// The key as text when it is printable UTF-8, else `0x` and its bytes in hex.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match std::str::from_utf8(&self.0) {
            Ok(s) if !s.is_empty() && s.chars().all(|c| c.is_ascii_graphic()) => f.write_str(s),
            Ok("") => f.write_str("\"\""),
            _ => {
                f.write_str("0x")?;
                self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
            }
        }
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A value (bytes).
pub type Value = Vec<u8>;

/// A slice of the hash table, as a delegation carries it.
pub type Pairs = Arc<BTreeMap<Key, Value>>;

/// A half-open key range `[lo, hi)`; `hi = None` is "to the end".
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct KeyRange {
    /// Lowest key in the range.
    pub lo: Key,
    /// First key past the range (`None`: no end).
    pub hi: Option<Key>,
}

impl KeyRange {
    /// Every key.
    pub const ALL: KeyRange = KeyRange {
        lo: Key::MIN,
        hi: None,
    };

    /// `[lo, hi)`.
    pub fn new(lo: impl Into<Key>, hi: Option<Key>) -> Self {
        KeyRange { lo: lo.into(), hi }
    }

    /// Whether `k` is in the range.
    pub fn contains(&self, k: &Key) -> bool {
        *k >= self.lo && self.hi.as_ref().is_none_or(|h| k < h)
    }

    /// Whether the range holds no key.
    pub fn is_empty(&self) -> bool {
        self.hi.as_ref().is_some_and(|h| *h <= self.lo)
    }

    /// Parses `A..B` or `A..` (no end): `A` and `B` are keys as text (`..B` starts at the
    /// smallest key).
    pub fn parse(s: &str) -> Result<Self, String> {
        let (a, b) = s
            .split_once("..")
            .ok_or_else(|| format!("'{s}' is not a range: use A..B or A.."))?;
        let hi = (!b.is_empty()).then(|| Key::from(b));
        let r = KeyRange {
            lo: Key::from(a),
            hi,
        };
        if r.is_empty() {
            return Err(format!("'{s}' is an empty range"));
        }
        Ok(r)
    }
}

impl fmt::Display for KeyRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.hi {
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
    /// A host closes the client channels that were quiet for a whole period.
    IdleSweep,
    /// A client gives up the operation it waits for (the caller's timeout; at run time and in
    /// the simulator only, never in models).
    GiveUp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_and_contain() {
        let k = |s: &str| Key::from(s);
        let r = KeyRange::parse("3..7").unwrap();
        assert!(r.contains(&k("3")) && r.contains(&k("65")) && !r.contains(&k("7")));
        assert!(!r.contains(&k("29")) && r.contains(&k("30")));
        let open = KeyRange::parse("user/..").unwrap();
        assert!(open.contains(&k("user/zz")) && !open.contains(&k("user")));
        assert!(KeyRange::parse("..b").unwrap().contains(&Key::MIN));
        assert!(KeyRange::parse("7..3").is_err());
        assert!(KeyRange::parse("a..a").is_err());
        assert!(KeyRange::parse("3").is_err());
        assert_eq!(open.to_string(), "[user/..)");
        assert_eq!(Key(vec![0, 255]).to_string(), "0x00ff");
        assert_eq!(Key::from(150).to_string(), "150");
    }
}
