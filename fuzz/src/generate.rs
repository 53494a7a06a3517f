//! Builds typed messages from unstructured fuzzer bytes.
//!
//! The core types do not derive `Arbitrary` (core stays free of fuzzing dependencies), so
//! this module maps bytes onto them by hand. Most messages respect every wire limit; now and
//! then a list length, a string length, a SYNC version or a module capability is pushed past
//! its limit on purpose, and [`Generated::within_limits`] records it so the roundtrip check
//! can demand that `emit` accepts exactly the messages inside the limits.

use arbitrary::{Result, Unstructured};
use clusterer_core::message::{
    BIN_SYNC_VERSION, BIN_VERSION, CachedbLocalEntry, CachedbLocalPacket, CapUpdate,
    CapabilityBlock, CapabilityState, FullTopUpdate, GenericKind, GenericMsg, Internal,
    InternalBody, LinkUpdate, LsUpdate, MAX_CAP_NODES, MAX_MI_PARAMS, MAX_NODES, MAX_WIRE_PATH_LEN,
    Message, MiCmd, ModulePacket, NodeDescription, NodeInfo, Ping, Pong, RemoveNode, Routed,
    RoutedBody, ShtagActive, Sync, SyncEnd, SyncReq, TopologyEntry, Trailer,
};
use clusterer_core::{ClusterId, NodeId, id::MAX_ID};
use clusterer_proto::wire::{CAP_EXTRA, CAP_INTERNAL, cachedb_local};

/// Longest string or byte field the wire can describe (`u16` length).
const MAX_STR_LEN: usize = u16::MAX as usize;

/// A message built from fuzzer bytes, with what the generator knows about it.
#[derive(Clone, Debug)]
pub struct Generated {
    /// The message.
    pub message: Message,
    /// `false` when the generator broke a wire limit on purpose (a list count, a string over
    /// 65535 bytes, a SYNC version, a reserved or empty module capability): `emit` must then
    /// refuse the message. When `true`, `emit` may only refuse it for its total size.
    pub within_limits: bool,
    /// The cachedb-local packet a module payload was encoded from, if any.
    pub cachedb_packet: Option<CachedbLocalPacket>,
    /// The cachedb-local records SYNC chunks were encoded from: (chunk index, record).
    pub cachedb_chunks: Vec<(usize, CachedbLocalEntry)>,
}

/// Builds one message from `u`. Never fails on short input: missing bytes read as zeros.
///
/// # Errors
/// Only what `arbitrary` reports for malformed requests (none are made here in practice).
pub fn message(u: &mut Unstructured<'_>) -> Result<Generated> {
    let mut g = Gen {
        u,
        within_limits: true,
        cachedb_packet: None,
        cachedb_chunks: Vec::new(),
    };
    let message = g.message()?;
    Ok(Generated {
        message,
        within_limits: g.within_limits,
        cachedb_packet: g.cachedb_packet,
        cachedb_chunks: g.cachedb_chunks,
    })
}

struct Gen<'a, 'b> {
    u: &'b mut Unstructured<'a>,
    within_limits: bool,
    cachedb_packet: Option<CachedbLocalPacket>,
    cachedb_chunks: Vec<(usize, CachedbLocalEntry)>,
}

impl Gen<'_, '_> {
    /// `true` with probability 1/`n` while input lasts, `false` once it is used up (so a
    /// short input builds a small, valid message, not one full of rare cases).
    fn one_in(&mut self, n: u8) -> Result<bool> {
        if self.u.is_empty() {
            return Ok(false);
        }
        Ok(self.u.int_in_range(1..=n)? == n)
    }

