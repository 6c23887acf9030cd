//! A replica's data directory over QUIC: open it, resume from it.
//!
//! With a data directory the runner writes the durable state and the
//! committed decisions of each batch of events before it releases the
//! batch's sends, timers and client replies (see `runner`); a replica
//! started again on the same directory resumes from what was written
//! (`Node::recover`), and only then rejoins. Without one, a replica keeps
//! nothing and a restart is a fresh replica.

use crate::NetError;
use bft_core::{Node, NodeContext, Protocol, Store};
use bft_store::{DataDir, Fsync, Owner};
use std::path::PathBuf;

/// Where replicas persist, and how.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// `bftbench node`: the replica's own directory. In-process clusters:
    /// the parent, replica i in `node-<i>` below it.
    pub dir: PathBuf,
    pub fsync: Fsync,
}

/// A replica's core, resumed from its data directory if it has one, and
/// the open store.
pub struct Replica<P: Protocol> {
    pub node: Node<P>,
    pub store: Option<Box<dyn Store>>,
    /// The committed slot the replica resumed at; None: a fresh replica.
    pub resumed_at: Option<u64>,
}

/// Opens `dir` (if any) for replica `ctx.id` and builds its core: recovered
/// from the stored state, or new if the directory is new. A directory that
/// cannot be read is an error, never a fresh start.
pub fn open_replica<P: Protocol>(
    ctx: NodeContext,
    proto: &P::Config,
    dir: Option<(PathBuf, Fsync)>,
) -> Result<Replica<P>, NetError> {
    let Some((dir, fsync)) = dir else {
        return Ok(Replica {
            node: Node::new(ctx, proto),
            store: None,
            resumed_at: None,
        });
    };
    let owner = Owner {
        protocol: P::NAME.to_string(),
        node: ctx.id.0,
    };
    let (store, opened) = DataDir::open(&dir, &owner, fsync).map_err(NetError::Store)?;
    let (node, resumed_at) = match opened.state {
        Some(state) => {
            let node = Node::recover(ctx, proto, &state).map_err(|e| NetError::Recover {
                file: store.file().to_path_buf(),
                source: e,
            })?;
            (node, Some(opened.committed_tip))
        }
        None => (Node::new(ctx, proto), None),
    };
    Ok(Replica {
        node,
        store: Some(Box::new(store)),
        resumed_at,
    })
}
