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
        self.chunks.clear();
        for body in bodies {
            self.chunks
                .push(Bytes::copy_from_slice(&frame_header(body.len())));
            self.chunks.push(body.clone());
        }
        self.send.write_all_chunks(&mut self.chunks).await
    }
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
