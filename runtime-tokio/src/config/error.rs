//! [`ConfigError`]: what is wrong with a configuration file, and where.

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;

/// A line and column in the configuration file, both counted from 1 (columns in characters).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Location {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1, in characters.
    pub column: usize,
}

impl Location {
    /// The location of byte `offset` in `source`; an offset past the end or inside a
    /// character is clamped to the nearest preceding character boundary.
    pub fn of_offset(source: &str, offset: usize) -> Location {
        let mut offset = offset.min(source.len());
        while offset > 0 && !source.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = source.get(..offset).unwrap_or_default();
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let line = before.matches('\n').count() + 1;
        let column = before.get(line_start..).unwrap_or_default().chars().count() + 1;
        Location { line, column }
    }
}

/// A configuration the daemon refuses; nothing was started.
///
/// The message always starts with the key at fault when there is one (`ping_timeout =
/// "abc": expected milliseconds as an integer`), and says what was expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The file, when the configuration was read with
    /// [`DaemonConfig::from_path`](super::DaemonConfig::from_path).
    pub file: Option<PathBuf>,
    /// Line and column of the offending key or value, when known.
    pub location: Option<Location>,
    /// Dotted path of the key at fault (`hooks.node_state_changed`, `my_node_info[1]`),
    /// when one is.
    pub key: Option<String>,
    /// What is wrong, starting with the key.
    pub message: String,
}

impl ConfigError {
    /// An error about `key`, located at byte range `span` of `source` when given.
    pub(crate) fn at(
        source: &str,
        key: impl Into<String>,
        span: Option<Range<usize>>,
        message: impl Into<String>,
    ) -> Self {
        ConfigError {
            file: None,
            location: span.map(|s| Location::of_offset(source, s.start)),
            key: Some(key.into()),
            message: message.into(),
        }
    }

    /// An error not tied to a key (unreadable file, TOML syntax).
    pub(crate) fn general(location: Option<Location>, message: impl Into<String>) -> Self {
        ConfigError {
            file: None,
            location,
            key: None,
            message: message.into(),
        }
    }

    /// The same error, attributed to `file`.
    pub(crate) fn in_file(mut self, file: PathBuf) -> Self {
        self.file = Some(file);
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.location) {
            (Some(file), Some(l)) => write!(f, "{}:{}:{}: ", file.display(), l.line, l.column)?,
            (Some(file), None) => write!(f, "{}: ", file.display())?,
            (None, Some(l)) => write!(f, "line {}, column {}: ", l.line, l.column)?,
            (None, None) => {}
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_counts_lines_and_characters_from_one() {
        let src = "a = 1\nbé = \"x\"\n";
        assert_eq!(Location::of_offset(src, 0), Location { line: 1, column: 1 });
        let x = src.find('"').unwrap();
        assert_eq!(Location::of_offset(src, x), Location { line: 2, column: 6 });
        // Inside the two-byte `é` and past the end: clamped, no panic.
        assert_eq!(Location::of_offset(src, 8).line, 2);
        assert_eq!(Location::of_offset(src, 999).line, 3);
    }

    #[test]
    fn display_puts_file_line_and_column_first() {
        let e = ConfigError {
            file: Some("c.toml".into()),
            location: Some(Location { line: 3, column: 7 }),
            key: Some("db_mode".into()),
            message: "db_mode = 2: expected 0 or 1".into(),
        };
        assert_eq!(e.to_string(), "c.toml:3:7: db_mode = 2: expected 0 or 1");
        let e = ConfigError { file: None, ..e };
        assert_eq!(
            e.to_string(),
            "line 3, column 7: db_mode = 2: expected 0 or 1"
        );
    }
}
