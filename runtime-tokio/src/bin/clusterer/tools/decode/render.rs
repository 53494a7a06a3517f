//! Rendering of decoded packets: the JSON object of the captures' `decoded` field, and the
//! one-line text summary.
//!
//! The JSON keys, their order and their spelling follow `vectors/opensips/bin/*.jsonl`
//! exactly; [`DecodedPacket::to_json`] returns that object alone, the dissector adds its context keys
//! (`frame`, `hex`, `reemit_*`) around it.

use std::fmt::Write as _;

use clusterer_core::NodeId;
use clusterer_core::message::{
    CachedbLocalEntry, CachedbLocalPacket, GenericKind, Internal, InternalBody, LinkUpdate,
    Message, NodeInfo, Routed, RoutedBody, Trailer,
};
use clusterer_proto::wire::{self, DecodeError, EmitError, SYNC_CHUNK_MARKER, cachedb_local};
use serde_json::{Map, Value, json};

use super::{Origin, to_hex};

/// Decodes one complete packet into the object the captures hold in their `decoded` field.
///
/// # Errors
/// The [`DecodeError`] of [`wire::parse`] when the packet does not decode. A
/// `cachedb-local-repl` payload that does not decode is not an error here: the object then
/// has `type_name` `MODULE` and a `module_error` key (and a SYNC chunk a
/// `cachedb_local_error` key).
#[cfg(test)]
pub(crate) fn packet_json(packet: &[u8]) -> Result<Map<String, Value>, DecodeError> {
    DecodedPacket::decode(packet).map(|d| d.to_json())
}

/// Decodes one complete packet into its one-line text summary (without the origin prefix).
///
/// # Errors
/// As [`packet_json`].
#[cfg(test)]
pub(crate) fn packet_text(packet: &[u8]) -> Result<String, DecodeError> {
    DecodedPacket::decode(packet).map(|d| d.to_text())
}

/// A packet that decoded: its header fields, the typed message, and the decoded
/// `cachedb-local-repl` payloads it carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DecodedPacket {
    /// Header length field.
    pub(crate) total_len: u32,
    /// Header BIN version.
    pub(crate) version: i16,
    /// Capability name.
    pub(crate) capability: String,
    /// Header type field.
    pub(crate) packet_type: i32,
    /// The typed message.
    pub(crate) message: Message,
    cachedb: Cachedb,
}

/// The `cachedb-local-repl` data found inside a packet.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Cachedb {
    /// None (another capability).
    None,
    /// A live INSERT / REMOVE module packet.
    Live(Result<CachedbLocalPacket, DecodeError>),
    /// The entry of each chunk of a SYNC for the capability.
    Sync(Vec<Result<CachedbLocalEntry, DecodeError>>),
}

impl DecodedPacket {
    /// Decodes a complete packet, and the `cachedb-local-repl` payloads inside it.
    ///
    /// # Errors
    /// As [`wire::parse`].
    pub(crate) fn decode(packet: &[u8]) -> Result<Self, DecodeError> {
        let header = wire::parse_header(packet)?;
        let message = wire::parse(packet)?;
        let cachedb = match &message {
            Message::Routed(Routed {
                body: RoutedBody::Module(m),
                ..
            }) if m.capability == cachedb_local::CAPABILITY => {
                Cachedb::Live(cachedb_local::parse(m.packet_type, &m.payload))
            }
            Message::Routed(Routed {
                body: RoutedBody::Sync(s),
                ..
            }) if s.capability == cachedb_local::CAPABILITY => Cachedb::Sync(
                s.chunks
                    .iter()
                    .map(|c| cachedb_local::parse_entry(c).map(|e| e.to_owned()))
                    .collect(),
            ),
            _ => Cachedb::None,
        };
        Ok(Self {
            total_len: header.total_len,
            version: header.version,
            capability: String::from_utf8_lossy(header.capability).into_owned(),
            packet_type: header.packet_type,
            message,
            cachedb,
        })
    }

