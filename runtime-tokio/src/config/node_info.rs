//! `my_node_info` / `neighbor_node_info`: the OpenSIPS `prop=value, prop=value` strings.
//!
//! OpenSIPS (`parse_param_node_info`) looks each property name up anywhere in the string,
//! takes the text after the next `=` up to the next `,`, trims spaces and parses integers
//! as unsigned decimals. Property names are the DB column names (`url_col` etc.). We accept
//! the same strings with a real tokenizer: pieces separated by `,`, each `name = value`
//! with spaces trimmed around both, names compared exactly. Differences, all refusals of
//! something OpenSIPS would silently misread: unknown names, a name given twice, an empty
//! value and a quoted value (OpenSIPS keeps quotes as part of the value, so
//! `url="bin:…"` is a bad URL there). Empty pieces (a trailing comma) are skipped.
//! `description` and `state` are our additions (OpenSIPS sets no description and state 1
//! for script-provisioned nodes).

use crate::db::ColumnNames;

/// The properties found in one string; `None` = not given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct NodeProps {
    pub cluster_id: Option<u32>,
    pub node_id: Option<u32>,
    pub url: Option<String>,
    pub sip_addr: Option<String>,
    pub priority: Option<i32>,
    pub no_ping_retries: Option<u32>,
    pub flags: Option<String>,
    pub description: Option<String>,
    pub state: Option<bool>,
}

/// Which property a name stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Prop {
    ClusterId,
    NodeId,
    Url,
    SipAddr,
    Priority,
    NoPingRetries,
    Flags,
    Description,
    State,
}

/// Property names in the order they are listed in messages, from the column names.
fn names(columns: &ColumnNames) -> [(&str, Prop); 9] {
    [
        (columns.cluster_id.as_str(), Prop::ClusterId),
        (columns.node_id.as_str(), Prop::NodeId),
        (columns.url.as_str(), Prop::Url),
        (columns.sip_addr.as_str(), Prop::SipAddr),
        (columns.priority.as_str(), Prop::Priority),
        (columns.no_ping_retries.as_str(), Prop::NoPingRetries),
        (columns.flags.as_str(), Prop::Flags),
        (columns.description.as_str(), Prop::Description),
        (columns.state.as_str(), Prop::State),
    ]
}

/// Parses one property string.
///
/// # Errors
/// What is wrong, without the key (the caller prefixes it): `unknown property "urll"
/// (expected one of cluster_id, node_id, url, ...)`.
pub(crate) fn parse(text: &str, columns: &ColumnNames) -> Result<NodeProps, String> {
    let names = names(columns);
    let mut props = NodeProps::default();
    let mut seen: Vec<Prop> = Vec::new();
    for piece in text.split(',') {
        let piece = piece.trim();
        if piece.is_empty() {
            continue;
        }
        let Some((name, value)) = piece.split_once('=') else {
            return Err(format!("\"{piece}\" is not property=value"));
        };
        let (name, value) = (name.trim(), value.trim());
        let Some(&(_, prop)) = names.iter().find(|(n, _)| *n == name) else {
            let list: Vec<&str> = names.iter().map(|(n, _)| *n).collect();
            return Err(format!(
                "unknown property \"{name}\" (expected one of {})",
                list.join(", ")
            ));
        };
        if seen.contains(&prop) {
            return Err(format!("property \"{name}\" is given twice"));
        }
        seen.push(prop);
        if value.is_empty() {
            return Err(format!("property \"{name}\" has no value"));
        }
        if value.starts_with(['"', '\'']) {
            let bare = value.trim_matches(['"', '\'']);
            return Err(format!(
                "{name} = {value}: quotes are not part of the OpenSIPS syntax (write {name}={bare})"
            ));
        }
        match prop {
            Prop::ClusterId => props.cluster_id = Some(id(name, value)?),
            Prop::NodeId => props.node_id = Some(id(name, value)?),
            Prop::Url => props.url = Some(value.to_owned()),
            Prop::SipAddr => props.sip_addr = Some(value.to_owned()),
            Prop::Priority => {
                props.priority = Some(unsigned(name, value, i32::MAX as u32)? as i32);
            }
            Prop::NoPingRetries => {
                props.no_ping_retries = Some(unsigned(name, value, i32::MAX as u32)?);
            }
            Prop::Flags => props.flags = Some(value.to_owned()),
            Prop::Description => props.description = Some(value.to_owned()),
            Prop::State => {
                props.state = Some(match value {
                    "1" => true,
                    "0" => false,
                    _ => return Err(format!("{name} = \"{value}\": expected 0 or 1")),
                });
            }
        }
    }
    Ok(props)
}