    fn message(&mut self) -> Result<Message> {
        let kind = self.u.int_in_range(0u8..=14)?;
        if kind < 7 {
            let version = self.version(BIN_VERSION)?;
            let cluster = self.cluster()?;
            let source = self.node()?;
            let body = match kind {
                0 => InternalBody::Ping(Ping {
                    req_node_list: self.u.arbitrary()?,
                }),
                1 => InternalBody::Pong(Pong {
                    nodes: self.ids(0, MAX_NODES)?,
                }),
                2 => InternalBody::LsUpdate(LsUpdate {
                    seq: self.u.arbitrary()?,
                    timestamp: self.u.arbitrary()?,
                    neighbour: self.node()?,
                    state: if self.u.arbitrary()? {
                        LinkUpdate::Down
                    } else {
                        LinkUpdate::Up
                    },
                    path: self.path()?,
                }),
                3 => InternalBody::FullTopUpdate(self.full_top_update()?),
                4 => InternalBody::UnknownId,
                5 => InternalBody::NodeDescription(NodeDescription {
                    info: self.node_info()?,
                    path: self.path()?,
                }),
                _ => InternalBody::CapUpdate(self.cap_update()?),
            };
            Ok(Message::Internal(Internal {
                version,
                cluster,
                source,
                body,
            }))
        } else {
            let trailer = Trailer {
                cluster: self.cluster()?,
                source: self.node()?,
                destination: self.node()?,
            };
            let (version, body) = match kind {
                7 => (
                    self.version(BIN_VERSION)?,
                    RoutedBody::RemoveNode(RemoveNode { node: self.node()? }),
                ),
                8 => (
                    self.version(BIN_VERSION)?,
                    RoutedBody::GenericMsg(GenericMsg {
                        kind: if self.u.arbitrary()? {
                            GenericKind::Request
                        } else {
                            GenericKind::Reply
                        },
                        tag: self.bytes()?,
                        payload: self.bytes()?,
                    }),
                ),
                9 => {
                    let command = self.text()?;
                    let n = self.count(0, MAX_MI_PARAMS)?;
                    let mut params = Vec::with_capacity(n);
                    for _ in 0..n {
                        params.push(self.text()?);
                    }
                    (
                        self.version(BIN_VERSION)?,
                        RoutedBody::MiCmd(MiCmd { command, params }),
                    )
                }
                10 => (
                    self.version(BIN_SYNC_VERSION)?,
                    RoutedBody::SyncReq(SyncReq {
                        capability: self.text()?,
                    }),
                ),
                11 => (self.sync_version()?, RoutedBody::Sync(self.sync()?)),
                12 => {
                    let version = self.sync_version()?;
                    let capability = self.text()?;
                    let chunk_count: u32 = if self.one_in(16)? {
                        self.u.arbitrary()?
                    } else {
                        self.u.int_in_range(0..=64)?
                    };
                    if chunk_count > MAX_ID {
                        self.within_limits = false;
                    }
                    (
                        version,
                        RoutedBody::SyncEnd(SyncEnd {
                            capability,
                            chunk_count,
                        }),
                    )
                }
                13 => (
                    self.version(BIN_VERSION)?,
                    RoutedBody::ShtagActive(ShtagActive { tag: self.text()? }),
                ),
                _ => (
                    self.version(cachedb_local::BIN_VERSION)?,
                    RoutedBody::Module(self.module()?),
                ),
            };
            Ok(Message::Routed(Routed {
                version,
                trailer,
                body,
            }))
        }
    }

    /// The standard version most of the time, any `i16` otherwise (receivers do not check it
    /// outside the sync family).
    fn version(&mut self, standard: i16) -> Result<i16> {
        if self.one_in(8)? {
            self.u.arbitrary()
        } else {
            Ok(standard)
        }
    }

    /// SYNC and SYNC_END must carry version 3; anything else breaks a limit.
    fn sync_version(&mut self) -> Result<i16> {
        let version = self.version(BIN_SYNC_VERSION)?;
        if version != BIN_SYNC_VERSION {
            self.within_limits = false;
        }
        Ok(version)
    }

    fn id_value(&mut self) -> Result<u32> {
        if self.one_in(8)? {
            self.u.int_in_range(1..=MAX_ID)
        } else {
            self.u.int_in_range(1..=16)
        }
    }

    fn node(&mut self) -> Result<NodeId> {
        // `id_value` stays in 1..=MAX_ID, so the constructor cannot refuse it.
        Ok(NodeId::new(self.id_value()?).unwrap_or(NodeId::MIN))
    }

    fn cluster(&mut self) -> Result<ClusterId> {
        Ok(ClusterId::new(self.id_value()?).unwrap_or(ClusterId::MIN))
    }

    /// A list length in `min..=max`, or (rarely) just outside it, which breaks a limit.
    fn count(&mut self, min: usize, max: usize) -> Result<usize> {
        if self.one_in(64)? {
            self.within_limits = false;
            if min > 0 && self.u.arbitrary()? {
                return Ok(min - 1);
            }
            return Ok(max + 1);
        }
        // Keep most lists short so inputs stay small; the limit itself is reachable.
        if self.one_in(16)? {
            self.u.int_in_range(min..=max)
        } else {
            self.u.int_in_range(min..=max.min(min + 6))
        }
    }

    fn ids(&mut self, min: usize, max: usize) -> Result<Vec<NodeId>> {
        let n = self.count(min, max)?;
        let mut ids = Vec::with_capacity(n);
        for _ in 0..n {
            ids.push(self.node()?);
        }
        Ok(ids)
    }

    fn path(&mut self) -> Result<Vec<NodeId>> {
        self.ids(1, MAX_WIRE_PATH_LEN)
    }

    /// Length of a long field: now and then up to a little past the `u16` limit, so the
    /// 65515-byte packet limit and the 65535-byte string limit are both reached.
    fn long_len(&mut self) -> Result<Option<usize>> {
        let len = self.long_blob_len()?;
        if len.is_some_and(|len| len > MAX_STR_LEN) {
            self.within_limits = false;
        }
        Ok(len)
    }

    /// Now and then (1 in 64) a length near the `u16` limit, or below it: the draw shared by
    /// string fields and raw blobs.
    fn long_blob_len(&mut self) -> Result<Option<usize>> {
        if !self.one_in(64)? {
            return Ok(None);
        }
        let len = self.u.int_in_range(MAX_STR_LEN - 64..=MAX_STR_LEN + 64)?;
        if self.u.arbitrary()? {
            Ok(Some(len))
        } else {
            Ok(Some(self.u.int_in_range(0..=len)?))
        }
    }

