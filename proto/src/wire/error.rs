//! Decode and emit errors of the BIN codec.

use core::fmt;

/// Why a packet could not be decoded. Every variant names what was wrong; decoding never
/// changes any state, so after an error the caller simply drops the packet (and counts it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum DecodeError {
    /// Fewer bytes than the smallest valid packet (17).
    TooShort {
        /// Bytes available.
        len: usize,
    },
    /// The first four bytes are not `P4CK`.
    BadMarker {
        /// The bytes found instead.
        found: [u8; 4],
    },
    /// The length field disagrees with the number of bytes given.
    LengthMismatch {
        /// Value of the length field.
        declared: u32,
        /// Bytes actually given.
        actual: usize,
    },
    /// The length field is below 17 or above 65535.
    BadLength {
        /// Value of the length field.
        declared: u32,
    },
    /// The length field is valid but above the limit the runtime set for incoming packets
    /// (`EndpointOptions::max_packet_len`, a memory bound on small devices).
    OverLimit {
        /// Value of the length field.
        declared: u32,
        /// The limit.
        limit: u32,
    },
    /// The capability name length runs past the packet (`cap_len > length − 16`).
    CapabilityOverrun {
        /// Value of the cap_len field.
        cap_len: u16,
        /// Bytes left for the name and the type.
        available: usize,
    },
    /// The capability name is empty.
    EmptyCapability,
    /// The packet ends inside the named field.
    Truncated {
        /// The field being read.
        field: &'static str,
    },
    /// A text field is not valid UTF-8.
    NotUtf8 {
        /// The field being read.
        field: &'static str,
    },
    /// A node or cluster id outside `1..=i32::MAX`.
    InvalidId {
        /// The field being read.
        field: &'static str,
        /// The value found.
        value: i32,
    },
    /// A count (nodes, neighbours, path entries, MI parameters, capabilities) outside its
    /// allowed range.
    CountOutOfRange {
        /// The count field.
        field: &'static str,
        /// The value found.
        value: i32,
        /// Smallest allowed value.
        min: i32,
        /// Largest allowed value.
        max: i32,
    },
    /// A field with a closed set of values (a 0/1 flag, a link state) holds another value.
    InvalidValue {
        /// The field being read.
        field: &'static str,
        /// The value found.
        value: i32,
        /// What was expected, in words.
        expected: &'static str,
    },
    /// A `clusterer-internal` or `clusterer-extra` packet with a type that capability does
    /// not carry.
    UnknownType {
        /// The capability name.
        capability: &'static str,
        /// The type found.
        packet_type: i32,
    },
    /// A SYNC or SYNC_END whose BIN version is not 3 (OpenSIPS drops those too).
    BadSyncVersion {
        /// `SYNC` or `SYNC_END`.
        type_name: &'static str,
        /// The version found.
        version: i16,
    },
    /// A sync chunk without the start marker 101010101.
    BadChunkMarker {
        /// Index of the chunk in its packet.
        chunk: usize,
        /// The value found instead.
        found: i32,
    },
    /// A sync chunk whose size is negative or runs past the end of the packet.
    ChunkOverrun {
        /// Index of the chunk in its packet.
        chunk: usize,
        /// The chunk_size field.
        size: i32,
        /// Bytes left after the chunk header.
        available: usize,
    },
    /// Bytes left over after the last field of a packet whose layout is fixed.
    TrailingBytes {
        /// The message type.
        type_name: &'static str,
        /// How many bytes are left.
        count: usize,
    },
    /// A routable packet too short to hold the 12-byte trailer.
    MissingTrailer {
        /// Body length (type field excluded).
        body_len: usize,
    },
    /// A module payload was given to the decoder of another capability or of an unknown
    /// packet type.
    UnknownModuleType {
        /// The capability decoded.
        capability: &'static str,
        /// The type found.
        packet_type: i32,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DecodeError::TooShort { len } => {
                write!(
                    f,
                    "packet of {len} bytes is shorter than the 17-byte minimum"
                )
            }
            DecodeError::BadMarker { found } => {
                write!(f, "bad marker {found:02x?} (expected \"P4CK\")")
            }
            DecodeError::LengthMismatch { declared, actual } => {
                write!(
                    f,
                    "length field says {declared} bytes but {actual} were given"
                )
            }
            DecodeError::BadLength { declared } => {
                write!(f, "length field {declared} is outside 17..=65535")
            }
            DecodeError::OverLimit { declared, limit } => write!(
                f,
                "length field {declared} is over this node's limit of {limit} bytes per packet"
            ),
            DecodeError::CapabilityOverrun { cap_len, available } => write!(
                f,
                "capability length {cap_len} runs past the packet ({available} bytes left for name and type)"
            ),
            DecodeError::EmptyCapability => write!(f, "capability name is empty"),
            DecodeError::Truncated { field } => write!(f, "packet ends inside field '{field}'"),
            DecodeError::NotUtf8 { field } => write!(f, "field '{field}' is not valid UTF-8"),
            DecodeError::InvalidId { field, value } => {
                write!(
                    f,
                    "field '{field}' holds id {value}, expected 1..=2147483647"
                )
            }
            DecodeError::CountOutOfRange {
                field,
                value,
                min,
                max,
            } => {
                write!(
                    f,
                    "field '{field}' holds count {value}, expected {min}..={max}"
                )
            }
            DecodeError::InvalidValue {
                field,
                value,
                expected,
            } => {
                write!(f, "field '{field}' holds {value}, expected {expected}")
            }
            DecodeError::UnknownType {
                capability,
                packet_type,
            } => {
                write!(f, "type {packet_type} is not a {capability} message type")
            }
            DecodeError::BadSyncVersion { type_name, version } => {
                write!(f, "{type_name} with BIN version {version} (must be 3)")
            }
            DecodeError::BadChunkMarker { chunk, found } => {
                write!(
                    f,
                    "sync chunk {chunk} has marker {found} (expected 101010101)"
                )
            }
            DecodeError::ChunkOverrun {
                chunk,
                size,
                available,
            } => write!(
                f,
                "sync chunk {chunk} declares {size} bytes but {available} remain before the trailer"
            ),
            DecodeError::TrailingBytes { type_name, count } => {
                write!(
                    f,
                    "{count} unexpected bytes after the last field of {type_name}"
                )
            }
            DecodeError::MissingTrailer { body_len } => write!(
                f,
                "routable packet body of {body_len} bytes cannot hold the 12-byte trailer"
            ),
            DecodeError::UnknownModuleType {
                capability,
                packet_type,
            } => {
                write!(f, "type {packet_type} is not a {capability} packet type")
            }
        }
    }
}

