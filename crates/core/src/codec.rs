//! The wire codec: postcard bodies behind a 4-byte big-endian length. Every
//! byte we count is a byte of such a frame.

use crate::CoreError;
use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Length prefix size; counted in every message's bytes.
pub const FRAME_HEADER_LEN: usize = 4;

/// Default cap on a frame body: a peer cannot make us allocate more.
pub const DEFAULT_MAX_FRAME: usize = 64 << 20;

/// Bytes of the per-thread scratch a body is serialised into; a larger body
/// is serialised into a growing vector instead.
const SCRATCH_LEN: usize = 64 << 10;

/// Encodes a message body (without the length prefix).
///
/// Serialises into a per-thread fixed scratch buffer, then copies the body
/// into one exactly-sized allocation: postcard into a fresh `Vec` grows it a
/// byte at a time, which was most of the simulator's reallocations, and
/// even into a reused `Vec` every byte of a digest or signature (serialised
/// as a tuple of bytes) paid a capacity check and a length update. A body
/// that does not fit the scratch is encoded into a vector. A serialiser that
/// itself encodes (re-entrancy) finds the scratch taken and makes another.
pub fn encode<M: Serialize>(msg: &M, max_frame: usize) -> Result<Bytes, CoreError> {
    use std::cell::RefCell;
    thread_local! {
        static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    }
    let mut scratch = SCRATCH.with(|s| std::mem::take(&mut *s.borrow_mut()));
    scratch.resize(SCRATCH_LEN, 0);
    let result = match postcard::to_slice(msg, &mut scratch) {
        Ok(body) => sized(body.len(), max_frame).map(|()| Bytes::copy_from_slice(body)),
        Err(postcard::Error::SerializeBufferFull) => postcard::to_extend(msg, Vec::new())
            .map_err(|e| CoreError::Encode(e.to_string()))
            .and_then(|body| sized(body.len(), max_frame).map(|()| Bytes::from(body))),
        Err(e) => Err(CoreError::Encode(e.to_string())),
    };
    SCRATCH.with(|s| *s.borrow_mut() = scratch);
    result
}

fn sized(len: usize, max_frame: usize) -> Result<(), CoreError> {
    if len > max_frame {
        return Err(CoreError::FrameTooLarge {
            len,
            max: max_frame,
        });
    }
    Ok(())
}

/// Decodes one body; trailing bytes are an error (a frame is one message).
pub fn decode<M: DeserializeOwned>(body: &[u8], max_frame: usize) -> Result<M, CoreError> {
    if body.len() > max_frame {
        return Err(CoreError::FrameTooLarge {
            len: body.len(),
            max: max_frame,
        });
    }
    let (msg, rest) = postcard::take_from_bytes(body).map_err(CoreError::Decode)?;
    if !rest.is_empty() {
        return Err(CoreError::TrailingBytes { extra: rest.len() });
    }
    Ok(msg)
}

/// The 4-byte header for a body of `len` bytes.
pub fn frame_header(len: usize) -> [u8; FRAME_HEADER_LEN] {
    (u32::try_from(len).unwrap_or(u32::MAX)).to_be_bytes()
}

/// Reads a header; a declared length above `max_frame` is refused before any
/// allocation.
pub fn parse_frame_header(h: [u8; FRAME_HEADER_LEN], max_frame: usize) -> Result<usize, CoreError> {
    let len = u32::from_be_bytes(h) as usize;
    if len > max_frame {
        return Err(CoreError::FrameTooLarge {
            len,
            max: max_frame,
        });
    }
    Ok(len)
}

