//! From [`RawConfig`] to [`DaemonConfig`]: every value checked, defaults applied, the
//! `db_mode` rules enforced, the core configuration built and validated.

use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};

use clusterer_core::config::{DEFAULT_NO_PING_RETRIES, DEFAULT_PRIORITY};
use clusterer_core::{
    ClusterConfig, ClusterId, Config, DbMode, NodeAddress, NodeConfig, NodeId, Scheme, ShtagConfig,
    SyncOptions, Timers,
};
use clusterer_proto::endpoint::{EndpointOptions, IpNet};
use toml::{Spanned, Value};

use super::raw::{self, Leaf, RawConfig};
use super::{
    CachedbLocalConfig, ClusterPersistency, ConfigError, DaemonConfig, HooksConfig, ListenConfig,
    MetricsConfig, MiConfig, OPENSIPS_SCRIPT_PRIORITY, node_info, shtag,
};
use crate::cachedb;
use crate::db::{ColumnNames, DEFAULT_DB_URL, DEFAULT_TABLE, DbSettings};

/// Largest integer any parameter takes (OpenSIPS parameters are C `int`).
const INT_MAX: i64 = i32::MAX as i64;

/// Builds and validates the configuration; `base` resolves relative paths.
pub(crate) fn build(
    source: &str,
    raw: RawConfig,
    base: Option<&Path>,
) -> Result<DaemonConfig, ConfigError> {
    let mut b = Builder {
        src: source,
        base,
        warnings: Vec::new(),
    };
    b.config(raw)
}

struct Builder<'a> {
    src: &'a str,
    base: Option<&'a Path>,
    warnings: Vec<String>,
}

/// One string of a string-or-array parameter: its text, its key (`name` or `name[i]`) and
/// its span.
struct Item {
    text: String,
    key: String,
    span: Range<usize>,
}

