//! The daemon configuration: defaults, OpenSIPS syntaxes, error messages, db_mode rules,
//! the example files and `clusterer check-config`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use clusterer_core::{ClusterId, DbMode, ElectionConfig, NodeId, ShtagState, SyncOptions, Timers};
use clusterer_proto::endpoint::EndpointOptions;
use clusterer_tokio::config::{
    ClusterPersistency, ConfigError, DaemonConfig, HooksConfig, ListenConfig, MetricsConfig,
    MiConfig, accepted_keys,
};
use clusterer_tokio::db::{ColumnNames, DEFAULT_DB_URL};

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

fn parse(text: &str) -> DaemonConfig {
    match DaemonConfig::from_toml_str(text) {
        Ok(c) => c,
        Err(e) => panic!("expected a valid config, got: {e}\n---\n{text}"),
    }
}

fn parse_err(text: &str) -> ConfigError {
    match DaemonConfig::from_toml_str(text) {
        Ok(c) => panic!("expected an error, got {c:?}\n---\n{text}"),
        Err(e) => e,
    }
}

fn nid(n: u32) -> NodeId {
    NodeId::new(n).unwrap()
}

fn cid(n: u32) -> ClusterId {
    ClusterId::new(n).unwrap()
}

/// A scratch directory for this test process.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "clusterer-config-test-{}-{name}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const THREE_NODES: &str = r#"
my_node_id = 1
db_mode = 0
my_node_info = "cluster_id=1, url=bin:127.0.0.1:5566, flags=seed"
neighbor_node_info = ["cluster_id=1, node_id=2, url=bin:127.0.0.2:5566", "cluster_id=1, node_id=3, url=bin:127.0.0.3:5566"]
"#;

// ---- defaults ----

#[test]
fn defaults_match_the_opensips_module_parameters() {
    let c = parse("my_node_id = 7\n");
    assert_eq!(c.core.node_id, nid(7));
    // docs/behaviour.md §1.1: db_mode 1, ping_interval 4 s, ping_timeout 1000 ms,
    // node_timeout 60 s, seed_fallback_interval 5 s, sync_timeout 15 s,
    // sync_packet_size 32768, enable_rerouting 1, enable_stats 1.
    assert_eq!(c.core.db_mode, DbMode::Database);
    assert_eq!(
        c.core.timers,
        Timers {
            ping_interval_s: 4,
            ping_timeout_ms: 1000,
            node_timeout_s: 60,
            seed_fallback_interval_s: 5,
            sync_timeout_s: 15,
        }
    );
    assert_eq!(c.core.sync_packet_size, 32768);
    assert!(c.core.enable_rerouting);
    assert!(c.enable_stats);
    assert!(c.core.clusters.is_empty());
    assert!(c.core.sharing_tags.is_empty());
    assert_eq!(c.core.sync, SyncOptions::default());
    // DB: table `clusterer`, the OpenSIPS column names, our default SQLite file.
    let db = c.db.as_ref().unwrap();
    assert_eq!(db.url, DEFAULT_DB_URL);
    assert_eq!(db.url, "sqlite://clusterer.sqlite");
    assert_eq!(db.table, "clusterer");
    assert_eq!(db.columns, ColumnNames::default());
    assert_eq!(db.columns.no_ping_retries, "no_ping_retries");
    assert_eq!(db.columns.description, "description");
    // Our sections.
    assert_eq!(c.listen, ListenConfig::default());
    assert_eq!(c.mi, MiConfig::default());
    assert!(c.mi.enabled);
    assert_eq!(c.mi.listen.to_string(), "127.0.0.1:8888");
    assert_eq!(c.mi.path, "/mi");
    assert_eq!(c.mi.max_body_bytes, 1 << 20);
    assert_eq!(c.metrics, MetricsConfig::default());
    assert_eq!(c.metrics.listen.to_string(), "127.0.0.1:9090");
    assert_eq!(c.metrics.path, "/metrics");
    assert_eq!(c.hooks, HooksConfig::default());
    assert_eq!(c.hooks.timeout_ms, 10_000);
    assert_eq!(c.endpoint, EndpointOptions::default());
    assert_eq!(c.cachedb_local, None);
    // The only warning: the defaulted database.
    assert_eq!(
        c.warnings,
        vec!["db_url is not set: using sqlite://clusterer.sqlite (in the working directory)"]
    );
}

#[test]
fn script_nodes_get_priority_50_and_3_with_the_opensips_quirk() {
    let c = parse(THREE_NODES);
    let cluster = &c.core.clusters[0];
    assert_eq!(cluster.local.priority, 50);
    assert!(
        cluster
            .nodes
            .iter()
            .all(|n| n.priority == 50 && n.no_ping_retries == 3)
    );
    let c = parse(&format!("opensips_priority_quirk = true\n{THREE_NODES}"));
    let cluster = &c.core.clusters[0];
    assert_eq!(cluster.local.priority, 3);
    assert!(cluster.nodes.iter().all(|n| n.priority == 3));
    // An explicit priority wins either way.
    let c = parse(
        "opensips_priority_quirk = 1\nmy_node_id = 1\ndb_mode = 0\n\
         my_node_info = \"cluster_id=1, url=bin:127.0.0.1, priority=9, flags=seed\"\n",
    );
    assert_eq!(c.core.clusters[0].local.priority, 9);
}

#[test]
fn integers_and_booleans_may_be_written_as_strings() {
    let c = parse(
        "my_node_id = \"3\"\ndb_mode = \"1\"\nping_interval = \"2\"\nping_timeout = \" 500 \"\n\
         enable_rerouting = \"0\"\nenable_stats = false\nsync_packet_size = \"1000\"\n",
    );
    assert_eq!(c.core.node_id, nid(3));
    assert_eq!(c.core.timers.ping_interval_s, 2);
    assert_eq!(c.core.timers.ping_timeout_ms, 500);
    assert!(!c.core.enable_rerouting);
    assert!(!c.enable_stats);
    assert_eq!(c.core.sync_packet_size, 1000);
}

