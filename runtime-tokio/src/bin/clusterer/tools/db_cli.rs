//! `clusterer db …`: provisioning the `clusterer` table from the command line, for
//! operators who do not want to write SQL.

use std::fmt::Write as _;
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};

use clusterer_core::{ClusterId, NodeId};

use clusterer_tokio::db::{
    ColumnNames, DEFAULT_DB_URL, DEFAULT_TABLE, DbError, DbSettings, NewNode, Provisioning,
    TABLE_VERSION, TableRow, VERSION_TABLE, Value, add_node, init, list, load, remove_node,
    set_state,
};

/// `clusterer db`: the node table of `db_mode = 1`.
#[derive(Args, Debug, Clone)]
pub(crate) struct DbArgs {
    /// What to do (boxed: the arguments are large next to the other subcommands').
    #[command(subcommand)]
    pub(crate) command: Box<DbCommand>,
}

/// The `clusterer db` subcommands.
#[derive(Subcommand, Debug, Clone)]
pub(crate) enum DbCommand {
    /// Create the node table (OpenSIPS schema, version 4) and the OpenSIPS `version` table
    /// and row when missing. Idempotent; on an existing table only checks its columns.
    Init(InitArgs),
    /// Insert a node row, after checking the URL and the sizes of the values.
    AddNode(AddNodeArgs),
    /// Print every row as stored.
    List(ListArgs),
    /// Delete the row of a node in a cluster.
    RemoveNode(NodeArgs),
    /// Set the `state` column of one (cluster, node) row.
    SetState(SetStateArgs),
    /// Load the table as a node would and report every skipped row (exit status 1 if any).
    Check(CheckArgs),
}

/// Where the table is and what its columns are called (the `db_url`, `db_table` and
/// `*_col` module parameters). The defaults are those of [`DbSettings::default`]; the
/// `*_col` ones are indexed in [`ColumnNames::DEFAULTS`] (table order).
#[derive(Args, Debug, Clone)]
pub(crate) struct TableArgs {
    /// Database URL: sqlite://PATH (file created when missing),
    /// postgres://USER[:PASSWORD]@HOST[:PORT]/DB or mysql://USER[:PASSWORD]@HOST[:PORT]/DB.
    #[arg(long, value_name = "URL", default_value = DEFAULT_DB_URL)]
    pub(crate) db_url: String,
    /// Table name (`db_table`), optionally schema.table.
    #[arg(long, value_name = "NAME", default_value = DEFAULT_TABLE)]
    pub(crate) table: String,
    /// `id_col`.
    #[arg(
        long,
        value_name = "NAME",
        default_value = ColumnNames::DEFAULTS[0],
        help_heading = "Column names"
    )]
    pub(crate) id_col: String,
    /// `cluster_id_col`.
    #[arg(
        long,
        value_name = "NAME",
        default_value = ColumnNames::DEFAULTS[1],
        help_heading = "Column names"
    )]
    pub(crate) cluster_id_col: String,
    /// `node_id_col`.
    #[arg(
        long,
        value_name = "NAME",
        default_value = ColumnNames::DEFAULTS[2],
        help_heading = "Column names"
    )]
    pub(crate) node_id_col: String,
    /// `url_col`.
    #[arg(
        long,
        value_name = "NAME",
        default_value = ColumnNames::DEFAULTS[3],
        help_heading = "Column names"
    )]
    pub(crate) url_col: String,
    /// `state_col`.
    #[arg(
        long,
        value_name = "NAME",
        default_value = ColumnNames::DEFAULTS[4],
        help_heading = "Column names"
    )]
    pub(crate) state_col: String,
    /// `no_ping_retries_col`.
    #[arg(
        long,
        value_name = "NAME",
        default_value = ColumnNames::DEFAULTS[5],
        help_heading = "Column names"
    )]
    pub(crate) no_ping_retries_col: String,
    /// `priority_col`.
    #[arg(
        long,
        value_name = "NAME",
        default_value = ColumnNames::DEFAULTS[6],
        help_heading = "Column names"
    )]
    pub(crate) priority_col: String,
    /// `sip_addr_col`.
    #[arg(
        long,
        value_name = "NAME",
        default_value = ColumnNames::DEFAULTS[7],
        help_heading = "Column names"
    )]
    pub(crate) sip_addr_col: String,
    /// `flags_col`.
    #[arg(
        long,
        value_name = "NAME",
        default_value = ColumnNames::DEFAULTS[8],
        help_heading = "Column names"
    )]
    pub(crate) flags_col: String,
    /// `description_col`.
    #[arg(
        long,
        value_name = "NAME",
        default_value = ColumnNames::DEFAULTS[9],
        help_heading = "Column names"
    )]
    pub(crate) description_col: String,
}

