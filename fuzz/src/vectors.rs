//! The captured OpenSIPS packets (`vectors/opensips/bin/*.jsonl`, one JSON object per BIN
//! packet with a `hex` field; the `*.tcp.jsonl` files are other records and are skipped).
//!
//! Only the `hex` field is needed, so this reads it with a few string searches instead of a
//! JSON parser, which keeps the seed generator free of dependencies.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// One captured BIN packet.
#[derive(Clone, Debug)]
pub struct Captured {
    /// Capture name, e.g. `01_startup`.
    pub capture: String,
    /// Line number in the capture file, from 0.
    pub index: usize,
    /// The packet bytes.
    pub bytes: Vec<u8>,
}

/// The capture directory of this repository (`vectors/opensips/bin`).
pub fn default_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../vectors/opensips/bin")
}

/// Reads every packet of every capture in `dir`, captures in name order.
///
/// # Errors
/// An unreadable directory or file, or a line without a well-formed `hex` field.
pub fn read_dir(dir: &Path) -> io::Result<Vec<Captured>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.ends_with(".jsonl") && !name.ends_with(".tcp.jsonl") {
            files.push(path);
        }
    }
    files.sort();
    let mut packets = Vec::new();
    for file in files {
        let capture = file
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_owned();
        let text = fs::read_to_string(&file)?;
        for (index, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let bytes = hex_field(line).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}:{}: no hex field", file.display(), index + 1),
                )
            })?;
            packets.push(Captured {
                capture: capture.clone(),
                index,
                bytes,
            });
        }
    }
    Ok(packets)
}

/// The decoded `"hex":"…"` field of one JSON line.
pub fn hex_field(line: &str) -> Option<Vec<u8>> {
    const KEY: &str = "\"hex\":\"";
    let start = line.find(KEY)? + KEY.len();
    let len = line[start..].find('"')?;
    hex(&line[start..start + len])
}

/// Decodes a hex string (either case); `None` for an odd length or a non-hex digit.
pub fn hex(text: &str) -> Option<Vec<u8>> {
    let digits = text.as_bytes();
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    digits
        .chunks_exact(2)
        .map(|pair| {
            let hi = char::from(pair[0]).to_digit(16)?;
            let lo = char::from(pair[1]).to_digit(16)?;
            u8::try_from(hi * 16 + lo).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_field_is_found_and_decoded() {
        let line = r#"{"idx":0,"len":3,"hex":"50344B","capability":"x"}"#;
        assert_eq!(hex_field(line), Some(vec![0x50, 0x34, 0x4b]));
        assert_eq!(hex("5"), None);
        assert_eq!(hex("zz"), None);
    }

    #[test]
    fn every_capture_is_read() {
        let packets = read_dir(&default_dir()).unwrap();
        assert_eq!(packets.len(), 453, "the eight captures hold 453 packets");
    }
}