#[test]
fn nonpositive_timers_fall_back_to_the_default_with_a_warning() {
    let c = parse(
        "my_node_id = 1\ndb_url = \"sqlite://x.db\"\nping_interval = 0\nping_timeout = -5\n\
         node_timeout = -1\nseed_fallback_interval = \"-2\"\n",
    );
    assert_eq!(c.core.timers, Timers::default());
    assert_eq!(
        c.warnings,
        vec![
            "ping_interval = 0: is not greater than 0; using the default 4 seconds, as OpenSIPS does",
            "ping_timeout = -5: is not greater than 0; using the default 1000 milliseconds, as OpenSIPS does",
            "node_timeout = -1: is negative; using the default 60 seconds, as OpenSIPS does",
            "seed_fallback_interval = \"-2\": is negative; using the default 5 seconds, as OpenSIPS does",
        ]
    );
    // Zero is a valid node_timeout and seed_fallback_interval (OpenSIPS checks < 0 only).
    let c = parse(
        "my_node_id = 1\ndb_url = \"sqlite://x.db\"\nnode_timeout = 0\nseed_fallback_interval = 0\n",
    );
    assert_eq!(c.core.timers.node_timeout_s, 0);
    assert_eq!(c.core.timers.seed_fallback_interval_s, 0);
    assert!(c.warnings.is_empty());
}

// ---- my_node_info / neighbor_node_info ----

#[test]
fn opensips_node_info_strings_build_the_clusters() {
    let c = parse(
        r#"
my_node_id = 1
db_mode = 0
my_node_info = [
  "cluster_id = 1 , url = bin:127.0.0.1:5566 , flags = seed , sip_addr=127.0.0.1:5060",
  "cluster_id=2,node_id=1,url=bins:[::1]:5567,priority=5,no_ping_retries=7,description=two,state=0",
]
neighbor_node_info = [
  "cluster_id=1, node_id=2, url=bin:127.0.0.2:5566, flags=seedfoo",
  "cluster_id=1, node_id=3, url=bin:127.0.0.3",
  "cluster_id=2, node_id=2, url=bins:[::2]:5567",
]
[listen]
tls_cert = "examples/clusterer.toml"
tls_key = "examples/clusterer.toml"
"#,
    );
    assert_eq!(c.cluster_ids(), vec![cid(1), cid(2)]);
    let one = &c.core.clusters[0];
    assert_eq!(one.local.id, nid(1));
    assert_eq!(one.local.url, "bin:127.0.0.1:5566");
    assert!(one.local.seed);
    assert_eq!(one.local.sip_addr, "127.0.0.1:5060");
    assert_eq!(one.local.db_id, None);
    assert!(one.local.enabled);
    let ids: Vec<NodeId> = one.nodes.iter().map(|n| n.id).collect();
    assert_eq!(ids, vec![nid(2), nid(3)]);
    // `seedfoo` is a seed: OpenSIPS compares only the first four bytes.
    assert!(one.nodes[0].seed);
    assert!(!one.nodes[1].seed);
    let two = &c.core.clusters[1];
    assert_eq!(two.local.url, "bins:[::1]:5567");
    assert_eq!(two.local.priority, 5);
    assert_eq!(two.local.no_ping_retries, 7);
    assert_eq!(two.local.description.as_deref(), Some("two"));
    assert!(!two.local.enabled);
    assert_eq!(
        c.bin_listen_addresses(),
        vec![
            "127.0.0.1:5566".parse().unwrap(),
            "[::1]:5567".parse().unwrap()
        ]
    );
    // Cluster 2 has no seed at all: a notice like OpenSIPS' check_seed_flag.
    assert_eq!(
        c.warnings,
        vec![
            "cluster 2: no seed node defined (flags=seed); a capability that syncs at startup \
             waits for a donor"
        ]
    );
}

#[test]
fn node_id_may_come_from_my_node_info_and_must_agree() {
    let c = parse(
        "db_mode = 0\nmy_node_info = \"cluster_id=1, node_id=4, url=bin:127.0.0.1, flags=seed\"\n",
    );
    assert_eq!(c.core.node_id, nid(4));
    assert_eq!(c.core.clusters[0].local.id, nid(4));
    let e = parse_err(
        "my_node_id = 1\ndb_mode = 0\nmy_node_info = \"cluster_id=1, node_id=4, url=bin:127.0.0.1\"\n",
    );
    assert_eq!(e.key.as_deref(), Some("my_node_info"));
    assert_eq!(
        e.message,
        "my_node_info: node_id = 4 differs from my_node_id = 1"
    );
    let e = parse_err("db_mode = 0\nmy_node_info = \"cluster_id=1, url=bin:127.0.0.1\"\n");
    assert_eq!(e.key.as_deref(), Some("my_node_id"));
    assert!(e.message.starts_with("my_node_id is required"));
}

#[test]
fn property_names_follow_the_column_name_parameters() {
    let c = parse(
        "my_node_id = 1\ndb_mode = 0\nurl_col = \"address\"\nflags_col = \"node_flags\"\n\
         my_node_info = \"cluster_id=1, address=bin:127.0.0.1, node_flags=seed\"\n",
    );
    assert!(c.core.clusters[0].local.seed);
    assert_eq!(c.core.clusters[0].local.url, "bin:127.0.0.1");
    let e = parse_err(
        "my_node_id = 1\ndb_mode = 0\nurl_col = \"address\"\n\
         my_node_info = \"cluster_id=1, url=bin:127.0.0.1\"\n",
    );
    assert!(
        e.message.starts_with(
            "my_node_info: unknown property \"url\" (expected one of cluster_id, node_id, address,"
        ),
        "{}",
        e.message
    );
}

