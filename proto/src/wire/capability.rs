//! Capability bodies: CAP_UPDATE (internal, docs/wire.md §7.10) and the sync family SYNC_REQ,
//! SYNC, SYNC_END (clusterer-extra, §7.11–§7.13).

use alloc::vec::Vec;

use clusterer_core::NodeId;
use clusterer_core::message::{
    CapUpdate, CapabilityBlock, CapabilityState, MAX_CAP_NODES, Sync, SyncEnd, SyncReq,
};

use super::error::{DecodeError, EmitError};
use super::prim::{self, IdList, Res, Sink, SinkExt};
use super::probe::{parse_path, write_path};

/// Type value of CAP_UPDATE.
pub const TYPE_CAP_UPDATE: i32 = 9;
/// Type value of SYNC_REQ.
pub const TYPE_SYNC_REQ: i32 = 10;
/// Type value of SYNC.
pub const TYPE_SYNC: i32 = 11;
/// Type value of SYNC_END.
pub const TYPE_SYNC_END: i32 = 12;
/// Start marker of every sync chunk (101010101, bytes `B5 4A 05 06`).
pub const SYNC_CHUNK_MARKER: i32 = 101_010_101;
/// Bytes of a chunk header: size and marker.
pub const SYNC_CHUNK_HEADER_LEN: usize = clusterer_core::message::sizes::SYNC_CHUNK_HEADER_LEN;
/// Largest capability count a node block may declare (bounded in practice by the packet).
const MAX_CAPS_PER_NODE: usize = i32::MAX as usize;

/// One capability entry of a CAP_UPDATE block, borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CapabilityStateView<'a> {
    /// Capability name.
    pub name: &'a str,
    /// Advertised as synced.
    pub ok: bool,
}

fn parse_cap_state(input: &[u8]) -> Res<'_, CapabilityStateView<'_>> {
    let (rest, name) = prim::text(input, "cap_name")?;
    let (rest, ok) = prim::flag(rest, "cap_state")?;
    Ok((rest, CapabilityStateView { name, ok }))
}

/// One CAP_UPDATE node block, borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CapabilityBlockView<'a> {
    /// The node.
    pub node: NodeId,
    raw: &'a [u8],
    len: usize,
}

impl<'a> CapabilityBlockView<'a> {
    /// Number of capabilities in the block.
    pub fn len(&self) -> usize {
        self.len
    }

    /// `true` when the block lists no capability.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The capabilities in wire order.
    pub fn iter(&self) -> impl Iterator<Item = CapabilityStateView<'a>> + 'a {
        let mut rest = self.raw;
        core::iter::from_fn(move || {
            let (next, cap) = parse_cap_state(rest).ok()?;
            rest = next;
            Some(cap)
        })
    }

    /// Copies into the owned block.
    pub fn to_owned(&self) -> CapabilityBlock {
        let mut capabilities = Vec::with_capacity(self.len);
        capabilities.extend(self.iter().map(|c| CapabilityState {
            name: c.name.into(),
            ok: c.ok,
        }));
        CapabilityBlock {
            node: self.node,
            capabilities,
        }
    }
}

fn parse_block(input: &[u8]) -> Res<'_, CapabilityBlockView<'_>> {
    let (rest, node) = prim::node_id(input, "node_id")?;
    let (start, n) = prim::count(rest, "nr_cap", 0, MAX_CAPS_PER_NODE)?;
    let mut rest = start;
    for _ in 0..n {
        rest = parse_cap_state(rest)?.0;
    }
    let raw = &start[..start.len() - rest.len()];
    Ok((rest, CapabilityBlockView { node, raw, len: n }))
}

/// The validated node blocks of a CAP_UPDATE, borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CapabilityBlocks<'a> {
    raw: &'a [u8],
    len: usize,
}

impl<'a> CapabilityBlocks<'a> {
    /// Number of blocks.
    pub fn len(&self) -> usize {
        self.len
    }