    /// Module payloads inside the packet that did not decode (0 or more).
    pub(crate) fn payload_errors(&self) -> u64 {
        match &self.cachedb {
            Cachedb::None => 0,
            Cachedb::Live(r) => u64::from(r.is_err()),
            Cachedb::Sync(entries) => entries.iter().filter(|e| e.is_err()).count() as u64,
        }
    }

    /// The object of the captures' `decoded` field.
    pub(crate) fn to_json(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("marker".into(), "P4CK".into());
        m.insert("total_len".into(), self.total_len.into());
        m.insert("version".into(), self.version.into());
        m.insert("capability".into(), self.capability.as_str().into());
        m.insert("type".into(), self.packet_type.into());
        match &self.message {
            Message::Internal(i) => {
                m.insert("type_name".into(), i.body.type_name().into());
                m.insert("cluster_id".into(), i.cluster.get().into());
                m.insert("src_node".into(), i.source.get().into());
                internal_json(&mut m, i);
            }
            Message::Routed(r) => {
                if let RoutedBody::Module(p) = &r.body {
                    m.insert("trailer".into(), trailer_json(&r.trailer));
                    m.insert("module_payload_hex".into(), to_hex(&p.payload).into());
                    self.module_json(&mut m);
                } else {
                    m.insert("type_name".into(), r.body.type_name().into());
                    m.insert("trailer".into(), trailer_json(&r.trailer));
                    self.routed_json(&mut m, &r.body);
                }
            }
        }
        m
    }

    fn module_json(&self, m: &mut Map<String, Value>) {
        match &self.cachedb {
            Cachedb::Live(Ok(CachedbLocalPacket::Insert(e))) => {
                m.insert("type_name".into(), "INSERT".into());
                entry_json(m, e);
            }
            Cachedb::Live(Ok(CachedbLocalPacket::Remove { collection, key })) => {
                m.insert("type_name".into(), "REMOVE".into());
                m.insert("collection".into(), collection.as_str().into());
                insert_bytes(m, "key", key);
            }
            Cachedb::Live(Err(e)) => {
                m.insert("type_name".into(), "MODULE".into());
                m.insert("module_error".into(), e.to_string().into());
            }
            Cachedb::None | Cachedb::Sync(_) => {
                m.insert("type_name".into(), "MODULE".into());
            }
        }
    }

    fn routed_json(&self, m: &mut Map<String, Value>, body: &RoutedBody) {
        match body {
            RoutedBody::RemoveNode(r) => {
                m.insert("target_node".into(), r.node.get().into());
            }
            RoutedBody::GenericMsg(g) => {
                m.insert(
                    "req_like".into(),
                    u8::from(g.kind == GenericKind::Request).into(),
                );
                insert_bytes(m, "tag", &g.tag);
                insert_bytes(m, "msg", &g.payload);
            }
            RoutedBody::MiCmd(c) => {
                m.insert("cmd_name".into(), c.command.as_str().into());
                m.insert("no_params".into(), c.params.len().into());
                m.insert("cmd_params".into(), c.params.clone().into());
            }
            RoutedBody::SyncReq(r) => {
                m.insert("sync_capability".into(), r.capability.as_str().into());
            }
            RoutedBody::Sync(s) => {
                m.insert("sync_capability".into(), s.capability.as_str().into());
                m.insert("data_version".into(), s.data_version.into());
                let entries = match &self.cachedb {
                    Cachedb::Sync(entries) => Some(entries),
                    _ => None,
                };
                let chunks = s.chunks.iter().enumerate().map(|(i, data)| {
                    let mut c = Map::new();
                    c.insert("chunk_size".into(), data.len().into());
                    c.insert("start_marker".into(), SYNC_CHUNK_MARKER.into());
                    c.insert("marker_ok".into(), true.into());
                    c.insert("data_hex".into(), to_hex(data).into());
                    match entries.and_then(|e| e.get(i)) {
                        Some(Ok(entry)) => {
                            let mut e = Map::new();
                            entry_json(&mut e, entry);
                            c.insert("cachedb_local".into(), e.into());
                        }
                        Some(Err(err)) => {
                            c.insert("cachedb_local_error".into(), err.to_string().into());
                        }
                        None => {}
                    }
                    Value::Object(c)
                });
                m.insert("chunks".into(), chunks.collect());
            }
            RoutedBody::SyncEnd(e) => {
                m.insert("sync_capability".into(), e.capability.as_str().into());
                m.insert("no_sync_chunks".into(), e.chunk_count.into());
            }
            RoutedBody::ShtagActive(t) => {
                m.insert("tag_name".into(), t.tag.as_str().into());
            }
            RoutedBody::Module(_) => {}
        }
    }