#[test]
fn node_info_problems_name_the_key_and_what_is_expected() {
    let base = "my_node_id = 1\ndb_mode = 0\n";
    let cases: &[(&str, &str, &str)] = &[
        (
            "my_node_info = \"cluster_id=1, urll=bin:127.0.0.1\"",
            "my_node_info",
            "my_node_info: unknown property \"urll\" (expected one of cluster_id, node_id, url, \
             sip_addr, priority, no_ping_retries, flags, description, state)",
        ),
        (
            "my_node_info = \"url=bin:127.0.0.1\"",
            "my_node_info",
            "my_node_info: cluster_id is required",
        ),
        (
            "my_node_info = \"cluster_id=1\"",
            "my_node_info",
            "my_node_info: url is required",
        ),
        (
            "my_node_info = \"cluster_id=one, url=bin:127.0.0.1\"",
            "my_node_info",
            "my_node_info: cluster_id = \"one\": expected an integer from 1 to 2147483647",
        ),
        (
            "my_node_info = \"cluster_id=1, url=sip:127.0.0.1\"",
            "my_node_info",
            "my_node_info: url = \"sip:127.0.0.1\": scheme must be bin: or bins: (expected \
             bin:IP[:port] or bins:IP[:port])",
        ),
        (
            "my_node_info = \"cluster_id=1, url=\\\"bin:127.0.0.1\\\"\"",
            "my_node_info",
            "my_node_info: url = \"bin:127.0.0.1\": quotes are not part of the OpenSIPS syntax \
             (write url=bin:127.0.0.1)",
        ),
        (
            "my_node_info = [\"cluster_id=1, url=bin:127.0.0.1\", \"cluster_id=1, url=bin:127.0.0.1\"]",
            "my_node_info[1]",
            "my_node_info[1]: cluster 1 already has a my_node_info entry",
        ),
        (
            "my_node_info = [\"cluster_id=1, url=bin:127.0.0.1\", 5]",
            "my_node_info[1]",
            "my_node_info[1] = 5: expected a string: a prop=value string (or an array of them)",
        ),
        (
            "my_node_info = 5",
            "my_node_info",
            "my_node_info = 5: expected a string or an array of strings: a prop=value string \
             (or an array of them)",
        ),
        (
            "my_node_info = \"cluster_id=1, url=bin:127.0.0.1\"\n\
             neighbor_node_info = \"cluster_id=1, url=bin:127.0.0.2\"",
            "neighbor_node_info",
            "neighbor_node_info: node_id is required",
        ),
        (
            "my_node_info = \"cluster_id=1, url=bin:127.0.0.1\"\n\
             neighbor_node_info = \"cluster_id=1, node_id=2, url=bin:localhost\"",
            "neighbor_node_info",
            "neighbor_node_info: url = \"bin:localhost\": host must be an IPv4 address or a \
             bracketed IPv6 address (expected bin:IP[:port] or bins:IP[:port])",
        ),
        (
            "my_node_info = \"cluster_id=1, url=bin:127.0.0.1\"\n\
             neighbor_node_info = \"cluster_id=2, node_id=2, url=bin:127.0.0.2\"",
            "neighbor_node_info",
            "neighbor_node_info: cluster 2 has no my_node_info entry (the local node must be a \
             member of it)",
        ),
        (
            "my_node_info = \"cluster_id=1, url=bin:127.0.0.1\"\n\
             neighbor_node_info = \"cluster_id=1, node_id=1, url=bin:127.0.0.2\"",
            "neighbor_node_info",
            "neighbor_node_info: node 1 is the local node (my_node_id); describe it in my_node_info",
        ),
        (
            "my_node_info = \"cluster_id=1, url=bin:127.0.0.1\"\n\
             neighbor_node_info = [\"cluster_id=1, node_id=2, url=bin:127.0.0.2\", \
             \"cluster_id=1, node_id=2, url=bin:127.0.0.3\"]",
            "neighbor_node_info[1]",
            "neighbor_node_info[1]: node 2 is already a neighbour in cluster 1",
        ),
    ];
    for (body, key, message) in cases {
        let e = parse_err(&format!("{base}{body}\n"));
        assert_eq!(e.message, *message, "for {body}");
        assert_eq!(e.key.as_deref(), Some(*key), "for {body}");
        assert!(e.location.is_some_and(|l| l.line >= 3), "for {body}: {e:?}");
    }
}

#[test]
fn array_items_are_located_on_their_own_line() {
    let e = parse_err(
        "my_node_id = 1\ndb_mode = 0\nmy_node_info = [\n  \"cluster_id=1, url=bin:127.0.0.1\",\n  \
         \"cluster_id=2, url=bin:nowhere\",\n]\n",
    );
    assert_eq!(e.key.as_deref(), Some("my_node_info[1]"));
    let l = e.location.unwrap();
    assert_eq!((l.line, l.column), (5, 3));
}

// ---- errors for every kind of bad value ----