    fn text(&mut self) -> Result<String> {
        if let Some(len) = self.long_len()? {
            let fill = char::from(self.u.int_in_range(b'a'..=b'z')?);
            return Ok(fill.to_string().repeat(len));
        }
        let s: String = self.u.arbitrary()?;
        if s.len() > MAX_STR_LEN {
            self.within_limits = false;
        }
        Ok(s)
    }

    /// A `str` field (`u16` length on the wire).
    fn bytes(&mut self) -> Result<Vec<u8>> {
        let b = self.blob()?;
        if b.len() > MAX_STR_LEN {
            self.within_limits = false;
        }
        Ok(b)
    }

    /// Raw bytes without a length limit of their own (a module payload, a SYNC chunk): only
    /// the packet limit applies.
    fn blob(&mut self) -> Result<Vec<u8>> {
        if let Some(len) = self.long_blob_len()? {
            return Ok(vec![self.u.arbitrary::<u8>()?; len]);
        }
        self.u.arbitrary()
    }

    fn node_info(&mut self) -> Result<NodeInfo> {
        Ok(NodeInfo {
            url: self.text()?,
            sip_addr: self.text()?,
            priority: self.u.arbitrary()?,
            no_ping_retries: self.u.arbitrary()?,
        })
    }

    fn full_top_update(&mut self) -> Result<FullTopUpdate> {
        let seq = self.u.arbitrary()?;
        let timestamp = self.u.arbitrary()?;
        let n = self.count(0, MAX_NODES)?;
        let mut entries = Vec::with_capacity(n);
        for _ in 0..n {
            let node = self.node()?;
            let description = if self.u.arbitrary()? {
                Some(self.node_info()?)
            } else {
                None
            };
            entries.push(TopologyEntry {
                node,
                description,
                ls_seq: self.u.arbitrary()?,
                ls_timestamp: self.u.arbitrary()?,
                neighbours: self.ids(0, MAX_NODES)?,
            });
        }
        Ok(FullTopUpdate {
            seq,
            timestamp,
            entries,
            path: self.path()?,
        })
    }

    fn cap_update(&mut self) -> Result<CapUpdate> {
        let seq = self.u.arbitrary()?;
        let timestamp = self.u.arbitrary()?;
        let n = self.count(0, MAX_CAP_NODES)?;
        let mut nodes = Vec::with_capacity(n);
        for _ in 0..n {
            let node = self.node()?;
            let caps = self.u.int_in_range(0..=4)?;
            let mut capabilities = Vec::with_capacity(caps);
            for _ in 0..caps {
                capabilities.push(CapabilityState {
                    name: self.text()?,
                    ok: self.u.arbitrary()?,
                });
            }
            nodes.push(CapabilityBlock { node, capabilities });
        }
        Ok(CapUpdate {
            seq,
            timestamp,
            nodes,
            require_reply: self.u.arbitrary()?,
            path: self.path()?,
        })
    }

    fn cachedb_entry(&mut self) -> Result<CachedbLocalEntry> {
        Ok(CachedbLocalEntry {
            collection: self.u.arbitrary()?,
            key: self.u.arbitrary()?,
            value: self.u.arbitrary()?,
            expiry: self.u.arbitrary()?,
        })
    }

    fn sync(&mut self) -> Result<Sync> {
        let capability = self.text()?;
        let data_version = self.u.arbitrary()?;
        let n = self.u.int_in_range(0..=8)?;
        let mut chunks = Vec::with_capacity(n);
        for index in 0..n {
            if self.u.arbitrary()? {
                let entry = self.cachedb_entry()?;
                if let Ok(data) = cachedb_local::emit_entry(&entry) {
                    chunks.push(data);
                    self.cachedb_chunks.push((index, entry));
                    continue;
                }
            }
            chunks.push(self.blob()?);
        }
        Ok(Sync {
            capability,
            data_version,
            chunks,
        })
    }

    fn module(&mut self) -> Result<ModulePacket> {
        if self.u.arbitrary()? {
            let packet = if self.u.arbitrary()? {
                CachedbLocalPacket::Insert(self.cachedb_entry()?)
            } else {
                CachedbLocalPacket::Remove {
                    collection: self.u.arbitrary()?,
                    key: self.u.arbitrary()?,
                }
            };
            if let Ok(module) = cachedb_local::to_module_packet(&packet) {
                self.cachedb_packet = Some(packet);
                return Ok(module);
            }
        }
        let capability = match self.u.int_in_range(0u8..=7)? {
            0 => String::new(),
            1 => CAP_INTERNAL.into(),
            2 => CAP_EXTRA.into(),
            3 => "dialog-dlg-repl".into(),
            4 => "usrloc-repl".into(),
            _ => self.text()?,
        };
        if capability.is_empty() || capability == CAP_INTERNAL || capability == CAP_EXTRA {
            self.within_limits = false;
        }
        Ok(ModulePacket {
            capability,
            packet_type: self.u.arbitrary()?,
            payload: self.blob()?,
        })
    }
}
