//! Database provisioning (`db_mode = 1`): the OpenSIPS `clusterer` table.
//!
//! # Backends
//!
//! One code path through sqlx's `Any` driver; the backend is chosen by the URL scheme:
//!
//! | URL | backend |
//! |---|---|
//! | `sqlite://PATH`, `sqlite:PATH` | embedded SQLite file, created when missing (`mode=rwc` is added unless the URL sets a `mode`); the default is [`DEFAULT_DB_URL`], `clusterer.sqlite` in the working directory |
//! | `postgres://USER[:PASSWORD]@HOST[:PORT]/DB` | PostgreSQL |
//! | `mysql://USER[:PASSWORD]@HOST[:PORT]/DB` | MySQL or MariaDB |
//!
//! Connections are plain TCP (no TLS support is compiled in). The SQL is written once;
//! only the placeholders (`$n` for PostgreSQL, `?` otherwise), identifier quoting and the
//! `CREATE TABLE` types differ per backend. Passwords never appear in messages
//! ([`redact_url`]).
//!
//! # The table
//!
//! The OpenSIPS schema, table version 4 (what `opensips-cli database create` makes):
//!
//! | column | type | |
//! |---|---|---|
//! | `id` | int, auto-increment | primary key |
//! | `cluster_id` | int | not null |
//! | `node_id` | int | not null |
//! | `url` | string(64) | not null |
//! | `state` | int | not null, default 1 |
//! | `no_ping_retries` | int | not null, default 3 |
//! | `priority` | int | not null, default 50 |
//! | `sip_addr`, `flags`, `description` | string(64) | nullable |
//!
//! plus a unique key on (`cluster_id`, `node_id`). The table and every column can be renamed
//! (`db_table`, `*_col`: [`DbSettings`]); names are ASCII identifiers, quoted in SQL (so
//! case-sensitive on PostgreSQL). [`init`] creates the table when missing and records it in
//! the OpenSIPS `version` table (`table_name`, `table_version`), creating that table too
//! when missing; an existing row with another version than [`TABLE_VERSION`] is an error.
//! [`load`] also refuses a table whose `version` row says another version, but accepts a
//! database without `version` table or row (a table created by hand).
//!
//! # Loading
//!
//! [`load`] reads every row (`ORDER BY id`) and builds the local node's clusters as
//! OpenSIPS does (docs/behaviour.md §1.2), see [`provision`]: the clusters are those where
//! `my_node_id` has a row, rows of other clusters are ignored, bad rows are skipped and
//! reported one by one ([`RowError`]: row id, column, problem) while the good rows load.
//! A local node with no row at all gets no cluster (OpenSIPS only warns).
//!
//! # State persistence
//!
//! [`set_state`] writes the `state` column of exactly the (`cluster_id`, `node_id`) row,
//! for the local node too (docs/behaviour.md §17 quirk #19 fixed: OpenSIPS updates every row of
//! the local node).
//!
//! # Wiring into the daemon (for the caller)
//!
//! * Start: `load(&settings, my_node_id)`; `Err` → refuse to start with its message
//!   (it names the URL, password redacted, and the cause); `Ok(p)` → log each
//!   `p.skipped` entry and each [`Provisioning::clusters_without_seed`], then
//!   `config.clusters = p.clusters` and start the core.
//! * MI `clusterer_reload` (docs/behaviour.md §8): the same `load`; `Err` → keep the current node
//!   table and answer `500 Failed to reload`; `Ok(p)` → rebuild the node table from
//!   `p.clusters` (links restart probing, local capability states kept) and report
//!   `p.skipped.len()` skipped rows.
//! * MI `clusterer_set_status` and the API's set-state: after the core accepted the
//!   change, `set_state(&settings, cluster, node, enabled)`; a failure is logged (the
//!   runtime state has changed already, as in OpenSIPS).
//! * Each call opens its own connection (and closes it), within [`CONNECT_TIMEOUT`] and
//!   [`OPERATION_TIMEOUT`]; nothing is kept open between calls.
//!
//! The CLI (`clusterer db init | add-node | list | remove-node | set-state | check`) is part
//! of the `clusterer` binary, built on the functions here.

mod ops;
mod rows;
mod sql;

use std::fmt;

pub use ops::{InitReport, NewNode, add_node, init, list, load, remove_node, set_state};
pub use rows::{Provisioning, RowError, RowProblem, TableRow, Value, provision};
pub use sql::{Backend, CONNECT_TIMEOUT, OPERATION_TIMEOUT, check_identifier, redact_url};