#[test]
fn bad_values_name_the_key_the_value_and_what_is_expected() {
    let db = "my_node_id = 1\ndb_url = \"sqlite://x.db\"\n";
    let cases: &[(&str, &str, &str)] = &[
        (
            "ping_timeout = \"abc\"",
            "ping_timeout",
            "ping_timeout = \"abc\": expected milliseconds as an integer",
        ),
        (
            "ping_interval = 4.5",
            "ping_interval",
            "ping_interval = 4.5: expected seconds as an integer",
        ),
        (
            "node_timeout = 99999999999",
            "node_timeout",
            "node_timeout = 99999999999: expected seconds as an integer up to 2147483647",
        ),
        (
            "sync_timeout = 0",
            "sync_timeout",
            "sync_timeout = 0: expected seconds as an integer from 1 to 2147483647",
        ),
        (
            "sync_packet_size = 70000",
            "sync_packet_size",
            "sync_packet_size = 70000: expected bytes as an integer from 1 to 65535",
        ),
        ("db_mode = 2", "db_mode", "db_mode = 2: expected 0 or 1"),
        (
            "enable_rerouting = \"yes\"",
            "enable_rerouting",
            "enable_rerouting = \"yes\": expected 0 or 1 (or true/false)",
        ),
        (
            "enable_stats = 2",
            "enable_stats",
            "enable_stats = 2: expected 0 or 1 (or true/false)",
        ),
        (
            "opensips_priority_quirk = []",
            "opensips_priority_quirk",
            "opensips_priority_quirk = []: expected 0 or 1 (or true/false)",
        ),
        (
            "db_url = \"oracle://db\"",
            "db_url",
            "db_url = \"oracle://db\": expected a sqlite:, postgres:// or mysql:// URL",
        ),
        (
            "db_table = \"my table\"",
            "db_table",
            "db_table = \"my table\": expected an SQL table name (letters, digits and _, optionally schema.table)",
        ),
        (
            "url_col = \"1url\"",
            "url_col",
            "url_col = \"1url\": expected an SQL column name (letters, digits and _, not starting with a digit)",
        ),
        (
            "sip_addr_col = \"url\"",
            "sip_addr_col",
            "sip_addr_col = \"url\": the same column name as url_col",
        ),
        (
            "db_table = 5",
            "db_table",
            "db_table = 5: expected a string: a table name",
        ),
        (
            "sharing_tag = \"vip/x=active\"",
            "sharing_tag",
            "sharing_tag \"vip/x=active\": cluster id \"x\" is not a number",
        ),
        (
            "[listen]\naddress = \"somewhere\"",
            "listen.address",
            "listen.address = \"somewhere\": expected IP:port (e.g. 0.0.0.0:5566) or a bin:/bins: URL",
        ),
        (
            "[mi]\nlisten = \"localhost\"",
            "mi.listen",
            "mi.listen = \"localhost\": expected IP:port, e.g. 127.0.0.1:8888 or [::1]:8888",
        ),
        (
            "[mi]\npath = \"mi\"",
            "mi.path",
            "mi.path = \"mi\": expected an HTTP path starting with /, e.g. /mi",
        ),
        (
            "[mi]\nenabled = \"on\"",
            "mi.enabled",
            "mi.enabled = \"on\": expected 0 or 1 (or true/false)",
        ),
        (
            "[mi]\nmax_body_bytes = 0",
            "mi.max_body_bytes",
            "mi.max_body_bytes = 0: expected bytes as an integer from 1 to 2147483647",
        ),
        (
            "[metrics]\nlisten = \"9090\"",
            "metrics.listen",
            "metrics.listen = \"9090\": expected IP:port, e.g. 127.0.0.1:8888 or [::1]:8888",
        ),
        (
            "[metrics]\npath = \"/metrics?x\"",
            "metrics.path",
            "metrics.path = \"/metrics?x\": expected an HTTP path starting with /, e.g. /mi",
        ),
        (
            "[hooks]\nnode_state_changed = \"  \"",
            "hooks.node_state_changed",
            "hooks.node_state_changed = \"  \": expected a command line (leave the key out for no hook)",
        ),
        (
            "[hooks]\nsharing_tag_changed = 1",
            "hooks.sharing_tag_changed",
            "hooks.sharing_tag_changed = 1: expected a string: a command line",
        ),
        (
            "[hooks]\ntimeout_ms = -1",
            "hooks.timeout_ms",
            "hooks.timeout_ms = -1: expected milliseconds as an integer from 1 to 2147483647",
        ),
        (
            "[hooks]\nevent_log = \"/nonexistent-dir-xyz/events.jsonl\"",
            "hooks.event_log",
            "hooks.event_log = \"/nonexistent-dir-xyz/events.jsonl\": directory /nonexistent-dir-xyz does not exist",
        ),
        (
            "[listen]\ntls_cert = \"/nonexistent-xyz.pem\"",
            "listen.tls_cert",
            "listen.tls_cert = \"/nonexistent-xyz.pem\": /nonexistent-xyz.pem cannot be read (No such file or directory (os error 2))",
        ),
        (
            "[listen]\ntls_ca = \"/\"",
            "listen.tls_ca",
            "listen.tls_ca = \"/\": / is not a regular file",
        ),
        (
            "[discovery]\nallow = [\"10.0.0.0/8\", \"10.0.0.0/33\"]",
            "discovery.allow[1]",
            "discovery.allow[1] = \"10.0.0.0/33\": prefix length is too long for the address family (expected ADDRESS/PREFIX, e.g. 10.0.0.0/8)",
        ),
        (
            "[discovery]\nallow = \"example.com\"",
            "discovery.allow",
            "discovery.allow = \"example.com\": not an IP address (expected ADDRESS/PREFIX, e.g. 10.0.0.0/8)",
        ),
        (
            "[sync]\nretry = 3",
            "sync.retry",
            "sync.retry = 3: expected 0 or 1 (or true/false)",
        ),
        (
            "[sync]\nmax_buffered_packets = 0",
            "sync.max_buffered_packets",
            "sync.max_buffered_packets = 0: expected a count from 1 to 2147483647",
        ),
        (
            "[cachedb_local]\ncluster_id = -1",
            "cachedb_local.cluster_id",
            "cachedb_local.cluster_id = -1: expected a cluster id (0 = not replicated)",
        ),
        (
            "[cachedb_local]\ncluster_persistency = \"always\"",
            "cachedb_local.cluster_persistency",
            "cachedb_local.cluster_persistency = \"always\": expected \"none\" or \"sync-from-cluster\"",
        ),
        (
            "[cachedb_local]\ncache_collections = \"a; a/r\"",
            "cachedb_local.cache_collections",
            "cachedb_local.cache_collections = \"a; a/r\": collection \"a\" is defined twice (expected name[/r][=N] entries separated by ;)",
        ),
    ];
    for (body, key, message) in cases {
        let text = if body.starts_with("db_url") {
            format!("my_node_id = 1\n\n{body}\n")
        } else {
            format!("{db}{body}\n")
        };
        let e = parse_err(&text);
        assert_eq!(e.message, *message, "for {body}");
        assert_eq!(e.key.as_deref(), Some(*key), "for {body}");
        let l = e
            .location
            .unwrap_or_else(|| panic!("no location for {body}"));
        assert!(l.line >= 3, "for {body}: {l:?}");
        // The error line shows the location first.
        assert!(
            e.to_string()
                .starts_with(&format!("line {}, column {}: ", l.line, l.column))
        );
    }
}

