//! The SQL dialect layer: which backend a URL names, identifier quoting, placeholders,
//! password redaction and the connection itself. Everything that differs between SQLite,
//! PostgreSQL and MySQL/MariaDB is decided here, so the operations in `ops` are written once.

use std::fmt;
use std::time::Duration;

use sqlx::AnyConnection;
use sqlx::{AssertSqlSafe, Connection, Executor};

use super::{ColumnNames, Columns, DbError, DbSettings};
use clusterer_core::{ClusterId, NodeId};

/// Longest time to wait for a connection (TCP connect, TLS-less handshake, authentication,
/// opening the SQLite file).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest time one operation (`load`, `set_state`, `init`, ...) may take once connected.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(30);

/// The database server family a `db_url` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// `sqlite:PATH`, `sqlite://PATH` or `sqlite::memory:` (embedded, no server).
    Sqlite,
    /// `postgres://…` or `postgresql://…`.
    Postgres,
    /// `mysql://…` (MySQL and MariaDB).
    MySql,
}

impl Backend {
    /// The backend of `url`, from its scheme (case-insensitive); `None` for any other scheme.
    pub fn from_url(url: &str) -> Option<Backend> {
        let (scheme, _) = url.split_once(':')?;
        match scheme.to_ascii_lowercase().as_str() {
            "sqlite" => Some(Backend::Sqlite),
            "postgres" | "postgresql" => Some(Backend::Postgres),
            "mysql" => Some(Backend::MySql),
            _ => None,
        }
    }

    /// The `n`-th (1-based) bind placeholder: `$n` for PostgreSQL, `?` for the others.
    /// sqlx's `Any` driver passes SQL through unchanged, so the text must already be in the
    /// server's own syntax.
    pub(crate) fn placeholder(self, n: usize) -> String {
        match self {
            Backend::Postgres => format!("${n}"),
            Backend::Sqlite | Backend::MySql => "?".to_owned(),
        }
    }

    /// `ident` quoted for this backend. Only identifiers accepted by [`check_identifier`]
    /// reach this function, so no escaping is needed. SQLite gets backticks, not double
    /// quotes: a double-quoted name that matches no column silently becomes a string
    /// literal there (its "DQS" compatibility rule), which would hide a missing column.
    pub(crate) fn quote(self, ident: &str) -> String {
        ident
            .split('.')
            .map(|part| match self {
                Backend::MySql | Backend::Sqlite => format!("`{part}`"),
                Backend::Postgres => format!("\"{part}\""),
            })
            .collect::<Vec<_>>()
            .join(".")
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
            Backend::MySql => "MySQL/MariaDB",
        })
    }
}

/// A statement under construction: SQL text plus a running placeholder counter, so the
/// same builder code yields `$1, $2` for PostgreSQL and `?, ?` for SQLite and MySQL.
pub(crate) struct Statement {
    backend: Backend,
    text: String,
    params: usize,
}

impl Statement {
    pub(crate) fn new(backend: Backend) -> Self {
        Statement {
            backend,
            text: String::new(),
            params: 0,
        }
    }

    /// Appends literal SQL.
    pub(crate) fn sql(mut self, text: &str) -> Self {
        self.text.push_str(text);
        self
    }

    /// Appends the next placeholder.
    pub(crate) fn param(mut self) -> Self {
        self.params += 1;
        let p = self.backend.placeholder(self.params);
        self.text.push_str(&p);
        self
    }

    /// Appends ` WHERE <cluster_col> = ? AND <node_col> = ?`: the one row of a node in a
    /// cluster (bind the cluster id, then the node id).
    pub(crate) fn where_node(self, cluster_col: &str, node_col: &str) -> Self {
        self.sql(&format!(" WHERE {cluster_col} = "))
            .param()
            .sql(&format!(" AND {node_col} = "))
            .param()
    }

    /// The finished SQL text.
    pub(crate) fn text(self) -> String {
        self.text
    }
}

/// Checks that `name` is usable as a table or column name: ASCII letters, digits and `_`,
/// not starting with a digit, at most 63 characters (the PostgreSQL limit); a table may be
/// schema-qualified (`schema.table`). Names are quoted in SQL, so they are case-sensitive on
/// PostgreSQL and reserved words are allowed.
///
/// # Errors
/// [`DbError::BadIdentifier`] naming `what` (e.g. `db_table`, `url_col`) and the value.
pub fn check_identifier(what: &str, name: &str, allow_schema: bool) -> Result<(), DbError> {
    let bad = |reason: &str| DbError::BadIdentifier {
        what: what.to_owned(),
        name: name.to_owned(),
        reason: reason.to_owned(),
    };
    let parts: Vec<&str> = name.split('.').collect();
    if parts.len() > 2 || (parts.len() == 2 && !allow_schema) {
        return Err(bad(if allow_schema {
            "at most one `.` (schema.table) is allowed"
        } else {
            "a column name cannot contain `.`"
        }));
    }
    for part in parts {
        let mut chars = part.chars();
        match chars.next() {
            None => return Err(bad("it is empty")),
            Some(c) if c.is_ascii_digit() => return Err(bad("it starts with a digit")),
            Some(_) => {}
        }
        if !part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(bad("only ASCII letters, digits and `_` are allowed"));
        }
        if part.len() > 63 {
            return Err(bad("it is longer than 63 characters"));
        }
    }
    Ok(())
}

