//! The BIN primitives (docs/wire.md §1): little-endian `i32`, `u16`-length strings, and lists
//! of them. Readers are nom parsers mapped to [`DecodeError`] at this boundary; writers go
//! through a [`Sink`] so one function both sizes and writes a packet.

use nom::Parser;
use nom::bytes::complete::take;
use nom::multi::length_data;
use nom::number::complete::{le_i16, le_i32, le_u16, le_u32};

use clusterer_core::{ClusterId, NodeId};

use super::error::{DecodeError, EmitError};

/// Result of a reader: the rest of the input and the value.
pub(crate) type Res<'a, T> = Result<(&'a [u8], T), DecodeError>;

type NomErr<'a> = nom::error::Error<&'a [u8]>;

/// Reads an `i32`.
pub(crate) fn int<'a>(input: &'a [u8], field: &'static str) -> Res<'a, i32> {
    le_i32::<_, NomErr<'a>>
        .parse(input)
        .map_err(|_| DecodeError::Truncated { field })
}

/// Reads an `i16`.
pub(crate) fn short<'a>(input: &'a [u8], field: &'static str) -> Res<'a, i16> {
    le_i16::<_, NomErr<'a>>
        .parse(input)
        .map_err(|_| DecodeError::Truncated { field })
}

/// Reads a `u16`.
pub(crate) fn ushort<'a>(input: &'a [u8], field: &'static str) -> Res<'a, u16> {
    le_u16::<_, NomErr<'a>>
        .parse(input)
        .map_err(|_| DecodeError::Truncated { field })
}

/// Reads a `u32`.
pub(crate) fn uint<'a>(input: &'a [u8], field: &'static str) -> Res<'a, u32> {
    le_u32::<_, NomErr<'a>>
        .parse(input)
        .map_err(|_| DecodeError::Truncated { field })
}

/// Takes `n` raw bytes.
pub(crate) fn raw<'a>(input: &'a [u8], n: usize, field: &'static str) -> Res<'a, &'a [u8]> {
    take::<_, _, NomErr<'a>>(n)
        .parse(input)
        .map_err(|_| DecodeError::Truncated { field })
}

/// Reads a `str` (u16 length + bytes) as raw bytes.
pub(crate) fn bytes<'a>(input: &'a [u8], field: &'static str) -> Res<'a, &'a [u8]> {
    length_data(le_u16::<_, NomErr<'a>>)
        .parse(input)
        .map_err(|_| DecodeError::Truncated { field })
}

/// Reads a `str` that must be UTF-8 text.
pub(crate) fn text<'a>(input: &'a [u8], field: &'static str) -> Res<'a, &'a str> {
    let (rest, b) = bytes(input, field)?;
    let s = core::str::from_utf8(b).map_err(|_| DecodeError::NotUtf8 { field })?;
    Ok((rest, s))
}

/// Reads a node id (`1..=i32::MAX`).
pub(crate) fn node_id<'a>(input: &'a [u8], field: &'static str) -> Res<'a, NodeId> {
    let (rest, value) = int(input, field)?;
    let id = NodeId::from_wire(value).ok_or(DecodeError::InvalidId { field, value })?;
    Ok((rest, id))
}

/// Reads a cluster id (`1..=i32::MAX`).
pub(crate) fn cluster_id<'a>(input: &'a [u8], field: &'static str) -> Res<'a, ClusterId> {
    let (rest, value) = int(input, field)?;
    let id = ClusterId::from_wire(value).ok_or(DecodeError::InvalidId { field, value })?;
    Ok((rest, id))
}

/// Reads a count that must lie in `min..=max`.
pub(crate) fn count<'a>(
    input: &'a [u8],
    field: &'static str,
    min: usize,
    max: usize,
) -> Res<'a, usize> {
    let (rest, value) = int(input, field)?;
    match usize::try_from(value) {
        Ok(n) if n >= min && n <= max => Ok((rest, n)),
        _ => Err(DecodeError::CountOutOfRange {
            field,
            value,
            min: clamp_i32(min),
            max: clamp_i32(max),
        }),
    }
}

/// Reads a 0/1 flag.
pub(crate) fn flag<'a>(input: &'a [u8], field: &'static str) -> Res<'a, bool> {
    let (rest, value) = int(input, field)?;
    match value {
        0 => Ok((rest, false)),
        1 => Ok((rest, true)),
        _ => Err(DecodeError::InvalidValue {
            field,
            value,
            expected: "0 or 1",
        }),
    }
}

fn clamp_i32(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// A validated run of node ids (4 bytes each), borrowed from the packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdList<'a>(&'a [u8]);

impl<'a> IdList<'a> {
    /// Reads `n` ids, checking each one.
    pub(crate) fn parse(input: &'a [u8], n: usize, field: &'static str) -> Res<'a, Self> {
        let (rest, run) = raw(input, n.saturating_mul(4), field)?;
        for chunk in run.chunks_exact(4) {
            node_id(chunk, field)?;
        }
        Ok((rest, IdList(run)))
    }

    /// Number of ids.
    pub fn len(&self) -> usize {
        self.0.len() / 4
    }

    /// `true` when the list is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The ids in wire order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = NodeId> + 'a {
        self.0.chunks_exact(4).map(|c| {
            let value = i32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            // Every id was checked by `parse`; 1 can never be reached.
            NodeId::from_wire(value).unwrap_or(NodeId::MIN)
        })
    }

    /// Copies the ids into a vector.
    pub fn to_vec(&self) -> alloc::vec::Vec<NodeId> {
        self.iter().collect()
    }
}

