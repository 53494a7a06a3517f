//! Cluster service bodies on `clusterer-extra`: REMOVE_NODE, GENERIC_MSG, MI_CMD,
//! SHTAG_ACTIVE (docs/wire.md §7.7–§7.9, §7.14), and the routing trailer (§6).

use clusterer_core::message::{
    GenericKind, GenericMsg, MAX_MI_PARAMS, MiCmd, RemoveNode, ShtagActive, Trailer,
};

use super::error::{DecodeError, EmitError};
use super::prim::{self, Res, Sink, SinkExt, TextList};

/// Type value of REMOVE_NODE.
pub const TYPE_REMOVE_NODE: i32 = 6;
/// Type value of GENERIC_MSG.
pub const TYPE_GENERIC_MSG: i32 = 7;
/// Type value of MI_CMD.
pub const TYPE_MI_CMD: i32 = 8;
/// Type value of SHTAG_ACTIVE.
pub const TYPE_SHTAG_ACTIVE: i32 = 13;
/// Bytes of the routing trailer: cluster, source, destination.
pub const TRAILER_LEN: usize = clusterer_core::message::sizes::TRAILER_LEN;

/// Splits a routable body into payload and trailer (the trailer is the last 12 bytes).
pub(crate) fn split_trailer(body: &[u8]) -> Result<(&[u8], Trailer), DecodeError> {
    let Some(payload_len) = body.len().checked_sub(TRAILER_LEN) else {
        return Err(DecodeError::MissingTrailer {
            body_len: body.len(),
        });
    };
    let (payload, tail) = body.split_at(payload_len);
    let (rest, cluster) = prim::cluster_id(tail, "trailer.cluster_id")?;
    let (rest, source) = prim::node_id(rest, "trailer.src_node")?;
    let (_, destination) = prim::node_id(rest, "trailer.dst_node")?;
    Ok((
        payload,
        Trailer {
            cluster,
            source,
            destination,
        },
    ))
}

pub(crate) fn write_trailer<S: Sink>(sink: &mut S, t: &Trailer) {
    sink.put_cluster(t.cluster);
    sink.put_node(t.source);
    sink.put_node(t.destination);
}

pub(crate) fn parse_remove_node(payload: &[u8]) -> Res<'_, RemoveNode> {
    let (rest, node) = prim::node_id(payload, "target_node")?;
    Ok((rest, RemoveNode { node }))
}

pub(crate) fn write_remove_node<S: Sink>(sink: &mut S, m: &RemoveNode) {
    sink.put_node(m.node);
}

/// A GENERIC_MSG body, borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GenericMsgView<'a> {
    /// Request or reply.
    pub kind: GenericKind,
    /// Exchange tag.
    pub tag: &'a [u8],
    /// Payload.
    pub payload: &'a [u8],
}

impl GenericMsgView<'_> {
    /// Copies into the owned message.
    pub fn to_owned(&self) -> GenericMsg {
        GenericMsg {
            kind: self.kind,
            tag: self.tag.to_vec(),
            payload: self.payload.to_vec(),
        }
    }
}

pub(crate) fn parse_generic_msg(payload: &[u8]) -> Res<'_, GenericMsgView<'_>> {
    let (rest, req_like) = prim::flag(payload, "req_like")?;
    let (rest, tag) = prim::bytes(rest, "tag")?;
    let (rest, msg) = prim::bytes(rest, "msg")?;
    let kind = if req_like {
        GenericKind::Request
    } else {
        GenericKind::Reply
    };
    Ok((
        rest,
        GenericMsgView {
            kind,
            tag,
            payload: msg,
        },
    ))
}

pub(crate) fn write_generic_msg<S: Sink>(sink: &mut S, m: &GenericMsg) -> Result<(), EmitError> {
    sink.put_flag(m.kind == GenericKind::Request);
    sink.put_str(&m.tag, "tag")?;
    sink.put_str(&m.payload, "msg")
}

/// An MI_CMD body, borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MiCmdView<'a> {
    /// Command name.
    pub command: &'a str,
    /// Positional parameters.
    pub params: TextList<'a>,
}

impl MiCmdView<'_> {
    /// Copies into the owned message.
    pub fn to_owned(&self) -> MiCmd {
        MiCmd {
            command: self.command.into(),
            params: self.params.iter().map(Into::into).collect(),
        }
    }
}

pub(crate) fn parse_mi_cmd(payload: &[u8]) -> Res<'_, MiCmdView<'_>> {
    let (rest, command) = prim::text(payload, "cmd_name")?;
    let (rest, n) = prim::count(rest, "no_params", 0, MAX_MI_PARAMS)?;
    let (rest, params) = TextList::parse(rest, n, "cmd_params")?;
    Ok((rest, MiCmdView { command, params }))
}

pub(crate) fn write_mi_cmd<S: Sink>(sink: &mut S, m: &MiCmd) -> Result<(), EmitError> {
    sink.put_str(m.command.as_bytes(), "cmd_name")?;
    sink.put_count(m.params.len(), "no_params", 0, MAX_MI_PARAMS)?;
    for p in &m.params {
        sink.put_str(p.as_bytes(), "cmd_params")?;
    }
    Ok(())
}

/// A SHTAG_ACTIVE body, borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShtagActiveView<'a> {
    /// Tag name.
    pub tag: &'a str,
}

pub(crate) fn parse_shtag_active(payload: &[u8]) -> Res<'_, ShtagActiveView<'_>> {
    let (rest, tag) = prim::text(payload, "tag_name")?;
    Ok((rest, ShtagActiveView { tag }))
}

pub(crate) fn write_shtag_active<S: Sink>(sink: &mut S, m: &ShtagActive) -> Result<(), EmitError> {
    sink.put_str(m.tag.as_bytes(), "tag_name")
}