    /// The one-line summary: `TYPE vVERSION cluster=.. src=.. [dst=..] fields...`.
    pub(crate) fn to_text(&self) -> String {
        let mut s = String::new();
        match &self.message {
            Message::Internal(i) => {
                let _ = write!(
                    s,
                    "{} v{} cluster={} src={}",
                    i.body.type_name(),
                    self.version,
                    i.cluster,
                    i.source
                );
                internal_text(&mut s, &i.body);
            }
            Message::Routed(r) => {
                let label = match (&r.body, &self.cachedb) {
                    (RoutedBody::Module(_), Cachedb::Live(Ok(p))) => {
                        let name = match p {
                            CachedbLocalPacket::Insert(_) => "INSERT",
                            CachedbLocalPacket::Remove { .. } => "REMOVE",
                        };
                        format!("{}:{name}", self.capability)
                    }
                    (RoutedBody::Module(p), _) => format!("{}#{}", self.capability, p.packet_type),
                    (body, _) => body.type_name().to_owned(),
                };
                let t = &r.trailer;
                let _ = write!(
                    s,
                    "{label} v{} cluster={} src={} dst={}",
                    self.version, t.cluster, t.source, t.destination
                );
                self.routed_text(&mut s, &r.body);
            }
        }
        s
    }

    fn routed_text(&self, s: &mut String, body: &RoutedBody) {
        match body {
            RoutedBody::RemoveNode(r) => {
                let _ = write!(s, " target_node={}", r.node);
            }
            RoutedBody::GenericMsg(g) => {
                let kind = u8::from(g.kind == GenericKind::Request);
                let _ = write!(
                    s,
                    " req_like={kind} tag={} msg={}",
                    word(&g.tag),
                    word(&g.payload)
                );
            }
            RoutedBody::MiCmd(c) => {
                let params: Vec<String> = c.params.iter().map(|p| word(p.as_bytes())).collect();
                let _ = write!(
                    s,
                    " cmd={} params=[{}]",
                    word(c.command.as_bytes()),
                    params.join(",")
                );
            }
            RoutedBody::SyncReq(r) => {
                let _ = write!(s, " capability={}", word(r.capability.as_bytes()));
            }
            RoutedBody::Sync(sync) => {
                let sizes: Vec<String> = sync.chunks.iter().map(|c| c.len().to_string()).collect();
                let _ = write!(
                    s,
                    " capability={} data_version={} chunks={} sizes=[{}]",
                    word(sync.capability.as_bytes()),
                    sync.data_version,
                    sync.chunks.len(),
                    sizes.join(",")
                );
                if let Cachedb::Sync(entries) = &self.cachedb {
                    let entries: Vec<String> = entries
                        .iter()
                        .map(|e| match e {
                            Ok(e) => entry_text(e),
                            Err(err) => format!("error={}", word(err.to_string().as_bytes())),
                        })
                        .collect();
                    let _ = write!(s, " entries={{{}}}", entries.join("; "));
                }
            }
            RoutedBody::SyncEnd(e) => {
                let _ = write!(
                    s,
                    " capability={} no_sync_chunks={}",
                    word(e.capability.as_bytes()),
                    e.chunk_count
                );
            }
            RoutedBody::ShtagActive(t) => {
                let _ = write!(s, " tag={}", word(t.tag.as_bytes()));
            }
            RoutedBody::Module(p) => match &self.cachedb {
                Cachedb::Live(Ok(CachedbLocalPacket::Insert(e))) => {
                    let _ = write!(s, " {}", entry_text(e));
                }
                Cachedb::Live(Ok(CachedbLocalPacket::Remove { collection, key })) => {
                    let _ = write!(
                        s,
                        " collection={} key={}",
                        word(collection.as_bytes()),
                        word(key)
                    );
                }
                Cachedb::Live(Err(err)) => {
                    let _ = write!(
                        s,
                        " payload={} module_error={}",
                        short_hex(&p.payload),
                        word(err.to_string().as_bytes())
                    );
                }
                Cachedb::None | Cachedb::Sync(_) => {
                    let _ = write!(s, " payload={}", short_hex(&p.payload));
                }
            },
        }
    }
}