impl Builder<'_> {
    fn config(&mut self, raw: RawConfig) -> Result<DaemonConfig, ConfigError> {
        let db_mode = match self.int_in("db_mode", &raw.db_mode, 0, 1, "0 or 1")? {
            None | Some(1) => DbMode::Database,
            Some(_) => DbMode::Discovery,
        };
        let columns = self.columns(&raw)?;
        let db_table = match self.string("db_table", &raw.db_table, "a table name")? {
            None => DEFAULT_TABLE.to_owned(),
            Some((t, span)) => {
                if !is_sql_name(&t, true) {
                    return Err(self.err(
                        "db_table",
                        span,
                        format!(
                            "db_table = \"{t}\": expected an SQL table name (letters, digits \
                             and _, optionally schema.table)"
                        ),
                    ));
                }
                t
            }
        };
        let my_node_id = self
            .int_in(
                "my_node_id",
                &raw.my_node_id,
                1,
                INT_MAX,
                "an integer from 1 to 2147483647",
            )?
            .and_then(|n| NodeId::new(u32::try_from(n).ok()?));

        let timers = self.timers(&raw)?;
        let sync_packet_size = self
            .int_in(
                "sync_packet_size",
                &raw.sync_packet_size,
                1,
                65535,
                "bytes as an integer from 1 to 65535",
            )?
            .map_or(32768, |n| n as usize);
        if let Some(dispatch) = self.flag("dispatch_jobs", &raw.dispatch_jobs)? {
            self.warnings.push(format!(
                "dispatch_jobs = {}: accepted for OpenSIPS compatibility and ignored (packets \
                 are processed in order by one task)",
                u8::from(dispatch)
            ));
        }
        let enable_rerouting = self
            .flag("enable_rerouting", &raw.enable_rerouting)?
            .unwrap_or(true);
        let enable_stats = self
            .flag("enable_stats", &raw.enable_stats)?
            .unwrap_or(true);
        let priority_quirk = self
            .flag("opensips_priority_quirk", &raw.opensips_priority_quirk)?
            .unwrap_or(false);
        let script_priority = if priority_quirk {
            OPENSIPS_SCRIPT_PRIORITY
        } else {
            DEFAULT_PRIORITY
        };

        let sharing_tags = self.sharing_tags(&raw.sharing_tag)?;

        let (node_id, clusters, db) = match db_mode {
            DbMode::Discovery => {
                for (key, leaf) in [("db_url", &raw.db_url), ("db_table", &raw.db_table)] {
                    if leaf.is_some() {
                        self.warnings.push(format!(
                            "{key} is not used with db_mode = 0 (nodes come from \
                             my_node_info and neighbor_node_info)"
                        ));
                    }
                }
                let (node_id, clusters) =
                    self.script_nodes(&raw, my_node_id, &columns, script_priority)?;
                (node_id, clusters, None)
            }
            DbMode::Database => {
                for (key, leaf) in [
                    ("my_node_info", &raw.my_node_info),
                    ("neighbor_node_info", &raw.neighbor_node_info),
                ] {
                    if let Some(v) = leaf {
                        return Err(self.err(
                            key,
                            v.span(),
                            format!(
                                "{key} is not used with db_mode = 1: the nodes come from the \
                                 {db_table} table (OpenSIPS ignores it silently); remove it or \
                                 set db_mode = 0"
                            ),
                        ));
                    }
                }
                if raw.opensips_priority_quirk.is_some() {
                    self.warnings.push(
                        "opensips_priority_quirk has no effect with db_mode = 1 (priorities \
                         come from the database)"
                            .to_owned(),
                    );
                }
                let Some(node_id) = my_node_id else {
                    return Err(missing(
                        "my_node_id",
                        "my_node_id is required (an integer from 1 to 2147483647)",
                    ));
                };
                let url = match self.string("db_url", &raw.db_url, "a database URL")? {
                    Some((url, span)) => {
                        if !is_db_url(&url) {
                            return Err(self.err(
                                "db_url",
                                span,
                                format!(
                                    "db_url = \"{url}\": expected a sqlite:, postgres:// or \
                                     mysql:// URL"
                                ),
                            ));
                        }
                        url
                    }
                    None => {
                        self.warnings.push(format!(
                            "db_url is not set: using {DEFAULT_DB_URL} (in the working directory)"
                        ));
                        DEFAULT_DB_URL.to_owned()
                    }
                };
                let db = DbSettings {
                    url,
                    table: db_table,
                    columns,
                };
                (node_id, Vec::new(), Some(db))
            }
        };

        // Sharing tags: duplicates always, unknown clusters when the clusters are known.
        for (i, (tag, item)) in sharing_tags.iter().enumerate() {
            if sharing_tags[..i]
                .iter()
                .any(|(o, _)| o.name == tag.name && o.cluster == tag.cluster)
            {
                return Err(self.err(
                    &item.key,
                    item.span.clone(),
                    format!(
                        "{} \"{}\": tag {}/{} is configured twice",
                        item.key, item.text, tag.name, tag.cluster
                    ),
                ));
            }
            if db_mode == DbMode::Discovery && !clusters.iter().any(|c| c.id == tag.cluster) {
                return Err(self.err(
                    &item.key,
                    item.span.clone(),
                    format!(
                        "{} \"{}\": cluster {} has no my_node_info entry",
                        item.key, item.text, tag.cluster
                    ),
                ));
            }
        }

        let listen = self.listen(&raw, &clusters)?;
        let mi = self.mi(&raw)?;
        let metrics = self.metrics(&raw, &mi)?;
        let hooks = self.hooks(&raw)?;
        let endpoint = self.discovery(&raw, db_mode)?;
        let sync = self.sync(&raw)?;
        let cluster_ids: Vec<ClusterId> = clusters.iter().map(|c| c.id).collect();
        let cachedb_local = self.cachedb_local(&raw, db_mode, &cluster_ids)?;

        let mut core = Config::new(node_id, db_mode);
        core.timers = timers;
        core.enable_rerouting = enable_rerouting;
        core.sync_packet_size = sync_packet_size;
        core.clusters = clusters;
        core.sharing_tags = sharing_tags.into_iter().map(|(t, _)| t).collect();
        core.sync = sync;
        validate_core(&core)?;

        Ok(DaemonConfig {
            core,
            endpoint,
            listen,
            mi,
            hooks,
            metrics,
            db,
            cachedb_local,
            enable_stats,
            warnings: std::mem::take(&mut self.warnings),
        })
    }

    /// The `*_col` parameters: SQL identifiers, all different.
    fn columns(&self, raw: &RawConfig) -> Result<ColumnNames, ConfigError> {
        let mut columns = ColumnNames::default();
        // In table order, like `ColumnNames::PARAMS` (the keys) and `in_order_mut`.
        let leaves: [&Leaf; 10] = [
            &raw.id_col,
            &raw.cluster_id_col,
            &raw.node_id_col,
            &raw.url_col,
            &raw.state_col,
            &raw.no_ping_retries_col,
            &raw.priority_col,
            &raw.sip_addr_col,
            &raw.flags_col,
            &raw.description_col,
        ];
        let slots = ColumnNames::PARAMS
            .into_iter()
            .zip(leaves)
            .zip(columns.in_order_mut());
        let mut taken: Vec<(String, &str)> = Vec::new();
        for ((key, leaf), slot) in slots {
            if let Some((name, span)) = self.string(key, leaf, "a column name")? {
                if !is_sql_name(&name, false) {
                    return Err(self.err(
                        key,
                        span,
                        format!(
                            "{key} = \"{name}\": expected an SQL column name (letters, digits \
                             and _, not starting with a digit)"
                        ),
                    ));
                }
                *slot = name;
            }
            if let Some((_, other)) = taken.iter().find(|(n, _)| n == slot.as_str()) {
                let span = leaf.as_ref().map(Spanned::span);
                return Err(ConfigError::at(
                    self.src,
                    key,
                    span,
                    format!("{key} = \"{slot}\": the same column name as {other}"),
                ));
            }
            taken.push((slot.clone(), key));
        }
        Ok(columns)
    }

    fn timers(&mut self, raw: &RawConfig) -> Result<Timers, ConfigError> {
        let d = Timers::default();
        Ok(Timers {
            ping_interval_s: self.timer(
                "ping_interval",
                &raw.ping_interval,
                "seconds",
                d.ping_interval_s,
                false,
            )?,
            ping_timeout_ms: self.timer(
                "ping_timeout",
                &raw.ping_timeout,
                "milliseconds",
                d.ping_timeout_ms,
                false,
            )?,
            node_timeout_s: self.timer(
                "node_timeout",
                &raw.node_timeout,
                "seconds",
                d.node_timeout_s,
                true,
            )?,
            seed_fallback_interval_s: self.timer(
                "seed_fallback_interval",
                &raw.seed_fallback_interval,
                "seconds",
                d.seed_fallback_interval_s,
                true,
            )?,
            sync_timeout_s: self
                .int_in(
                    "sync_timeout",
                    &raw.sync_timeout,
                    1,
                    INT_MAX,
                    "seconds as an integer from 1 to 2147483647",
                )?
                .map_or(d.sync_timeout_s, |n| n as u32),
        })
    }

    /// A timer OpenSIPS resets to its default when it is negative (or zero, unless
    /// `zero_ok`), with a warning.
    fn timer(
        &mut self,
        key: &str,
        leaf: &Leaf,
        unit: &str,
        default: u32,
        zero_ok: bool,
    ) -> Result<u32, ConfigError> {
        let expected = format!("{unit} as an integer");
        let Some((n, span)) = self.int(key, leaf, &expected)? else {
            return Ok(default);
        };
        if n > INT_MAX {
            return Err(self.bad(key, span, &format!("{expected} up to {INT_MAX}")));
        }
        if n < 0 || (n == 0 && !zero_ok) {
            let rule = if zero_ok {
                "is negative"
            } else {
                "is not greater than 0"
            };
            self.warnings.push(format!(
                "{key} = {}: {rule}; using the default {default} {unit}, as OpenSIPS does",
                raw::shown(self.src, span)
            ));
            return Ok(default);
        }
        Ok(n as u32)
    }

    fn sharing_tags(&self, leaf: &Leaf) -> Result<Vec<(ShtagConfig, Item)>, ConfigError> {
        let items = self.strings("sharing_tag", leaf, "name/cluster_id=active|backup")?;
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let tag = shtag::parse(&item.text).map_err(|detail| {
                self.err(
                    &item.key,
                    item.span.clone(),
                    format!("{} \"{}\": {detail}", item.key, item.text),
                )
            })?;
            out.push((tag, item));
        }
        Ok(out)
    }

    /// `db_mode = 0`: the local node and its clusters from `my_node_info`, the other nodes
    /// from `neighbor_node_info`.
    fn script_nodes(
        &mut self,
        raw: &RawConfig,
        my_node_id: Option<NodeId>,
        columns: &ColumnNames,
        priority: i32,
    ) -> Result<(NodeId, Vec<ClusterConfig>), ConfigError> {
        let expected = "a prop=value string (or an array of them)";
        let locals = self.strings("my_node_info", &raw.my_node_info, expected)?;
        if locals.is_empty() {
            return Err(missing(
                "my_node_info",
                "my_node_info is required with db_mode = 0 (at least cluster_id and url of \
                 the local node, e.g. \"cluster_id=1, url=bin:10.0.0.1:5566\")",
            ));
        }
        let mut node_id = my_node_id;
        let mut clusters: Vec<ClusterConfig> = Vec::new();
        let mut first_flags: Vec<Option<String>> = Vec::new();
        for item in &locals {
            let props = self.props(item, columns)?;
            let cluster = self.required_cluster(item, props.cluster_id, columns)?;
            let url = self.required_url(item, props.url.as_deref(), columns)?;
            if let Some(given) = props.node_id {
                let given = NodeId::new(given);
                match (node_id, given) {
                    (Some(mine), Some(given)) if mine != given => {
                        return Err(self.err(
                            &item.key,
                            item.span.clone(),
                            format!(
                                "{}: {} = {given} differs from my_node_id = {mine}",
                                item.key, columns.node_id
                            ),
                        ));
                    }
                    (None, given) => node_id = given,
                    _ => {}
                }
            }
            if clusters.iter().any(|c| c.id == cluster) {
                return Err(self.err(
                    &item.key,
                    item.span.clone(),
                    format!(
                        "{}: cluster {cluster} already has a my_node_info entry",
                        item.key
                    ),
                ));
            }
            if let Some(flags) = &props.flags
                && !node_info::is_seed(flags)
            {
                self.warnings.push(format!(
                    "{}: {} = \"{flags}\" does not start with \"seed\" and is ignored",
                    item.key, columns.flags
                ));
            }
            first_flags.push(props.flags.clone());
            // The id is fixed below, once my_node_id or a node_id property gave it.
            let mut local = NodeConfig::new(NodeId::MIN, url);
            self.fill_node(&mut local, &props, priority);
            clusters.push(ClusterConfig {
                id: cluster,
                local,
                nodes: Vec::new(),
            });
        }
        let Some(node_id) = node_id else {
            return Err(missing(
                "my_node_id",
                "my_node_id is required (an integer from 1 to 2147483647), or a node_id \
                 property in my_node_info",
            ));
        };
        for cluster in &mut clusters {
            cluster.local.id = node_id;
        }

        let neighbours = self.strings("neighbor_node_info", &raw.neighbor_node_info, expected)?;
        for item in &neighbours {
            let props = self.props(item, columns)?;
            let cluster_id = self.required_cluster(item, props.cluster_id, columns)?;
            let Some(id) = props.node_id.and_then(NodeId::new) else {
                return Err(self.err(
                    &item.key,
                    item.span.clone(),
                    format!("{}: {} is required", item.key, columns.node_id),
                ));
            };
            let url = self.required_url(item, props.url.as_deref(), columns)?;
            if id == node_id {
                return Err(self.err(
                    &item.key,
                    item.span.clone(),
                    format!(
                        "{}: node {id} is the local node (my_node_id); describe it in my_node_info",
                        item.key
                    ),
                ));
            }
            let Some(cluster) = clusters.iter_mut().find(|c| c.id == cluster_id) else {
                return Err(self.err(
                    &item.key,
                    item.span.clone(),
                    format!(
                        "{}: cluster {cluster_id} has no my_node_info entry (the local node \
                         must be a member of it)",
                        item.key
                    ),
                ));
            };
            if cluster.nodes.iter().any(|n| n.id == id) {
                return Err(ConfigError::at(
                    self.src,
                    &item.key,
                    Some(item.span.clone()),
                    format!(
                        "{}: node {id} is already a neighbour in cluster {cluster_id}",
                        item.key
                    ),
                ));
            }
            let mut node = NodeConfig::new(id, url);
            self.fill_node(&mut node, &props, priority);
            cluster.nodes.push(node);
        }

        for cluster in &clusters {
            if cluster.nodes.is_empty() && !cluster.local.seed {
                self.warnings.push(format!(
                    "cluster {}: no neighbor_node_info and the local node is not a seed \
                     (flags=seed): it joins only when another node contacts it",
                    cluster.id
                ));
            } else if !cluster.local.seed && !cluster.nodes.iter().any(|n| n.seed) {
                self.warnings.push(format!(
                    "cluster {}: no seed node defined (flags=seed); a capability that syncs at \
                     startup waits for a donor",
                    cluster.id
                ));
            }
        }
        Ok((node_id, clusters))
    }

    fn props(
        &self,
        item: &Item,
        columns: &ColumnNames,
    ) -> Result<node_info::NodeProps, ConfigError> {
        node_info::parse(&item.text, columns).map_err(|detail| {
            self.err(
                &item.key,
                item.span.clone(),
                format!("{}: {detail}", item.key),
            )
        })
    }

    fn required_cluster(
        &self,
        item: &Item,
        cluster: Option<u32>,
        columns: &ColumnNames,
    ) -> Result<ClusterId, ConfigError> {
        cluster.and_then(ClusterId::new).ok_or_else(|| {
            self.err(
                &item.key,
                item.span.clone(),
                format!("{}: {} is required", item.key, columns.cluster_id),
            )
        })
    }

    fn required_url(
        &self,
        item: &Item,
        url: Option<&str>,
        columns: &ColumnNames,
    ) -> Result<String, ConfigError> {
        let Some(url) = url else {
            return Err(self.err(
                &item.key,
                item.span.clone(),
                format!("{}: {} is required", item.key, columns.url),
            ));
        };
        NodeAddress::parse(url).map_err(|reason| {
            self.err(
                &item.key,
                item.span.clone(),
                format!(
                    "{}: {} = \"{url}\": {reason} (expected bin:IP[:port] or bins:IP[:port])",
                    item.key, columns.url
                ),
            )
        })?;
        Ok(url.to_owned())
    }

    fn fill_node(&self, node: &mut NodeConfig, props: &node_info::NodeProps, priority: i32) {
        node.sip_addr = props.sip_addr.clone().unwrap_or_default();
        node.priority = props.priority.unwrap_or(priority);
        node.no_ping_retries = props.no_ping_retries.unwrap_or(DEFAULT_NO_PING_RETRIES);
        node.enabled = props.state.unwrap_or(true);
        node.seed = props.flags.as_deref().is_some_and(node_info::is_seed);
        node.description = props.description.clone();
    }

    fn listen(
        &self,
        raw: &RawConfig,
        clusters: &[ClusterConfig],
    ) -> Result<ListenConfig, ConfigError> {
        let Some(l) = &raw.listen else {
            let listen = ListenConfig::default();
            self.require_tls(&listen, clusters)?;
            return Ok(listen);
        };
        let address = match self.string("listen.address", &l.address, "IP:port")? {
            None => None,
            Some((text, span)) => Some(parse_listen_address(&text).ok_or_else(|| {
                self.err(
                    "listen.address",
                    span,
                    format!(
                        "listen.address = \"{text}\": expected IP:port (e.g. 0.0.0.0:5566) or a \
                         bin:/bins: URL"
                    ),
                )
            })?),
        };
        let listen = ListenConfig {
            address,
            tls_cert: self.existing_file("listen.tls_cert", &l.tls_cert)?,
            tls_key: self.existing_file("listen.tls_key", &l.tls_key)?,
            tls_ca: self.existing_file("listen.tls_ca", &l.tls_ca)?,
        };
        match (&listen.tls_cert, &listen.tls_key) {
            (Some(_), None) => {
                return Err(missing(
                    "listen.tls_key",
                    "listen.tls_key is required with listen.tls_cert",
                ));
            }
            (None, Some(_)) => {
                return Err(missing(
                    "listen.tls_cert",
                    "listen.tls_cert is required with listen.tls_key",
                ));
            }
            _ => {}
        }
        self.require_tls(&listen, clusters)?;
        Ok(listen)
    }

    /// A `bins:` local URL needs a certificate and key.
    fn require_tls(
        &self,
        listen: &ListenConfig,
        clusters: &[ClusterConfig],
    ) -> Result<(), ConfigError> {
        if listen.tls_cert.is_some() {
            return Ok(());
        }
        for cluster in clusters {
            if NodeAddress::parse(&cluster.local.url).is_ok_and(|a| a.scheme == Scheme::Bins) {
                return Err(missing(
                    "listen.tls_cert",
                    format!(
                        "listen.tls_cert and listen.tls_key are required: the local node's url \
                         in cluster {} is {}",
                        cluster.id, cluster.local.url
                    ),
                ));
            }
        }
        Ok(())
    }

    fn mi(&self, raw: &RawConfig) -> Result<MiConfig, ConfigError> {
        let mut mi = MiConfig::default();
        let Some(m) = &raw.mi else {
            return Ok(mi);
        };
        if let Some(enabled) = self.flag("mi.enabled", &m.enabled)? {
            mi.enabled = enabled;
        }
        if let Some(listen) = self.socket("mi.listen", &m.listen)? {
            mi.listen = listen;
        }
        if let Some(path) = self.http_path("mi.path", &m.path)? {
            mi.path = path;
        }
        if let Some(n) = self.int_in(
            "mi.max_body_bytes",
            &m.max_body_bytes,
            1,
            INT_MAX,
            "bytes as an integer from 1 to 2147483647",
        )? {
            mi.max_body_bytes = n as usize;
        }
        Ok(mi)
    }

    fn metrics(&self, raw: &RawConfig, mi: &MiConfig) -> Result<MetricsConfig, ConfigError> {
        let mut metrics = MetricsConfig::default();
        if let Some(m) = &raw.metrics {
            if let Some(enabled) = self.flag("metrics.enabled", &m.enabled)? {
                metrics.enabled = enabled;
            }
            if let Some(listen) = self.socket("metrics.listen", &m.listen)? {
                metrics.listen = listen;
            }
            if let Some(path) = self.http_path("metrics.path", &m.path)? {
                metrics.path = path;
            }
        }
        if metrics.enabled && mi.enabled && metrics.listen == mi.listen && metrics.path == mi.path {
            let span = raw
                .metrics
                .as_ref()
                .and_then(|m| m.path.as_ref().or(m.listen.as_ref()))
                .map(Spanned::span);
            return Err(ConfigError::at(
                self.src,
                "metrics.path",
                span,
                format!(
                    "metrics.path: {} on {} is already the MI endpoint (mi.path)",
                    metrics.path, metrics.listen
                ),
            ));
        }
        Ok(metrics)
    }

    fn hooks(&self, raw: &RawConfig) -> Result<HooksConfig, ConfigError> {
        let mut hooks = HooksConfig::default();
        let Some(h) = &raw.hooks else {
            return Ok(hooks);
        };
        hooks.node_state_changed =
            self.command("hooks.node_state_changed", &h.node_state_changed)?;
        hooks.sharing_tag_changed =
            self.command("hooks.sharing_tag_changed", &h.sharing_tag_changed)?;
        hooks.req_received = self.command("hooks.req_received", &h.req_received)?;
        hooks.rpl_received = self.command("hooks.rpl_received", &h.rpl_received)?;
        if let Some(ms) = self.int_in(
            "hooks.timeout_ms",
            &h.timeout_ms,
            1,
            INT_MAX,
            "milliseconds as an integer from 1 to 2147483647",
        )? {
            hooks.timeout_ms = ms as u64;
        }
        if let Some((path, span)) = self.path("hooks.event_log", &h.event_log)? {
            let dir = match path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => Path::new("."),
            };
            if !dir.is_dir() {
                return Err(self.err(
                    "hooks.event_log",
                    span,
                    format!(
                        "hooks.event_log = {}: directory {} does not exist",
                        raw::shown(self.src, span_of(&h.event_log)),
                        dir.display()
                    ),
                ));
            }
            hooks.event_log = Some(path);
        }
        Ok(hooks)
    }

    fn discovery(
        &mut self,
        raw: &RawConfig,
        db_mode: DbMode,
    ) -> Result<EndpointOptions, ConfigError> {
        let Some(d) = &raw.discovery else {
            return Ok(EndpointOptions::default());
        };
        if d.allow.is_none() {
            return Ok(EndpointOptions::default());
        }
        let items = self.strings("discovery.allow", &d.allow, "a list of CIDRs")?;
        let mut nets = Vec::with_capacity(items.len());
        for item in items {
            let net = IpNet::parse(item.text.trim()).map_err(|reason| {
                self.err(
                    &item.key,
                    item.span.clone(),
                    format!(
                        "{} = \"{}\": {reason} (expected ADDRESS/PREFIX, e.g. 10.0.0.0/8)",
                        item.key, item.text
                    ),
                )
            })?;
            nets.push(net);
        }
        if db_mode == DbMode::Database {
            self.warnings.push(
                "discovery.allow is not used with db_mode = 1 (only provisioned nodes are \
                 accepted)"
                    .to_owned(),
            );
        }
        Ok(EndpointOptions {
            discovery_allow: Some(nets),
            ..EndpointOptions::default()
        })
    }

    fn sync(&self, raw: &RawConfig) -> Result<SyncOptions, ConfigError> {
        let mut sync = SyncOptions::default();
        let Some(s) = &raw.sync else {
            return Ok(sync);
        };
        for (key, leaf, slot) in [
            ("sync.best_donor", &s.best_donor, &mut sync.best_donor),
            (
                "sync.first_packet_timeout",
                &s.first_packet_timeout,
                &mut sync.first_packet_timeout,
            ),
            ("sync.retry", &s.retry, &mut sync.retry),
            (
                "sync.ignore_unsolicited",
                &s.ignore_unsolicited,
                &mut sync.ignore_unsolicited,
            ),
            (
                "sync.skip_rejected_chunks",
                &s.skip_rejected_chunks,
                &mut sync.skip_rejected_chunks,
            ),
            (
                "sync.buffer_from_request",
                &s.buffer_from_request,
                &mut sync.buffer_from_request,
            ),
        ] {
            if let Some(value) = self.flag(key, leaf)? {
                *slot = value;
            }
        }
        if let Some(n) = self.int_in(
            "sync.max_buffered_packets",
            &s.max_buffered_packets,
            1,
            INT_MAX,
            "a count from 1 to 2147483647",
        )? {
            sync.max_buffered_packets = n as usize;
        }
        Ok(sync)
    }

    fn cachedb_local(
        &mut self,
        raw: &RawConfig,
        db_mode: DbMode,
        clusters: &[ClusterId],
    ) -> Result<Option<CachedbLocalConfig>, ConfigError> {
        let Some(c) = &raw.cachedb_local else {
            return Ok(None);
        };
        let cluster = match self.int_in(
            "cachedb_local.cluster_id",
            &c.cluster_id,
            0,
            INT_MAX,
            "a cluster id (0 = not replicated)",
        )? {
            None | Some(0) => None,
            Some(n) => ClusterId::new(n as u32),
        };
        if let Some(id) = cluster
            && db_mode == DbMode::Discovery
            && !clusters.contains(&id)
        {
            return Err(self.err(
                "cachedb_local.cluster_id",
                span_of(&c.cluster_id),
                format!("cachedb_local.cluster_id = {id}: cluster {id} has no my_node_info entry"),
            ));
        }
        let collections = match self.string(
            "cachedb_local.cache_collections",
            &c.cache_collections,
            "collections like \"default/r; sess/r = 4\"",
        )? {
            None => cachedb::parse_collections("").unwrap_or_default(),
            Some((text, span)) => cachedb::parse_collections(&text).map_err(|detail| {
                self.err(
                    "cachedb_local.cache_collections",
                    span.clone(),
                    format!(
                        "cachedb_local.cache_collections = {}: {detail} (expected \
                         name[/r][=N] entries separated by ;)",
                        raw::shown(self.src, span)
                    ),
                )
            })?,
        };
        let persistency = match self.string(
            "cachedb_local.cluster_persistency",
            &c.cluster_persistency,
            "\"none\" or \"sync-from-cluster\"",
        )? {
            None => ClusterPersistency::SyncFromCluster,
            Some((text, span)) => {
                if text.eq_ignore_ascii_case("none") {
                    ClusterPersistency::None
                } else if text.eq_ignore_ascii_case("sync-from-cluster") {
                    ClusterPersistency::SyncFromCluster
                } else {
                    return Err(self.bad(
                        "cachedb_local.cluster_persistency",
                        span,
                        "\"none\" or \"sync-from-cluster\"",
                    ));
                }
            }
        };
        let replicated = collections.iter().filter(|c| c.replicated).count();
        match cluster {
            None if replicated > 0 => self.warnings.push(
                "cachedb_local: collections are marked /r but cluster_id is 0: nothing is \
                 replicated"
                    .to_owned(),
            ),
            Some(id) if replicated == 0 => self.warnings.push(format!(
                "cachedb_local.cluster_id = {id} but no collection is marked /r: nothing is \
                 replicated"
            )),
            _ => {}
        }
        Ok(Some(CachedbLocalConfig {
            cluster,
            collections,
            persistency,
        }))
    }

    // ---- value helpers ----

    fn err(&self, key: &str, span: Range<usize>, message: String) -> ConfigError {
        ConfigError::at(self.src, key, Some(span), message)
    }

    /// `key = <value as written>: expected <expected>`.
    fn bad(&self, key: &str, span: Range<usize>, expected: &str) -> ConfigError {
        let message = format!(
            "{key} = {}: expected {expected}",
            raw::shown(self.src, span.clone())
        );
        self.err(key, span, message)
    }

    /// An integer, written as a TOML integer or as a string of one.
    fn int(
        &self,
        key: &str,
        leaf: &Leaf,
        expected: &str,
    ) -> Result<Option<(i64, Range<usize>)>, ConfigError> {
        let Some(v) = leaf else { return Ok(None) };
        let n = match v.get_ref() {
            Value::Integer(n) => Some(*n),
            Value::String(s) => s.trim().parse::<i64>().ok(),
            _ => None,
        };
        match n {
            Some(n) => Ok(Some((n, v.span()))),
            None => Err(self.bad(key, v.span(), expected)),
        }
    }

    /// An integer in `min..=max`.
    fn int_in(
        &self,
        key: &str,
        leaf: &Leaf,
        min: i64,
        max: i64,
        expected: &str,
    ) -> Result<Option<i64>, ConfigError> {
        match self.int(key, leaf, expected)? {
            None => Ok(None),
            Some((n, _)) if (min..=max).contains(&n) => Ok(Some(n)),
            Some((_, span)) => Err(self.bad(key, span, expected)),
        }
    }

    /// A boolean: `true`/`false`, `0`/`1`, or those as strings.
    fn flag(&self, key: &str, leaf: &Leaf) -> Result<Option<bool>, ConfigError> {
        let Some(v) = leaf else { return Ok(None) };
        let b = match v.get_ref() {
            Value::Boolean(b) => Some(*b),
            Value::Integer(0) => Some(false),
            Value::Integer(1) => Some(true),
            Value::String(s) => match s.trim() {
                "0" | "false" => Some(false),
                "1" | "true" => Some(true),
                _ => None,
            },
            _ => None,
        };
        b.map(Some)
            .ok_or_else(|| self.bad(key, v.span(), "0 or 1 (or true/false)"))
    }

    /// A string.
    fn string(
        &self,
        key: &str,
        leaf: &Leaf,
        expected: &str,
    ) -> Result<Option<(String, Range<usize>)>, ConfigError> {
        let Some(v) = leaf else { return Ok(None) };
        match v.get_ref() {
            Value::String(s) => Ok(Some((s.clone(), v.span()))),
            _ => Err(self.bad(key, v.span(), &format!("a string: {expected}"))),
        }
    }

    /// A string or an array of strings; items of an array are keyed `key[i]`.
    fn strings(&self, key: &str, leaf: &Leaf, expected: &str) -> Result<Vec<Item>, ConfigError> {
        let Some(v) = leaf else { return Ok(Vec::new()) };
        match v.get_ref() {
            Value::String(s) => Ok(vec![Item {
                text: s.clone(),
                key: key.to_owned(),
                span: v.span(),
            }]),
            Value::Array(items) => {
                // Array items carry no spans of their own in `toml::Value`; find them in
                // the source text of the array.
                let spans = item_spans(self.src, v.span(), items.len());
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    let item_key = format!("{key}[{i}]");
                    let span = spans.get(i).cloned().unwrap_or_else(|| v.span());
                    match item {
                        Value::String(s) => out.push(Item {
                            text: s.clone(),
                            key: item_key,
                            span,
                        }),
                        other => {
                            return Err(self.err(
                                &item_key,
                                span,
                                format!("{item_key} = {other}: expected a string: {expected}"),
                            ));
                        }
                    }
                }
                Ok(out)
            }
            _ => Err(self.bad(
                key,
                v.span(),
                &format!("a string or an array of strings: {expected}"),
            )),
        }
    }

    fn socket(&self, key: &str, leaf: &Leaf) -> Result<Option<SocketAddr>, ConfigError> {
        let Some((text, span)) = self.string(key, leaf, "IP:port")? else {
            return Ok(None);
        };
        text.trim()
            .parse::<SocketAddr>()
            .map(Some)
            .map_err(|_| self.bad(key, span, "IP:port, e.g. 127.0.0.1:8888 or [::1]:8888"))
    }

    fn http_path(&self, key: &str, leaf: &Leaf) -> Result<Option<String>, ConfigError> {
        let Some((text, span)) = self.string(key, leaf, "an HTTP path")? else {
            return Ok(None);
        };
        if !text.starts_with('/') || text.contains(|c: char| c.is_whitespace() || c == '?') {
            return Err(self.bad(key, span, "an HTTP path starting with /, e.g. /mi"));
        }
        Ok(Some(text))
    }

    fn command(&self, key: &str, leaf: &Leaf) -> Result<Option<String>, ConfigError> {
        let Some((text, span)) = self.string(key, leaf, "a command line")? else {
            return Ok(None);
        };
        if text.trim().is_empty() {
            return Err(self.bad(key, span, "a command line (leave the key out for no hook)"));
        }
        Ok(Some(text))
    }

    /// A file path, resolved against the base directory when relative.
    fn path(&self, key: &str, leaf: &Leaf) -> Result<Option<(PathBuf, Range<usize>)>, ConfigError> {
        let Some((text, span)) = self.string(key, leaf, "a file path")? else {
            return Ok(None);
        };
        if text.is_empty() {
            return Err(self.bad(key, span, "a file path"));
        }
        let path = PathBuf::from(&text);
        let path = match self.base {
            Some(base) if path.is_relative() => base.join(path),
            _ => path,
        };
        Ok(Some((path, span)))
    }

    /// A path that must name an existing regular file.
    fn existing_file(&self, key: &str, leaf: &Leaf) -> Result<Option<PathBuf>, ConfigError> {
        let Some((path, span)) = self.path(key, leaf)? else {
            return Ok(None);
        };
        let problem = match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => return Ok(Some(path)),
            Ok(_) => "is not a regular file".to_owned(),
            Err(e) => format!("cannot be read ({e})"),
        };
        Err(self.err(
            key,
            span.clone(),
            format!(
                "{key} = {}: {} {problem}",
                raw::shown(self.src, span),
                path.display()
            ),
        ))
    }
}

