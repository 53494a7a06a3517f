//! The part of the configuration file a node without database, MI, hooks, metrics, cache
//! or TLS uses — the embassy runtime's TAP node and firmware read the `clusterer run` file
//! through [`load`], so one parser and one list of keys serve every runtime.

use std::net::{IpAddr, Ipv4Addr};

use super::DaemonConfig;
use clusterer_core::{DbMode, NodeAddress};

/// The keys such a node takes (dotted for sections); any other key is refused by name.
pub const SUPPORTED_KEYS: &[&str] = &[
    "my_node_id",
    "db_mode",
    "ping_interval",
    "ping_timeout",
    "node_timeout",
    "seed_fallback_interval",
    "sync_timeout",
    "sync_packet_size",
    "enable_rerouting",
    "sharing_tag",
    "my_node_info",
    "neighbor_node_info",
    "opensips_priority_quirk",
    "discovery.allow",
    "sync.best_donor",
    "sync.first_packet_timeout",
    "sync.retry",
    "sync.ignore_unsolicited",
    "sync.skip_rejected_chunks",
    "sync.buffer_from_request",
    "sync.max_buffered_packets",
];

/// Every key of `table` as a dotted path (`ping_interval`, `sync.retry`).
fn keys_of(table: &toml::Table) -> Vec<String> {
    let mut keys = Vec::new();
    for (k, v) in table {
        match v {
            toml::Value::Table(t) => keys.extend(t.keys().map(|sub| format!("{k}.{sub}"))),
            _ => keys.push(k.clone()),
        }
    }
    keys
}

/// Parses `text` (named `source` in errors) with the daemon's parser, then checks that it
/// uses only [`SUPPORTED_KEYS`] and `db_mode = 0`.
///
/// # Errors
/// The daemon parser's error (key, value, line), an unsupported key, or a `db_mode` other
/// than 0, each as one line naming `source`.
pub fn load(text: &str, source: &str) -> Result<DaemonConfig, String> {
    let config = DaemonConfig::from_toml_str(text).map_err(|e| format!("{source}: {e}"))?;
    let table: toml::Table = text.parse().map_err(|e| format!("{source}: {e}"))?;
    if let Some(key) = keys_of(&table)
        .into_iter()
        .find(|k| !SUPPORTED_KEYS.contains(&k.as_str()))
    {
        return Err(format!(
            "{source}: `{key}` is not supported by an embedded node (it has no database, MI, \
             hooks, metrics, cache or TLS); supported keys: {}",
            SUPPORTED_KEYS.join(", ")
        ));
    }
    if config.core.db_mode != DbMode::Discovery {
        return Err(format!(
            "{source}: db_mode: an embedded node takes its nodes from the file: set db_mode = 0"
        ));
    }
    Ok(config)
}

/// Parses `ADDRESS/PREFIX` (`10.42.0.3/24`), the form of the embedded nodes' `--ip`.
///
/// # Errors
/// A line naming the value and what is wrong with it.
pub fn parse_ipv4_cidr(s: &str) -> Result<(Ipv4Addr, u8), String> {
    let (ip, len) = s
        .split_once('/')
        .ok_or_else(|| format!("{s:?}: expected ADDRESS/PREFIX, e.g. 10.42.0.3/24"))?;
    let ip: Ipv4Addr = ip
        .parse()
        .map_err(|_| format!("{s:?}: {ip:?} is not an IPv4 address"))?;
    let len: u8 = len
        .parse()
        .ok()
        .filter(|l| *l <= 32)
        .ok_or_else(|| format!("{s:?}: prefix {len:?} is not 0..=32"))?;
    Ok((ip, len))
}

/// Checks that every cluster's local URL is on `ip` (the node's only address).
///
/// # Errors
/// A line naming `source`, the cluster and its URL.
pub fn check_local_ip(config: &DaemonConfig, ip: IpAddr, source: &str) -> Result<(), String> {
    for cluster in &config.core.clusters {
        let url = &cluster.local.url;
        let addr = NodeAddress::parse(url)
            .map_err(|e| format!("{source}: cluster {}: url {url:?}: {e:?}", cluster.id))?;
        if addr.ip() != ip {
            return Err(format!(
                "{source}: cluster {}: the local url {url:?} is not on {ip}",
                cluster.id
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODE: &str = "my_node_id = 3\ndb_mode = 0\n\
        my_node_info = \"cluster_id=1, url=bin:10.0.0.3:5566\"\n";

    #[test]
    fn a_daemon_only_key_is_refused_by_name() {
        let e = load(
            &format!("{NODE}[mi]\nlisten = \"127.0.0.1:8888\"\n"),
            "n3.toml",
        )
        .unwrap_err();
        assert!(
            e.starts_with("n3.toml: `mi.listen` is not supported"),
            "{e}"
        );
        let e = load(&format!("{NODE}enable_stats = 1\n"), "n3.toml").unwrap_err();
        assert!(e.contains("`enable_stats`"), "{e}");
    }

    #[test]
    fn db_mode_must_be_zero_and_bad_values_keep_the_daemon_parsers_message() {
        let e = load("my_node_id = 3\n", "n3.toml").unwrap_err();
        assert!(e.contains("db_mode"), "{e}");
        let e = load(&format!("{NODE}ping_interval = \"often\"\n"), "n3.toml").unwrap_err();
        assert!(e.contains("ping_interval"), "{e}");
        let ok = load(&format!("{NODE}[sync]\nretry = true\n"), "n3.toml").unwrap();
        assert_eq!(ok.core.node_id.get(), 3);
    }

    #[test]
    fn the_ip_must_carry_the_local_url_and_parse() {
        let config = load(NODE, "n3.toml").unwrap();
        assert_eq!(
            check_local_ip(&config, "10.0.0.4".parse().unwrap(), "n3.toml").unwrap_err(),
            "n3.toml: cluster 1: the local url \"bin:10.0.0.3:5566\" is not on 10.0.0.4"
        );
        assert!(check_local_ip(&config, "10.0.0.3".parse().unwrap(), "n3.toml").is_ok());
        assert_eq!(
            parse_ipv4_cidr("10.0.0.3/24"),
            Ok(("10.0.0.3".parse().unwrap(), 24))
        );
        assert!(
            parse_ipv4_cidr("10.0.0.3/33")
                .unwrap_err()
                .contains("prefix")
        );
        assert!(
            parse_ipv4_cidr("10.0.0.3")
                .unwrap_err()
                .contains("ADDRESS/PREFIX")
        );
    }
}