/// The result of encoding a decoded message again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Reemit {
    /// The bytes, or why the message could not be emitted.
    pub(crate) bytes: Result<Vec<u8>, EmitError>,
    identical: bool,
}

impl Reemit {
    /// Emits `message` and compares the bytes with the `original` packet.
    pub(crate) fn of(message: &Message, original: &[u8]) -> Self {
        let bytes = wire::emit_to_vec(message);
        let identical = bytes.as_ref().is_ok_and(|b| b == original);
        Self { bytes, identical }
    }

    /// `true` when the emitted bytes equal the original packet.
    pub(crate) fn identical(&self) -> bool {
        self.identical
    }

    /// Adds `reemit_hex` (or `reemit_error`) and `reemit_identical` to an object.
    pub(crate) fn add_json(&self, object: &mut Map<String, Value>) {
        match &self.bytes {
            Ok(b) => object.insert("reemit_hex".into(), to_hex(b).into()),
            Err(e) => object.insert("reemit_error".into(), e.to_string().into()),
        };
        object.insert("reemit_identical".into(), self.identical.into());
    }

    /// `reemit <hex> (identical)`, `(DIFFERS)`, or `reemit ERROR <why>`.
    pub(crate) fn to_text(&self) -> String {
        match &self.bytes {
            Ok(b) => {
                let verdict = if self.identical {
                    "identical"
                } else {
                    "DIFFERS"
                };
                format!("reemit {} ({verdict})", to_hex(b))
            }
            Err(e) => format!("reemit ERROR {e}"),
        }
    }
}

/// The `frame` context object of an origin.
pub(crate) fn origin_json(origin: &Origin) -> Map<String, Value> {
    let frame = match origin {
        Origin::Offset(offset) => json!({ "offset": offset }),
        Origin::Record(number) => json!({ "number": number }),
        Origin::Frame(f) => {
            // The decimal text parses back to the nearest f64, which prints as the same text
            // whenever it has at most 16 significant digits (microsecond epoch times do).
            let time = f
                .time
                .and_then(|t| t.to_string().parse::<f64>().ok())
                .and_then(serde_json::Number::from_f64)
                .map_or(Value::Null, Value::Number);
            json!({
                "number": f.number,
                "time": time,
                "src": f.src.to_string(),
                "dst": f.dst.to_string(),
            })
        }
    };
    let mut m = Map::new();
    m.insert("frame".into(), frame);
    m
}

/// The text prefix of an origin: `TIME SRC -> DST`, `@OFFSET`, or `frame N`.
pub(crate) fn origin_text(origin: &Origin) -> String {
    match origin {
        Origin::Offset(offset) => format!("@{offset}"),
        Origin::Record(number) => format!("frame {number}"),
        Origin::Frame(f) => {
            let time = f.time.map_or_else(|| "-".to_owned(), |t| t.to_string());
            format!("{time} {} -> {}", f.src, f.dst)
        }
    }
}

fn trailer_json(t: &Trailer) -> Value {
    json!({
        "cluster_id": t.cluster.get(),
        "src_node": t.source.get(),
        "dst_node": t.destination.get(),
    })
}