/// `db_url` when none is given: an SQLite file in the working directory, created on first
/// use.
pub const DEFAULT_DB_URL: &str = "sqlite://clusterer.sqlite";

/// `db_table` default.
pub const DEFAULT_TABLE: &str = "clusterer";

/// The `clusterer` table version this code reads (OpenSIPS 3.x `CLUSTERER_TABLE_VERSION`).
pub const TABLE_VERSION: i64 = 4;

/// The OpenSIPS table that records each table's schema version.
pub const VERSION_TABLE: &str = "version";

/// Longest string the OpenSIPS schema stores in `url`, `sip_addr`, `flags`, `description`.
pub const MAX_STRING_LEN: usize = 64;

/// Where the `clusterer` table is and what its columns are called: the `db_url`, `db_table`
/// and `*_col` module parameters. [`crate::config::DaemonConfig::db`] holds one for
/// `db_mode = 1`; `clusterer db` builds one from its arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DbSettings {
    /// `db_url`: `sqlite:…`, `postgres://…` or `mysql://…`.
    pub url: String,
    /// `db_table` (default [`DEFAULT_TABLE`]): an identifier, optionally `schema.table`.
    pub table: String,
    /// The `*_col` names.
    pub columns: ColumnNames,
}

impl DbSettings {
    /// The settings for `url` with the OpenSIPS table and column names.
    pub fn new(url: impl Into<String>) -> Self {
        DbSettings {
            url: url.into(),
            table: DEFAULT_TABLE.to_owned(),
            columns: ColumnNames::default(),
        }
    }
}

impl Default for DbSettings {
    /// [`DEFAULT_DB_URL`] with the OpenSIPS names.
    fn default() -> Self {
        DbSettings::new(DEFAULT_DB_URL)
    }
}

/// One value per column of the OpenSIPS `clusterer` table, in table order: `id` (the row
/// id, `db_id` in MI), `cluster_id`, `node_id`, `url` (`bin:IP[:port]` or
/// `bins:IP[:port]`), `state` (0 disabled, anything else enabled), `no_ping_retries`,
/// `priority`, `sip_addr`, `flags` (`seed…` marks a seed node) and `description`. The
/// column names ([`ColumnNames`]) and the cells of a row ([`TableRow`]) both have this
/// shape.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)] // The columns are described above, in order.
pub struct Columns<T> {
    pub id: T,
    pub cluster_id: T,
    pub node_id: T,
    pub url: T,
    pub state: T,
    pub no_ping_retries: T,
    pub priority: T,
    pub sip_addr: T,
    pub flags: T,
    pub description: T,
}

impl<T> Columns<T> {
    /// From the values in table order.
    pub fn from_array(values: [T; 10]) -> Self {
        let [
            id,
            cluster_id,
            node_id,
            url,
            state,
            no_ping_retries,
            priority,
            sip_addr,
            flags,
            description,
        ] = values;
        Columns {
            id,
            cluster_id,
            node_id,
            url,
            state,
            no_ping_retries,
            priority,
            sip_addr,
            flags,
            description,
        }
    }

    /// The values in table order.
    pub fn as_array(&self) -> [&T; 10] {
        [
            &self.id,
            &self.cluster_id,
            &self.node_id,
            &self.url,
            &self.state,
            &self.no_ping_retries,
            &self.priority,
            &self.sip_addr,
            &self.flags,
            &self.description,
        ]
    }

    /// The values in table order, mutable.
    pub(crate) fn as_array_mut(&mut self) -> [&mut T; 10] {
        let Columns {
            id,
            cluster_id,
            node_id,
            url,
            state,
            no_ping_retries,
            priority,
            sip_addr,
            flags,
            description,
        } = self;
        [
            id,
            cluster_id,
            node_id,
            url,
            state,
            no_ping_retries,
            priority,
            sip_addr,
            flags,
            description,
        ]
    }
}

/// The column names of the `clusterer` table (the `*_col` module parameters), each an SQL
/// identifier. They are also the property names of `my_node_info` / `neighbor_node_info`,
/// as in OpenSIPS. The defaults are [`ColumnNames::DEFAULTS`].
pub type ColumnNames = Columns<String>;

impl ColumnNames {
    /// The module parameter of each column, in table order.
    pub const PARAMS: [&'static str; 10] = [
        "id_col",
        "cluster_id_col",
        "node_id_col",
        "url_col",
        "state_col",
        "no_ping_retries_col",
        "priority_col",
        "sip_addr_col",
        "flags_col",
        "description_col",
    ];