/// A validated run of `str` fields that are UTF-8 text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TextList<'a> {
    raw: &'a [u8],
    len: usize,
}

impl<'a> TextList<'a> {
    /// Reads `n` text strings.
    pub(crate) fn parse(input: &'a [u8], n: usize, field: &'static str) -> Res<'a, Self> {
        let mut rest = input;
        for _ in 0..n {
            rest = text(rest, field)?.0;
        }
        let used = input.len() - rest.len();
        Ok((
            rest,
            TextList {
                raw: &input[..used],
                len: n,
            },
        ))
    }

    /// Number of strings.
    pub fn len(&self) -> usize {
        self.len
    }

    /// `true` when the list is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The strings in wire order.
    pub fn iter(&self) -> impl Iterator<Item = &'a str> + 'a {
        let mut rest = self.raw;
        core::iter::from_fn(move || {
            let (next, s) = text(rest, "").ok()?;
            rest = next;
            Some(s)
        })
    }
}

/// Destination of emitted bytes: a counter (sizing pass) or a buffer (writing pass).
pub(crate) trait Sink {
    /// Appends bytes.
    fn put(&mut self, bytes: &[u8]);
}

/// Counts bytes without storing them.
#[derive(Default)]
pub(crate) struct Counter(pub usize);

impl Sink for Counter {
    fn put(&mut self, bytes: &[u8]) {
        self.0 = self.0.saturating_add(bytes.len());
    }
}

/// Writes into a caller's buffer that the sizing pass proved large enough.
pub(crate) struct SliceSink<'b> {
    pub buf: &'b mut [u8],
    pub pos: usize,
}

impl Sink for SliceSink<'_> {
    fn put(&mut self, bytes: &[u8]) {
        let end = self.pos + bytes.len();
        if let Some(dst) = self.buf.get_mut(self.pos..end) {
            dst.copy_from_slice(bytes);
        } else {
            debug_assert!(false, "sizing pass and writing pass disagree");
        }
        self.pos = end;
    }
}

/// Writing helpers over any [`Sink`].
pub(crate) trait SinkExt: Sink {
    fn put_i32(&mut self, v: i32) {
        self.put(&v.to_le_bytes());
    }
    fn put_i16(&mut self, v: i16) {
        self.put(&v.to_le_bytes());
    }
    fn put_u16(&mut self, v: u16) {
        self.put(&v.to_le_bytes());
    }
    fn put_u32(&mut self, v: u32) {
        self.put(&v.to_le_bytes());
    }
    fn put_node(&mut self, id: NodeId) {
        self.put_i32(id.to_wire());
    }
    fn put_cluster(&mut self, id: ClusterId) {
        self.put_i32(id.to_wire());
    }
    fn put_flag(&mut self, v: bool) {
        self.put_i32(i32::from(v));
    }
    /// Writes a `str`; fails when it is longer than a `u16` can say.
    fn put_str(&mut self, s: &[u8], field: &'static str) -> Result<(), EmitError> {
        let len = u16::try_from(s.len()).map_err(|_| EmitError::StringTooLong {
            field,
            len: s.len(),
        })?;
        self.put_u16(len);
        self.put(s);
        Ok(())
    }
    /// Writes a list length as an `i32` after checking it against the wire's range.
    fn put_count(
        &mut self,
        len: usize,
        field: &'static str,
        min: usize,
        max: usize,
    ) -> Result<(), EmitError> {
        if len < min || len > max {
            return Err(EmitError::CountOutOfRange {
                field,
                len,
                min,
                max,
            });
        }
        // `max` is a wire limit far below i32::MAX.
        self.put_i32(i32::try_from(len).unwrap_or(i32::MAX));
        Ok(())
    }
    /// Writes a counted list of node ids.
    fn put_ids(
        &mut self,
        ids: &[NodeId],
        field: &'static str,
        min: usize,
        max: usize,
    ) -> Result<(), EmitError> {
        self.put_count(ids.len(), field, min, max)?;
        for id in ids {
            self.put_node(*id);
        }
        Ok(())
    }
}

impl<S: Sink + ?Sized> SinkExt for S {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_reads_name_the_field() {
        assert_eq!(
            int(&[1, 0, 0], "cluster_id"),
            Err(DecodeError::Truncated {
                field: "cluster_id"
            })
        );
        assert_eq!(
            bytes(&[3, 0, b'a'], "url"),
            Err(DecodeError::Truncated { field: "url" })
        );
    }

    #[test]
    fn counts_reject_negative_and_oversized_values() {
        let neg = (-1i32).to_le_bytes();
        assert!(matches!(
            count(&neg, "n", 0, 128),
            Err(DecodeError::CountOutOfRange { value: -1, .. })
        ));
        let big = 129i32.to_le_bytes();
        assert!(matches!(
            count(&big, "n", 0, 128),
            Err(DecodeError::CountOutOfRange {
                value: 129,
                max: 128,
                ..
            })
        ));
        assert_eq!(
            count(&128i32.to_le_bytes(), "n", 0, 128).map(|r| r.1),
            Ok(128)
        );
    }

    #[test]
    fn id_lists_reject_non_positive_ids() {
        let mut b = alloc::vec::Vec::new();
        b.extend_from_slice(&3i32.to_le_bytes());
        b.extend_from_slice(&0i32.to_le_bytes());
        assert_eq!(
            IdList::parse(&b, 2, "path"),
            Err(DecodeError::InvalidId {
                field: "path",
                value: 0
            })
        );
        let (_, ok) = IdList::parse(&b, 1, "path").unwrap();
        assert_eq!(ok.to_vec(), [NodeId::new(3).unwrap()]);
    }
}