#[test]
fn unknown_keys_are_rejected_with_their_dotted_path() {
    let e = parse_err("my_node_id = 1\npingg_interval = 4\n");
    assert_eq!(e.key.as_deref(), Some("pingg_interval"));
    assert_eq!(
        e.message,
        "pingg_interval: unknown key (did you mean \"ping_interval\"?)"
    );
    assert_eq!(e.location.map(|l| (l.line, l.column)), Some((2, 1)));

    let e = parse_err("my_node_id = 1\n[mi]\nport = 8888\n");
    assert_eq!(e.key.as_deref(), Some("mi.port"));
    assert_eq!(
        e.message,
        "mi.port: unknown key (expected one of enabled, listen, path, max_body_bytes)"
    );

    // Dotted keys and inline tables are checked the same way.
    let e = parse_err("my_node_id = 1\nhooks.node_state_chnged = \"x\"\n");
    assert_eq!(e.key.as_deref(), Some("hooks.node_state_chnged"));
    let e = parse_err("my_node_id = 1\nsync = { best_doner = true }\n");
    assert_eq!(e.key.as_deref(), Some("sync.best_doner"));
    assert_eq!(
        e.message,
        "sync.best_doner: unknown key (did you mean \"best_donor\"?)"
    );

    let e = parse_err("my_node_id = 1\n[nosuchsection]\n");
    assert_eq!(e.key.as_deref(), Some("nosuchsection"));
    assert!(
        e.message
            .starts_with("nosuchsection: unknown key (expected one of my_node_id, db_mode,")
    );

    let e = parse_err("my_node_id = 1\n[[mi]]\nenabled = true\n");
    assert!(e.message.starts_with("mi = "), "{}", e.message);
    assert!(
        e.message.ends_with(": expected a table (a [mi] section)"),
        "{}",
        e.message
    );
    assert_eq!(e.key.as_deref(), Some("mi"));
}

#[test]
fn toml_syntax_errors_have_a_location() {
    let e = parse_err("my_node_id = 1\nping_interval = \n");
    assert!(e.message.starts_with("TOML syntax: "), "{}", e.message);
    assert_eq!(e.location.map(|l| l.line), Some(2));
    assert_eq!(e.key, None);
    let e = parse_err("my_node_id = 1\nmy_node_id = 2\n");
    assert!(e.message.starts_with("TOML syntax: "), "{}", e.message);
}

#[test]
fn required_keys_are_named_when_missing() {
    let e = parse_err("");
    assert_eq!(e.key.as_deref(), Some("my_node_id"));
    assert_eq!(
        e.message,
        "my_node_id is required (an integer from 1 to 2147483647)"
    );
    assert_eq!(e.location, None);
    let e = parse_err("my_node_id = 0\n");
    assert_eq!(
        e.message,
        "my_node_id = 0: expected an integer from 1 to 2147483647"
    );
}

// ---- sharing_tag ----

#[test]
fn sharing_tag_accepts_a_string_or_an_array_and_the_election_suffix() {
    let c = parse(&format!("{THREE_NODES}sharing_tag = \"vip/1=active\"\n"));
    assert_eq!(c.core.sharing_tags.len(), 1);
    assert_eq!(c.core.sharing_tags[0].name, "vip");
    assert_eq!(c.core.sharing_tags[0].state, ShtagState::Active);
    assert_eq!(c.core.sharing_tags[0].election, None);

    let c = parse(&format!(
        "{THREE_NODES}sharing_tag = [\"vip/1=backup,election\", \"gw / 1 = backup , election , hold_down = 250\", \"x/1=ACTIVE\"]\n"
    ));
    let tags = &c.core.sharing_tags;
    assert_eq!(tags.len(), 3);
    assert_eq!(tags[0].election, Some(ElectionConfig::default()));
    assert_eq!(tags[0].election.unwrap().hold_down_ms, 3000);
    assert_eq!((tags[1].name.as_str(), tags[1].cluster), ("gw", cid(1)));
    assert_eq!(
        tags[1].election,
        Some(ElectionConfig {
            hold_down_ms: 250,
            preempt: false
        })
    );
    assert_eq!(tags[2].state, ShtagState::Active);
}

#[test]
fn sharing_tag_errors_show_the_tag_string() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "sharing_tag = \"vip/x=active\"",
            "sharing_tag",
            "sharing_tag \"vip/x=active\": cluster id \"x\" is not a number",
        ),
        (
            "sharing_tag = [\"vip/1=active\", \"vip=active\"]",
            "sharing_tag[1]",
            "sharing_tag[1] \"vip=active\": \"vip\" is not name/cluster_id",
        ),
        (
            "sharing_tag = \"vip/1=primary\"",
            "sharing_tag",
            "sharing_tag \"vip/1=primary\": state \"primary\" is not active or backup",
        ),
        (
            "sharing_tag = \"vip/1=backup,hold_down=5\"",
            "sharing_tag",
            "sharing_tag \"vip/1=backup,hold_down=5\": hold_down applies to election mode only (add \",election\")",
        ),
        (
            "sharing_tag = \"vip/1=backup,electoin\"",
            "sharing_tag",
            "sharing_tag \"vip/1=backup,electoin\": unknown option \"electoin\" (expected election, hold_down=MS or preempt)",
        ),
        (
            "sharing_tag = \"vip/2=backup\"",
            "sharing_tag",
            "sharing_tag \"vip/2=backup\": cluster 2 has no my_node_info entry",
        ),
        (
            "sharing_tag = [\"vip/1=backup\", \"vip/1=active\"]",
            "sharing_tag[1]",
            "sharing_tag[1] \"vip/1=active\": tag vip/1 is configured twice",
        ),
    ];
    for (body, key, message) in cases {
        let e = parse_err(&format!("{THREE_NODES}{body}\n"));
        assert_eq!(e.message, *message, "for {body}");
        assert_eq!(e.key.as_deref(), Some(*key), "for {body}");
        assert!(e.location.is_some(), "for {body}");
    }
}

