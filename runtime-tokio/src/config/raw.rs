//! The file as serde sees it: one struct per table, `deny_unknown_fields`, every value kept
//! with its span so the builder can name the key, show the value and point at the line.
//!
//! The field names of these structs are the single list of accepted keys: [`accepted_keys`]
//! reads them back through serde (no second list to keep in step), the key check that runs
//! before serde uses them to name unknown keys with their dotted path, and a test checks
//! that every one of them appears in `examples/clusterer.toml`.

use std::fmt;
use std::ops::Range;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::error::{ConfigError, Location};

/// A value as written, with its byte span.
pub(crate) type Leaf = Option<Spanned<toml::Value>>;

/// The top level: the OpenSIPS `clusterer` module parameters plus our sections.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    pub my_node_id: Leaf,
    pub db_mode: Leaf,
    pub ping_interval: Leaf,
    pub ping_timeout: Leaf,
    pub node_timeout: Leaf,
    pub seed_fallback_interval: Leaf,
    pub sync_timeout: Leaf,
    pub sync_packet_size: Leaf,
    pub dispatch_jobs: Leaf,
    pub enable_rerouting: Leaf,
    pub enable_stats: Leaf,
    pub sharing_tag: Leaf,
    pub my_node_info: Leaf,
    pub neighbor_node_info: Leaf,
    pub opensips_priority_quirk: Leaf,
    pub db_url: Leaf,
    pub db_table: Leaf,
    pub id_col: Leaf,
    pub cluster_id_col: Leaf,
    pub node_id_col: Leaf,
    pub url_col: Leaf,
    pub state_col: Leaf,
    pub no_ping_retries_col: Leaf,
    pub priority_col: Leaf,
    pub sip_addr_col: Leaf,
    pub flags_col: Leaf,
    pub description_col: Leaf,
    pub listen: Option<RawListen>,
    pub mi: Option<RawMi>,
    pub hooks: Option<RawHooks>,
    pub metrics: Option<RawMetrics>,
    pub discovery: Option<RawDiscovery>,
    pub sync: Option<RawSync>,
    pub cachedb_local: Option<RawCachedbLocal>,
}

/// `[listen]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawListen {
    pub address: Leaf,
    pub tls_cert: Leaf,
    pub tls_key: Leaf,
    pub tls_ca: Leaf,
}

/// `[mi]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMi {
    pub enabled: Leaf,
    pub listen: Leaf,
    pub path: Leaf,
    pub max_body_bytes: Leaf,
}

/// `[hooks]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHooks {
    pub node_state_changed: Leaf,
    pub sharing_tag_changed: Leaf,
    pub req_received: Leaf,
    pub rpl_received: Leaf,
    pub timeout_ms: Leaf,
    pub event_log: Leaf,
}

/// `[metrics]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMetrics {
    pub enabled: Leaf,
    pub listen: Leaf,
    pub path: Leaf,
}

/// `[discovery]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDiscovery {
    pub allow: Leaf,
}

/// `[sync]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSync {
    pub best_donor: Leaf,
    pub first_packet_timeout: Leaf,
    pub retry: Leaf,
    pub ignore_unsolicited: Leaf,
    pub skip_rejected_chunks: Leaf,
    pub buffer_from_request: Leaf,
    pub max_buffered_packets: Leaf,
}

/// `[cachedb_local]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCachedbLocal {
    pub cluster_id: Leaf,
    pub cache_collections: Leaf,
    pub cluster_persistency: Leaf,
}