/// `url` with the password replaced by `***`, both in `user:password@` and in a
/// `password=` query parameter. Used in every error message and log line.
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(start) = out.find("://").map(|i| i + 3) {
        let rest = &out[start..];
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..end];
        if let Some(at) = authority.rfind('@')
            && let Some(colon) = authority[..at].find(':')
        {
            out.replace_range(start + colon + 1..start + at, "***");
        }
    }
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let redacted: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                _ => pair.to_owned(),
            })
            .collect();
        out = format!("{head}{}", redacted.join("&"));
    }
    out
}

/// The URL handed to sqlx: SQLite files are opened with `mode=rwc` (created when missing)
/// unless the URL chooses a mode or an in-memory database itself.
fn driver_url(backend: Backend, url: &str) -> String {
    if backend != Backend::Sqlite || url.contains(":memory:") || url.contains("mode=") {
        return url.to_owned();
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}mode=rwc")
}

/// One open connection plus everything derived from the settings: the backend, the
/// redacted URL for messages, the quoted table and column names.
pub(crate) struct Session {
    pub(crate) conn: AnyConnection,
    pub(crate) backend: Backend,
    /// The URL with the password redacted.
    pub(crate) url: String,
    /// The table name as configured (for messages).
    pub(crate) table_name: String,
    /// The table name quoted for SQL.
    pub(crate) table: String,
    /// The column names quoted for SQL.
    pub(crate) cols: ColumnNames,
}

/// A statement on the `Any` driver, ready to bind and run.
pub(crate) type AnyQuery = sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments>;

impl Session {
    /// `head` restricted to the one row of `node` in `cluster` (see
    /// [`Statement::where_node`]), with `leading` bound to `head`'s own parameters first and
    /// the row's key after them.
    pub(crate) fn node_row_query(
        &self,
        head: Statement,
        leading: &[i32],
        cluster: ClusterId,
        node: NodeId,
    ) -> AnyQuery {
        let sql = head
            .where_node(&self.cols.cluster_id, &self.cols.node_id)
            .text();
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for value in leading {
            query = query.bind(*value);
        }
        query.bind(cluster.to_wire()).bind(node.to_wire())
    }

    /// Validates the settings and connects, within [`CONNECT_TIMEOUT`].
    pub(crate) async fn open(settings: &DbSettings) -> Result<Session, DbError> {
        let url = redact_url(&settings.url);
        let backend = Backend::from_url(&settings.url)
            .ok_or_else(|| DbError::UnsupportedUrl { url: url.clone() })?;
        check_identifier("db_table", &settings.table, true)?;
        check_columns(&settings.columns)?;
        sqlx::any::install_default_drivers();
        let connect = AnyConnection::connect(&driver_url(backend, &settings.url));
        let conn = match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => {
                return Err(DbError::Connect {
                    url,
                    cause: e.to_string(),
                });
            }
            Err(_) => {
                return Err(DbError::Connect {
                    url,
                    cause: format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()),
                });
            }
        };
        Ok(Session {
            conn,
            backend,
            url,
            table_name: settings.table.clone(),
            table: backend.quote(&settings.table),
            cols: Columns::from_array(settings.columns.in_order().map(|n| backend.quote(n))),
        })
    }

    /// A [`DbError::Query`] for `action` on this session's database.
    pub(crate) fn query_error(&self, action: impl Into<String>, e: &sqlx::Error) -> DbError {
        DbError::Query {
            url: self.url.clone(),
            action: action.into(),
            cause: e.to_string(),
        }
    }

    /// Whether a table can be read (a probe that selects no row).
    pub(crate) async fn table_exists(&mut self, quoted: &str) -> bool {
        let sql = format!("SELECT 1 FROM {quoted} WHERE 1 = 0");
        self.conn.execute(AssertSqlSafe(sql)).await.is_ok()
    }

    /// Closes the connection (within [`CONNECT_TIMEOUT`]); a failure to say goodbye is not
    /// an error of the operation.
    pub(crate) async fn close(self) {
        let _ = tokio::time::timeout(CONNECT_TIMEOUT, self.conn.close()).await;
    }
}