#[test]
fn sharing_tags_of_any_cluster_are_accepted_in_db_mode_1() {
    // The clusters come from the database: unknown clusters are purged at start, as in
    // OpenSIPS, not refused here.
    let c = parse("my_node_id = 1\ndb_url = \"sqlite://x.db\"\nsharing_tag = \"vip/9=active\"\n");
    assert_eq!(c.core.sharing_tags[0].cluster, cid(9));
}

// ---- db_mode rules ----

#[test]
fn db_mode_1_refuses_script_provisioning() {
    for key in ["my_node_info", "neighbor_node_info"] {
        let e = parse_err(&format!(
            "my_node_id = 1\ndb_mode = 1\n{key} = \"cluster_id=1, node_id=2, url=bin:127.0.0.1\"\n"
        ));
        assert_eq!(e.key.as_deref(), Some(key));
        assert_eq!(
            e.message,
            format!(
                "{key} is not used with db_mode = 1: the nodes come from the clusterer table \
                 (OpenSIPS ignores it silently); remove it or set db_mode = 0"
            )
        );
        assert_eq!(e.location.map(|l| l.line), Some(3));
    }
}

#[test]
fn db_mode_1_takes_the_database_settings() {
    let c = parse(
        "my_node_id = 2\ndb_url = \"postgres://u:pw@db/opensips\"\ndb_table = \"opensips.nodes\"\n\
         id_col = \"row_id\"\nstate_col = \"enabled\"\n",
    );
    assert_eq!(c.db_mode(), DbMode::Database);
    let db = c.db.as_ref().unwrap();
    assert_eq!(db.url, "postgres://u:pw@db/opensips");
    assert_eq!(db.table, "opensips.nodes");
    assert_eq!(db.columns.id, "row_id");
    assert_eq!(db.columns.state, "enabled");
    assert_eq!(db.columns.url, "url");
    assert!(c.warnings.is_empty());
    assert_eq!(
        c.summary(),
        "node 2, clusters [loaded from postgres://u:***@db/opensips table opensips.nodes at start], db_mode 1"
    );
}

#[test]
fn db_mode_0_requires_my_node_info() {
    let e = parse_err("my_node_id = 1\ndb_mode = 0\n");
    assert_eq!(e.key.as_deref(), Some("my_node_info"));
    assert!(
        e.message
            .starts_with("my_node_info is required with db_mode = 0")
    );
}

#[test]
fn a_lone_seed_is_valid_and_a_lone_non_seed_is_valid_with_a_warning() {
    let c = parse(
        "my_node_id = 1\ndb_mode = 0\nmy_node_info = \"cluster_id=1, url=bin:127.0.0.1, flags=seed\"\n",
    );
    assert!(c.core.clusters[0].nodes.is_empty());
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    let c =
        parse("my_node_id = 1\ndb_mode = 0\nmy_node_info = \"cluster_id=1, url=bin:127.0.0.1\"\n");
    assert_eq!(
        c.warnings,
        vec![
            "cluster 1: no neighbor_node_info and the local node is not a seed (flags=seed): it \
             joins only when another node contacts it"
        ]
    );
    let c = parse(
        "my_node_id = 1\ndb_mode = 0\nmy_node_info = \"cluster_id=1, url=bin:127.0.0.1, flags=primary\"\n",
    );
    assert_eq!(c.warnings.len(), 2);
    assert_eq!(
        c.warnings[0],
        "my_node_info: flags = \"primary\" does not start with \"seed\" and is ignored"
    );
}

#[test]
fn db_mode_0_warns_about_database_keys_it_does_not_use() {
    let c = parse(&format!(
        "db_url = \"mysql://u:p@h/db\"\ndb_table = \"t\"\n{THREE_NODES}\n[discovery]\nallow = []\n"
    ));
    assert!(c.db.is_none());
    assert_eq!(c.endpoint.discovery_allow, Some(vec![]));
    assert_eq!(
        c.warnings,
        vec![
            "db_url is not used with db_mode = 0 (nodes come from my_node_info and neighbor_node_info)",
            "db_table is not used with db_mode = 0 (nodes come from my_node_info and neighbor_node_info)",
        ]
    );
    assert_eq!(c.summary(), "node 1, clusters [1], db_mode 0");
}

#[test]
fn too_many_neighbours_are_refused_by_the_core_limits() {
    let mut text = String::from(
        "my_node_id = 1\ndb_mode = 0\nmy_node_info = \"cluster_id=1, url=bin:127.0.0.1, flags=seed\"\nneighbor_node_info = [\n",
    );
    for n in 2..=130 {
        text.push_str(&format!(
            "  \"cluster_id=1, node_id={n}, url=bin:127.0.1.{}\",\n",
            n % 250
        ));
    }
    text.push_str("]\n");
    let e = parse_err(&text);
    assert_eq!(e.key.as_deref(), Some("neighbor_node_info"));
    assert_eq!(
        e.message,
        "neighbor_node_info: cluster 1: 129 other nodes, at most 128 are allowed"
    );
}

// ---- sections ----

