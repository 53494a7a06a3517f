//! The byte-exact BIN codec of the OpenSIPS 3.6 clusterer (docs/wire.md).
//!
//! Decoding is two steps. [`parse_view`] validates a whole packet with nom parsers that never
//! allocate and returns a [`PacketView`] borrowing the bytes (lists are validated slices with
//! iterators). [`PacketView::to_message`] then copies it into the owned
//! [`Message`] the core works on. [`parse`] does both.
//!
//! Encoding writes an owned [`Message`] into a caller's buffer of [`buffer_len`] bytes
//! ([`emit`]) or into a new vector ([`emit_to_vec`]). One function does both the sizing
//! and the writing, so the two cannot disagree.
//!
//! Round trips hold both ways: `parse(emit(m)) == m` for every message `emit` accepts, and
//! `emit(parse(bytes)) == bytes` for every packet `parse` accepts (the header version is
//! kept, unknown capabilities keep their payload verbatim).
//!
//! ```
//! use clusterer_proto::wire;
//! // docs/wire.md §11.1: PING from node 1, cluster 1, req_node_list = 1.
//! let bytes = [
//!     0x50, 0x34, 0x43, 0x4b, 0x2e, 0, 0, 0, 1, 0, 0x12, 0, b'c', b'l', b'u', b's', b't',
//!     b'e', b'r', b'e', b'r', b'-', b'i', b'n', b't', b'e', b'r', b'n', b'a', b'l', 0, 0, 0,
//!     0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0,
//! ];
//! let message = wire::parse(&bytes)?;
//! assert_eq!(message.type_name(), "PING");
//! assert_eq!(wire::emit_to_vec(&message)?, bytes);
//! # Ok::<(), Box<dyn core::error::Error>>(())
//! ```

pub mod cachedb_local;
mod capability;
mod error;
mod header;
mod prim;
mod probe;
mod service;
mod topology;

use alloc::vec;
use alloc::vec::Vec;

use clusterer_core::message::{
    BIN_SYNC_VERSION, Internal, InternalBody, Message, MessageKind, ModulePacket, Ping, RemoveNode,
    Routed, RoutedBody, ShtagActive, SyncEnd, SyncReq, Trailer,
};
use clusterer_core::{ClusterId, NodeId};

pub use capability::{
    CapUpdateView, CapabilityBlockView, CapabilityBlocks, CapabilityStateView,
    SYNC_CHUNK_HEADER_LEN, SYNC_CHUNK_MARKER, SyncChunks, SyncEndView, SyncReqView, SyncView,
    TYPE_CAP_UPDATE, TYPE_SYNC, TYPE_SYNC_END, TYPE_SYNC_REQ, sync_chunk_wire_len,
};
pub use error::{DecodeError, EmitError};
pub use header::{
    CAP_EXTRA, CAP_INTERNAL, FIXED_HEADER_LEN, HeaderView, MARKER, MAX_EMIT_LEN, MAX_PACKET_LEN,
    MIN_PACKET_LEN, check_frame_start, parse_header,
};
pub use prim::{IdList, TextList};
pub use probe::{
    NodeDescriptionView, NodeInfoView, PongView, TYPE_NODE_DESCRIPTION, TYPE_PING, TYPE_PONG,
    TYPE_UNKNOWN_ID,
};
pub use service::{
    GenericMsgView, MiCmdView, ShtagActiveView, TRAILER_LEN, TYPE_GENERIC_MSG, TYPE_MI_CMD,
    TYPE_REMOVE_NODE, TYPE_SHTAG_ACTIVE,
};
pub use topology::{
    FullTopUpdateView, LsUpdateView, TYPE_FULL_TOP_UPDATE, TYPE_LS_UPDATE, TopologyEntries,
    TopologyEntryView,
};

use prim::{Counter, Sink, SinkExt, SliceSink};
use probe::expect_end;

