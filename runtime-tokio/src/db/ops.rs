//! The operations on the `clusterer` table: load, list, set_state, init, add_node,
//! remove_node. Each opens its own connection ([`Session`]) and closes it.

use sqlx::any::{AnyRow, AnyTypeInfoKind};
use sqlx::{AssertSqlSafe, Executor, Row, ValueRef as _};

use clusterer_core::{ClusterId, NodeAddress, NodeId};

use super::rows::{TableRow, Value, provision};
use super::sql::{Backend, OPERATION_TIMEOUT, Session, Statement};
use super::{
    Columns, DbError, DbSettings, MAX_STRING_LEN, Provisioning, TABLE_VERSION, VERSION_TABLE,
};

/// Reads the table and builds the clusters of node `my_node_id` (see
/// [`provision`](super::provision) for the rules). Call it at start and on
/// `clusterer_reload`.
///
/// # Errors
/// [`DbError`] when the database cannot be reached, the table cannot be read (missing table
/// or column, a column type the driver cannot represent), or the `version` table records
/// another version than [`TABLE_VERSION`]. Bad rows are not errors: they are in
/// [`Provisioning::skipped`].
pub async fn load(settings: &DbSettings, my_node_id: NodeId) -> Result<Provisioning, DbError> {
    let rows = with_session(settings, "reading the node table", async |s| {
        if let Some(found) = stored_version(s).await {
            check_version(&s.table_name, &found)?;
        }
        read_rows(s).await
    })
    .await?;
    Ok(provision(&rows, &settings.columns, my_node_id))
}

/// Every row of the table, as stored (no validation), ordered by `id`.
///
/// # Errors
/// [`DbError`] when the database cannot be reached or the table cannot be read.
pub async fn list(settings: &DbSettings) -> Result<Vec<TableRow>, DbError> {
    with_session(settings, "reading the node table", read_rows).await
}

/// Persists the administrative state of `node` in `cluster`: sets `state` to 1 (`enabled`)
/// or 0 in the (cluster_id, node_id) row only — never in the node's rows of other clusters
/// (docs/behaviour.md §17 quirk #19 fixed).
///
/// # Errors
/// [`DbError::NoSuchRow`] when the table has no such row (nothing changed); other
/// [`DbError`]s when the database cannot be reached or the update fails.
pub async fn set_state(
    settings: &DbSettings,
    cluster: ClusterId,
    node: NodeId,
    enabled: bool,
) -> Result<(), DbError> {
    with_session(settings, "updating the state column", async |s| {
        let head = Statement::new(s.backend)
            .sql(&format!("UPDATE {} SET {} = ", s.table, s.cols.state))
            .param();
        let done = s
            .node_row_query(head, &[i32::from(enabled)], cluster, node)
            .execute(&mut s.conn)
            .await
            .map_err(|e| s.query_error(format!("updating table {:?}", s.table_name), &e))?;
        // MySQL counts changed rows, not matched ones: 0 may mean "already in that state".
        if done.rows_affected() == 0 && find_row(s, cluster, node).await?.is_none() {
            return Err(no_such_row(s, cluster, node));
        }
        Ok(())
    })
    .await
}

/// What [`init`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InitReport {
    /// The backend of the URL.
    pub backend: Backend,
    /// The node table did not exist and was created (else its columns were checked).
    pub table_created: bool,
    /// The `version` table did not exist and was created.
    pub version_table_created: bool,
    /// The table's row in `version` was missing and was added.
    pub version_row_created: bool,
}

