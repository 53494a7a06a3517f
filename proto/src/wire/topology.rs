//! Topology gossip bodies: LS_UPDATE and FULL_TOP_UPDATE (docs/wire.md §7.3, §7.4).

use alloc::vec::Vec;

use clusterer_core::NodeId;
use clusterer_core::message::{FullTopUpdate, LinkUpdate, LsUpdate, MAX_NODES, TopologyEntry};

use super::error::{DecodeError, EmitError};
use super::prim::{self, IdList, Res, Sink, SinkExt};
use super::probe::{NodeInfoView, parse_node_info, parse_path, write_node_info, write_path};

/// Type value of LS_UPDATE.
pub const TYPE_LS_UPDATE: i32 = 2;
/// Type value of FULL_TOP_UPDATE.
pub const TYPE_FULL_TOP_UPDATE: i32 = 3;

/// An LS_UPDATE body, borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LsUpdateView<'a> {
    /// Originator's ls counter.
    pub seq: i32,
    /// Originator's UNIX time.
    pub timestamp: i32,
    /// The other end of the changed link.
    pub neighbour: NodeId,
    /// New link state.
    pub state: LinkUpdate,
    /// Flood path.
    pub path: IdList<'a>,
}

impl LsUpdateView<'_> {
    /// Copies into the owned message.
    pub fn to_owned(&self) -> LsUpdate {
        LsUpdate {
            seq: self.seq,
            timestamp: self.timestamp,
            neighbour: self.neighbour,
            state: self.state,
            path: self.path.to_vec(),
        }
    }
}

pub(crate) fn parse_ls_update(body: &[u8]) -> Res<'_, LsUpdateView<'_>> {
    let (rest, seq) = prim::int(body, "seq_no")?;
    let (rest, timestamp) = prim::int(rest, "timestamp")?;
    let (rest, neighbour) = prim::node_id(rest, "neigh_id")?;
    let (rest, raw_state) = prim::int(rest, "new_ls")?;
    let state = match raw_state {
        0 => LinkUpdate::Up,
        1 => LinkUpdate::Down,
        value => {
            return Err(DecodeError::InvalidValue {
                field: "new_ls",
                value,
                expected: "0 (up) or 1 (down)",
            });
        }
    };
    let (rest, path) = parse_path(rest)?;
    Ok((
        rest,
        LsUpdateView {
            seq,
            timestamp,
            neighbour,
            state,
            path,
        },
    ))
}

pub(crate) fn write_ls_update<S: Sink>(sink: &mut S, m: &LsUpdate) -> Result<(), EmitError> {
    sink.put_i32(m.seq);
    sink.put_i32(m.timestamp);
    sink.put_node(m.neighbour);
    sink.put_i32(match m.state {
        LinkUpdate::Up => 0,
        LinkUpdate::Down => 1,
    });
    write_path(sink, &m.path)
}

/// One FULL_TOP_UPDATE node entry, borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TopologyEntryView<'a> {
    /// The node described.
    pub node: NodeId,
    /// Its description, when sent.
    pub description: Option<NodeInfoView<'a>>,
    /// Its ls counter as known by the sender.
    pub ls_seq: i32,
    /// Its ls timestamp as known by the sender.
    pub ls_timestamp: i32,
    /// Its UP links as known by the sender.
    pub neighbours: IdList<'a>,
}

impl TopologyEntryView<'_> {
    /// Copies into the owned entry.
    pub fn to_owned(&self) -> TopologyEntry {
        TopologyEntry {
            node: self.node,
            description: self.description.map(|d| d.to_owned()),
            ls_seq: self.ls_seq,
            ls_timestamp: self.ls_timestamp,
            neighbours: self.neighbours.to_vec(),
        }
    }
}

fn parse_entry(input: &[u8]) -> Res<'_, TopologyEntryView<'_>> {
    let (rest, node) = prim::node_id(input, "node_id")?;
    let (rest, has_descr) = prim::flag(rest, "has_descr")?;
    let (rest, description) = if has_descr {
        let (rest, info) = parse_node_info(rest)?;
        (rest, Some(info))
    } else {
        (rest, None)
    };
    let (rest, ls_seq) = prim::int(rest, "ls_seq_no")?;
    let (rest, ls_timestamp) = prim::int(rest, "ls_timestamp")?;
    let (rest, n) = prim::count(rest, "no_neigh", 0, MAX_NODES)?;
    let (rest, neighbours) = IdList::parse(rest, n, "neighbours")?;
    Ok((
        rest,
        TopologyEntryView {
            node,
            description,
            ls_seq,
            ls_timestamp,
            neighbours,
        },
    ))
}

/// The validated entries of a FULL_TOP_UPDATE, borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TopologyEntries<'a> {
    raw: &'a [u8],
    len: usize,
}

impl<'a> TopologyEntries<'a> {
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// `true` when there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The entries in wire order.
    pub fn iter(&self) -> impl Iterator<Item = TopologyEntryView<'a>> + 'a {
        let mut rest = self.raw;
        core::iter::from_fn(move || {
            let (next, entry) = parse_entry(rest).ok()?;
            rest = next;
            Some(entry)
        })
    }
}

/// A FULL_TOP_UPDATE body, borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FullTopUpdateView<'a> {
    /// Originator's top counter.
    pub seq: i32,
    /// Originator's UNIX time.
    pub timestamp: i32,
    /// Node entries.
    pub entries: TopologyEntries<'a>,
    /// Flood path.
    pub path: IdList<'a>,
}

impl FullTopUpdateView<'_> {
    /// Copies into the owned message.
    pub fn to_owned(&self) -> FullTopUpdate {
        let mut entries = Vec::with_capacity(self.entries.len());
        entries.extend(self.entries.iter().map(|e| e.to_owned()));
        FullTopUpdate {
            seq: self.seq,
            timestamp: self.timestamp,
            entries,
            path: self.path.to_vec(),
        }
    }
}

pub(crate) fn parse_full_top_update(body: &[u8]) -> Res<'_, FullTopUpdateView<'_>> {
    let (rest, seq) = prim::int(body, "seq_no")?;
    let (rest, timestamp) = prim::int(rest, "timestamp")?;
    let (start, n) = prim::count(rest, "no_nodes", 0, MAX_NODES)?;
    let mut rest = start;
    for _ in 0..n {
        rest = parse_entry(rest)?.0;
    }
    let entries = TopologyEntries {
        raw: &start[..start.len() - rest.len()],
        len: n,
    };
    let (rest, path) = parse_path(rest)?;
    Ok((
        rest,
        FullTopUpdateView {
            seq,
            timestamp,
            entries,
            path,
        },
    ))
}

pub(crate) fn write_full_top_update<S: Sink>(
    sink: &mut S,
    m: &FullTopUpdate,
) -> Result<(), EmitError> {
    sink.put_i32(m.seq);
    sink.put_i32(m.timestamp);
    sink.put_count(m.entries.len(), "no_nodes", 0, MAX_NODES)?;
    for e in &m.entries {
        sink.put_node(e.node);
        sink.put_flag(e.description.is_some());
        if let Some(info) = &e.description {
            write_node_info(sink, info)?;
        }
        sink.put_i32(e.ls_seq);
        sink.put_i32(e.ls_timestamp);
        sink.put_ids(&e.neighbours, "neighbours", 0, MAX_NODES)?;
    }
    write_path(sink, &m.path)
}