    /// The OpenSIPS default names, in table order.
    pub const DEFAULTS: [&'static str; 10] = [
        "id",
        "cluster_id",
        "node_id",
        "url",
        "state",
        "no_ping_retries",
        "priority",
        "sip_addr",
        "flags",
        "description",
    ];

    /// The configured names in table order.
    pub fn in_order(&self) -> [&str; 10] {
        self.as_array().map(String::as_str)
    }

    /// [`ColumnNames::in_order`], mutable.
    pub(crate) fn in_order_mut(&mut self) -> [&mut String; 10] {
        self.as_array_mut()
    }
}

impl Default for ColumnNames {
    /// The OpenSIPS names ([`ColumnNames::DEFAULTS`]).
    fn default() -> Self {
        Columns::from_array(ColumnNames::DEFAULTS.map(str::to_owned))
    }
}

/// A provisioning operation failed; unless stated otherwise nothing was changed in the
/// database. URLs in these errors have their password redacted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DbError {
    /// The URL scheme is not `sqlite:`, `postgres://`/`postgresql://` or `mysql://`.
    UnsupportedUrl {
        /// The URL (redacted).
        url: String,
    },
    /// A table or column name is not a plain identifier.
    BadIdentifier {
        /// The parameter (`db_table`, `url_col`, ...).
        what: String,
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The database could not be reached, or refused the connection or the credentials.
    Connect {
        /// The URL (redacted).
        url: String,
        /// The driver's explanation.
        cause: String,
    },
    /// A statement failed (missing table or column, permission, constraint, lost
    /// connection, ...). A failed `init` may have created the `version` table already.
    Query {
        /// The URL (redacted).
        url: String,
        /// What was being done, e.g. `reading table "clusterer"`.
        action: String,
        /// The database's explanation.
        cause: String,
    },
    /// The operation did not finish within [`OPERATION_TIMEOUT`]; it may or may not have
    /// taken effect.
    Timeout {
        /// The URL (redacted).
        url: String,
        /// What was being done.
        action: String,
    },
    /// The `version` table records another version for the table.
    VersionMismatch {
        /// The table.
        table: String,
        /// The version found.
        found: String,
    },
    /// No row has this (cluster_id, node_id).
    NoSuchRow {
        /// The table.
        table: String,
        /// The cluster.
        cluster: i64,
        /// The node.
        node: i64,
    },
    /// A row with this (cluster_id, node_id) exists already; nothing was inserted.
    DuplicateNode {
        /// The table.
        table: String,
        /// The cluster.
        cluster: i64,
        /// The node.
        node: i64,
        /// The existing row's id, when known.
        row_id: Option<i64>,
    },
    /// A value given for a new row is not acceptable; nothing was inserted.
    InvalidValue {
        /// The column (configured name).
        column: String,
        /// The value given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbError::UnsupportedUrl { url } => write!(
                f,
                "unsupported database URL {url:?}: expected sqlite://PATH, postgres://… or \
                 mysql://…"
            ),
            DbError::BadIdentifier { what, name, reason } => {
                write!(f, "{what} = {name:?} is not a usable SQL name: {reason}")
            }
            DbError::Connect { url, cause } => write!(f, "cannot connect to {url}: {cause}"),
            DbError::Query { url, action, cause } => write!(f, "{url}: {action} failed: {cause}"),
            DbError::Timeout { url, action } => write!(
                f,
                "{url}: {action} did not finish within {} s",
                OPERATION_TIMEOUT.as_secs()
            ),
            DbError::VersionMismatch { table, found } => write!(
                f,
                "table {table:?} has version {found} in table {VERSION_TABLE:?}, this \
                 clusterer needs version {TABLE_VERSION}"
            ),
            DbError::NoSuchRow {
                table,
                cluster,
                node,
            } => write!(
                f,
                "no row for node {node} in cluster {cluster} in table {table:?}"
            ),
            DbError::DuplicateNode {
                table,
                cluster,
                node,
                row_id,
            } => {
                write!(
                    f,
                    "node {node} is already in cluster {cluster} in table {table:?}"
                )?;
                match row_id {
                    Some(id) => write!(f, " (row id={id})"),
                    None => Ok(()),
                }
            }
            DbError::InvalidValue {
                column,
                value,
                reason,
            } => write!(f, "{column} = {value:?}: {reason}"),
        }
    }
}

impl std::error::Error for DbError {}
