//! The daemon configuration: a TOML file whose top-level keys are the OpenSIPS `clusterer`
//! module parameters, plus sections for what OpenSIPS configures elsewhere.
//!
//! ```toml
//! my_node_id = 1
//! db_mode = 0
//! my_node_info = "cluster_id=1, url=bin:10.0.0.1:5566, flags=seed"
//! neighbor_node_info = ["cluster_id=1, node_id=2, url=bin:10.0.0.2:5566"]
//! sharing_tag = "vip/1=backup,election"
//!
//! [mi]
//! listen = "127.0.0.1:8888"
//! ```
//!
//! Every key, its unit and its default are explained in `examples/clusterer.toml` (a test
//! keeps that file complete); `examples/db_mode0.toml` and `examples/db_mode1_sqlite.toml`
//! are small starting points. [`accepted_keys`] lists the keys.
//!
//! # Rules
//! * Module parameters (docs/behaviour.md §1.1) keep their OpenSIPS names, units and defaults.
//!   Integers may also be written as strings (`ping_interval = "4"`), booleans as `0`/`1`
//!   or `true`/`false`. Where OpenSIPS replaces a bad timer by its default
//!   (`ping_interval`/`ping_timeout` ≤ 0, `node_timeout`/`seed_fallback_interval` < 0) we do
//!   the same and add a warning to [`DaemonConfig::warnings`].
//! * `my_node_info` / `neighbor_node_info` take the OpenSIPS `prop=value, prop=value`
//!   strings (one string or an array); the property names are the DB column names, so
//!   they follow `url_col` and friends like in OpenSIPS. `description` and `state` are
//!   accepted in addition.
//! * Script-provisioned nodes without `priority` get 50 (the DB default); OpenSIPS gives
//!   them 3 by mistake (docs/behaviour.md §17 quirk #4). `opensips_priority_quirk = true`
//!   restores 3, for next-hop and election tie-breaks identical to an OpenSIPS cluster
//!   provisioned the same way.
//! * `db_mode = 0`: the nodes come from the file; at least one `my_node_info` is required.
//!   A cluster with no `neighbor_node_info` is accepted (it is joined when another node
//!   contacts us); a warning says so unless the local node is a seed.
//! * `db_mode = 1` (the default): the nodes come from the `clusterer` table at start;
//!   `db_url` defaults to `sqlite://clusterer.sqlite` in the working directory (with a
//!   warning), and `my_node_info` / `neighbor_node_info` are refused (OpenSIPS ignores
//!   them silently).
//! * Relative file paths (`listen.tls_*`, `hooks.event_log`) are relative to the directory
//!   of the configuration file when it is read with [`DaemonConfig::from_path`], else to
//!   the working directory. `db_url` is a URL and is used as written.
//! * Unknown keys are errors. Every error names the key (dotted path, `[i]` for array
//!   items), shows the value, says what was expected and, when known, gives line and
//!   column. No input makes the parser panic.

mod build;
pub mod check;
pub mod embedded;
mod error;
mod node_info;
mod raw;
mod shtag;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clusterer_core::{ClusterId, Config, DbMode, NodeAddress};
use clusterer_proto::endpoint::EndpointOptions;

use crate::cachedb::CollectionSpec;
use crate::db::DbSettings;
use crate::events::HookOptions;

pub use check::{CheckConfigArgs, run as run_check_config};
pub use error::{ConfigError, Location};
pub use raw::accepted_keys;

/// Priority OpenSIPS gives script-provisioned nodes (quirk #4), used with
/// `opensips_priority_quirk = true`.
pub const OPENSIPS_SCRIPT_PRIORITY: i32 = 3;
/// `mi.listen` default.
pub const DEFAULT_MI_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8888);
/// `mi.path` default.
pub const DEFAULT_MI_PATH: &str = "/mi";
/// `mi.max_body_bytes` default: 1 MiB.
pub const DEFAULT_MI_MAX_BODY_BYTES: usize = 1 << 20;
/// `metrics.listen` default.
pub const DEFAULT_METRICS_LISTEN: SocketAddr =
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9090);
/// `metrics.path` default.
pub const DEFAULT_METRICS_PATH: &str = "/metrics";
/// `hooks.timeout_ms` default.
pub const DEFAULT_HOOK_TIMEOUT_MS: u64 = 10_000;

/// A parsed, validated daemon configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DaemonConfig {
    /// The core configuration. With `db_mode = 0` it is complete (clusters and nodes from
    /// `my_node_info` / `neighbor_node_info`) and has passed [`Config::validate`]; with
    /// `db_mode = 1` its `clusters` are empty until the provisioning code fills them from
    /// [`DaemonConfig::db`].
    pub core: Config,
    /// Endpoint options: the discovery allow-list of `[discovery]`.
    pub endpoint: EndpointOptions,
    /// `[listen]`: the BIN listener.
    pub listen: ListenConfig,
    /// `[mi]`: the JSON-RPC management interface.
    pub mi: MiConfig,
    /// `[hooks]`: commands run on events, and the event log.
    pub hooks: HooksConfig,
    /// `[metrics]`: the Prometheus endpoint.
    pub metrics: MetricsConfig,
    /// Where the node table lives (`db_url`, `db_table`, `*_col`); `Some` exactly when
    /// `db_mode = 1`.
    pub db: Option<DbSettings>,
    /// `[cachedb_local]`: the replicated cache capability; `None` when the section is
    /// absent (no cache at all).
    pub cachedb_local: Option<CachedbLocalConfig>,
    /// `enable_stats`: whether the `clusterer_nodes*` statistics are exported.
    pub enable_stats: bool,
    /// Things accepted but worth telling the operator (defaults substituted for bad
    /// values, unused keys, lone non-seed nodes...); the daemon logs them at start.
    pub warnings: Vec<String>,
}

