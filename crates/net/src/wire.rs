//! Frames on QUIC streams: the core's 4-byte big-endian length header and a
//! body of at most `max_frame` bytes. A declared length above the cap is
//! refused before anything is allocated for it. Also the two client frames.

use bft_core::RequestId;
use bft_core::codec::{FRAME_HEADER_LEN, frame_header, parse_frame_header};
use bytes::{Buf, Bytes, BytesMut};
use serde::{Deserialize, Serialize};

/// Why a stream stopped yielding frames.
#[derive(Debug)]
pub enum ReadEnd {
    /// The peer finished the stream cleanly (or the connection closed).
    Closed,
    /// A header declared more than the cap: the rest of the stream cannot be
    /// framed, so the caller counts it and stops this stream (only).
    Oversized,
    /// The peer finished the stream in the middle of a frame.
    Truncated,
}

/// Reads frames from one unidirectional stream, chunk by chunk.
pub struct FrameReader {
    recv: quinn::RecvStream,
    buf: BytesMut,
    max_frame: usize,
}

/// Bytes asked of quinn per read: large enough that a 500 KB block takes a
/// handful of reads.
const READ_CHUNK: usize = 256 << 10;

impl FrameReader {
    pub fn new(recv: quinn::RecvStream, max_frame: usize) -> FrameReader {
        FrameReader {
            recv,
            buf: BytesMut::with_capacity(64 << 10),
            max_frame,
        }
    }

    /// The next frame body (header stripped).
    pub async fn next(&mut self) -> Result<Bytes, ReadEnd> {
        loop {
            if let Some(frame) = self.take_frame()? {
                return Ok(frame);
            }
            match self.recv.read_chunk(READ_CHUNK, true).await {
                Ok(Some(chunk)) => self.buf.extend_from_slice(&chunk.bytes),
                Ok(None) if !self.buf.is_empty() => return Err(ReadEnd::Truncated),
                // A connection lost mid-frame (peer crashed, shutdown) is a
                // lost connection, not a malformed frame.
                Ok(None) | Err(_) => return Err(ReadEnd::Closed),
            }
        }
    }

    /// Lowers (or raises) the largest frame taken from here on.
    pub fn set_max_frame(&mut self, max_frame: usize) {
        self.max_frame = max_frame;
    }

    /// Stops the stream: the peer's writes to it fail, the connection lives.
    pub fn stop(&mut self) {
        let _ = self.recv.stop(0u32.into());
    }

    fn take_frame(&mut self) -> Result<Option<Bytes>, ReadEnd> {
        let Some(header) = self.buf.get(..FRAME_HEADER_LEN) else {
            return Ok(None);
        };
        let mut h = [0u8; FRAME_HEADER_LEN];
        h.copy_from_slice(header);
        let len = parse_frame_header(h, self.max_frame).map_err(|_| ReadEnd::Oversized)?;
        let total = FRAME_HEADER_LEN + len;
        if self.buf.len() < total {
            self.buf.reserve(total - self.buf.len());
            return Ok(None);
        }
        self.buf.advance(FRAME_HEADER_LEN);
        Ok(Some(self.buf.split_to(len).freeze()))
    }
}

/// Writes frames to one unidirectional stream, many per syscall batch.
pub struct FrameWriter {
    send: quinn::SendStream,
    chunks: Vec<Bytes>,
}

/// Bodies shorter than this are copied, header and all, into a chunk shared
/// with their neighbours ([`frame_chunks`]); longer ones go to quinn as
/// they are, after a chunk that ends with their header.
pub const COALESCE_BELOW: usize = 16 << 10;

/// A shared chunk is handed on once it holds this many bytes.
pub const CHUNK_TARGET: usize = 64 << 10;

impl FrameWriter {
    pub fn new(send: quinn::SendStream) -> FrameWriter {
        FrameWriter {
            send,
            chunks: Vec::new(),
        }
    }

    /// Writes `bodies` as frames; an error means the stream or connection
    /// is gone.
    pub async fn write(&mut self, bodies: &[Bytes]) -> Result<(), quinn::WriteError> {
        frame_chunks(bodies, &mut self.chunks);
        self.send.write_all_chunks(&mut self.chunks).await
    }
}

/// `bodies` as frames (each body after its length header), in as few
/// chunks as copying small bodies allows: runs of bodies shorter than
/// [`COALESCE_BELOW`] share chunks of about [`CHUNK_TARGET`] bytes, and a
/// longer body is a chunk of its own, not copied. quinn keeps every chunk
/// written as one segment of the stream's send buffer until the peer
/// acknowledges it, and finds the bytes of each packet it sends by walking
/// those segments from the oldest: with one header and one body per frame
/// (two segments each; a 512-byte request is 260 segments per 64 KiB in
/// flight) that walk took a fifth of all CPU in a saturated run.
pub fn frame_chunks(bodies: &[Bytes], chunks: &mut Vec<Bytes>) {
    chunks.clear();
    let mut shared = BytesMut::new();
    for (i, body) in bodies.iter().enumerate() {
        if shared.is_empty() {
            // Exactly this chunk's bytes: a chunk pins its whole allocation
            // until the peer acknowledges it.
            shared = BytesMut::with_capacity(chunk_len(&bodies[i..]));
        }
        shared.extend_from_slice(&frame_header(body.len()));
        if body.len() < COALESCE_BELOW {
            shared.extend_from_slice(body);
            if shared.len() >= CHUNK_TARGET {
                chunks.push(shared.split().freeze());
            }
        } else {
            chunks.push(shared.split().freeze());
            chunks.push(body.clone());
        }
    }
    if !shared.is_empty() {
        chunks.push(shared.freeze());
    }
}