fn ids(list: &[NodeId]) -> Value {
    list.iter().map(|id| Value::from(id.get())).collect()
}

fn insert_path(m: &mut Map<String, Value>, path: &[NodeId]) {
    m.insert("path_len".into(), path.len().into());
    m.insert("path".into(), ids(path));
}

fn insert_info(m: &mut Map<String, Value>, info: &NodeInfo) {
    m.insert("url".into(), info.url.as_str().into());
    m.insert("sip_addr".into(), info.sip_addr.as_str().into());
    m.insert("priority".into(), info.priority.into());
    m.insert("no_ping_retries".into(), info.no_ping_retries.into());
}

/// Inserts a byte string as text; if it is not UTF-8, lossily, plus `<key>_hex`.
fn insert_bytes(m: &mut Map<String, Value>, key: &str, bytes: &[u8]) {
    match std::str::from_utf8(bytes) {
        Ok(s) => {
            m.insert(key.into(), s.into());
        }
        Err(_) => {
            m.insert(
                key.into(),
                String::from_utf8_lossy(bytes).into_owned().into(),
            );
            m.insert(format!("{key}_hex"), to_hex(bytes).into());
        }
    }
}

fn entry_json(m: &mut Map<String, Value>, e: &CachedbLocalEntry) {
    m.insert("collection".into(), e.collection.as_str().into());
    insert_bytes(m, "key", &e.key);
    insert_bytes(m, "value", &e.value);
    m.insert("expiry".into(), e.expiry.into());
}

fn internal_json(m: &mut Map<String, Value>, i: &Internal) {
    match &i.body {
        InternalBody::Ping(p) => {
            m.insert("req_node_list".into(), u8::from(p.req_node_list).into());
        }
        InternalBody::Pong(p) => {
            m.insert("nr_nodes".into(), p.nodes.len().into());
            m.insert("node_list".into(), ids(&p.nodes));
        }
        InternalBody::LsUpdate(u) => {
            m.insert("seq_no".into(), u.seq.into());
            m.insert("timestamp".into(), u.timestamp.into());
            m.insert("neigh_id".into(), u.neighbour.get().into());
            let (value, name) = match u.state {
                LinkUpdate::Up => (0, "LS_UP"),
                LinkUpdate::Down => (1, "LS_DOWN"),
            };
            m.insert("new_ls".into(), value.into());
            m.insert("new_ls_name".into(), name.into());
            insert_path(m, &u.path);
        }
        InternalBody::FullTopUpdate(u) => {
            m.insert("seq_no".into(), u.seq.into());
            m.insert("timestamp".into(), u.timestamp.into());
            m.insert("no_nodes".into(), u.entries.len().into());
            let nodes = u.entries.iter().map(|e| {
                let mut n = Map::new();
                n.insert("node_id".into(), e.node.get().into());
                n.insert(
                    "has_description".into(),
                    u8::from(e.description.is_some()).into(),
                );
                if let Some(info) = &e.description {
                    insert_info(&mut n, info);
                }
                n.insert("ls_seq_no".into(), e.ls_seq.into());
                n.insert("ls_timestamp".into(), e.ls_timestamp.into());
                n.insert("no_neigh".into(), e.neighbours.len().into());
                n.insert("neighbours".into(), ids(&e.neighbours));
                Value::Object(n)
            });
            m.insert("nodes".into(), nodes.collect());
            insert_path(m, &u.path);
        }
        InternalBody::UnknownId => {}
        InternalBody::NodeDescription(d) => {
            insert_info(m, &d.info);
            insert_path(m, &d.path);
        }
        InternalBody::CapUpdate(u) => {
            m.insert("seq_no".into(), u.seq.into());
            m.insert("timestamp".into(), u.timestamp.into());
            m.insert("nr_nodes".into(), u.nodes.len().into());
            let nodes = u.nodes.iter().map(|b| {
                let caps: Vec<Value> = b
                    .capabilities
                    .iter()
                    .map(|c| json!({ "name": c.name, "state": u8::from(c.ok) }))
                    .collect();
                json!({ "node_id": b.node.get(), "nr_cap": caps.len(), "caps": caps })
            });
            m.insert("nodes".into(), nodes.collect());
            m.insert("require_reply".into(), u8::from(u.require_reply).into());
            insert_path(m, &u.path);
        }
    }
}