/// Bytes on the wire for a body: header plus body.
pub fn wire_len(body_len: usize) -> u64 {
    (FRAME_HEADER_LEN + body_len) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bytes_array::Digest;
    use crate::crypto::{AggregateSignature, BlsSignature, Signature, SignerBitmap};
    use crate::ids::{NodeId, RequestId};
    use crate::protocol::Request;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Sample {
        from: NodeId,
        digest: Digest,
        sig: Signature,
        agg: AggregateSignature,
        batch: Vec<Request>,
    }

    fn sample() -> Sample {
        let mut signers = SignerBitmap::new(7);
        signers.insert(NodeId(3));
        Sample {
            from: NodeId(5),
            digest: Digest::of("t", &[b"x"]),
            sig: Signature([7; 64]),
            agg: AggregateSignature {
                signers,
                signature: BlsSignature([9; 48]),
            },
            batch: vec![{
                let mut r = Request::unsigned(
                    RequestId {
                        client: 1,
                        number: 2,
                    },
                    Bytes::from_static(b"hello"),
                );
                r.set_signature(Some(Signature([3; 64])));
                r
            }],
        }
    }

    #[test]
    fn round_trip_and_exact_sizes() {
        let s = sample();
        let body = encode(&s, DEFAULT_MAX_FRAME).unwrap();
        assert_eq!(decode::<Sample>(&body, DEFAULT_MAX_FRAME).unwrap(), s);
        // from 1 + digest 32 + sig 64 + bitmap (1 len + 1) + bls 48
        // + batch (1 len + client 1 + number 1 + payload 1 len + 5
        // + client signature: 1 tag + 64)
        assert_eq!(
            body.len(),
            1 + 32 + 64 + 2 + 48 + 1 + 1 + 1 + 1 + 5 + 1 + 64
        );
        assert_eq!(wire_len(body.len()), body.len() as u64 + 4);
    }

    #[test]
    fn bodies_larger_than_the_scratch_encode_the_same() {
        let mut s = sample();
        s.batch[0] = s.batch[0].with_payload(Bytes::from(vec![5u8; SCRATCH_LEN + 100]));
        let body = encode(&s, DEFAULT_MAX_FRAME).unwrap();
        assert_eq!(body, postcard::to_allocvec(&s).unwrap());
        assert_eq!(decode::<Sample>(&body, DEFAULT_MAX_FRAME).unwrap(), s);
        assert!(matches!(
            encode(&s, SCRATCH_LEN),
            Err(CoreError::FrameTooLarge { .. })
        ));
        let small = encode(&sample(), DEFAULT_MAX_FRAME).unwrap();
        assert_eq!(small, postcard::to_allocvec(&sample()).unwrap());
    }

    #[test]
    fn rejects_garbage_truncation_trailing_and_oversize() {
        let body = encode(&sample(), DEFAULT_MAX_FRAME).unwrap();
        assert!(matches!(
            decode::<Sample>(&body[..body.len() - 1], DEFAULT_MAX_FRAME),
            Err(CoreError::Decode(_))
        ));
        let mut long = body.to_vec();
        long.push(0);
        assert!(matches!(
            decode::<Sample>(&long, DEFAULT_MAX_FRAME),
            Err(CoreError::TrailingBytes { extra: 1 })
        ));
        assert!(matches!(
            decode::<Sample>(&[0xff; 3], DEFAULT_MAX_FRAME),
            Err(CoreError::Decode(_))
        ));
        assert!(matches!(
            decode::<Sample>(&body, 10),
            Err(CoreError::FrameTooLarge { .. })
        ));
        assert!(matches!(
            encode(&sample(), 10),
            Err(CoreError::FrameTooLarge { .. })
        ));
        assert!(matches!(
            parse_frame_header(frame_header(1 << 30), DEFAULT_MAX_FRAME),
            Err(CoreError::FrameTooLarge { .. })
        ));
        assert_eq!(
            parse_frame_header(frame_header(77), DEFAULT_MAX_FRAME).unwrap(),
            77
        );
    }

    #[test]
    fn random_garbage_never_panics() {
        // A cheap deterministic byte stream (xorshift) of many lengths.
        let mut x: u64 = 0x9e3779b97f4a7c15;
        for len in 0..2000usize {
            let buf: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let _ = decode::<Sample>(&buf, DEFAULT_MAX_FRAME);
        }
    }
}