/// The length of the shared chunk [`frame_chunks`] starts with `bodies[0]`:
/// its small frames until [`CHUNK_TARGET`], or up to a large body's header.
fn chunk_len(bodies: &[Bytes]) -> usize {
    let mut len = 0;
    for body in bodies {
        len += FRAME_HEADER_LEN;
        if body.len() >= COALESCE_BELOW {
            break;
        }
        len += body.len();
        if len >= CHUNK_TARGET {
            break;
        }
    }
    len
}

/// What a unidirectional stream between two replicas carries. The
/// opener's first frame is this one byte; the reader hands the rest of the
/// stream to the node task as protocol frames or as client requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamKind {
    /// Protocol messages, decoded and counted by `Node::step`.
    Protocol = 0,
    /// Client requests an HTTP ingress took in and forwards to every
    /// other replica (the same frames a client sends: an encoded
    /// `Request` each), checked like any client's.
    Requests = 1,
}

impl StreamKind {
    /// The first frame's body.
    pub fn frame(self) -> Bytes {
        Bytes::from_static(match self {
            StreamKind::Protocol => &[0],
            StreamKind::Requests => &[1],
        })
    }

    /// The kind a first frame names; None for anything else.
    pub fn parse(body: &[u8]) -> Option<StreamKind> {
        match body {
            [0] => Some(StreamKind::Protocol),
            [1] => Some(StreamKind::Requests),
            _ => None,
        }
    }
}

/// Replica → client: the requests a decision ordered that this client
/// connection submitted. One logical reply per request id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    pub slot: u64,
    pub requests: Vec<RequestId>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the stream carries: each body after its header.
    fn framed(bodies: &[Bytes]) -> Vec<u8> {
        bodies
            .iter()
            .flat_map(|b| frame_header(b.len()).into_iter().chain(b.iter().copied()))
            .collect()
    }

    fn chunks_of(bodies: &[Bytes]) -> Vec<Bytes> {
        let mut chunks = Vec::new();
        frame_chunks(bodies, &mut chunks);
        assert_eq!(chunks.concat(), framed(bodies), "the same bytes in order");
        assert!(chunks.iter().all(|c| !c.is_empty()), "{chunks:?}");
        chunks
    }

    #[test]
    fn large_bodies_first_in_a_row_or_at_the_threshold_each_go_alone() {
        let large = Bytes::from(vec![9u8; COALESCE_BELOW]);
        let small = Bytes::from(vec![1u8; COALESCE_BELOW - 1]);
        let empty = Bytes::new();
        let lens =
            |bodies: &[Bytes]| -> Vec<usize> { chunks_of(bodies).iter().map(Bytes::len).collect() };
        let h = FRAME_HEADER_LEN;
        assert_eq!(lens(std::slice::from_ref(&large)), [h, COALESCE_BELOW]);
        assert_eq!(
            lens(&[large.clone(), large.clone()]),
            [h, COALESCE_BELOW, h, COALESCE_BELOW]
        );
        assert_eq!(
            lens(&[empty.clone(), small.clone(), empty, large]),
            [4 * h + small.len(), COALESCE_BELOW]
        );
    }

    #[test]
    fn small_frames_share_chunks_of_the_target_size() {
        let requests: Vec<Bytes> = (0..1000u32)
            .map(|i| Bytes::from(vec![(i % 251) as u8; 512]))
            .collect();
        let chunks = chunks_of(&requests);
        // 1000 × 516 bytes: seven chunks past 64 KiB and the rest.
        assert_eq!(chunks.len(), 8);
        assert!(chunks[..7].iter().all(|c| c.len() >= CHUNK_TARGET));
        assert!(chunks_of(&[]).is_empty());
    }

    #[test]
    fn a_large_body_is_its_own_chunk_and_not_copied() {
        let block = Bytes::from(vec![7u8; 1 << 20]);
        let vote = Bytes::from_static(&[1, 2, 3]);
        let chunks = chunks_of(&[vote.clone(), block.clone(), vote.clone()]);
        // The vote and the block's header; the block; the last vote.
        assert_eq!(chunks.len(), 3);
        assert_eq!(chunks[0].len(), 2 * FRAME_HEADER_LEN + vote.len());
        assert_eq!(chunks[1].as_ptr(), block.as_ptr());
        assert_eq!(chunks[2].len(), FRAME_HEADER_LEN + vote.len());
    }
}