fn id_list(list: &[NodeId]) -> String {
    let items: Vec<String> = list.iter().map(ToString::to_string).collect();
    format!("[{}]", items.join(","))
}

fn info_text(info: &NodeInfo) -> String {
    format!(
        "url={} sip_addr={} priority={} no_ping_retries={}",
        word(info.url.as_bytes()),
        word(info.sip_addr.as_bytes()),
        info.priority,
        info.no_ping_retries
    )
}

fn internal_text(s: &mut String, body: &InternalBody) {
    let _ = match body {
        InternalBody::Ping(p) => write!(s, " req_node_list={}", u8::from(p.req_node_list)),
        InternalBody::Pong(p) => write!(s, " node_list={}", id_list(&p.nodes)),
        InternalBody::LsUpdate(u) => {
            let state = match u.state {
                LinkUpdate::Up => "LS_UP",
                LinkUpdate::Down => "LS_DOWN",
            };
            write!(
                s,
                " seq_no={} timestamp={} neigh_id={} {state} path={}",
                u.seq,
                u.timestamp,
                u.neighbour,
                id_list(&u.path)
            )
        }
        InternalBody::FullTopUpdate(u) => {
            let nodes: Vec<String> = u
                .entries
                .iter()
                .map(|e| {
                    let described = e.description.as_ref().map(|i| format!(" {}", info_text(i)));
                    format!(
                        "{}:{} ls={}@{} neighbours={}",
                        e.node,
                        described.unwrap_or_default(),
                        e.ls_seq,
                        e.ls_timestamp,
                        id_list(&e.neighbours)
                    )
                })
                .collect();
            write!(
                s,
                " seq_no={} timestamp={} nodes={{{}}} path={}",
                u.seq,
                u.timestamp,
                nodes.join("; "),
                id_list(&u.path)
            )
        }
        InternalBody::UnknownId => Ok(()),
        InternalBody::NodeDescription(d) => {
            write!(s, " {} path={}", info_text(&d.info), id_list(&d.path))
        }
        InternalBody::CapUpdate(u) => {
            let nodes: Vec<String> = u
                .nodes
                .iter()
                .map(|b| {
                    let caps: Vec<String> = b
                        .capabilities
                        .iter()
                        .map(|c| format!(" {}={}", word(c.name.as_bytes()), u8::from(c.ok)))
                        .collect();
                    format!("{}:{}", b.node, caps.concat())
                })
                .collect();
            write!(
                s,
                " seq_no={} timestamp={} nodes={{{}}} require_reply={} path={}",
                u.seq,
                u.timestamp,
                nodes.join("; "),
                u8::from(u.require_reply),
                id_list(&u.path)
            )
        }
    };
}

fn entry_text(e: &CachedbLocalEntry) -> String {
    format!(
        "collection={} key={} value={} expiry={}",
        word(e.collection.as_bytes()),
        word(&e.key),
        word(&e.value),
        e.expiry
    )
}

/// Hex of at most 32 bytes, with the full length when longer.
fn short_hex(bytes: &[u8]) -> String {
    const SHOWN: usize = 32;
    if bytes.len() <= SHOWN {
        to_hex(bytes)
    } else {
        format!("{}...({} bytes)", to_hex(&bytes[..SHOWN]), bytes.len())
    }
}