/// The sections (tables) of the top level and the keys each accepts.
fn sections() -> [(&'static str, &'static [&'static str]); 7] {
    [
        ("listen", struct_fields::<RawListen>()),
        ("mi", struct_fields::<RawMi>()),
        ("hooks", struct_fields::<RawHooks>()),
        ("metrics", struct_fields::<RawMetrics>()),
        ("discovery", struct_fields::<RawDiscovery>()),
        ("sync", struct_fields::<RawSync>()),
        ("cachedb_local", struct_fields::<RawCachedbLocal>()),
    ]
}

/// Every key the parser accepts, as dotted paths (`ping_interval`, `mi.listen`), in file
/// order: the top-level parameters, then each section's keys.
pub fn accepted_keys() -> Vec<String> {
    let sections = sections();
    let mut keys: Vec<String> = struct_fields::<RawConfig>()
        .iter()
        .filter(|k| !sections.iter().any(|(s, _)| s == *k))
        .map(|k| (*k).to_owned())
        .collect();
    for (section, fields) in sections {
        keys.extend(fields.iter().map(|f| format!("{section}.{f}")));
    }
    keys
}

/// Parses `source` into [`RawConfig`]: TOML syntax first, then the key check (unknown keys,
/// sections that are not tables), then serde.
///
/// # Errors
/// The first problem, with its location.
pub(crate) fn parse(source: &str) -> Result<RawConfig, ConfigError> {
    let doc = DeTable::parse(source).map_err(|e| {
        let location = e.span().map(|s| Location::of_offset(source, s.start));
        ConfigError::general(location, format!("TOML syntax: {}", e.message()))
    })?;
    check_keys(source, doc.get_ref())?;
    toml::from_str::<RawConfig>(source).map_err(|e| {
        let span = e.span();
        let key = span
            .as_ref()
            .and_then(|s| key_at(doc.get_ref(), s.start, ""))
            .unwrap_or_default();
        let message = if key.is_empty() {
            e.message().to_owned()
        } else {
            format!("{key}: {}", e.message())
        };
        ConfigError {
            file: None,
            location: span.map(|s| Location::of_offset(source, s.start)),
            key: (!key.is_empty()).then_some(key),
            message,
        }
    })
}

/// Rejects unknown keys and sections written as something other than a table.
fn check_keys(source: &str, doc: &DeTable<'_>) -> Result<(), ConfigError> {
    let sections = sections();
    let top = struct_fields::<RawConfig>();
    for (key, value) in in_file_order(doc) {
        let name = key.get_ref().as_ref();
        if let Some((_, fields)) = sections.iter().find(|(s, _)| *s == name) {
            let Some(table) = value.get_ref().as_table() else {
                return Err(ConfigError::at(
                    source,
                    name,
                    Some(value.span()),
                    format!(
                        "{name} = {}: expected a table (a [{name}] section)",
                        shown(source, value.span())
                    ),
                ));
            };
            for (inner, _) in in_file_order(table) {
                let inner_name = inner.get_ref().as_ref();
                if !fields.contains(&inner_name) {
                    let path = format!("{name}.{inner_name}");
                    return Err(unknown_key(source, &path, inner_name, fields, inner.span()));
                }
            }
        } else if !top.contains(&name) {
            return Err(unknown_key(source, name, name, top, key.span()));
        }
    }
    Ok(())
}

fn unknown_key(
    source: &str,
    path: &str,
    name: &str,
    expected: &[&str],
    span: Range<usize>,
) -> ConfigError {
    let hint = match closest(name, expected) {
        Some(best) => format!("did you mean \"{best}\"?"),
        None => format!("expected one of {}", expected.join(", ")),
    };
    ConfigError::at(
        source,
        path,
        Some(span),
        format!("{path}: unknown key ({hint})"),
    )
}

/// The entries of `table` sorted by their position in the file.
fn in_file_order<'a, 'i>(
    table: &'a DeTable<'i>,
) -> Vec<(
    &'a Spanned<std::borrow::Cow<'i, str>>,
    &'a Spanned<DeValue<'i>>,
)> {
    let mut entries: Vec<_> = table.iter().collect();
    entries.sort_by_key(|(k, _)| k.span().start);
    entries
}

/// The dotted path of the innermost key whose key or value covers byte `offset`.
fn key_at(table: &DeTable<'_>, offset: usize, prefix: &str) -> Option<String> {
    for (key, value) in table.iter() {
        let path = if prefix.is_empty() {
            key.get_ref().to_string()
        } else {
            format!("{prefix}.{}", key.get_ref())
        };
        let covers = |r: Range<usize>| r.start <= offset && offset < r.end.max(r.start + 1);
        if covers(key.span()) {
            return Some(path);
        }
        if covers(value.span()) {
            if let Some(inner) = value.get_ref().as_table()
                && let Some(found) = key_at(inner, offset, &path)
            {
                return Some(found);
            }
            return Some(path);
        }
    }
    None
}

/// The text of `span` in `source`, shortened to 60 characters, for messages.
pub(crate) fn shown(source: &str, span: Range<usize>) -> String {
    let text = source.get(span).unwrap_or("?").trim();
    let mut out: String = text.chars().take(60).collect();
    if text.chars().count() > 60 {
        out.push('…');
    }
    out
}

/// The candidate within edit distance 2 of `name`, if any (the nearest one).
pub(crate) fn closest<'a>(name: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (edit_distance(name, c), *c))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row.first().copied().unwrap_or(i);
        if let Some(first) = row.first_mut() {
            *first = i + 1;
        }
        for (j, cb) in b.iter().enumerate() {
            let above = row.get(j + 1).copied().unwrap_or(usize::MAX - 1);
            let left = row.get(j).copied().unwrap_or(usize::MAX - 1);
            let cost = diagonal + usize::from(ca != *cb);
            diagonal = above;
            if let Some(cell) = row.get_mut(j + 1) {
                *cell = cost.min(above + 1).min(left + 1);
            }
        }
    }
    row.last().copied().unwrap_or(0)
}