/// Creates the node table (OpenSIPS schema, configured names) and the `version` table when
/// missing, and records the node table as version [`TABLE_VERSION`]. Idempotent: on an
/// existing table it only checks that every configured column can be read.
///
/// # Errors
/// [`DbError::VersionMismatch`] when `version` records another version (nothing created
/// besides a missing `version` table); [`DbError::Query`] when a statement fails, e.g. an
/// existing table lacks a configured column; [`DbError::BadIdentifier`] when the table name
/// is longer than the 32 characters of `version.table_name`.
pub async fn init(settings: &DbSettings) -> Result<InitReport, DbError> {
    if settings.table.len() > 32 {
        return Err(DbError::BadIdentifier {
            what: "db_table".to_owned(),
            name: settings.table.clone(),
            reason: "it is longer than the 32 characters of the OpenSIPS version.table_name"
                .to_owned(),
        });
    }
    with_session(settings, "creating the tables", async |s| {
        let version_table = s.backend.quote(VERSION_TABLE);
        let version_table_created = ensure_table(
            s,
            &version_table,
            VERSION_TABLE,
            &version_table_sql(s.backend),
        )
        .await?;
        let stored = stored_version(s).await;
        if let Some(found) = &stored {
            check_version(&s.table_name, found)?;
        }
        let table = s.table.clone();
        let table_created =
            ensure_table(s, &table, &s.table_name.clone(), &node_table_sql(s)).await?;
        if !table_created {
            // An existing table must have every configured column.
            let sql = format!(
                "SELECT {} FROM {} WHERE 1 = 0",
                s.cols.in_order().join(", "),
                s.table
            );
            s.conn.execute(AssertSqlSafe(sql)).await.map_err(|e| {
                s.query_error(
                    format!(
                        "checking the columns of the existing table {:?}",
                        s.table_name
                    ),
                    &e,
                )
            })?;
        }
        let mut version_row_created = false;
        if stored.is_none() {
            let sql = Statement::new(s.backend)
                .sql(&format!(
                    "INSERT INTO {version_table} (table_name, table_version) VALUES ("
                ))
                .param()
                .sql(", ")
                .param()
                .sql(")")
                .text();
            let inserted = sqlx::query(AssertSqlSafe(sql))
                .bind(s.table_name.clone())
                .bind(TABLE_VERSION as i32)
                .execute(&mut s.conn)
                .await;
            match inserted {
                Ok(_) => version_row_created = true,
                // Another init raced us: accept its row if it says the same.
                Err(e) => match stored_version(s).await {
                    Some(found) => check_version(&s.table_name, &found)?,
                    None => {
                        return Err(s.query_error(
                            format!("recording {:?} in table {VERSION_TABLE:?}", s.table_name),
                            &e,
                        ));
                    }
                },
            }
        }
        Ok(InitReport {
            backend: s.backend,
            table_created,
            version_table_created,
            version_row_created,
        })
    })
    .await
}

/// A node row to insert with [`add_node`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewNode {
    /// `cluster_id`.
    pub cluster: ClusterId,
    /// `node_id`.
    pub node: NodeId,
    /// `url`: `bin:IP[:port]` or `bins:IP[:port]`.
    pub url: String,
    /// `state`: 1 when enabled.
    pub enabled: bool,
    /// `no_ping_retries` (at most `i32::MAX`).
    pub no_ping_retries: u32,
    /// `priority`.
    pub priority: i32,
    /// `sip_addr`.
    pub sip_addr: Option<String>,
    /// `flags` (`seed` marks a seed node).
    pub flags: Option<String>,
    /// `description`.
    pub description: Option<String>,
}

impl NewNode {
    /// A row with the schema defaults: enabled, 3 retries, priority 50, no optional column.
    pub fn new(cluster: ClusterId, node: NodeId, url: impl Into<String>) -> Self {
        NewNode {
            cluster,
            node,
            url: url.into(),
            enabled: true,
            no_ping_retries: clusterer_core::config::DEFAULT_NO_PING_RETRIES,
            priority: clusterer_core::config::DEFAULT_PRIORITY,
            sip_addr: None,
            flags: None,
            description: None,
        }
    }
}