/// A string as one word: bare when it is plain printable text without the separators of the
/// text format, else quoted with `\"`, `\\`, `\n`, `\u{..}` and `\xNN` (bytes that are not
/// UTF-8) escapes.
fn word(bytes: &[u8]) -> String {
    let plain = |c: char| {
        !c.is_whitespace()
            && !c.is_control()
            && !matches!(c, '"' | '\\' | ',' | ';' | '[' | ']' | '{' | '}')
    };
    if let Ok(s) = std::str::from_utf8(bytes)
        && !s.is_empty()
        && s.chars().all(plain)
    {
        return s.to_owned();
    }
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if c.is_control() => {
                    let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        super::super::parse_hex(s).expect("test hex")
    }

    #[test]
    fn words_are_bare_or_quoted_with_escapes() {
        assert_eq!(word(b"bin:127.0.0.1:5566"), "bin:127.0.0.1:5566");
        assert_eq!(word(b""), "\"\"");
        assert_eq!(word(b"a b"), "\"a b\"");
        assert_eq!(word("grüße".as_bytes()), "grüße");
        assert_eq!(word(b"x\xffy\"\n"), "\"x\\xffy\\\"\\n\"");
        assert_eq!(word(b"a,b"), "\"a,b\"");
    }

    #[test]
    fn non_utf8_generic_msg_fields_get_hex_siblings() {
        // GENERIC_MSG request, tag "t\xff", msg "ok", trailer cluster 1, src 1, dst 2.
        let body = "01000000 0200 74ff 0200 6f6b 01000000 01000000 02000000";
        let mut packet =
            unhex("5034434b 00000000 0100 0f00 636c757374657265722d6578747261 07000000");
        packet.extend(unhex(body));
        let len = packet.len() as u32;
        packet[4..8].copy_from_slice(&len.to_le_bytes());
        let object = packet_json(&packet).expect("decodes");
        assert_eq!(object["tag"], "t\u{fffd}");
        assert_eq!(object["tag_hex"], "74ff");
        assert_eq!(object["msg"], "ok");
        assert!(!object.contains_key("msg_hex"));
        let keys: Vec<&str> = object.keys().map(String::as_str).collect();
        assert_eq!(&keys[6..], ["trailer", "req_like", "tag", "tag_hex", "msg"]);
        let text = packet_text(&packet).expect("decodes");
        assert!(text.ends_with("req_like=1 tag=\"t\\xff\" msg=ok"), "{text}");
    }

    #[test]
    fn bad_cachedb_payload_is_a_module_with_an_error() {
        // cachedb-local-repl type 1 with a payload that stops inside the key.
        let mut packet =
            unhex("5034434b 00000000 0100 1200 636163686564622d6c6f63616c2d7265706c 01000000");
        packet.extend(unhex("0100 61 0500 6b"));
        packet.extend(unhex("01000000 01000000 02000000"));
        let len = packet.len() as u32;
        packet[4..8].copy_from_slice(&len.to_le_bytes());
        let decoded = DecodedPacket::decode(&packet).expect("BIN layer decodes");
        assert_eq!(decoded.payload_errors(), 1);
        let object = decoded.to_json();
        assert_eq!(object["type_name"], "MODULE");
        assert!(
            object["module_error"]
                .as_str()
                .is_some_and(|e| e.contains("key"))
        );
        assert_eq!(
            object["module_payload_hex"],
            "010061 05006b".replace(' ', "")
        );
    }

    #[test]
    fn other_module_capabilities_are_opaque() {
        let mut packet =
            unhex("5034434b 00000000 0400 0f00 6469616c6f672d646c672d7265706c 05000000");
        packet.extend(unhex("aabb 01000000 01000000 02000000"));
        let len = packet.len() as u32;
        packet[4..8].copy_from_slice(&len.to_le_bytes());
        let object = packet_json(&packet).expect("decodes");
        assert_eq!(object["type_name"], "MODULE");
        assert_eq!(object["module_payload_hex"], "aabb");
        assert_eq!(object["version"], 4);
        let text = packet_text(&packet).expect("decodes");
        assert_eq!(
            text,
            "dialog-dlg-repl#5 v4 cluster=1 src=1 dst=2 payload=aabb"
        );
    }
}
