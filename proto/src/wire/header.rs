//! The BIN header (docs/wire.md §2.1) and the frame checks shared with the deframer (§2.3).

use super::error::DecodeError;
use super::prim::{self, Sink, SinkExt};

/// The four marker bytes that start every BIN packet.
pub const MARKER: [u8; 4] = *b"P4CK";
/// Smallest valid packet: marker, length, version, a 1-byte capability, type.
pub const MIN_PACKET_LEN: usize = 17;
/// Largest packet a 3.6 receiver accepts (`TCP_BUF_SIZE`).
pub const MAX_PACKET_LEN: usize = 65535;
/// Largest packet we ever emit: the 4.0 limit, so every 3.6 and 4.0 peer accepts it
/// (defined with the core's other wire sizes).
pub const MAX_EMIT_LEN: usize = clusterer_core::message::sizes::MAX_EMIT_LEN;
/// Marker + length + version (`HEADER_SIZE` in OpenSIPS).
pub const FIXED_HEADER_LEN: usize = clusterer_core::message::sizes::FIXED_HEADER_LEN;

/// Capability of the hop-by-hop link probing and topology messages.
pub const CAP_INTERNAL: &str = clusterer_core::message::CAPABILITY_INTERNAL;
/// Capability of the routable cluster service messages.
pub const CAP_EXTRA: &str = clusterer_core::message::CAPABILITY_EXTRA;

/// The header fields of a packet, borrowed from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeaderView<'a> {
    /// Total length (equals the packet's length once validated).
    pub total_len: u32,
    /// BIN version.
    pub version: i16,
    /// Capability name bytes.
    pub capability: &'a [u8],
    /// Packet type within the capability.
    pub packet_type: i32,
    /// Everything after the type field.
    pub body: &'a [u8],
}

/// Checks the first 8 bytes of a frame (marker and length) and returns the declared
/// length. Used by the deframer before the rest of the packet has arrived.
///
/// # Errors
/// [`DecodeError::BadMarker`] or [`DecodeError::BadLength`]; OpenSIPS closes the connection
/// on either, and so must the caller.
pub fn check_frame_start(start: &[u8; 8]) -> Result<usize, DecodeError> {
    let found = [start[0], start[1], start[2], start[3]];
    if found != MARKER {
        return Err(DecodeError::BadMarker { found });
    }
    let declared = u32::from_le_bytes([start[4], start[5], start[6], start[7]]);
    let len = declared as usize;
    if !(MIN_PACKET_LEN..=MAX_PACKET_LEN).contains(&len) {
        return Err(DecodeError::BadLength { declared });
    }
    Ok(len)
}

/// Parses and validates the header of one complete packet.
///
/// # Errors
/// A [`DecodeError`] naming the first header field that is wrong.
pub fn parse_header(packet: &[u8]) -> Result<HeaderView<'_>, DecodeError> {
    if packet.len() < MIN_PACKET_LEN {
        return Err(DecodeError::TooShort { len: packet.len() });
    }
    let (rest, marker) = prim::raw(packet, 4, "marker")?;
    if marker != MARKER {
        let found = [marker[0], marker[1], marker[2], marker[3]];
        return Err(DecodeError::BadMarker { found });
    }
    let (rest, total_len) = prim::uint(rest, "total_len")?;
    if !(MIN_PACKET_LEN..=MAX_PACKET_LEN).contains(&(total_len as usize)) {
        return Err(DecodeError::BadLength {
            declared: total_len,
        });
    }
    if total_len as usize != packet.len() {
        return Err(DecodeError::LengthMismatch {
            declared: total_len,
            actual: packet.len(),
        });
    }
    let (rest, version) = prim::short(rest, "version")?;
    let (rest, cap_len) = prim::ushort(rest, "cap_len")?;
    if usize::from(cap_len) > rest.len().saturating_sub(4) {
        return Err(DecodeError::CapabilityOverrun {
            cap_len,
            available: rest.len(),
        });
    }
    if cap_len == 0 {
        return Err(DecodeError::EmptyCapability);
    }
    let (rest, capability) = prim::raw(rest, usize::from(cap_len), "capability")?;
    let (body, packet_type) = prim::int(rest, "type")?;
    Ok(HeaderView {
        total_len,
        version,
        capability,
        packet_type,
        body,
    })
}

/// Writes the header; `total_len` comes from the sizing pass (0 while sizing).
pub(crate) fn write_header<S: Sink>(
    sink: &mut S,
    total_len: usize,
    version: i16,
    capability: &str,
    packet_type: i32,
) -> Result<(), super::EmitError> {
    sink.put(&MARKER);
    sink.put_u32(u32::try_from(total_len).unwrap_or(u32::MAX));
    sink.put_i16(version);
    sink.put_str(capability.as_bytes(), "capability")?;
    sink.put_i32(packet_type);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_start_rejects_bad_marker_and_lengths() {
        assert_eq!(
            check_frame_start(b"P4CX\x20\0\0\0"),
            Err(DecodeError::BadMarker { found: *b"P4CX" })
        );
        assert_eq!(
            check_frame_start(b"P4CK\x10\0\0\0"),
            Err(DecodeError::BadLength { declared: 16 })
        );
        assert_eq!(check_frame_start(b"P4CK\x11\0\0\0"), Ok(17));
        assert_eq!(check_frame_start(b"P4CK\xff\xff\0\0"), Ok(65535));
        assert_eq!(
            check_frame_start(b"P4CK\0\0\x01\0"),
            Err(DecodeError::BadLength { declared: 65536 })
        );
    }

    #[test]
    fn header_rejects_capability_past_the_end() {
        // 17 bytes, cap_len 2 leaves no room for the 4-byte type.
        let p = b"P4CK\x11\0\0\0\x01\0\x02\0ab\0\0\0";
        assert_eq!(p.len(), 17);
        assert!(matches!(
            parse_header(p),
            Err(DecodeError::CapabilityOverrun { cap_len: 2, .. })
        ));
    }

    #[test]
    fn header_rejects_a_length_field_that_disagrees() {
        let p = b"P4CK\x12\0\0\0\x01\0\x01\0a\0\0\0\0";
        assert_eq!(
            parse_header(p),
            Err(DecodeError::LengthMismatch {
                declared: 18,
                actual: 17
            })
        );
    }
}
