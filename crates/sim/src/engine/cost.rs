//! What moving a frame costs: request and reply sizes as the codec would
//! encode them, and the transport CPU a shared machine charges for them.

use super::queue::Event;
use bft_core::codec::{self};
use bft_core::{Output, Request};
use std::time::Duration;

/// Postcard size of a request: varint client and number, varint length,
/// payload. Computed, not encoded, because every request goes to n replicas.
pub(super) fn request_body_len(req: &Request) -> usize {
    fn varint(mut x: u64) -> usize {
        let mut n = 1;
        while x >= 0x80 {
            x >>= 7;
            n += 1;
        }
        n
    }
    let len = req.payload().len();
    varint(u64::from(req.id().client))
        + varint(req.id().number)
        + varint(len as u64)
        + len
        + 1
        + req.signature().map_or(0, |_| bft_core::Signature::LEN)
}

/// Wire bytes of a reply: (request id, slot, block digest) with a header.
pub(super) const REPLY_BYTES: u64 = 4 + 16 + 8 + 32;

/// Wire bytes of one reply frame naming `requests` requests.
pub(super) fn reply_frame(requests: usize) -> u64 {
    codec::wire_len(usize::try_from(requests as u64 * REPLY_BYTES).unwrap_or(usize::MAX))
}

/// On a shared machine, what moving an event's frames costs the replica:
/// half of the frame it received, half of each frame it sends, and half of
/// each reply frame it sends clients (`replies`: this instance answers
/// clients, which a twin does not).
pub(super) fn transport_cpu<T>(
    cost: &bft_crypto::CostModel,
    event: &Event<T>,
    out: &[Output<T>],
    replies: bool,
) -> Duration {
    let received = match event {
        Event::Deliver { body, .. } => cost.frame(codec::wire_len(body.len())),
        Event::RequestArrives { req, .. } => cost.frame(codec::wire_len(request_body_len(req))),
        _ => Duration::ZERO,
    };
    let sent: Duration = out
        .iter()
        .map(|o| match o {
            Output::Send { body, .. } => cost.frame(codec::wire_len(body.len())),
            Output::Commit(d) if replies && !d.requests.is_empty() => {
                cost.frame(reply_frame(d.requests.len()))
            }
            _ => Duration::ZERO,
        })
        .sum();
    (received + sent) / 2
}

#[cfg(test)]
mod tests {
    use super::*;
    use bft_core::RequestId;
    use bft_core::codec::{DEFAULT_MAX_FRAME, encode};
    use bytes::Bytes;

    #[test]
    fn computed_request_size_matches_the_codec() {
        for (client, number, len) in [
            (0u32, 0u64, 0usize),
            (300, 1 << 20, 127),
            (7, u64::MAX, 20_000),
        ] {
            let mut req =
                Request::unsigned(RequestId { client, number }, Bytes::from(vec![1u8; len]));
            for _signed in [false, true] {
                assert_eq!(
                    request_body_len(&req),
                    encode(&req, DEFAULT_MAX_FRAME).unwrap().len()
                );
                req.set_signature(Some(bft_core::Signature([9; 64])));
            }
        }
    }
}