/// Validates `node` and inserts it; returns the new row's id.
///
/// # Errors
/// [`DbError::InvalidValue`] for a URL that is not `bin:`/`bins:` with an IP address, a
/// string longer than [`MAX_STRING_LEN`] or retries above `i32::MAX`;
/// [`DbError::DuplicateNode`] when the (cluster_id, node_id) row exists; other
/// [`DbError`]s when the database cannot be reached or the insert fails. Nothing is
/// inserted on error.
pub async fn add_node(settings: &DbSettings, node: &NewNode) -> Result<i64, DbError> {
    validate(settings, node)?;
    with_session(settings, "inserting the node", async |s| {
        if let Some(row_id) = find_row(s, node.cluster, node.node).await? {
            return Err(duplicate(s, node, row_id));
        }
        let Columns {
            cluster_id: cluster,
            node_id,
            url,
            state,
            no_ping_retries: retries,
            priority,
            sip_addr,
            flags,
            description,
            ..
        } = s.cols.clone();
        let mut sql = Statement::new(s.backend).sql(&format!(
            "INSERT INTO {} ({cluster}, {node_id}, {url}, {state}, {retries}, {priority}, \
             {sip_addr}, {flags}, {description}) VALUES (",
            s.table
        ));
        for i in 0..9 {
            if i > 0 {
                sql = sql.sql(", ");
            }
            sql = sql.param();
        }
        let sql = sql.sql(")").text();
        let inserted = sqlx::query(AssertSqlSafe(sql))
            .bind(node.cluster.to_wire())
            .bind(node.node.to_wire())
            .bind(node.url.clone())
            .bind(i32::from(node.enabled))
            .bind(i32::try_from(node.no_ping_retries).unwrap_or(i32::MAX))
            .bind(node.priority)
            .bind(node.sip_addr.clone())
            .bind(node.flags.clone())
            .bind(node.description.clone())
            .execute(&mut s.conn)
            .await;
        if let Err(e) = inserted {
            let unique = e
                .as_database_error()
                .is_some_and(|d| d.is_unique_violation());
            return Err(if unique {
                duplicate(s, node, None)
            } else {
                s.query_error(format!("inserting into table {:?}", s.table_name), &e)
            });
        }
        find_row(s, node.cluster, node.node)
            .await?
            .flatten()
            .ok_or_else(|| DbError::Query {
                url: s.url.clone(),
                action: format!("reading back the new row of table {:?}", s.table_name),
                cause: "the inserted row has no id".to_owned(),
            })
    })
    .await
}

/// Deletes the (cluster_id, node_id) row.
///
/// # Errors
/// [`DbError::NoSuchRow`] when there is none; other [`DbError`]s when the database cannot
/// be reached or the delete fails.
pub async fn remove_node(
    settings: &DbSettings,
    cluster: ClusterId,
    node: NodeId,
) -> Result<(), DbError> {
    with_session(settings, "deleting the node", async |s| {
        let head = Statement::new(s.backend).sql(&format!("DELETE FROM {}", s.table));
        let done = s
            .node_row_query(head, &[], cluster, node)
            .execute(&mut s.conn)
            .await
            .map_err(|e| s.query_error(format!("deleting from table {:?}", s.table_name), &e))?;
        if done.rows_affected() == 0 {
            return Err(no_such_row(s, cluster, node));
        }
        Ok(())
    })
    .await
}

/// Opens a session, runs `op` within [`OPERATION_TIMEOUT`], closes the session.
async fn with_session<T>(
    settings: &DbSettings,
    action: &str,
    op: impl AsyncFnOnce(&mut Session) -> Result<T, DbError>,
) -> Result<T, DbError> {
    let mut session = Session::open(settings).await?;
    match tokio::time::timeout(OPERATION_TIMEOUT, op(&mut session)).await {
        Ok(result) => {
            session.close().await;
            result
        }
        // The connection is mid-statement: drop it instead of saying goodbye.
        Err(_) => Err(DbError::Timeout {
            url: session.url,
            action: action.to_owned(),
        }),
    }
}

/// All rows, in `id` order.
async fn read_rows(s: &mut Session) -> Result<Vec<TableRow>, DbError> {
    let sql = format!(
        "SELECT {} FROM {} ORDER BY {}",
        s.cols.in_order().join(", "),
        s.table,
        s.cols.id
    );
    let rows = sqlx::query(AssertSqlSafe(sql))
        .fetch_all(&mut s.conn)
        .await
        .map_err(|e| s.query_error(format!("reading table {:?}", s.table_name), &e))?;
    rows.iter()
        .map(decode_row)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| s.query_error(format!("decoding a row of table {:?}", s.table_name), &e))
}

fn decode_row(row: &AnyRow) -> Result<TableRow, sqlx::Error> {
    let mut cells: [Value; 10] = std::array::from_fn(|_| Value::Null);
    for (i, cell) in cells.iter_mut().enumerate() {
        *cell = decode_cell(row, i)?;
    }
    Ok(TableRow::from_cells(cells))
}