    /// `true` when there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The blocks in wire order.
    pub fn iter(&self) -> impl Iterator<Item = CapabilityBlockView<'a>> + 'a {
        let mut rest = self.raw;
        core::iter::from_fn(move || {
            let (next, block) = parse_block(rest).ok()?;
            rest = next;
            Some(block)
        })
    }
}

/// A CAP_UPDATE body, borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CapUpdateView<'a> {
    /// Originator's cap counter.
    pub seq: i32,
    /// Originator's UNIX time.
    pub timestamp: i32,
    /// Node blocks.
    pub nodes: CapabilityBlocks<'a>,
    /// Reply requested.
    pub require_reply: bool,
    /// Flood path.
    pub path: IdList<'a>,
}

impl CapUpdateView<'_> {
    /// Copies into the owned message.
    pub fn to_owned(&self) -> CapUpdate {
        let mut nodes = Vec::with_capacity(self.nodes.len());
        nodes.extend(self.nodes.iter().map(|b| b.to_owned()));
        CapUpdate {
            seq: self.seq,
            timestamp: self.timestamp,
            nodes,
            require_reply: self.require_reply,
            path: self.path.to_vec(),
        }
    }
}

pub(crate) fn parse_cap_update(body: &[u8]) -> Res<'_, CapUpdateView<'_>> {
    let (rest, seq) = prim::int(body, "seq_no")?;
    let (rest, timestamp) = prim::int(rest, "timestamp")?;
    let (start, n) = prim::count(rest, "nr_nodes", 0, MAX_CAP_NODES)?;
    let mut rest = start;
    for _ in 0..n {
        rest = parse_block(rest)?.0;
    }
    let nodes = CapabilityBlocks {
        raw: &start[..start.len() - rest.len()],
        len: n,
    };
    let (rest, require_reply) = prim::flag(rest, "require_reply")?;
    let (rest, path) = parse_path(rest)?;
    Ok((
        rest,
        CapUpdateView {
            seq,
            timestamp,
            nodes,
            require_reply,
            path,
        },
    ))
}

pub(crate) fn write_cap_update<S: Sink>(sink: &mut S, m: &CapUpdate) -> Result<(), EmitError> {
    sink.put_i32(m.seq);
    sink.put_i32(m.timestamp);
    sink.put_count(m.nodes.len(), "nr_nodes", 0, MAX_CAP_NODES)?;
    for block in &m.nodes {
        sink.put_node(block.node);
        sink.put_count(block.capabilities.len(), "nr_cap", 0, MAX_CAPS_PER_NODE)?;
        for cap in &block.capabilities {
            sink.put_str(cap.name.as_bytes(), "cap_name")?;
            sink.put_flag(cap.ok);
        }
    }
    sink.put_flag(m.require_reply);
    write_path(sink, &m.path)
}

/// A SYNC_REQ body, borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncReqView<'a> {
    /// Requested capability.
    pub capability: &'a str,
}

pub(crate) fn parse_sync_req(payload: &[u8]) -> Res<'_, SyncReqView<'_>> {
    let (rest, capability) = prim::text(payload, "sync_capability")?;
    Ok((rest, SyncReqView { capability }))
}

pub(crate) fn write_sync_req<S: Sink>(sink: &mut S, m: &SyncReq) -> Result<(), EmitError> {
    sink.put_str(m.capability.as_bytes(), "sync_capability")
}

/// The validated chunks of a SYNC packet, borrowed (module data only, headers stripped).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncChunks<'a> {
    raw: &'a [u8],
    len: usize,
}

impl<'a> SyncChunks<'a> {
    /// Number of chunks.
    pub fn len(&self) -> usize {
        self.len
    }

    /// `true` when the packet carries no chunk.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The module data of each chunk, in wire order.
    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let mut rest = self.raw;
        let mut index = 0;
        core::iter::from_fn(move || {
            let (next, data) = parse_chunk(rest, index).ok()?;
            rest = next;
            index += 1;
            Some(data)
        })
    }
}