/// A validated packet, borrowing its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PacketView<'a> {
    /// `clusterer-internal`: prefix and body.
    Internal {
        /// BIN header version.
        version: i16,
        /// Prefix P1.
        cluster: ClusterId,
        /// Prefix P2.
        source: NodeId,
        /// The body.
        body: InternalView<'a>,
    },
    /// `clusterer-extra` or a module capability: body and trailer.
    Routed {
        /// BIN header version.
        version: i16,
        /// The routing trailer.
        trailer: Trailer,
        /// The body.
        body: RoutedView<'a>,
    },
}

/// A validated `clusterer-internal` body, borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InternalView<'a> {
    /// PING.
    Ping(Ping),
    /// PONG.
    Pong(PongView<'a>),
    /// LS_UPDATE.
    LsUpdate(LsUpdateView<'a>),
    /// FULL_TOP_UPDATE.
    FullTopUpdate(FullTopUpdateView<'a>),
    /// UNKNOWN_ID.
    UnknownId,
    /// NODE_DESCRIPTION.
    NodeDescription(NodeDescriptionView<'a>),
    /// CAP_UPDATE.
    CapUpdate(CapUpdateView<'a>),
}

/// A validated routable body, borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoutedView<'a> {
    /// REMOVE_NODE.
    RemoveNode(RemoveNode),
    /// GENERIC_MSG.
    GenericMsg(GenericMsgView<'a>),
    /// MI_CMD.
    MiCmd(MiCmdView<'a>),
    /// SYNC_REQ.
    SyncReq(SyncReqView<'a>),
    /// SYNC.
    Sync(SyncView<'a>),
    /// SYNC_END.
    SyncEnd(SyncEndView<'a>),
    /// SHTAG_ACTIVE.
    ShtagActive(ShtagActiveView<'a>),
    /// A module packet.
    Module(ModuleView<'a>),
}

/// A module packet, borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModuleView<'a> {
    /// Capability name.
    pub capability: &'a str,
    /// Module packet type.
    pub packet_type: i32,
    /// Payload without the trailer.
    pub payload: &'a [u8],
}

impl PacketView<'_> {
    /// Copies the view into the owned message.
    pub fn to_message(&self) -> Message {
        match *self {
            PacketView::Internal {
                version,
                cluster,
                source,
                body,
            } => {
                let body = match body {
                    InternalView::Ping(p) => InternalBody::Ping(p),
                    InternalView::Pong(p) => InternalBody::Pong(p.to_owned()),
                    InternalView::LsUpdate(m) => InternalBody::LsUpdate(m.to_owned()),
                    InternalView::FullTopUpdate(m) => InternalBody::FullTopUpdate(m.to_owned()),
                    InternalView::UnknownId => InternalBody::UnknownId,
                    InternalView::NodeDescription(m) => InternalBody::NodeDescription(m.to_owned()),
                    InternalView::CapUpdate(m) => InternalBody::CapUpdate(m.to_owned()),
                };
                Message::Internal(Internal {
                    version,
                    cluster,
                    source,
                    body,
                })
            }
            PacketView::Routed {
                version,
                trailer,
                body,
            } => {
                let body = match body {
                    RoutedView::RemoveNode(m) => RoutedBody::RemoveNode(m),
                    RoutedView::GenericMsg(m) => RoutedBody::GenericMsg(m.to_owned()),
                    RoutedView::MiCmd(m) => RoutedBody::MiCmd(m.to_owned()),
                    RoutedView::SyncReq(m) => RoutedBody::SyncReq(SyncReq {
                        capability: m.capability.into(),
                    }),
                    RoutedView::Sync(m) => RoutedBody::Sync(m.to_owned()),
                    RoutedView::SyncEnd(m) => RoutedBody::SyncEnd(SyncEnd {
                        capability: m.capability.into(),
                        chunk_count: m.chunk_count,
                    }),
                    RoutedView::ShtagActive(m) => {
                        RoutedBody::ShtagActive(ShtagActive { tag: m.tag.into() })
                    }
                    RoutedView::Module(m) => RoutedBody::Module(ModulePacket {
                        capability: m.capability.into(),
                        packet_type: m.packet_type,
                        payload: m.payload.to_vec(),
                    }),
                };
                Message::Routed(Routed {
                    version,
                    trailer,
                    body,
                })
            }
        }
    }

    /// The cluster of the packet.
    pub fn cluster(&self) -> ClusterId {
        match self {
            PacketView::Internal { cluster, .. } => *cluster,
            PacketView::Routed { trailer, .. } => trailer.cluster,
        }
    }

    /// The originating node.
    pub fn source(&self) -> NodeId {
        match self {
            PacketView::Internal { source, .. } => *source,
            PacketView::Routed { trailer, .. } => trailer.source,
        }
    }
}

/// Validates one complete packet and returns a view borrowing it. Never allocates.
///
/// # Errors
/// A [`DecodeError`] naming the first field that is malformed: header problems, truncated
/// fields, ids ≤ 0, counts out of range, bad flags, unknown clusterer types, SYNC/SYNC_END
/// with a version other than 3, bad chunks, or bytes left after a fixed layout.
pub fn parse_view(packet: &[u8]) -> Result<PacketView<'_>, DecodeError> {
    let header = parse_header(packet)?;
    let version = header.version;
    match header.capability {
        b"clusterer-internal" => {
            let (rest, cluster) = prim::cluster_id(header.body, "cluster_id")?;
            let (rest, source) = prim::node_id(rest, "src_node")?;
            let (rest, body) = match header.packet_type {
                TYPE_PING => probe::parse_ping(rest).map(|(r, p)| (r, InternalView::Ping(p)))?,
                TYPE_PONG => probe::parse_pong(rest).map(|(r, p)| (r, InternalView::Pong(p)))?,
                TYPE_LS_UPDATE => {
                    topology::parse_ls_update(rest).map(|(r, m)| (r, InternalView::LsUpdate(m)))?
                }
                TYPE_FULL_TOP_UPDATE => topology::parse_full_top_update(rest)
                    .map(|(r, m)| (r, InternalView::FullTopUpdate(m)))?,
                TYPE_UNKNOWN_ID => (rest, InternalView::UnknownId),
                TYPE_NODE_DESCRIPTION => probe::parse_node_description(rest)
                    .map(|(r, m)| (r, InternalView::NodeDescription(m)))?,
                TYPE_CAP_UPDATE => capability::parse_cap_update(rest)
                    .map(|(r, m)| (r, InternalView::CapUpdate(m)))?,
                packet_type => {
                    return Err(DecodeError::UnknownType {
                        capability: CAP_INTERNAL,
                        packet_type,
                    });
                }
            };
            expect_end(rest, body.kind().name())?;
            Ok(PacketView::Internal {
                version,
                cluster,
                source,
                body,
            })
        }
        b"clusterer-extra" => {
            let (payload, trailer) = service::split_trailer(header.body)?;
            let sync_version = |type_name| {
                if version == BIN_SYNC_VERSION {
                    Ok(())
                } else {
                    Err(DecodeError::BadSyncVersion { type_name, version })
                }
            };
            let (rest, body) = match header.packet_type {
                TYPE_REMOVE_NODE => service::parse_remove_node(payload)
                    .map(|(r, m)| (r, RoutedView::RemoveNode(m)))?,
                TYPE_GENERIC_MSG => service::parse_generic_msg(payload)
                    .map(|(r, m)| (r, RoutedView::GenericMsg(m)))?,
                TYPE_MI_CMD => {
                    service::parse_mi_cmd(payload).map(|(r, m)| (r, RoutedView::MiCmd(m)))?
                }
                TYPE_SYNC_REQ => {
                    capability::parse_sync_req(payload).map(|(r, m)| (r, RoutedView::SyncReq(m)))?
                }
                TYPE_SYNC => {
                    sync_version("SYNC")?;
                    capability::parse_sync(payload).map(|(r, m)| (r, RoutedView::Sync(m)))?
                }
                TYPE_SYNC_END => {
                    sync_version("SYNC_END")?;
                    capability::parse_sync_end(payload).map(|(r, m)| (r, RoutedView::SyncEnd(m)))?
                }
                TYPE_SHTAG_ACTIVE => service::parse_shtag_active(payload)
                    .map(|(r, m)| (r, RoutedView::ShtagActive(m)))?,
                packet_type => {
                    return Err(DecodeError::UnknownType {
                        capability: CAP_EXTRA,
                        packet_type,
                    });
                }
            };
            expect_end(rest, body.kind().name())?;
            Ok(PacketView::Routed {
                version,
                trailer,
                body,
            })
        }
        capability => {
            let capability =
                core::str::from_utf8(capability).map_err(|_| DecodeError::NotUtf8 {
                    field: "capability",
                })?;
            let (payload, trailer) = service::split_trailer(header.body)?;
            let body = RoutedView::Module(ModuleView {
                capability,
                packet_type: header.packet_type,
                payload,
            });
            Ok(PacketView::Routed {
                version,
                trailer,
                body,
            })
        }
    }
}

impl InternalView<'_> {
    /// What kind of message this is (its name is [`MessageKind::name`]).
    pub fn kind(&self) -> MessageKind {
        match self {
            InternalView::Ping(_) => MessageKind::Ping,
            InternalView::Pong(_) => MessageKind::Pong,
            InternalView::LsUpdate(_) => MessageKind::LsUpdate,
            InternalView::FullTopUpdate(_) => MessageKind::FullTopUpdate,
            InternalView::UnknownId => MessageKind::UnknownId,
            InternalView::NodeDescription(_) => MessageKind::NodeDescription,
            InternalView::CapUpdate(_) => MessageKind::CapUpdate,
        }
    }
}

impl RoutedView<'_> {
    /// What kind of message this is (its name is [`MessageKind::name`]).
    pub fn kind(&self) -> MessageKind {
        match self {
            RoutedView::RemoveNode(_) => MessageKind::RemoveNode,
            RoutedView::GenericMsg(_) => MessageKind::GenericMsg,
            RoutedView::MiCmd(_) => MessageKind::MiCmd,
            RoutedView::SyncReq(_) => MessageKind::SyncReq,
            RoutedView::Sync(_) => MessageKind::Sync,
            RoutedView::SyncEnd(_) => MessageKind::SyncEnd,
            RoutedView::ShtagActive(_) => MessageKind::ShtagActive,
            RoutedView::Module(_) => MessageKind::Module,
        }
    }
}

impl PacketView<'_> {
    /// What kind of message this is.
    pub fn kind(&self) -> MessageKind {
        match self {
            PacketView::Internal { body, .. } => body.kind(),
            PacketView::Routed { body, .. } => body.kind(),
        }
    }
}

/// Decodes one complete packet into an owned [`Message`].
///
/// # Errors
/// As [`parse_view`].
pub fn parse(packet: &[u8]) -> Result<Message, DecodeError> {
    parse_view(packet).map(|view| view.to_message())
}

/// The exact number of bytes [`emit`] will write for `message`.
///
/// # Errors
/// As [`emit`], except [`EmitError::BufferTooSmall`].
pub fn buffer_len(message: &Message) -> Result<usize, EmitError> {
    let mut counter = Counter::default();
    write_message(&mut counter, message, 0)?;
    if counter.0 > MAX_EMIT_LEN {
        return Err(EmitError::TooLarge { len: counter.0 });
    }
    Ok(counter.0)
}

/// Encodes `message` into the start of `buf` and returns the number of bytes written.
///
/// # Errors
/// [`EmitError::TooLarge`] above 65515 bytes, [`EmitError::BufferTooSmall`],
/// [`EmitError::StringTooLong`], [`EmitError::CountOutOfRange`] for lists a receiver would
/// reject, [`EmitError::BadSyncVersion`], [`EmitError::ReservedCapability`]. The message is
/// unchanged; `buf` may have been partly written.
pub fn emit(message: &Message, buf: &mut [u8]) -> Result<usize, EmitError> {
    let len = buffer_len(message)?;
    if buf.len() < len {
        return Err(EmitError::BufferTooSmall {
            needed: len,
            given: buf.len(),
        });
    }
    let mut sink = SliceSink { buf, pos: 0 };
    write_message(&mut sink, message, len)?;
    debug_assert_eq!(sink.pos, len);
    Ok(len)
}

/// Encodes `message` into a new vector of exactly [`buffer_len`] bytes.
///
/// # Errors
/// As [`emit`].
pub fn emit_to_vec(message: &Message) -> Result<Vec<u8>, EmitError> {
    let len = buffer_len(message)?;
    let mut buf = vec![0u8; len];
    emit(message, &mut buf)?;
    Ok(buf)
}

/// The header fields (capability, type) a message is sent with.
fn header_of(message: &Message) -> (i16, &str, i32) {
    match message {
        Message::Internal(m) => {
            let ty = match &m.body {
                InternalBody::Ping(_) => TYPE_PING,
                InternalBody::Pong(_) => TYPE_PONG,
                InternalBody::LsUpdate(_) => TYPE_LS_UPDATE,
                InternalBody::FullTopUpdate(_) => TYPE_FULL_TOP_UPDATE,
                InternalBody::UnknownId => TYPE_UNKNOWN_ID,
                InternalBody::NodeDescription(_) => TYPE_NODE_DESCRIPTION,
                InternalBody::CapUpdate(_) => TYPE_CAP_UPDATE,
            };
            (m.version, CAP_INTERNAL, ty)
        }
        Message::Routed(m) => {
            let ty = match &m.body {
                RoutedBody::RemoveNode(_) => TYPE_REMOVE_NODE,
                RoutedBody::GenericMsg(_) => TYPE_GENERIC_MSG,
                RoutedBody::MiCmd(_) => TYPE_MI_CMD,
                RoutedBody::SyncReq(_) => TYPE_SYNC_REQ,
                RoutedBody::Sync(_) => TYPE_SYNC,
                RoutedBody::SyncEnd(_) => TYPE_SYNC_END,
                RoutedBody::ShtagActive(_) => TYPE_SHTAG_ACTIVE,
                RoutedBody::Module(p) => return (m.version, p.capability.as_str(), p.packet_type),
            };
            (m.version, CAP_EXTRA, ty)
        }
    }
}

fn write_message<S: Sink>(
    sink: &mut S,
    message: &Message,
    total_len: usize,
) -> Result<(), EmitError> {
    let (version, capability, packet_type) = header_of(message);
    if let Message::Routed(Routed { body, .. }) = message {
        let reserved =
            capability.is_empty() || capability == CAP_INTERNAL || capability == CAP_EXTRA;
        match body {
            RoutedBody::Module(_) if reserved => return Err(EmitError::ReservedCapability),
            RoutedBody::Sync(_) | RoutedBody::SyncEnd(_) if version != BIN_SYNC_VERSION => {
                return Err(EmitError::BadSyncVersion { version });
            }
            _ => {}
        }
    }
    header::write_header(sink, total_len, version, capability, packet_type)?;
    match message {
        Message::Internal(m) => {
            sink.put_cluster(m.cluster);
            sink.put_node(m.source);
            match &m.body {
                InternalBody::Ping(p) => probe::write_ping(sink, p),
                InternalBody::Pong(p) => probe::write_pong(sink, p)?,
                InternalBody::LsUpdate(u) => topology::write_ls_update(sink, u)?,
                InternalBody::FullTopUpdate(u) => topology::write_full_top_update(sink, u)?,
                InternalBody::UnknownId => {}
                InternalBody::NodeDescription(d) => probe::write_node_description(sink, d)?,
                InternalBody::CapUpdate(u) => capability::write_cap_update(sink, u)?,
            }
        }
        Message::Routed(m) => {
            match &m.body {
                RoutedBody::RemoveNode(r) => service::write_remove_node(sink, r),
                RoutedBody::GenericMsg(g) => service::write_generic_msg(sink, g)?,
                RoutedBody::MiCmd(c) => service::write_mi_cmd(sink, c)?,
                RoutedBody::SyncReq(r) => capability::write_sync_req(sink, r)?,
                RoutedBody::Sync(s) => capability::write_sync(sink, s)?,
                RoutedBody::SyncEnd(e) => capability::write_sync_end(sink, e)?,
                RoutedBody::ShtagActive(t) => service::write_shtag_active(sink, t)?,
                RoutedBody::Module(p) => sink.put(&p.payload),
            }
            service::write_trailer(sink, &m.trailer);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