/// Whether a `flags` value marks a seed node: OpenSIPS compares the first four bytes with
/// `seed` (so `seedfoo` is a seed, `SEED` is not).
pub(crate) fn is_seed(flags: &str) -> bool {
    flags.starts_with("seed")
}

/// An id property: an integer in 1..=2147483647.
fn id(name: &str, value: &str) -> Result<u32, String> {
    match value.parse::<u32>() {
        Ok(n) if (1..=i32::MAX as u32).contains(&n) && is_plain_digits(value) => Ok(n),
        _ => Err(format!(
            "{name} = \"{value}\": expected an integer from 1 to {}",
            i32::MAX
        )),
    }
}

/// An unsigned integer property, at most `max`.
fn unsigned(name: &str, value: &str, max: u32) -> Result<u32, String> {
    match value.parse::<u32>() {
        Ok(n) if n <= max && is_plain_digits(value) => Ok(n),
        _ => Err(format!(
            "{name} = \"{value}\": expected an integer from 0 to {max}"
        )),
    }
}

/// Only ASCII digits (OpenSIPS `str2int` takes no sign).
fn is_plain_digits(value: &str) -> bool {
    !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols() -> ColumnNames {
        ColumnNames::default()
    }

    #[test]
    fn opensips_strings_parse_with_spaces_around_tokens() {
        let p = parse(
            "cluster_id=1, node_id = 2 ,url=bin:10.0.0.2:5566,  priority=7,no_ping_retries=5, \
             sip_addr=10.0.0.2:5060, flags=seed, description=edge node, state=0,",
            &cols(),
        )
        .unwrap();
        assert_eq!(p.cluster_id, Some(1));
        assert_eq!(p.node_id, Some(2));
        assert_eq!(p.url.as_deref(), Some("bin:10.0.0.2:5566"));
        assert_eq!(p.priority, Some(7));
        assert_eq!(p.no_ping_retries, Some(5));
        assert_eq!(p.sip_addr.as_deref(), Some("10.0.0.2:5060"));
        assert_eq!(p.flags.as_deref(), Some("seed"));
        assert_eq!(p.description.as_deref(), Some("edge node"));
        assert_eq!(p.state, Some(false));
    }

    #[test]
    fn seed_flag_is_a_prefix_match_like_opensips() {
        assert!(is_seed("seed"));
        assert!(is_seed("seedfoo"));
        assert!(!is_seed("SEED"));
        assert!(!is_seed("see"));
        assert!(!is_seed("xseed"));
    }

    #[test]
    fn unknown_property_lists_the_expected_names() {
        let e = parse("cluster_id=1, urll=bin:1.2.3.4", &cols()).unwrap_err();
        assert_eq!(
            e,
            "unknown property \"urll\" (expected one of cluster_id, node_id, url, sip_addr, \
             priority, no_ping_retries, flags, description, state)"
        );
    }

    #[test]
    fn property_names_follow_the_column_names() {
        let mut c = cols();
        c.url = "address".into();
        let p = parse("cluster_id=1, address=bin:10.0.0.1", &c).unwrap();
        assert_eq!(p.url.as_deref(), Some("bin:10.0.0.1"));
        assert!(parse("cluster_id=1, url=bin:10.0.0.1", &c).is_err());
    }

    #[test]
    fn bad_pieces_are_named() {
        let c = cols();
        assert_eq!(
            parse("cluster_id", &c).unwrap_err(),
            "\"cluster_id\" is not property=value"
        );
        assert_eq!(
            parse("cluster_id=1,cluster_id=2", &c).unwrap_err(),
            "property \"cluster_id\" is given twice"
        );
        assert_eq!(
            parse("url=", &c).unwrap_err(),
            "property \"url\" has no value"
        );
        assert_eq!(
            parse("node_id=-2", &c).unwrap_err(),
            "node_id = \"-2\": expected an integer from 1 to 2147483647"
        );
        assert_eq!(
            parse("node_id=0", &c).unwrap_err(),
            "node_id = \"0\": expected an integer from 1 to 2147483647"
        );
        assert_eq!(
            parse("priority=+3", &c).unwrap_err(),
            "priority = \"+3\": expected an integer from 0 to 2147483647"
        );
        assert_eq!(
            parse("state=yes", &c).unwrap_err(),
            "state = \"yes\": expected 0 or 1"
        );
    }

    #[test]
    fn quoted_values_are_refused_with_the_unquoted_form() {
        assert_eq!(
            parse("url=\"bin:10.0.0.1\"", &cols()).unwrap_err(),
            "url = \"bin:10.0.0.1\": quotes are not part of the OpenSIPS syntax (write url=bin:10.0.0.1)"
        );
    }

    #[test]
    fn empty_string_gives_no_properties() {
        assert_eq!(parse(" , ,", &cols()).unwrap(), NodeProps::default());
    }
}