/// An error about a key that is missing (no location).
fn missing(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        file: None,
        location: None,
        key: Some(key.to_owned()),
        message: message.into(),
    }
}

fn span_of(leaf: &Leaf) -> Range<usize> {
    leaf.as_ref().map_or(0..0, Spanned::span)
}

/// The spans of the `count` items of the array written at `span` in `source`: each item
/// starts at its first non-space, non-comment character after `[` or a top-level comma.
/// Only strings are looked for precisely; anything unexpected yields fewer spans and the
/// caller falls back to the array's span.
fn item_spans(source: &str, span: Range<usize>, count: usize) -> Vec<Range<usize>> {
    let Some(text) = source.get(span.clone()) else {
        return Vec::new();
    };
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(count);
    let mut i = 1; // past `[`
    while out.len() < count && i < bytes.len() {
        match bytes.get(i) {
            Some(b' ' | b'\t' | b'\r' | b'\n' | b',') => i += 1,
            Some(b'#') => {
                while i < bytes.len() && bytes.get(i) != Some(&b'\n') {
                    i += 1;
                }
            }
            Some(&quote @ (b'"' | b'\'')) => {
                let start = i;
                let triple = text
                    .get(i..i + 3)
                    .is_some_and(|t| t.bytes().all(|b| b == quote));
                i += if triple { 3 } else { 1 };
                loop {
                    match bytes.get(i) {
                        None => break,
                        Some(b'\\') if quote == b'"' => i += 2,
                        Some(&b) if b == quote => {
                            if triple {
                                if text
                                    .get(i..i + 3)
                                    .is_some_and(|t| t.bytes().all(|c| c == quote))
                                {
                                    i += 3;
                                    break;
                                }
                                i += 1;
                            } else {
                                i += 1;
                                break;
                            }
                        }
                        Some(_) => i += 1,
                    }
                }
                out.push(span.start + start..span.start + i.min(bytes.len()));
            }
            // Not a string: stop, the caller uses the array's span from here on.
            _ => break,
        }
    }
    out
}

