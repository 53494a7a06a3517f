//! The `cachedb-local-repl` capability's payloads (docs/cachedb-local.md §4, §5.1): live INSERT
//! and REMOVE module packets, and the data of its sync chunks.
//!
//! These payloads ride inside a [`ModulePacket`] (trailer handled by the outer codec) or
//! inside one SYNC chunk.

use alloc::vec::Vec;

use clusterer_core::message::{CachedbLocalEntry, CachedbLocalPacket, ModulePacket};

use super::error::{DecodeError, EmitError};
use super::prim::{self, Counter, Res, Sink, SinkExt};
use super::probe::expect_end;

/// The BIN capability name.
pub const CAPABILITY: &str = "cachedb-local-repl";
/// Module packet type of a store.
pub const TYPE_INSERT: i32 = 1;
/// Module packet type of a remove.
pub const TYPE_REMOVE: i32 = 2;
/// BIN header version of live packets (the module's own `BIN_VERSION`).
pub const BIN_VERSION: i16 = 1;
/// `data_version` of its SYNC packets.
pub const DATA_VERSION: i32 = 1;

/// One record (INSERT body or sync chunk data), borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryView<'a> {
    /// Collection name.
    pub collection: &'a str,
    /// Key.
    pub key: &'a [u8],
    /// Value.
    pub value: &'a [u8],
    /// Relative lifetime in seconds, 0 = never.
    pub expiry: i32,
}

impl EntryView<'_> {
    /// Copies into the owned record.
    pub fn to_owned(&self) -> CachedbLocalEntry {
        CachedbLocalEntry {
            collection: self.collection.into(),
            key: self.key.to_vec(),
            value: self.value.to_vec(),
            expiry: self.expiry,
        }
    }
}

fn parse_entry_fields(input: &[u8]) -> Res<'_, EntryView<'_>> {
    let (rest, collection) = prim::text(input, "collection")?;
    let (rest, key) = prim::bytes(rest, "key")?;
    let (rest, value) = prim::bytes(rest, "value")?;
    let (rest, expiry) = prim::int(rest, "expiry")?;
    Ok((
        rest,
        EntryView {
            collection,
            key,
            value,
            expiry,
        },
    ))
}

/// A live packet, borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PacketView<'a> {
    /// Type 1.
    Insert(EntryView<'a>),
    /// Type 2.
    Remove {
        /// Collection name.
        collection: &'a str,
        /// Key.
        key: &'a [u8],
    },
}

impl PacketView<'_> {
    /// Copies into the owned packet.
    pub fn to_owned(&self) -> CachedbLocalPacket {
        match *self {
            PacketView::Insert(e) => CachedbLocalPacket::Insert(e.to_owned()),
            PacketView::Remove { collection, key } => CachedbLocalPacket::Remove {
                collection: collection.into(),
                key: key.to_vec(),
            },
        }
    }
}

/// Decodes the payload of a live `cachedb-local-repl` packet (trailer already removed).
/// The header version is not checked, as in OpenSIPS.
///
/// # Errors
/// [`DecodeError::UnknownModuleType`] for a type other than 1 or 2, a truncated or non-UTF-8
/// field, or bytes after the last field (every field, the expiry included, is required).
pub fn parse_view(packet_type: i32, payload: &[u8]) -> Result<PacketView<'_>, DecodeError> {
    match packet_type {
        TYPE_INSERT => {
            let (rest, entry) = parse_entry_fields(payload)?;
            expect_end(rest, "INSERT")?;
            Ok(PacketView::Insert(entry))
        }
        TYPE_REMOVE => {
            let (rest, collection) = prim::text(payload, "collection")?;
            let (rest, key) = prim::bytes(rest, "key")?;
            expect_end(rest, "REMOVE")?;
            Ok(PacketView::Remove { collection, key })
        }
        _ => Err(DecodeError::UnknownModuleType {
            capability: CAPABILITY,
            packet_type,
        }),
    }
}

/// Decodes a live packet into its owned form.
///
/// # Errors
/// As [`parse_view`].
pub fn parse(packet_type: i32, payload: &[u8]) -> Result<CachedbLocalPacket, DecodeError> {
    parse_view(packet_type, payload).map(|v| v.to_owned())
}

/// Decodes the data of one sync chunk. Bytes after the four fields are ignored, as the
/// OpenSIPS iterator skips them (room for future fields).
///
/// # Errors
/// A truncated or non-UTF-8 field.
pub fn parse_entry(chunk: &[u8]) -> Result<EntryView<'_>, DecodeError> {
    parse_entry_fields(chunk).map(|(_, e)| e)
}

fn write_entry<S: Sink + ?Sized>(sink: &mut S, e: &CachedbLocalEntry) -> Result<(), EmitError> {
    sink.put_str(e.collection.as_bytes(), "collection")?;
    sink.put_str(&e.key, "key")?;
    sink.put_str(&e.value, "value")?;
    sink.put_i32(e.expiry);
    Ok(())
}

fn encode<F>(f: F) -> Result<Vec<u8>, EmitError>
where
    F: Fn(&mut dyn Sink) -> Result<(), EmitError>,
{
    let mut counter = Counter::default();
    f(&mut counter)?;
    let mut out = VecSink(Vec::with_capacity(counter.0));
    f(&mut out)?;
    Ok(out.0)
}

struct VecSink(Vec<u8>);

impl Sink for VecSink {
    fn put(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }
}

/// Encodes one record as sync chunk data (`chunk_size` = 10 + c + k + v).
///
/// # Errors
/// [`EmitError::StringTooLong`] for a field over 65535 bytes.
pub fn emit_entry(entry: &CachedbLocalEntry) -> Result<Vec<u8>, EmitError> {
    encode(|s| write_entry(s, entry))
}

/// Builds the module packet (capability, type, payload) of a live operation. The caller
/// adds the trailer by wrapping it in a routed message with version [`BIN_VERSION`].
///
/// # Errors
/// [`EmitError::StringTooLong`] for a field over 65535 bytes; the outer emit still checks the
/// 65515-byte packet limit.
pub fn to_module_packet(packet: &CachedbLocalPacket) -> Result<ModulePacket, EmitError> {
    let (packet_type, payload) = match packet {
        CachedbLocalPacket::Insert(e) => (TYPE_INSERT, encode(|s| write_entry(s, e))?),
        CachedbLocalPacket::Remove { collection, key } => (
            TYPE_REMOVE,
            encode(|s| {
                s.put_str(collection.as_bytes(), "collection")?;
                s.put_str(key, "key")
            })?,
        ),
    };
    Ok(ModulePacket {
        capability: CAPABILITY.into(),
        packet_type,
        payload,
    })
}