/// `[listen]`: the BIN listener.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListenConfig {
    /// `address`: where to listen instead of the local node's URL address (e.g.
    /// `0.0.0.0:5566` behind NAT). `None` = the local node's URL.
    pub address: Option<SocketAddr>,
    /// `tls_cert`: PEM certificate chain for `bins:` (checked to exist).
    pub tls_cert: Option<PathBuf>,
    /// `tls_key`: PEM private key for `bins:` (checked to exist).
    pub tls_key: Option<PathBuf>,
    /// `tls_ca`: PEM CA bundle to verify `bins:` peers (checked to exist).
    pub tls_ca: Option<PathBuf>,
}

/// `[mi]`: JSON-RPC 2.0 over HTTP with the OpenSIPS command names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MiConfig {
    /// `enabled` (default true).
    pub enabled: bool,
    /// `listen` (default 127.0.0.1:8888, the OpenSIPS `httpd` port).
    pub listen: SocketAddr,
    /// `path` (default `/mi`, the OpenSIPS `mi_http` root).
    pub path: String,
    /// `max_body_bytes`: largest request body accepted (default 1 MiB).
    pub max_body_bytes: usize,
}

impl Default for MiConfig {
    fn default() -> Self {
        MiConfig {
            enabled: true,
            listen: DEFAULT_MI_LISTEN,
            path: DEFAULT_MI_PATH.to_owned(),
            max_body_bytes: DEFAULT_MI_MAX_BODY_BYTES,
        }
    }
}

/// `[hooks]`: a shell command line per event (the OpenSIPS EVI events of docs/behaviour.md §12),
/// and an optional JSON-lines log of every event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HooksConfig {
    /// `node_state_changed`: on `E_CLUSTERER_NODE_STATE_CHANGED`.
    pub node_state_changed: Option<String>,
    /// `sharing_tag_changed`: on `E_CLUSTERER_SHARING_TAG_CHANGED` (VIP failover).
    pub sharing_tag_changed: Option<String>,
    /// `req_received`: on `E_CLUSTERER_REQ_RECEIVED`.
    pub req_received: Option<String>,
    /// `rpl_received`: on `E_CLUSTERER_RPL_RECEIVED`.
    pub rpl_received: Option<String>,
    /// `timeout_ms`: a hook still running after this long is killed (default 10000).
    pub timeout_ms: u64,
    /// `event_log`: append every event as one JSON object per line to this file.
    pub event_log: Option<PathBuf>,
}

impl HooksConfig {
    /// The settings of the hook runner ([`crate::events::spawn`]).
    pub fn hook_options(&self) -> HookOptions {
        let mut options = HookOptions {
            timeout: Duration::from_millis(self.timeout_ms),
            event_log: self.event_log.clone(),
            ..HookOptions::default()
        };
        for (key, command) in [
            ("node_state_changed", &self.node_state_changed),
            ("sharing_tag_changed", &self.sharing_tag_changed),
            ("req_received", &self.req_received),
            ("rpl_received", &self.rpl_received),
        ] {
            if let Some(command) = command {
                options.commands.insert(key.to_owned(), command.clone());
            }
        }
        options
    }
}

impl Default for HooksConfig {
    fn default() -> Self {
        HooksConfig {
            node_state_changed: None,
            sharing_tag_changed: None,
            req_received: None,
            rpl_received: None,
            timeout_ms: DEFAULT_HOOK_TIMEOUT_MS,
            event_log: None,
        }
    }
}

/// `[metrics]`: Prometheus text exposition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricsConfig {
    /// `enabled` (default true).
    pub enabled: bool,
    /// `listen` (default 127.0.0.1:9090).
    pub listen: SocketAddr,
    /// `path` (default `/metrics`).
    pub path: String,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: true,
            listen: DEFAULT_METRICS_LISTEN,
            path: DEFAULT_METRICS_PATH.to_owned(),
        }
    }
}

/// `[cachedb_local]`: the replicated key/value cache (`cachedb-local-repl`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CachedbLocalConfig {
    /// `cluster_id`: the cluster the capability is registered in; `None` (0) = a local
    /// cache, nothing replicated.
    pub cluster: Option<ClusterId>,
    /// `cache_collections`, parsed by [`crate::cachedb::parse_collections`] (the cache's own
    /// parser): configuration order, with a non-replicated `default` first when none was
    /// listed.
    pub collections: Vec<CollectionSpec>,
    /// `cluster_persistency`.
    pub persistency: ClusterPersistency,
}

