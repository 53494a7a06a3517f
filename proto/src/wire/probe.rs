//! Link probing and discovery bodies: PING, PONG, UNKNOWN_ID, NODE_DESCRIPTION
//! (docs/wire.md §7.1, §7.2, §7.5, §7.6). All travel on `clusterer-internal` after the prefix.

use clusterer_core::message::{
    MAX_NODES, MAX_WIRE_PATH_LEN, NodeDescription, NodeInfo, Ping, Pong,
};

use super::error::{DecodeError, EmitError};
use super::prim::{self, IdList, Res, Sink, SinkExt};

/// Type value of PING.
pub const TYPE_PING: i32 = 0;
/// Type value of PONG.
pub const TYPE_PONG: i32 = 1;
/// Type value of UNKNOWN_ID.
pub const TYPE_UNKNOWN_ID: i32 = 4;
/// Type value of NODE_DESCRIPTION.
pub const TYPE_NODE_DESCRIPTION: i32 = 5;

/// Reads a PING body.
pub(crate) fn parse_ping(body: &[u8]) -> Res<'_, Ping> {
    let (rest, req_node_list) = prim::flag(body, "req_node_list")?;
    Ok((rest, Ping { req_node_list }))
}

pub(crate) fn write_ping<S: Sink>(sink: &mut S, ping: &Ping) {
    sink.put_flag(ping.req_node_list);
}

/// A PONG body, borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PongView<'a> {
    /// The listed node ids.
    pub nodes: IdList<'a>,
}

impl PongView<'_> {
    /// Copies into the owned message.
    pub fn to_owned(&self) -> Pong {
        Pong {
            nodes: self.nodes.to_vec(),
        }
    }
}

pub(crate) fn parse_pong(body: &[u8]) -> Res<'_, PongView<'_>> {
    let (rest, n) = prim::count(body, "nr_nodes", 0, MAX_NODES)?;
    let (rest, nodes) = IdList::parse(rest, n, "node_list")?;
    Ok((rest, PongView { nodes }))
}

pub(crate) fn write_pong<S: Sink>(sink: &mut S, pong: &Pong) -> Result<(), EmitError> {
    sink.put_ids(&pong.nodes, "node_list", 0, MAX_NODES)
}

/// The description fields shared by NODE_DESCRIPTION and FULL_TOP_UPDATE entries, borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeInfoView<'a> {
    /// BIN URL.
    pub url: &'a str,
    /// SIP address, may be empty.
    pub sip_addr: &'a str,
    /// Priority.
    pub priority: i32,
    /// Ping retries.
    pub no_ping_retries: i32,
}

impl NodeInfoView<'_> {
    /// Copies into the owned description.
    pub fn to_owned(&self) -> NodeInfo {
        NodeInfo {
            url: self.url.into(),
            sip_addr: self.sip_addr.into(),
            priority: self.priority,
            no_ping_retries: self.no_ping_retries,
        }
    }
}

pub(crate) fn parse_node_info(input: &[u8]) -> Res<'_, NodeInfoView<'_>> {
    let (rest, url) = prim::text(input, "url")?;
    let (rest, sip_addr) = prim::text(rest, "sip_addr")?;
    let (rest, priority) = prim::int(rest, "priority")?;
    let (rest, no_ping_retries) = prim::int(rest, "no_ping_retries")?;
    Ok((
        rest,
        NodeInfoView {
            url,
            sip_addr,
            priority,
            no_ping_retries,
        },
    ))
}

pub(crate) fn write_node_info<S: Sink>(sink: &mut S, info: &NodeInfo) -> Result<(), EmitError> {
    sink.put_str(info.url.as_bytes(), "url")?;
    sink.put_str(info.sip_addr.as_bytes(), "sip_addr")?;
    sink.put_i32(info.priority);
    sink.put_i32(info.no_ping_retries);
    Ok(())
}

/// Reads a path: `path_len` in 1..=26 then that many node ids.
pub(crate) fn parse_path(input: &[u8]) -> Res<'_, IdList<'_>> {
    let (rest, n) = prim::count(input, "path_len", 1, MAX_WIRE_PATH_LEN)?;
    IdList::parse(rest, n, "path")
}

pub(crate) fn write_path<S: Sink>(
    sink: &mut S,
    path: &[clusterer_core::NodeId],
) -> Result<(), EmitError> {
    sink.put_ids(path, "path", 1, MAX_WIRE_PATH_LEN)
}

/// A NODE_DESCRIPTION body, borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeDescriptionView<'a> {
    /// The description of the source node.
    pub info: NodeInfoView<'a>,
    /// The flood path.
    pub path: IdList<'a>,
}

impl NodeDescriptionView<'_> {
    /// Copies into the owned message.
    pub fn to_owned(&self) -> NodeDescription {
        NodeDescription {
            info: self.info.to_owned(),
            path: self.path.to_vec(),
        }
    }
}

pub(crate) fn parse_node_description(body: &[u8]) -> Res<'_, NodeDescriptionView<'_>> {
    let (rest, info) = parse_node_info(body)?;
    let (rest, path) = parse_path(rest)?;
    Ok((rest, NodeDescriptionView { info, path }))
}

pub(crate) fn write_node_description<S: Sink>(
    sink: &mut S,
    m: &NodeDescription,
) -> Result<(), EmitError> {
    write_node_info(sink, &m.info)?;
    write_path(sink, &m.path)
}

/// Checks that nothing follows the last field of a fixed layout.
pub(crate) fn expect_end(rest: &[u8], type_name: &'static str) -> Result<(), DecodeError> {
    if rest.is_empty() {
        Ok(())
    } else {
        Err(DecodeError::TrailingBytes {
            type_name,
            count: rest.len(),
        })
    }
}
