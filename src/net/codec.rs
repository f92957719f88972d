//! The wire format: a 3-byte header (magic `IF`, version), the message in postcard's compact
//! binary encoding, and a CRC-32 of everything before it (4 bytes, little endian). Decoding
//! never panics: anything that is not a whole, well-formed message of the expected type is an
//! error the runtime counts and drops.
//!
//! The CRC matters for datagrams that carry no MAC (a client's requests and the replies to it):
//! UDP's 16-bit checksum misses some corruption, and postcard has no redundancy, so a flipped
//! bit often decodes as another valid message (a request with another sequence number, which
//! the cluster would execute). CRC-32 detects every error of up to 3 bits in a datagram of this
//! size, and every burst up to 32 bits. Deliberate forgery is the MAC's job (`auth`), not this.

use serde::de::DeserializeOwned;
use serde::Serialize;
use thiserror::Error;

/// The first two bytes of every datagram.
pub(crate) const MAGIC: [u8; 2] = *b"IF";
/// The wire format version (2: a CRC-32 trailer).
pub(crate) const VERSION: u8 = 2;
/// The CRC-32 trailer's length.
const CRC_LEN: usize = 4;
/// The largest datagram the runtime sends or accepts.
pub const MAX_DATAGRAM: usize = 65_000;

/// Why a datagram was not decoded.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum DecodeError {
    /// Shorter than the header.
    #[error("datagram too short ({0} bytes)")]
    TooShort(usize),
    /// Larger than [`MAX_DATAGRAM`].
    #[error("datagram too large ({0} bytes)")]
    Oversized(usize),
    /// Wrong magic bytes.
    #[error("bad magic bytes")]
    BadMagic,
    /// A version this runtime does not speak.
    #[error("unsupported wire version {0}")]
    BadVersion(u8),
    /// The CRC-32 trailer does not match: the datagram was damaged in transit.
    #[error("checksum mismatch: the datagram was damaged")]
    BadChecksum,
    /// The body is not a message of the expected type (or has trailing bytes).
    #[error("malformed message: {0}")]
    Malformed(String),
}

/// Why a message was not encoded.
#[derive(Debug, Error)]
pub enum EncodeError {
    /// The encoded message exceeds [`MAX_DATAGRAM`].
    #[error("message too large for one datagram ({0} bytes)")]
    TooLarge(usize),
    /// The serializer failed.
    #[error("cannot encode: {0}")]
    Serialize(String),
}

/// Encodes `msg` as one datagram.
pub fn encode<M: Serialize>(msg: &M) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    let mut out =
        postcard::to_extend(msg, out).map_err(|e| EncodeError::Serialize(e.to_string()))?;
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    if out.len() > MAX_DATAGRAM {
        return Err(EncodeError::TooLarge(out.len()));
    }
    Ok(out)
}