impl TableArgs {
    /// The settings these arguments name.
    pub(crate) fn settings(&self) -> DbSettings {
        DbSettings {
            url: self.db_url.clone(),
            table: self.table.clone(),
            columns: ColumnNames {
                id: self.id_col.clone(),
                cluster_id: self.cluster_id_col.clone(),
                node_id: self.node_id_col.clone(),
                url: self.url_col.clone(),
                state: self.state_col.clone(),
                no_ping_retries: self.no_ping_retries_col.clone(),
                priority: self.priority_col.clone(),
                sip_addr: self.sip_addr_col.clone(),
                flags: self.flags_col.clone(),
                description: self.description_col.clone(),
            },
        }
    }
}

/// `clusterer db init`.
#[derive(Args, Debug, Clone)]
pub(crate) struct InitArgs {
    /// The table.
    #[command(flatten)]
    pub(crate) table: TableArgs,
}

/// `clusterer db add-node`.
#[derive(Args, Debug, Clone)]
pub(crate) struct AddNodeArgs {
    /// The table and the row's key.
    #[command(flatten)]
    pub(crate) row: NodeArgs,
    /// BIN URL: bin:IP[:PORT] or bins:IP[:PORT] (ports default to 5555 / 5556).
    #[arg(long)]
    pub(crate) url: String,
    /// Next-hop tie-breaker, lower preferred.
    #[arg(long, default_value_t = clusterer_core::config::DEFAULT_PRIORITY, allow_negative_numbers = true)]
    pub(crate) priority: i32,
    /// Ping retries before the node is declared down.
    #[arg(long, default_value_t = clusterer_core::config::DEFAULT_NO_PING_RETRIES)]
    pub(crate) no_ping_retries: u32,
    /// SIP address of the node.
    #[arg(long, value_name = "ADDR")]
    pub(crate) sip_addr: Option<String>,
    /// Flags; `seed` marks a seed node.
    #[arg(long)]
    pub(crate) flags: Option<String>,
    /// Free text.
    #[arg(long)]
    pub(crate) description: Option<String>,
    /// Administrative state: 1 enabled, 0 disabled.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=1))]
    pub(crate) state: u8,
}

/// Output format of `clusterer db list`.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListFormat {
    /// Aligned columns with a header line.
    Table,
    /// A JSON array of objects keyed by column name.
    Json,
}

/// `clusterer db list`.
#[derive(Args, Debug, Clone)]
pub(crate) struct ListArgs {
    /// The table.
    #[command(flatten)]
    pub(crate) table: TableArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ListFormat::Table)]
    pub(crate) format: ListFormat,
}

/// One row of the table, by its key (`clusterer db remove-node`, `set-state`, `add-node`).
#[derive(Args, Debug, Clone)]
pub(crate) struct NodeArgs {
    /// The table.
    #[command(flatten)]
    pub(crate) table: TableArgs,
    /// Cluster id (1..=2147483647).
    #[arg(long, value_name = "ID", value_parser = parse_id::<ClusterId>)]
    pub(crate) cluster_id: ClusterId,
    /// Node id (1..=2147483647).
    #[arg(long, value_name = "ID", value_parser = parse_id::<NodeId>)]
    pub(crate) node_id: NodeId,
}

/// `clusterer db set-state`.
#[derive(Args, Debug, Clone)]
pub(crate) struct SetStateArgs {
    /// The row.
    #[command(flatten)]
    pub(crate) node: NodeArgs,
    /// 1 enabled, 0 disabled.
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=1))]
    pub(crate) state: u8,
}

/// `clusterer db check`.
#[derive(Args, Debug, Clone)]
pub(crate) struct CheckArgs {
    /// The table.
    #[command(flatten)]
    pub(crate) table: TableArgs,
    /// The node to load the table for (`my_node_id`).
    #[arg(long, value_name = "ID", value_parser = parse_id::<NodeId>)]
    pub(crate) my_node_id: NodeId,
}