#[test]
fn sections_fill_the_daemon_settings() {
    let dir = scratch("sections");
    std::fs::write(dir.join("node.crt"), "cert").unwrap();
    std::fs::write(dir.join("node.key"), "key").unwrap();
    let text = r#"
my_node_id = 1
db_mode = 0
my_node_info = "cluster_id=1, url=bins:127.0.0.1:5567, flags=seed"
[listen]
address = "0.0.0.0:5567"
tls_cert = "node.crt"
tls_key = "node.key"
[mi]
enabled = false
listen = "[::1]:8080"
path = "/json"
max_body_bytes = "4096"
[hooks]
node_state_changed = "echo node"
sharing_tag_changed = "echo tag"
req_received = "echo req"
rpl_received = "echo rpl"
timeout_ms = 500
event_log = "events.jsonl"
[metrics]
enabled = 0
listen = "0.0.0.0:9100"
path = "/m"
[discovery]
allow = ["10.0.0.0/8", "2001:db8::/32", "192.0.2.7"]
[sync]
best_donor = false
first_packet_timeout = 0
retry = "false"
ignore_unsolicited = false
skip_rejected_chunks = false
buffer_from_request = false
max_buffered_packets = 10
[cachedb_local]
cluster_id = 1
cache_collections = "sess/r; loc = 4"
cluster_persistency = "NONE"
"#;
    let c = DaemonConfig::from_toml_str_relative_to(text, &dir).unwrap();
    assert_eq!(c.listen.address, Some("0.0.0.0:5567".parse().unwrap()));
    assert_eq!(c.listen.tls_cert, Some(dir.join("node.crt")));
    assert_eq!(c.listen.tls_key, Some(dir.join("node.key")));
    assert_eq!(c.listen.tls_ca, None);
    assert_eq!(
        c.bin_listen_addresses(),
        vec!["0.0.0.0:5567".parse().unwrap()]
    );
    assert!(!c.mi.enabled);
    assert_eq!(c.mi.listen, "[::1]:8080".parse().unwrap());
    assert_eq!(c.mi.path, "/json");
    assert_eq!(c.mi.max_body_bytes, 4096);
    assert_eq!(c.hooks.node_state_changed.as_deref(), Some("echo node"));
    assert_eq!(c.hooks.rpl_received.as_deref(), Some("echo rpl"));
    assert_eq!(c.hooks.timeout_ms, 500);
    assert_eq!(c.hooks.event_log, Some(dir.join("events.jsonl")));
    let options = c.hooks.hook_options();
    assert_eq!(options.commands.len(), 4);
    assert_eq!(options.commands["sharing_tag_changed"], "echo tag");
    assert_eq!(options.timeout, Duration::from_millis(500));
    assert_eq!(options.event_log, Some(dir.join("events.jsonl")));
    assert!(!c.metrics.enabled);
    assert_eq!(c.metrics.path, "/m");
    let allow = c.endpoint.discovery_allow.as_ref().unwrap();
    assert_eq!(allow.len(), 3);
    assert!(allow[0].contains("10.1.2.3".parse().unwrap()));
    assert!(allow[2].contains("192.0.2.7".parse().unwrap()));
    assert!(!allow[2].contains("192.0.2.8".parse().unwrap()));
    assert_eq!(
        c.core.sync,
        SyncOptions {
            best_donor: false,
            first_packet_timeout: false,
            retry: false,
            ignore_unsolicited: false,
            skip_rejected_chunks: false,
            buffer_from_request: false,
            max_buffered_packets: 10,
        }
    );
    let cache = c.cachedb_local.as_ref().unwrap();
    assert_eq!(cache.cluster, Some(cid(1)));
    assert_eq!(cache.persistency, ClusterPersistency::None);
    let names: Vec<(&str, bool)> = cache
        .collections
        .iter()
        .map(|c| (c.name.as_str(), c.replicated))
        .collect();
    assert_eq!(
        names,
        vec![("default", false), ("sess", true), ("loc", false)]
    );
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn a_bins_local_url_needs_certificate_and_key() {
    let text = "my_node_id = 1\ndb_mode = 0\nmy_node_info = \"cluster_id=1, url=bins:127.0.0.1, flags=seed\"\n";
    let e = parse_err(text);
    assert_eq!(e.key.as_deref(), Some("listen.tls_cert"));
    assert_eq!(
        e.message,
        "listen.tls_cert and listen.tls_key are required: the local node's url in cluster 1 is bins:127.0.0.1"
    );
    let dir = scratch("tls");
    std::fs::write(dir.join("c.pem"), "x").unwrap();
    let e = DaemonConfig::from_toml_str_relative_to(
        &format!("{text}[listen]\ntls_cert = \"c.pem\"\n"),
        &dir,
    )
    .unwrap_err();
    assert_eq!(e.message, "listen.tls_key is required with listen.tls_cert");
}

#[test]
fn cachedb_local_cluster_must_be_configured_and_replication_needs_a_cluster() {
    let e = parse_err(&format!("{THREE_NODES}[cachedb_local]\ncluster_id = 2\n"));
    assert_eq!(e.key.as_deref(), Some("cachedb_local.cluster_id"));
    assert_eq!(
        e.message,
        "cachedb_local.cluster_id = 2: cluster 2 has no my_node_info entry"
    );
    let c = parse(&format!(
        "{THREE_NODES}[cachedb_local]\ncache_collections = \"default/r\"\n"
    ));
    let cache = c.cachedb_local.unwrap();
    assert_eq!(cache.cluster, None);
    assert_eq!(cache.persistency, ClusterPersistency::SyncFromCluster);
    assert_eq!(
        c.warnings,
        vec!["cachedb_local: collections are marked /r but cluster_id is 0: nothing is replicated"]
    );
}

#[test]
fn mi_and_metrics_cannot_share_one_endpoint() {
    let e = parse_err(&format!(
        "{THREE_NODES}[metrics]\nlisten = \"127.0.0.1:8888\"\npath = \"/mi\"\n"
    ));
    assert_eq!(e.key.as_deref(), Some("metrics.path"));
    assert_eq!(
        e.message,
        "metrics.path: /mi on 127.0.0.1:8888 is already the MI endpoint (mi.path)"
    );
}

// ---- robustness ----

#[test]
fn odd_inputs_give_errors_not_panics() {
    let deep = format!("x = {}{}", "[".repeat(5000), "]".repeat(5000));
    let inputs: Vec<String> = vec![
        String::new(),
        "\u{0}\u{1}\u{2}".into(),
        "=".into(),
        "my_node_id = 9223372036854775807".into(),
        "my_node_id = -9223372036854775808".into(),
        "my_node_id = 1979-05-27T07:32:00Z".into(),
        "my_node_id = nan".into(),
        "my_node_id = {}".into(),
        "my_node_id = 1\nsharing_tag = {}\n".into(),
        "my_node_id = 1\nsharing_tag = [[]]\n".into(),
        "my_node_id = 1\ndb_mode = 0\nmy_node_info = \"=,=,=\"\n".into(),
        "my_node_id = 1\ndb_mode = 0\nmy_node_info = \"cluster_id=1,url=bin:[::1\"\n".into(),
        "my_node_id = 1\ndb_mode = 0\nmy_node_info = \"cluster_id=99999999999,url=bin:1.2.3.4\"\n"
            .into(),
        "my_node_id = 1\nsharing_tag = \"é/é=é,é\"\n".into(),
        "my_node_id = 1\nsharing_tag = '''\nvip/1=active'''\n".into(),
        "my_node_id = 1\n[cachedb_local]\ncache_collections = \";;;/r=;\"\n".into(),
        "my_node_id = 1\n[discovery]\nallow = [\"::/129\", 5]\n".into(),
        "[mi.listen]\n".into(),
        "mi = []\n".into(),
        deep,
    ];
    for input in &inputs {
        let _ = DaemonConfig::from_toml_str(input);
    }
}

#[test]
fn every_prefix_of_an_example_parses_or_fails_cleanly() {
    let text = std::fs::read_to_string(examples_dir().join("db_mode0.toml")).unwrap();
    for (i, _) in text.char_indices() {
        let _ = DaemonConfig::from_toml_str(&text[..i]);
    }
}

// ---- examples ----

#[test]
fn every_example_file_parses() {
    let mut seen = 0;
    for entry in std::fs::read_dir(examples_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let config = DaemonConfig::from_path(&path)
            .unwrap_or_else(|e| panic!("{} does not parse: {e}", path.display()));
        seen += 1;
        // The examples are meant to be clean: no warnings.
        assert!(
            config.warnings.is_empty(),
            "{}: {:?}",
            path.display(),
            config.warnings
        );
    }
    assert!(seen >= 3, "only {seen} example files found");
}

#[test]
fn the_db_mode0_example_is_three_nodes_with_an_election_tag() {
    let c = DaemonConfig::from_path(&examples_dir().join("db_mode0.toml")).unwrap();
    assert_eq!(c.db_mode(), DbMode::Discovery);
    assert_eq!(c.core.clusters.len(), 1);
    assert_eq!(c.core.clusters[0].nodes.len(), 2);
    assert!(c.core.sharing_tags[0].election.is_some());
    let c = DaemonConfig::from_path(&examples_dir().join("db_mode1_sqlite.toml")).unwrap();
    assert_eq!(c.db_mode(), DbMode::Database);
    assert_eq!(c.db.unwrap().url, "sqlite://clusterer.sqlite");
}

#[test]
fn every_accepted_key_appears_in_the_complete_example() {
    let text = std::fs::read_to_string(examples_dir().join("clusterer.toml")).unwrap();
    // Keys as written, commented out or not: `key =` / `# key =`, under the current
    // `[section]` header.
    let mut found = BTreeSet::new();
    let mut section = String::new();
    for line in text.lines() {
        let line = line.trim_start().trim_start_matches('#').trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_owned();
            continue;
        }
        let Some((key, _)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim();
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            continue;
        }
        if section.is_empty() {
            found.insert(key.to_owned());
        } else {
            found.insert(format!("{section}.{key}"));
        }
    }
    let keys = accepted_keys();
    assert!(keys.len() > 40, "{keys:?}");
    let missing: Vec<&String> = keys.iter().filter(|k| !found.contains(*k)).collect();
    assert!(
        missing.is_empty(),
        "keys missing from examples/clusterer.toml: {missing:?}"
    );
}