/// One cell as a [`Value`], whatever its type.
fn decode_cell(row: &AnyRow, i: usize) -> Result<Value, sqlx::Error> {
    let raw = row.try_get_raw(i)?;
    if raw.is_null() {
        return Ok(Value::Null);
    }
    let kind = raw.type_info().kind();
    Ok(match kind {
        AnyTypeInfoKind::Null => Value::Null,
        AnyTypeInfoKind::Bool => Value::Int(i64::from(row.try_get::<bool, _>(i)?)),
        AnyTypeInfoKind::SmallInt | AnyTypeInfoKind::Integer | AnyTypeInfoKind::BigInt => {
            Value::Int(row.try_get::<i64, _>(i)?)
        }
        AnyTypeInfoKind::Real => Value::Float(f64::from(row.try_get::<f32, _>(i)?)),
        AnyTypeInfoKind::Double => Value::Float(row.try_get::<f64, _>(i)?),
        AnyTypeInfoKind::Text => Value::Text(row.try_get::<String, _>(i)?),
        AnyTypeInfoKind::Blob => match String::from_utf8(row.try_get::<Vec<u8>, _>(i)?) {
            Ok(text) => Value::Text(text),
            Err(e) => Value::Bytes(e.into_bytes()),
        },
    })
}

/// The table's version as recorded in the `version` table; `None` when that table or the
/// row is missing (or cannot be read).
async fn stored_version(s: &mut Session) -> Option<Value> {
    let sql = Statement::new(s.backend)
        .sql(&format!(
            "SELECT table_version FROM {} WHERE table_name = ",
            s.backend.quote(VERSION_TABLE)
        ))
        .param()
        .text();
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(s.table_name.clone())
        .fetch_optional(&mut s.conn)
        .await
        .ok()??;
    decode_cell(&row, 0).ok()
}

fn check_version(table: &str, found: &Value) -> Result<(), DbError> {
    let version = match found {
        Value::Int(v) => Some(*v),
        Value::Text(t) => t.trim().parse().ok(),
        _ => None,
    };
    if version == Some(TABLE_VERSION) {
        Ok(())
    } else {
        Err(DbError::VersionMismatch {
            table: table.to_owned(),
            found: found.to_string(),
        })
    }
}

/// Creates a table unless it exists; `Ok(true)` when this call created it.
async fn ensure_table(
    s: &mut Session,
    quoted: &str,
    name: &str,
    create: &str,
) -> Result<bool, DbError> {
    if s.table_exists(quoted).await {
        return Ok(false);
    }
    match s.conn.execute(AssertSqlSafe(create.to_owned())).await {
        Ok(_) => Ok(true),
        // A concurrent CREATE TABLE IF NOT EXISTS can still fail on PostgreSQL (catalog
        // unique index); what matters is that the table exists now.
        Err(_) if s.table_exists(quoted).await => Ok(false),
        Err(e) => Err(s.query_error(format!("creating table {name:?}"), &e)),
    }
}

/// The OpenSIPS `version` table.
fn version_table_sql(backend: Backend) -> String {
    let name = backend.quote(VERSION_TABLE);
    let (text, int, tail) = match backend {
        Backend::Sqlite => ("CHAR(32)", "INTEGER", ""),
        Backend::Postgres => ("VARCHAR(32)", "INTEGER", ""),
        Backend::MySql => ("CHAR(32)", "INT UNSIGNED", " ENGINE=InnoDB"),
    };
    format!(
        "CREATE TABLE IF NOT EXISTS {name} (table_name {text} NOT NULL, \
         table_version {int} DEFAULT 0 NOT NULL, UNIQUE (table_name)){tail}"
    )
}

/// The OpenSIPS `clusterer` table (version 4) with the configured names.
fn node_table_sql(s: &Session) -> String {
    let Columns {
        id,
        cluster_id: cluster,
        node_id: node,
        url,
        state,
        no_ping_retries: retries,
        priority,
        sip_addr,
        flags,
        description,
    } = &s.cols;
    let (id_type, text, tail) = match s.backend {
        Backend::Sqlite => ("INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL", "CHAR(64)", ""),
        Backend::Postgres => ("SERIAL PRIMARY KEY NOT NULL", "VARCHAR(64)", ""),
        Backend::MySql => (
            "INT UNSIGNED AUTO_INCREMENT PRIMARY KEY NOT NULL",
            "CHAR(64)",
            " ENGINE=InnoDB",
        ),
    };
    format!(
        "CREATE TABLE IF NOT EXISTS {table} ({id} {id_type}, \
         {cluster} INTEGER NOT NULL, {node} INTEGER NOT NULL, {url} {text} NOT NULL, \
         {state} INTEGER DEFAULT 1 NOT NULL, {retries} INTEGER DEFAULT 3 NOT NULL, \
         {priority} INTEGER DEFAULT 50 NOT NULL, {sip_addr} {text} DEFAULT NULL, \
         {flags} {text} DEFAULT NULL, {description} {text} DEFAULT NULL, \
         UNIQUE ({cluster}, {node})){tail}",
        table = s.table
    )
}