/// Runs `clusterer db …`: prints the result on stdout, errors on stderr.
///
/// Exit status 0 on success, 1 on an error (or, for `check`, when a row was skipped).
pub(crate) fn run(args: &DbArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(execute(&args.command)) {
        Ok((text, ok)) => {
            print!("{text}");
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs one command; the text to print and whether the command succeeded.
async fn execute(command: &DbCommand) -> Result<(String, bool), DbError> {
    let mut out = String::new();
    match command {
        DbCommand::Init(a) => {
            let settings = a.table.settings();
            let report = init(&settings).await?;
            let table = &settings.table;
            let _ = if report.table_created {
                writeln!(out, "created table {table:?} ({})", report.backend)
            } else {
                writeln!(
                    out,
                    "table {table:?} exists with every configured column ({})",
                    report.backend
                )
            };
            if report.version_table_created {
                let _ = writeln!(out, "created table {VERSION_TABLE:?}");
            }
            let _ = if report.version_row_created {
                writeln!(
                    out,
                    "recorded {table:?} as version {TABLE_VERSION} in table {VERSION_TABLE:?}"
                )
            } else {
                writeln!(
                    out,
                    "table {VERSION_TABLE:?} already records {table:?} as version {TABLE_VERSION}"
                )
            };
        }
        DbCommand::AddNode(a) => {
            let node = NewNode {
                cluster: a.row.cluster_id,
                node: a.row.node_id,
                url: a.url.clone(),
                enabled: a.state != 0,
                no_ping_retries: a.no_ping_retries,
                priority: a.priority,
                sip_addr: a.sip_addr.clone(),
                flags: a.flags.clone(),
                description: a.description.clone(),
            };
            let id = add_node(&a.row.table.settings(), &node).await?;
            let _ = writeln!(
                out,
                "added node {} to cluster {} (row id={id})",
                node.node, node.cluster
            );
        }
        DbCommand::List(a) => {
            let settings = a.table.settings();
            let rows = list(&settings).await?;
            out = match a.format {
                ListFormat::Table => format_table(&settings.columns, &rows),
                ListFormat::Json => format_json(&settings.columns, &rows),
            };
        }
        DbCommand::RemoveNode(a) => {
            remove_node(&a.table.settings(), a.cluster_id, a.node_id).await?;
            let _ = writeln!(
                out,
                "removed node {} from cluster {}",
                a.node_id, a.cluster_id
            );
        }
        DbCommand::SetState(a) => {
            let n = &a.node;
            set_state(&n.table.settings(), n.cluster_id, n.node_id, a.state != 0).await?;
            let _ = writeln!(
                out,
                "node {} in cluster {}: state = {}",
                n.node_id, n.cluster_id, a.state
            );
        }
        DbCommand::Check(a) => {
            let p = load(&a.table.settings(), a.my_node_id).await?;
            out = format_check(a.my_node_id, &p);
            return Ok((out, p.skipped.is_empty()));
        }
    }
    Ok((out, true))
}

/// What `check` prints: each cluster as the node would see it, then the skipped rows.
fn format_check(me: NodeId, p: &Provisioning) -> String {
    let mut out = String::new();
    if p.clusters.is_empty() {
        let _ = writeln!(out, "node {me} has no row: it is in no cluster");
    }
    for c in &p.clusters {
        let seed = if c.local.seed { ", seed" } else { "" };
        let state = if c.local.enabled { "" } else { ", disabled" };
        // List order is the reverse of row order (OpenSIPS prepends).
        let others: Vec<String> = c.nodes.iter().rev().map(|n| n.id.to_string()).collect();
        let _ = writeln!(
            out,
            "cluster {}: node {me} at {}{seed}{state}; {} other node(s){}{}",
            c.id,
            c.local.url,
            c.nodes.len(),
            if others.is_empty() {
                ""
            } else {
                ", list order: "
            },
            others.join(", ")
        );
    }
    for id in p.clusters_without_seed() {
        let _ = writeln!(out, "notice: cluster {id} has no seed node");
    }
    if p.ignored > 0 {
        let _ = writeln!(
            out,
            "{} row(s) of clusters node {me} is not in were ignored",
            p.ignored
        );
    }
    for e in &p.skipped {
        let _ = writeln!(out, "skipped: {e}");
    }
    let _ = writeln!(out, "{} row(s) skipped", p.skipped.len());
    out
}

/// Aligned columns, NULL shown as `NULL`.
fn format_table(columns: &ColumnNames, rows: &[TableRow]) -> String {
    let header = columns.in_order().map(str::to_owned);
    let lines: Vec<[String; 10]> = rows
        .iter()
        .map(|r| r.cells().map(|v| v.to_string()))
        .collect();
    let mut widths = header.clone().map(|h| h.chars().count());
    for line in &lines {
        for (w, cell) in widths.iter_mut().zip(line) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for line in std::iter::once(&header).chain(&lines) {
        let cells: Vec<String> = line
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    }
    out
}

/// A JSON array of objects keyed by the configured column names.
fn format_json(columns: &ColumnNames, rows: &[TableRow]) -> String {
    let array: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            let object: serde_json::Map<String, serde_json::Value> = columns
                .in_order()
                .iter()
                .zip(r.cells())
                .map(|(name, v)| ((*name).to_owned(), json_value(v)))
                .collect();
            serde_json::Value::Object(object)
        })
        .collect();
    let mut text = serde_json::to_string_pretty(&array).unwrap_or_else(|_| "[]".to_owned());
    text.push('\n');
    text
}

fn json_value(v: &Value) -> serde_json::Value {
    match v {
        Value::Null => serde_json::Value::Null,
        Value::Int(i) => (*i).into(),
        Value::Text(s) => s.clone().into(),
        Value::Float(x) => serde_json::Number::from_f64(*x)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null),
        Value::Bytes(_) => v.to_string().into(),
    }
}

/// A cluster or node id argument: an integer in 1..=2147483647.
fn parse_id<T: TryFrom<i64>>(s: &str) -> Result<T, String> {
    s.parse::<i64>()
        .ok()
        .and_then(|v| T::try_from(v).ok())
        .ok_or_else(|| format!("{s:?} is not an id (an integer from 1 to {})", i32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(subcommand)]
        command: DbCommand,
    }

    fn row(id: i64, node: i64, url: &str) -> TableRow {
        TableRow {
            id: Value::Int(id),
            cluster_id: Value::Int(1),
            node_id: Value::Int(node),
            url: Value::Text(url.to_owned()),
            state: Value::Int(1),
            no_ping_retries: Value::Int(3),
            priority: Value::Int(50),
            sip_addr: Value::Null,
            flags: Value::Text("seed".to_owned()),
            description: Value::Null,
        }
    }

    #[test]
    fn add_node_arguments_have_the_schema_defaults() {
        let cli = Cli::try_parse_from([
            "db",
            "add-node",
            "--cluster-id",
            "1",
            "--node-id",
            "2",
            "--url",
            "bin:10.0.0.2",
        ])
        .unwrap();
        let DbCommand::AddNode(a) = cli.command else {
            panic!("not add-node");
        };
        assert_eq!(a.row.table.db_url, "sqlite://clusterer.sqlite");
        assert_eq!(a.row.table.settings(), DbSettings::default());
        assert_eq!((a.priority, a.no_ping_retries, a.state), (50, 3, 1));
    }

    #[test]
    fn ids_and_states_are_checked_by_the_parser() {
        for args in [
            &["db", "remove-node", "--cluster-id", "0", "--node-id", "1"][..],
            &[
                "db",
                "remove-node",
                "--cluster-id",
                "1",
                "--node-id",
                "2147483648",
            ],
            &[
                "db",
                "set-state",
                "--cluster-id",
                "1",
                "--node-id",
                "1",
                "--state",
                "2",
            ],
        ] {
            assert!(Cli::try_parse_from(args).is_err(), "{args:?}");
        }
        let cli = Cli::try_parse_from([
            "db",
            "list",
            "--table",
            "nodes",
            "--url-col",
            "node_url",
            "--format",
            "json",
        ])
        .unwrap();
        let DbCommand::List(a) = cli.command else {
            panic!("not list");
        };
        assert_eq!(a.format, ListFormat::Json);
        let settings = a.table.settings();
        assert_eq!(
            (settings.table.as_str(), settings.columns.url.as_str()),
            ("nodes", "node_url")
        );
    }

    #[test]
    fn list_formats() {
        let rows = [row(1, 1, "bin:10.0.0.1"), row(12, 2, "bin:10.0.0.2:5566")];
        let table = format_table(&ColumnNames::default(), &rows);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0],
            "id  cluster_id  node_id  url                state  no_ping_retries  priority  sip_addr  flags  description"
        );
        assert_eq!(
            lines[2],
            "12  1           2        bin:10.0.0.2:5566  1      3                50        NULL      seed   NULL"
        );
        let json: serde_json::Value =
            serde_json::from_str(&format_json(&ColumnNames::default(), &rows)).unwrap();
        assert_eq!(json[1]["url"], "bin:10.0.0.2:5566");
        assert_eq!(json[1]["id"], 12);
        assert!(json[0]["sip_addr"].is_null());
    }
}