// ---- clusterer check-config ----

fn check_config(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_clusterer"))
        .arg("check-config")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_config_exits_0_and_prints_ok_for_a_valid_file() {
    let path = examples_dir().join("db_mode0.toml");
    let (code, stdout, stderr) = check_config(&[path.to_str().unwrap()]);
    assert_eq!(code, 0, "stderr: {stderr}");
    assert_eq!(stdout, "OK: node 1, clusters [1], db_mode 0\n");
    assert_eq!(stderr, "");
}

#[test]
fn check_config_prints_warnings_on_stderr() {
    let dir = scratch("check-warn");
    let path = dir.join("warn.toml");
    std::fs::write(&path, "my_node_id = 5\nping_interval = 0\n").unwrap();
    let (code, stdout, stderr) = check_config(&[path.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert_eq!(
        stdout,
        "OK: node 5, clusters [loaded from sqlite://clusterer.sqlite table clusterer at start], db_mode 1\n"
    );
    assert_eq!(
        stderr,
        "warning: ping_interval = 0: is not greater than 0; using the default 4 seconds, as OpenSIPS does\n\
         warning: db_url is not set: using sqlite://clusterer.sqlite (in the working directory)\n"
    );
}

#[test]
fn check_config_exits_1_with_file_line_and_column_on_error() {
    let dir = scratch("check-bad");
    let path = dir.join("bad.toml");
    std::fs::write(&path, "my_node_id = 1\nping_timeout = \"abc\"\n").unwrap();
    let (code, stdout, stderr) = check_config(&[path.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert_eq!(stdout, "");
    assert_eq!(
        stderr,
        format!(
            "error: {}:2:16: ping_timeout = \"abc\": expected milliseconds as an integer\n",
            path.display()
        )
    );
    let (code, _, stderr) = check_config(&[dir.join("missing.toml").to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        stderr.starts_with("error: ") && stderr.contains("cannot read the file"),
        "{stderr}"
    );
}

#[test]
fn check_config_without_a_file_is_a_usage_error() {
    let (code, _, stderr) = check_config(&[]);
    assert_eq!(code, 2);
    assert!(stderr.contains("FILE"), "{stderr}");
}