/// Checks every configured column name.
fn check_columns(columns: &ColumnNames) -> Result<(), DbError> {
    for (param, name) in ColumnNames::PARAMS.iter().zip(columns.in_order()) {
        check_identifier(param, name, false)?;
    }
    let names = columns.in_order();
    for (i, a) in names.iter().enumerate() {
        if names[..i].iter().any(|b| b.eq_ignore_ascii_case(a)) {
            return Err(DbError::BadIdentifier {
                what: ColumnNames::PARAMS[i].to_owned(),
                name: (*a).to_owned(),
                reason: "another *_col parameter names the same column".to_owned(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backends_are_chosen_by_scheme() {
        assert_eq!(
            Backend::from_url("sqlite://clusterer.sqlite"),
            Some(Backend::Sqlite)
        );
        assert_eq!(Backend::from_url("sqlite::memory:"), Some(Backend::Sqlite));
        assert_eq!(
            Backend::from_url("postgresql://u@h/db"),
            Some(Backend::Postgres)
        );
        assert_eq!(Backend::from_url("MYSQL://u@h/db"), Some(Backend::MySql));
        assert_eq!(Backend::from_url("oracle://u@h/db"), None);
        assert_eq!(Backend::from_url("clusterer.sqlite"), None);
    }

    #[test]
    fn placeholders_follow_the_backend() {
        let build = |b| {
            Statement::new(b)
                .sql("UPDATE t SET s = ")
                .param()
                .sql(" WHERE a = ")
                .param()
                .text()
        };
        assert_eq!(build(Backend::Postgres), "UPDATE t SET s = $1 WHERE a = $2");
        assert_eq!(build(Backend::MySql), "UPDATE t SET s = ? WHERE a = ?");
        assert_eq!(build(Backend::Sqlite), "UPDATE t SET s = ? WHERE a = ?");
    }

    #[test]
    fn identifiers_are_quoted_per_backend() {
        assert_eq!(Backend::MySql.quote("clusterer"), "`clusterer`");
        assert_eq!(
            Backend::Postgres.quote("ops.clusterer"),
            "\"ops\".\"clusterer\""
        );
        assert_eq!(Backend::Sqlite.quote("state"), "`state`");
    }

    #[test]
    fn identifiers_are_checked() {
        assert!(check_identifier("db_table", "clusterer", true).is_ok());
        assert!(check_identifier("db_table", "ops.clusterer_2", true).is_ok());
        assert!(check_identifier("url_col", "ops.url", false).is_err());
        assert!(check_identifier("db_table", "a.b.c", true).is_err());
        assert!(check_identifier("db_table", "", true).is_err());
        assert!(check_identifier("db_table", "1abc", true).is_err());
        assert!(check_identifier("db_table", "x; DROP TABLE y", true).is_err());
        assert!(check_identifier("db_table", "t\"x", true).is_err());
        let e = check_identifier("url_col", "u rl", false).unwrap_err();
        assert!(e.to_string().contains("url_col"), "{e}");
    }

    #[test]
    fn duplicate_column_names_are_refused() {
        let columns = ColumnNames {
            flags: "URL".to_owned(),
            ..ColumnNames::default()
        };
        let e = check_columns(&columns).unwrap_err();
        assert!(e.to_string().contains("flags_col"), "{e}");
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://clusterer:s3cret@127.0.0.1:55432/clusterer"),
            "postgres://clusterer:***@127.0.0.1:55432/clusterer"
        );
        assert_eq!(
            redact_url("mysql://u:p@ss@db/x?ssl-mode=DISABLED"),
            "mysql://u:***@db/x?ssl-mode=DISABLED"
        );
        assert_eq!(
            redact_url("postgres://u@h/db?password=pw&sslmode=disable"),
            "postgres://u@h/db?password=***&sslmode=disable"
        );
        assert_eq!(redact_url("postgres://h/db"), "postgres://h/db");
        assert_eq!(
            redact_url("sqlite://clusterer.sqlite"),
            "sqlite://clusterer.sqlite"
        );
    }

    #[test]
    fn sqlite_files_are_created_when_missing() {
        assert_eq!(
            driver_url(Backend::Sqlite, "sqlite://c.sqlite"),
            "sqlite://c.sqlite?mode=rwc"
        );
        assert_eq!(
            driver_url(Backend::Sqlite, "sqlite://c.sqlite?mode=ro"),
            "sqlite://c.sqlite?mode=ro"
        );
        assert_eq!(
            driver_url(Backend::Sqlite, "sqlite://c.sqlite?cache=shared"),
            "sqlite://c.sqlite?cache=shared&mode=rwc"
        );
        assert_eq!(
            driver_url(Backend::Sqlite, "sqlite::memory:"),
            "sqlite::memory:"
        );
        assert_eq!(
            driver_url(Backend::Postgres, "postgres://h/db"),
            "postgres://h/db"
        );
    }
}