/// `cluster_persistency` of `cachedb_local`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClusterPersistency {
    /// `none`: the capability is synced at once; no startup sync.
    None,
    /// `sync-from-cluster` (default): request the cache from a donor at startup.
    SyncFromCluster,
}

impl DaemonConfig {
    /// Parses a configuration; relative paths are kept relative (to the working directory).
    ///
    /// ```
    /// use clusterer_tokio::config::DaemonConfig;
    ///
    /// let config = DaemonConfig::from_toml_str(
    ///     r#"
    ///     my_node_id = 1
    ///     db_mode = 0
    ///     ping_interval = 0
    ///     my_node_info = "cluster_id=1, url=bin:127.0.0.1:5566, flags=seed"
    ///     "#,
    /// )?;
    /// assert_eq!(config.summary(), "node 1, clusters [1], db_mode 0");
    /// assert_eq!(config.core.timers.ping_interval_s, 4);
    /// assert_eq!(config.warnings.len(), 1);
    ///
    /// let error = DaemonConfig::from_toml_str("my_node_id = 1\nping_timeout = \"abc\"\n")
    ///     .unwrap_err();
    /// assert_eq!(
    ///     error.to_string(),
    ///     "line 2, column 16: ping_timeout = \"abc\": expected milliseconds as an integer"
    /// );
    /// # Ok::<(), clusterer_tokio::config::ConfigError>(())
    /// ```
    ///
    /// # Errors
    /// [`ConfigError`] for the first problem: TOML syntax, an unknown key, a bad value, a
    /// missing required key, or a rule of `db_mode`.
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        let raw = raw::parse(text)?;
        build::build(text, raw, None)
    }

    /// Parses a configuration whose relative paths are relative to `dir`.
    ///
    /// # Errors
    /// As [`DaemonConfig::from_toml_str`].
    pub fn from_toml_str_relative_to(text: &str, dir: &Path) -> Result<Self, ConfigError> {
        let raw = raw::parse(text)?;
        build::build(text, raw, Some(dir))
    }

    /// Reads and parses the file at `path`; relative paths inside are relative to the
    /// file's directory.
    ///
    /// # Errors
    /// As [`DaemonConfig::from_toml_str`], plus an unreadable file; the error carries the
    /// path.
    pub fn from_path(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::general(None, format!("cannot read the file: {e}"))
                .in_file(path.to_owned())
        })?;
        let dir = path.parent().unwrap_or(Path::new(""));
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        Self::from_toml_str_relative_to(&text, dir).map_err(|e| e.in_file(path.to_owned()))
    }

    /// `db_mode`.
    pub fn db_mode(&self) -> DbMode {
        self.core.db_mode
    }

    /// The configured cluster ids, in `my_node_info` order (empty with `db_mode = 1`: the
    /// clusters come from the database).
    pub fn cluster_ids(&self) -> Vec<ClusterId> {
        self.core.clusters.iter().map(|c| c.id).collect()
    }

    /// Where the BIN listener should listen: `listen.address` when set, else the distinct
    /// socket addresses of the local node's URLs (one per cluster, usually all equal).
    /// Empty with `db_mode = 1` and no `listen.address`: the local URL is in the database.
    pub fn bin_listen_addresses(&self) -> Vec<SocketAddr> {
        if let Some(address) = self.listen.address {
            return vec![address];
        }
        let mut out: Vec<SocketAddr> = Vec::new();
        for cluster in &self.core.clusters {
            if let Ok(address) = NodeAddress::parse(&cluster.local.url)
                && !out.contains(&address.socket)
            {
                out.push(address.socket);
            }
        }
        out
    }

    /// One line for operators: `node 1, clusters [1, 2], db_mode 0` (with `db_mode = 1`
    /// the clusters are named as coming from the database).
    pub fn summary(&self) -> String {
        let node = self.core.node_id;
        match (&self.db, self.core.db_mode) {
            (Some(db), DbMode::Database) => format!(
                "node {node}, clusters [loaded from {} table {} at start], db_mode 1",
                redact_password(&db.url),
                db.table
            ),
            _ => {
                let ids: Vec<String> = self.cluster_ids().iter().map(|c| c.to_string()).collect();
                let mode = match self.core.db_mode {
                    DbMode::Discovery => 0,
                    DbMode::Database => 1,
                };
                format!("node {node}, clusters [{}], db_mode {mode}", ids.join(", "))
            }
        }
    }
}

/// `url` with the password of `scheme://user:password@host` replaced by `***`, for output.
pub fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((credentials, host)) => match credentials.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{path}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted_in_db_urls() {
        assert_eq!(
            redact_password("mysql://opensips:secret@10.0.0.5/opensips"),
            "mysql://opensips:***@10.0.0.5/opensips"
        );
        assert_eq!(redact_password("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            redact_password("sqlite://clusterer.sqlite"),
            "sqlite://clusterer.sqlite"
        );
        assert_eq!(redact_password("sqlite::memory:"), "sqlite::memory:");
    }
}