/// Reads one chunk (size, marker, data). The size excludes the 8-byte header.
fn parse_chunk(input: &[u8], index: usize) -> Res<'_, &[u8]> {
    let (rest, size) = prim::int(input, "chunk_size")?;
    let (rest, marker) = prim::int(rest, "start_marker")?;
    if marker != SYNC_CHUNK_MARKER {
        return Err(DecodeError::BadChunkMarker {
            chunk: index,
            found: marker,
        });
    }
    let available = rest.len();
    match usize::try_from(size) {
        Ok(n) if n <= available => prim::raw(rest, n, "chunk_data"),
        _ => Err(DecodeError::ChunkOverrun {
            chunk: index,
            size,
            available,
        }),
    }
}

/// A SYNC body, borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncView<'a> {
    /// Capability of the data.
    pub capability: &'a str,
    /// Module data version.
    pub data_version: i32,
    /// The chunks.
    pub chunks: SyncChunks<'a>,
}

impl SyncView<'_> {
    /// Copies into the owned message.
    pub fn to_owned(&self) -> Sync {
        let mut chunks = Vec::with_capacity(self.chunks.len());
        chunks.extend(self.chunks.iter().map(<[u8]>::to_vec));
        Sync {
            capability: self.capability.into(),
            data_version: self.data_version,
            chunks,
        }
    }
}

/// Reads a SYNC payload: chunks run to the exact end of the (trailer-less) payload.
pub(crate) fn parse_sync(payload: &[u8]) -> Res<'_, SyncView<'_>> {
    let (rest, capability) = prim::text(payload, "sync_capability")?;
    let (start, data_version) = prim::int(rest, "data_version")?;
    let mut rest = start;
    let mut len = 0;
    while !rest.is_empty() {
        rest = parse_chunk(rest, len)?.0;
        len += 1;
    }
    Ok((
        rest,
        SyncView {
            capability,
            data_version,
            chunks: SyncChunks { raw: start, len },
        },
    ))
}

/// Bytes one chunk of `data_len` bytes takes in a SYNC packet, header included.
pub fn sync_chunk_wire_len(data_len: usize) -> usize {
    SYNC_CHUNK_HEADER_LEN + data_len
}

pub(crate) fn write_sync<S: Sink>(sink: &mut S, m: &Sync) -> Result<(), EmitError> {
    sink.put_str(m.capability.as_bytes(), "sync_capability")?;
    sink.put_i32(m.data_version);
    for chunk in &m.chunks {
        let size =
            i32::try_from(chunk.len()).map_err(|_| EmitError::TooLarge { len: chunk.len() })?;
        sink.put_i32(size);
        sink.put_i32(SYNC_CHUNK_MARKER);
        sink.put(chunk);
    }
    Ok(())
}

/// A SYNC_END body, borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncEndView<'a> {
    /// Capability of the finished reply.
    pub capability: &'a str,
    /// Total chunk count.
    pub chunk_count: u32,
}

pub(crate) fn parse_sync_end(payload: &[u8]) -> Res<'_, SyncEndView<'_>> {
    let (rest, capability) = prim::text(payload, "sync_capability")?;
    let (rest, count) = prim::count(rest, "no_sync_chunks", 0, i32::MAX as usize)?;
    // `count` is ≤ i32::MAX, so it fits a u32.
    let chunk_count = u32::try_from(count).unwrap_or(u32::MAX);
    Ok((
        rest,
        SyncEndView {
            capability,
            chunk_count,
        },
    ))
}

pub(crate) fn write_sync_end<S: Sink>(sink: &mut S, m: &SyncEnd) -> Result<(), EmitError> {
    sink.put_str(m.capability.as_bytes(), "sync_capability")?;
    let count = i32::try_from(m.chunk_count).map_err(|_| EmitError::CountOutOfRange {
        field: "no_sync_chunks",
        len: m.chunk_count as usize,
        min: 0,
        max: i32::MAX as usize,
    })?;
    sink.put_i32(count);
    Ok(())
}