/// The id of the (cluster, node) row: `None` when there is no such row, `Some(None)` when
/// it has no integer id.
async fn find_row(
    s: &mut Session,
    cluster: ClusterId,
    node: NodeId,
) -> Result<Option<Option<i64>>, DbError> {
    let head = Statement::new(s.backend).sql(&format!("SELECT {} FROM {}", s.cols.id, s.table));
    let row = s
        .node_row_query(head, &[], cluster, node)
        .fetch_optional(&mut s.conn)
        .await
        .map_err(|e| s.query_error(format!("reading table {:?}", s.table_name), &e))?;
    Ok(row.map(|r| match decode_cell(&r, 0) {
        Ok(Value::Int(id)) => Some(id),
        _ => None,
    }))
}

fn no_such_row(s: &Session, cluster: ClusterId, node: NodeId) -> DbError {
    DbError::NoSuchRow {
        table: s.table_name.clone(),
        cluster: cluster.get().into(),
        node: node.get().into(),
    }
}

fn duplicate(s: &Session, node: &NewNode, row_id: Option<i64>) -> DbError {
    DbError::DuplicateNode {
        table: s.table_name.clone(),
        cluster: node.cluster.get().into(),
        node: node.node.get().into(),
        row_id,
    }
}

/// The checks [`add_node`] makes before touching the database.
fn validate(settings: &DbSettings, node: &NewNode) -> Result<(), DbError> {
    let cols = &settings.columns;
    let invalid = |column: &str, value: &str, reason: String| DbError::InvalidValue {
        column: column.to_owned(),
        value: value.to_owned(),
        reason,
    };
    if let Err(reason) = NodeAddress::parse(&node.url) {
        return Err(invalid(&cols.url, &node.url, reason.to_string()));
    }
    for (column, value) in [
        (&cols.url, Some(&node.url)),
        (&cols.sip_addr, node.sip_addr.as_ref()),
        (&cols.flags, node.flags.as_ref()),
        (&cols.description, node.description.as_ref()),
    ] {
        if let Some(value) = value
            && value.chars().count() > MAX_STRING_LEN
        {
            return Err(invalid(
                column,
                value,
                format!("longer than the {MAX_STRING_LEN} characters of the column"),
            ));
        }
    }
    if i32::try_from(node.no_ping_retries).is_err() {
        return Err(invalid(
            &cols.no_ping_retries,
            &node.no_ping_retries.to_string(),
            format!("at most {} retries can be stored", i32::MAX),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_compared_as_numbers() {
        assert!(check_version("clusterer", &Value::Int(4)).is_ok());
        assert!(check_version("clusterer", &Value::Text("4".into())).is_ok());
        let e = check_version("clusterer", &Value::Int(3)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "table \"clusterer\" has version 3 in table \"version\", this clusterer needs \
             version 4"
        );
    }

    #[test]
    fn new_rows_are_validated_before_any_io() {
        let settings = DbSettings::new("sqlite::memory:");
        let c = ClusterId::new(1).unwrap();
        let n = NodeId::new(2).unwrap();
        let bad_url = NewNode::new(c, n, "sip:10.0.0.1");
        let e = validate(&settings, &bad_url).unwrap_err();
        assert_eq!(
            e.to_string(),
            "url = \"sip:10.0.0.1\": scheme must be bin: or bins:"
        );
        let mut long = NewNode::new(c, n, "bin:10.0.0.1");
        long.description = Some("x".repeat(65));
        assert!(validate(&settings, &long).is_err());
        let mut retries = NewNode::new(c, n, "bin:10.0.0.1");
        retries.no_ping_retries = u32::MAX;
        assert!(validate(&settings, &retries).is_err());
        assert!(validate(&settings, &NewNode::new(c, n, "bins:[::1]:7000")).is_ok());
    }

    #[test]
    fn operations_are_send() {
        fn assert_send<T: Send>(_: &T) {}
        let settings = DbSettings::new("sqlite::memory:");
        let c = ClusterId::new(1).unwrap();
        let n = NodeId::new(1).unwrap();
        assert_send(&load(&settings, n));
        assert_send(&set_state(&settings, c, n, true));
        assert_send(&init(&settings));
        assert_send(&list(&settings));
        assert_send(&remove_node(&settings, c, n));
        let node = NewNode::new(c, n, "bin:10.0.0.1");
        assert_send(&add_node(&settings, &node));
    }
}