/// The field names serde would accept for struct `T`, read from its derived `Deserialize`.
fn struct_fields<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    let mut fields: &'static [&'static str] = &[];
    // The probe always fails (it only records the field list), so the result is ignored.
    let _ = T::deserialize(FieldProbe(&mut fields));
    fields
}

/// A deserializer that records the field list of the struct asked for, and stops.
struct FieldProbe<'a>(&'a mut &'static [&'static str]);

#[derive(Debug)]
struct ProbeDone;

impl fmt::Display for ProbeDone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("field probe done")
    }
}

impl std::error::Error for ProbeDone {}

impl de::Error for ProbeDone {
    fn custom<T: fmt::Display>(_: T) -> Self {
        ProbeDone
    }
}

impl<'de> Deserializer<'de> for FieldProbe<'_> {
    type Error = ProbeDone;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, ProbeDone> {
        Err(ProbeDone)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, ProbeDone> {
        *self.0 = fields;
        Err(ProbeDone)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_keys_come_from_the_serde_structs() {
        let keys = accepted_keys();
        assert!(keys.contains(&"my_node_id".to_owned()));
        assert!(keys.contains(&"description_col".to_owned()));
        assert!(keys.contains(&"hooks.node_state_changed".to_owned()));
        assert!(keys.contains(&"cachedb_local.cluster_persistency".to_owned()));
        assert!(!keys.contains(&"hooks".to_owned()));
        assert_eq!(keys.first().map(String::as_str), Some("my_node_id"));
    }

    #[test]
    fn near_miss_keys_get_a_suggestion() {
        assert_eq!(
            closest("pingg_interval", &["ping_interval", "ping_timeout"]),
            Some("ping_interval")
        );
        assert_eq!(closest("zzz", &["ping_interval"]), None);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn unknown_section_key_is_named_with_its_dotted_path() {
        let src = "my_node_id = 1\n[hooks]\nnode_state_chnged = \"x\"\n";
        let e = parse(src).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("hooks.node_state_chnged"));
        assert_eq!(
            e.message,
            "hooks.node_state_chnged: unknown key (did you mean \"node_state_changed\"?)"
        );
        assert_eq!(e.location, Some(Location { line: 3, column: 1 }));
    }

    #[test]
    fn section_that_is_not_a_table_is_refused() {
        let e = parse("hooks = 5\n").unwrap_err();
        assert_eq!(e.message, "hooks = 5: expected a table (a [hooks] section)");
    }

    #[test]
    fn shown_values_are_shortened() {
        let long = format!("x = \"{}\"", "a".repeat(100));
        let s = shown(&long, 4..long.len());
        assert_eq!(s.chars().count(), 61);
        assert_eq!(shown("abc", 10..20), "?");
    }
}