impl DecodeError {
    /// A stable snake_case name of the error kind, for drop counters and metrics.
    pub fn kind_name(&self) -> &'static str {
        match self {
            DecodeError::TooShort { .. } => "too_short",
            DecodeError::BadMarker { .. } => "bad_marker",
            DecodeError::LengthMismatch { .. } => "length_mismatch",
            DecodeError::BadLength { .. } => "bad_length",
            DecodeError::OverLimit { .. } => "over_limit",
            DecodeError::CapabilityOverrun { .. } => "capability_overrun",
            DecodeError::EmptyCapability => "empty_capability",
            DecodeError::Truncated { .. } => "truncated",
            DecodeError::NotUtf8 { .. } => "not_utf8",
            DecodeError::InvalidId { .. } => "invalid_id",
            DecodeError::CountOutOfRange { .. } => "count_out_of_range",
            DecodeError::InvalidValue { .. } => "invalid_value",
            DecodeError::UnknownType { .. } => "unknown_type",
            DecodeError::BadSyncVersion { .. } => "bad_sync_version",
            DecodeError::BadChunkMarker { .. } => "bad_chunk_marker",
            DecodeError::ChunkOverrun { .. } => "chunk_overrun",
            DecodeError::TrailingBytes { .. } => "trailing_bytes",
            DecodeError::MissingTrailer { .. } => "missing_trailer",
            DecodeError::UnknownModuleType { .. } => "unknown_module_type",
        }
    }
}

impl core::error::Error for DecodeError {}

/// Why a message could not be emitted. Nothing was written to a meaningful state: the
/// caller's buffer content is unspecified and the message is unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum EmitError {
    /// The packet would exceed 65515 bytes, the most any peer (3.6 or 4.0) accepts.
    TooLarge {
        /// Bytes the packet would need.
        len: usize,
    },
    /// The caller's buffer is smaller than [`buffer_len`](crate::wire::buffer_len).
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes given.
        given: usize,
    },
    /// A string is longer than the 65535 bytes its `u16` length can describe.
    StringTooLong {
        /// The field.
        field: &'static str,
        /// Its length.
        len: usize,
    },
    /// A list is longer (or shorter) than the wire allows; a receiver would drop the packet.
    CountOutOfRange {
        /// The list.
        field: &'static str,
        /// Its length.
        len: usize,
        /// Smallest allowed length.
        min: usize,
        /// Largest allowed length.
        max: usize,
    },
    /// SYNC or SYNC_END with a BIN version other than 3.
    BadSyncVersion {
        /// The version given.
        version: i16,
    },
    /// A module packet named one of the clusterer's own capabilities, or no capability.
    ReservedCapability,
}

impl fmt::Display for EmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            EmitError::TooLarge { len } => {
                write!(f, "packet of {len} bytes exceeds the 65515-byte limit")
            }
            EmitError::BufferTooSmall { needed, given } => {
                write!(
                    f,
                    "buffer of {given} bytes is smaller than the {needed} needed"
                )
            }
            EmitError::StringTooLong { field, len } => {
                write!(f, "field '{field}' is {len} bytes, more than 65535")
            }
            EmitError::CountOutOfRange {
                field,
                len,
                min,
                max,
            } => {
                write!(f, "list '{field}' has {len} entries, allowed {min}..={max}")
            }
            EmitError::BadSyncVersion { version } => {
                write!(f, "sync packets must use BIN version 3, not {version}")
            }
            EmitError::ReservedCapability => write!(
                f,
                "module packets cannot use an empty or a clusterer-internal/-extra capability"
            ),
        }
    }
}

impl core::error::Error for EmitError {}