/// `IP:port`, or a `bin:`/`bins:` URL.
fn parse_listen_address(text: &str) -> Option<SocketAddr> {
    let text = text.trim();
    text.parse::<SocketAddr>()
        .ok()
        .or_else(|| NodeAddress::parse(text).ok().map(|a| a.socket))
}

/// Letters, digits and `_`, not starting with a digit, at most 64 characters; with
/// `dotted`, one `schema.` prefix of the same form is allowed.
fn is_sql_name(name: &str, dotted: bool) -> bool {
    let ident = |s: &str| {
        !s.is_empty()
            && s.len() <= 64
            && !s.starts_with(|c: char| c.is_ascii_digit())
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    };
    match name.split_once('.') {
        Some((schema, table)) if dotted => ident(schema) && ident(table),
        _ => ident(name),
    }
}

fn is_db_url(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    (lower.starts_with("sqlite:") && lower.len() > "sqlite:".len())
        || ["postgres://", "postgresql://", "mysql://"]
            .iter()
            .any(|p| lower.starts_with(p) && lower.len() > p.len())
}

/// Runs the core's own checks and names the parameter at fault.
fn validate_core(core: &Config) -> Result<(), ConfigError> {
    use clusterer_core::ConfigError as E;
    let check = if core.db_mode == DbMode::Database {
        // The clusters come from the database later; the tags are checked against them then.
        let mut copy = core.clone();
        copy.sharing_tags.clear();
        copy.validate()
    } else {
        core.validate()
    };
    check.map_err(|e| {
        let key = match &e {
            E::ZeroTimer { name } => *name,
            E::TooManyClusters { .. } | E::DuplicateCluster { .. } | E::LocalIdMismatch { .. } => {
                "my_node_info"
            }
            E::LocalNodeListed { .. } | E::TooManyNodes { .. } | E::DuplicateNode { .. } => {
                "neighbor_node_info"
            }
            E::ShtagUnknownCluster { .. } | E::DuplicateShtag { .. } | E::EmptyShtagName { .. } => {
                "sharing_tag"
            }
            E::BadUrl { node, .. } if *node == core.node_id => "my_node_info",
            E::BadUrl { .. } => "neighbor_node_info",
        };
        missing(key, format!("{key}: {e}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_item_spans_skip_spaces_comments_and_escapes() {
        let src = "x = [\n  \"a\\\"b\", # c\n  'd',\n  \"\"\"e\"\"\"\n]";
        let start = src.find('[').unwrap();
        let spans = item_spans(src, start..src.len(), 3);
        let texts: Vec<&str> = spans.iter().map(|s| &src[s.clone()]).collect();
        assert_eq!(texts, vec!["\"a\\\"b\"", "'d'", "\"\"\"e\"\"\""]);
        // Non-strings stop the scan without panicking.
        assert!(item_spans("[1, 2]", 0..6, 2).is_empty());
        assert!(item_spans("[\"unterminated", 0..14, 1).len() <= 1);
        assert!(item_spans("", 5..9, 1).is_empty());
    }

    #[test]
    fn sql_names_and_db_urls() {
        assert!(is_sql_name("node_id", false));
        assert!(!is_sql_name("1st", false));
        assert!(!is_sql_name("a b", false));
        assert!(!is_sql_name("opensips.clusterer", false));
        assert!(is_sql_name("opensips.clusterer", true));
        assert!(is_db_url("sqlite://x.db"));
        assert!(is_db_url("sqlite::memory:"));
        assert!(is_db_url("MYSQL://u:p@h/db"));
        assert!(is_db_url("postgresql://h/db"));
        assert!(!is_db_url("oracle://h/db"));
        assert!(!is_db_url("sqlite:"));
    }

    #[test]
    fn listen_address_accepts_socket_or_bin_url() {
        assert_eq!(
            parse_listen_address("0.0.0.0:5566"),
            Some("0.0.0.0:5566".parse().unwrap())
        );
        assert_eq!(
            parse_listen_address("bin:10.0.0.1"),
            Some("10.0.0.1:5555".parse().unwrap())
        );
        assert_eq!(parse_listen_address("localhost:1"), None);
    }
}