/// Decodes one datagram. Allocation is bounded by the input: postcard reads lengths from the
/// datagram and serde caps preallocation ("cautious" size hints), so a forged length fails at
/// the end of the input instead of allocating it.
pub fn decode<M: DeserializeOwned>(bytes: &[u8]) -> Result<M, DecodeError> {
    if bytes.len() > MAX_DATAGRAM {
        return Err(DecodeError::Oversized(bytes.len()));
    }
    if bytes.len() < 3 + CRC_LEN {
        return Err(DecodeError::TooShort(bytes.len()));
    }
    if bytes[..2] != MAGIC {
        return Err(DecodeError::BadMagic);
    }
    if bytes[2] != VERSION {
        return Err(DecodeError::BadVersion(bytes[2]));
    }
    let (framed, crc) = bytes.split_at(bytes.len() - CRC_LEN);
    let crc = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    if crc32fast::hash(framed) != crc {
        return Err(DecodeError::BadChecksum);
    }
    let (msg, rest) = postcard::take_from_bytes::<M>(&framed[3..])
        .map_err(|e| DecodeError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(DecodeError::Malformed(format!(
            "{} trailing bytes",
            rest.len()
        )));
    }
    Ok(msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actors::rsl::{Ballot, Counter, CounterOp, Request, RslMsg, Vote};
    use proptest::prelude::*;
    use stateright::actor::Id;
    use std::collections::BTreeMap;
    use std::sync::Arc;

    fn ballot() -> impl Strategy<Value = Ballot> {
        (any::<u64>(), any::<u32>()).prop_map(|(seqno, proposer)| Ballot { seqno, proposer })
    }

    fn batch() -> impl Strategy<Value = Arc<Vec<Request<Counter>>>> {
        prop::collection::vec(
            (any::<u64>(), any::<u64>(), any::<bool>()).prop_map(|(c, seqno, inc)| Request {
                client: Id::from(c as usize),
                seqno,
                op: if inc { CounterOp::Inc } else { CounterOp::Get },
            }),
            0..8,
        )
        .prop_map(Arc::new)
    }

    fn msg() -> impl Strategy<Value = RslMsg<Counter>> {
        prop_oneof![
            (any::<u64>(), any::<bool>()).prop_map(|(seqno, inc)| RslMsg::Request {
                seqno,
                op: if inc { CounterOp::Inc } else { CounterOp::Get }
            }),
            (any::<u64>(), any::<u64>()).prop_map(|(seqno, reply)| RslMsg::Reply { seqno, reply }),
            (any::<u64>(), any::<u64>())
                .prop_map(|(seqno, watermark)| RslMsg::SessionExpired { seqno, watermark }),
            ballot().prop_map(|bal| RslMsg::OneA { bal }),
            (
                ballot(),
                any::<u64>(),
                prop::collection::btree_map(any::<u64>(), (ballot(), batch()), 0..4)
            )
                .prop_map(|(bal, ltp, v)| RslMsg::OneB {
                    bal,
                    log_truncation_point: ltp,
                    votes: Arc::new(
                        v.into_iter()
                            .map(|(o, (bal, batch))| (o, Vote { bal, batch }))
                            .collect::<BTreeMap<_, _>>()
                    ),
                }),
            (ballot(), any::<u64>()).prop_map(|(bal, ltp)| RslMsg::StartingPhase2 {
                bal,
                log_truncation_point: ltp
            }),
            (ballot(), any::<u64>(), batch()).prop_map(|(bal, opn, batch)| RslMsg::TwoA {
                bal,
                opn,
                batch
            }),
            (ballot(), any::<u64>(), batch()).prop_map(|(bal, opn, batch)| RslMsg::TwoB {
                bal,
                opn,
                batch
            }),
            (ballot(), any::<bool>(), any::<u64>()).prop_map(|(bal, suspicious, opn_ckpt)| {
                RslMsg::Heartbeat {
                    bal,
                    suspicious,
                    opn_ckpt,
                }
            }),
            (ballot(), any::<u64>()).prop_map(|(bal, opn)| RslMsg::AppStateRequest { bal, opn }),
            (
                ballot(),
                any::<u64>(),
                any::<[u8; 32]>(),
                any::<(u32, u32)>(),
                prop::collection::vec(any::<u8>(), 0..64)
            )
                .prop_map(|(bal, opn, digest, (total, index), bytes)| {
                    RslMsg::AppStateChunk {
                        bal,
                        chunk: crate::actors::rsl::Chunk {
                            opn,
                            digest,
                            total,
                            index,
                            bytes: Arc::new(bytes),
                        },
                    }
                }),
        ]
    }

    proptest! {
        #[test]
        fn every_message_round_trips(m in msg()) {
            let bytes = encode(&m).unwrap();
            prop_assert_eq!(decode::<RslMsg<Counter>>(&bytes).unwrap(), m);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode::<RslMsg<Counter>>(&bytes);
        }

        #[test]
        fn corrupted_messages_never_panic(m in msg(), flip in any::<prop::sample::Index>(), cut in any::<prop::sample::Index>()) {
            let mut bytes = encode(&m).unwrap();
            let i = flip.index(bytes.len());
            bytes[i] ^= 0x5a;
            let _ = decode::<RslMsg<Counter>>(&bytes);
            let n = cut.index(bytes.len());
            let _ = decode::<RslMsg<Counter>>(&bytes[..n]);
        }
    }

    /// Regression (found by the simulator, seed 5 of `rsl sim`): a client's request is not
    /// sealed with the cluster key, and a bit flipped in transit turned `seqno: 16` into a
    /// request that still decoded, with another sequence number. The cluster executed it; the
    /// client's real request then counted as already executed, and the client waited forever.
    /// Every single-bit flip of a datagram must be rejected.
    #[test]
    fn every_single_bit_flip_is_rejected() {
        let msgs: Vec<RslMsg<Counter>> = vec![
            RslMsg::Request {
                seqno: 16,
                op: CounterOp::Inc,
            },
            RslMsg::Reply {
                seqno: 7,
                reply: 300,
            },
            RslMsg::Heartbeat {
                bal: Ballot {
                    seqno: 2,
                    proposer: 1,
                },
                suspicious: false,
                opn_ckpt: 56,
            },
        ];
        for m in msgs {
            let bytes = encode(&m).unwrap();
            for bit in 0..bytes.len() * 8 {
                let mut b = bytes.clone();
                b[bit / 8] ^= 1 << (bit % 8);
                assert!(
                    decode::<RslMsg<Counter>>(&b).is_err(),
                    "{m:?} with bit {bit} flipped decoded as {:?}",
                    decode::<RslMsg<Counter>>(&b)
                );
            }
        }
    }

    #[test]
    fn header_errors_are_named() {
        assert_eq!(
            decode::<RslMsg<Counter>>(b"I"),
            Err(DecodeError::TooShort(1))
        );
        assert_eq!(
            decode::<RslMsg<Counter>>(b"XX\x02\x00\x00\x00\x00\x00"),
            Err(DecodeError::BadMagic)
        );
        assert_eq!(
            decode::<RslMsg<Counter>>(b"IF\x09\x00\x00\x00\x00\x00"),
            Err(DecodeError::BadVersion(9))
        );
        assert_eq!(
            decode::<RslMsg<Counter>>(b"IF\x02\x00\x00\x00\x00\x00"),
            Err(DecodeError::BadChecksum)
        );
        let big = vec![0u8; MAX_DATAGRAM + 1];
        assert_eq!(
            decode::<RslMsg<Counter>>(&big),
            Err(DecodeError::Oversized(MAX_DATAGRAM + 1))
        );
        let mut bad = b"IF\x02\xff".to_vec();
        let crc = crc32fast::hash(&bad);
        bad.extend_from_slice(&crc.to_le_bytes());
        assert!(matches!(
            decode::<RslMsg<Counter>>(&bad),
            Err(DecodeError::Malformed(_))
        ));
    }
}
