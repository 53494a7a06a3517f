//! Rows of the `clusterer` table and how they become clusters (docs/behaviour.md §1.2): a pure
//! function over the rows read, so every rule is testable without a database.

use std::collections::{HashMap, HashSet};
use std::fmt;

use clusterer_core::address::AddressError;
use clusterer_core::message::{MAX_CLUSTERS, MAX_NODES};
use clusterer_core::{ClusterConfig, ClusterId, NodeAddress, NodeConfig, NodeId};

use super::{ColumnNames, Columns};

/// One cell as read from the database, before any validation.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// Any integer type (and booleans, as 0/1).
    Int(i64),
    /// Any character type (and binary data that is valid UTF-8).
    Text(String),
    /// A floating-point value.
    Float(f64),
    /// Binary data that is not UTF-8.
    Bytes(Vec<u8>),
}

impl Value {
    /// What kind of value this is, for messages ("an integer", "text", ...).
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "NULL",
            Value::Int(_) => "an integer",
            Value::Text(_) => "text",
            Value::Float(_) => "a floating-point number",
            Value::Bytes(_) => "binary data",
        }
    }
}

impl fmt::Display for Value {
    /// NULL as `NULL`, text as is, bytes in hex.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("NULL"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Text(s) => f.write_str(s),
            Value::Float(x) => write!(f, "{x}"),
            Value::Bytes(b) => {
                f.write_str("0x")?;
                b.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
            }
        }
    }
}

/// One row of the `clusterer` table, every column as read (the fields are named by the
/// OpenSIPS defaults; the configured `*_col` names were used to read them).
pub type TableRow = Columns<Value>;

impl TableRow {
    /// The cells in table order.
    pub fn cells(&self) -> [&Value; 10] {
        self.as_array()
    }

    /// Builds a row from cells in table order.
    pub(crate) fn from_cells(cells: [Value; 10]) -> TableRow {
        Columns::from_array(cells)
    }
}

/// The columns of the `clusterer` table, in the order they are selected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Col {
    Id,
    ClusterId,
    NodeId,
    Url,
    State,
    NoPingRetries,
    Priority,
    SipAddr,
    Flags,
    Description,
}

impl Col {
    /// The column's position in table order.
    fn index(self) -> usize {
        self as usize
    }
}

/// What the table provisions for the local node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Provisioning {
    /// The clusters the local node has a row in, in the order of its rows. Each cluster's
    /// `nodes` are in row order (ascending `id`); the core prepends them, so its node list
    /// ("list order") is the reverse row order, as in OpenSIPS.
    pub clusters: Vec<ClusterConfig>,
    /// The rows that were not loaded, each with its id, the column at fault and why; in row
    /// order, one entry per skipped row.
    pub skipped: Vec<RowError>,
    /// Rows of clusters the local node has no row in: ignored without validation, as in
    /// OpenSIPS (`load_db_info` only queries the local node's clusters).
    pub ignored: usize,
}

impl Provisioning {
    /// The clusters where no node (the local one included) has the `seed` flag. OpenSIPS
    /// logs a notice for each ("some clustering capabilities may not work").
    pub fn clusters_without_seed(&self) -> Vec<ClusterId> {
        self.clusters
            .iter()
            .filter(|c| !c.local.seed && !c.nodes.iter().any(|n| n.seed))
            .map(|c| c.id)
            .collect()
    }
}

/// A row that was not loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowError {
    /// The row's `id`, when it has a usable one.
    pub row_id: Option<i64>,
    /// 1-based position of the row in the result (ordered by `id`), for rows without id.
    pub position: usize,
    /// The column at fault, under its configured name.
    pub column: String,
    /// What is wrong.
    pub problem: RowProblem,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.row_id {
            Some(id) => write!(f, "row id={id}")?,
            None => write!(f, "row #{} (no usable id)", self.position)?,
        }
        write!(f, ": column {}: {}", self.column, self.problem)
    }
}

impl std::error::Error for RowError {}

/// Why a row was not loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RowProblem {
    /// NULL in a column that must have a value.
    Null,
    /// A value of the wrong type (e.g. text in an integer column).
    WrongType {
        /// What the column must hold.
        expected: &'static str,
        /// What it holds.
        found: &'static str,
    },
    /// An integer outside the range the column allows (ids ≤ 0 included).
    OutOfRange {
        /// The value found.
        value: i64,
        /// Smallest allowed value.
        min: i64,
        /// Largest allowed value.
        max: i64,
    },
    /// The URL is not `bin:` or `bins:` (only BIN transports are accepted).
    UnknownScheme {
        /// The URL found.
        url: String,
    },
    /// The URL has a BIN scheme but its address does not parse.
    BadAddress {
        /// The URL found.
        url: String,
        /// What is wrong with it.
        reason: AddressError,
    },
    /// The same (cluster_id, node_id) appeared in an earlier row, which was kept.
    Duplicate {
        /// The cluster.
        cluster: ClusterId,
        /// The node.
        node: NodeId,
        /// The id of the row that was kept.
        first_row: i64,
    },
    /// The cluster already has [`MAX_NODES`] other nodes.
    TooManyNodes {
        /// The cluster.
        cluster: ClusterId,
    },
    /// The local node already is in [`MAX_CLUSTERS`] clusters; this cluster is not loaded.
    TooManyClusters {
        /// The cluster refused.
        cluster: ClusterId,
    },
    /// The row belongs to a cluster that is not loaded because the local node's own row
    /// for it was skipped.
    ClusterNotLoaded {
        /// The cluster.
        cluster: ClusterId,
        /// The local node's skipped row, when it had an id.
        local_row: Option<i64>,
    },
}

impl fmt::Display for RowProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RowProblem::Null => f.write_str("is NULL, but a value is required"),
            RowProblem::WrongType { expected, found } => {
                write!(f, "expected {expected}, got {found}")
            }
            RowProblem::OutOfRange { value, min, max } => {
                write!(f, "{value} is out of range (expected {min}..={max})")
            }
            RowProblem::UnknownScheme { url } => {
                write!(f, "{url:?} has an unknown scheme (expected bin: or bins:)")
            }
            RowProblem::BadAddress { url, reason } => {
                write!(f, "{url:?} is not a valid node address: {reason}")
            }
            RowProblem::Duplicate {
                cluster,
                node,
                first_row,
            } => write!(
                f,
                "node {node} is already provisioned in cluster {cluster} by row id={first_row}"
            ),
            RowProblem::TooManyNodes { cluster } => write!(
                f,
                "cluster {cluster} already has {MAX_NODES} other nodes (the limit)"
            ),
            RowProblem::TooManyClusters { cluster } => write!(
                f,
                "the local node is already in {MAX_CLUSTERS} clusters (the limit); cluster \
                 {cluster} is not loaded"
            ),
            RowProblem::ClusterNotLoaded { cluster, local_row } => {
                write!(f, "cluster {cluster} is not loaded: the local node's row ")?;
                match local_row {
                    Some(id) => write!(f, "id={id} was skipped"),
                    None => f.write_str("was skipped"),
                }
            }
        }
    }
}

/// Turns the rows of the `clusterer` table (in `id` order) into the local node's clusters,
/// exactly as OpenSIPS' `load_db_info` reads them (docs/behaviour.md §1.2), except that a bad
/// row is skipped and reported instead of failing the whole load:
///
/// * the clusters are those where `my_node_id` has a row; rows of other clusters are
///   ignored (counted in [`Provisioning::ignored`], not validated);
/// * the local node's row gives the cluster's `local` record, the other rows its `nodes`
///   (row order; the core prepends them, so list order is the reverse row order);
/// * `state` 0 → disabled, any other value → enabled (OpenSIPS tests `state != 0`);
/// * `flags` starting with `seed` (case-sensitive, OpenSIPS `memcmp`) → seed;
/// * `url` must be `bin:` / `bins:` with an IP literal (ports default to 5555 / 5556);
/// * an empty `description` is no description; a NULL `sip_addr` is empty;
/// * rejected: NULL in `id`, `cluster_id`, `node_id`, `url`, `state`,
///   `no_ping_retries`, `priority`; a wrong type in any column; ids outside
///   1..=2147483647; `no_ping_retries` below 0; `priority` outside `i32`; a duplicate
///   (cluster_id, node_id) (the first row wins); a 129th other node in a cluster; a 65th
///   cluster; and every row of a cluster whose local row was rejected.
pub fn provision(rows: &[TableRow], columns: &ColumnNames, my_node_id: NodeId) -> Provisioning {
    let mut out = Provisioning::default();
    let mut skipped: Vec<(usize, RowError)> = Vec::new();
    let names = columns.in_order();
    let error = |position: usize, row_id: Option<i64>, col: Col, problem: RowProblem| {
        (
            position,
            RowError {
                row_id,
                position: position + 1,
                column: names[col.index()].to_owned(),
                problem,
            },
        )
    };

    // The clusters the local node is in: every cluster id of a row with its node id.
    let member: HashSet<ClusterId> = rows
        .iter()
        .filter(|r| matches!(id_value::<NodeId>(&r.node_id), Ok(n) if n == my_node_id))
        .filter_map(|r| id_value::<ClusterId>(&r.cluster_id).ok())
        .collect();

    // Pass 1: decode and check each row of those clusters on its own. The first local row
    // of each cluster (valid or not) decides whether the cluster is loaded.
    let mut candidates: Vec<(usize, ClusterId, NodeConfig)> = Vec::new();
    let mut first_local: HashMap<ClusterId, (usize, Option<i64>)> = HashMap::new();
    for (position, row) in rows.iter().enumerate() {
        let row_id = match &row.id {
            Value::Int(i) => Some(*i),
            _ => None,
        };
        let cluster = match id_value::<ClusterId>(&row.cluster_id) {
            Ok(c) => c,
            Err(problem) => {
                skipped.push(error(position, row_id, Col::ClusterId, problem));
                continue;
            }
        };
        if !member.contains(&cluster) {
            out.ignored += 1;
            continue;
        }
        if matches!(id_value::<NodeId>(&row.node_id), Ok(n) if n == my_node_id) {
            first_local.entry(cluster).or_insert((position, row_id));
        }
        match check_row(row) {
            Ok(node) => candidates.push((position, cluster, node)),
            Err((col, problem)) => skipped.push(error(position, row_id, col, problem)),
        }
    }
    let not_loaded = |cluster: ClusterId| RowProblem::ClusterNotLoaded {
        cluster,
        local_row: first_local.get(&cluster).and_then(|(_, id)| *id),
    };

    // Pass 2: the first local row of each cluster gives the cluster, in row order.
    let mut others = Vec::new();
    for (position, cluster, node) in candidates {
        if node.id != my_node_id {
            others.push((position, cluster, node));
            continue;
        }
        let row_id = node.db_id;
        let is_first = first_local.get(&cluster).map(|(p, _)| *p) == Some(position);
        if !is_first {
            let problem = match out.clusters.iter().find(|c| c.id == cluster) {
                Some(first) => RowProblem::Duplicate {
                    cluster,
                    node: node.id,
                    first_row: first.local.db_id.unwrap_or_default(),
                },
                None => not_loaded(cluster),
            };
            let col = match problem {
                RowProblem::Duplicate { .. } => Col::NodeId,
                _ => Col::ClusterId,
            };
            skipped.push(error(position, row_id, col, problem));
        } else if out.clusters.len() >= MAX_CLUSTERS {
            let problem = RowProblem::TooManyClusters { cluster };
            skipped.push(error(position, row_id, Col::ClusterId, problem));
        } else {
            out.clusters.push(ClusterConfig {
                id: cluster,
                local: node,
                nodes: Vec::new(),
            });
        }
    }

    // Pass 3: the other nodes join their cluster, in row order.
    for (position, cluster, node) in others {
        let row_id = node.db_id;
        let Some(c) = out.clusters.iter_mut().find(|c| c.id == cluster) else {
            skipped.push(error(position, row_id, Col::ClusterId, not_loaded(cluster)));
            continue;
        };
        if let Some(first) = c.nodes.iter().find(|n| n.id == node.id) {
            let problem = RowProblem::Duplicate {
                cluster,
                node: node.id,
                first_row: first.db_id.unwrap_or_default(),
            };
            skipped.push(error(position, row_id, Col::NodeId, problem));
        } else if c.nodes.len() >= MAX_NODES {
            let problem = RowProblem::TooManyNodes { cluster };
            skipped.push(error(position, row_id, Col::NodeId, problem));
        } else {
            c.nodes.push(node);
        }
    }

    skipped.sort_by_key(|(position, _)| *position);
    out.skipped = skipped.into_iter().map(|(_, e)| e).collect();
    out
}

/// Checks one row of a cluster the local node is in and builds its node record.
fn check_row(row: &TableRow) -> Result<NodeConfig, (Col, RowProblem)> {
    let at = |col: Col| move |problem: RowProblem| (col, problem);
    let id = required_int(&row.id).map_err(at(Col::Id))?;
    let node_id: NodeId = id_value(&row.node_id).map_err(at(Col::NodeId))?;
    let url = required_text(&row.url).map_err(at(Col::Url))?;
    let state = required_int(&row.state).map_err(at(Col::State))?;
    let retries = required_int(&row.no_ping_retries).map_err(at(Col::NoPingRetries))?;
    let no_ping_retries = u32::try_from(retries)
        .map_err(|_| out_of_range(retries, 0, u32::MAX.into()))
        .map_err(at(Col::NoPingRetries))?;
    let priority = required_int(&row.priority).map_err(at(Col::Priority))?;
    let priority = i32::try_from(priority)
        .map_err(|_| out_of_range(priority, i32::MIN.into(), i32::MAX.into()))
        .map_err(at(Col::Priority))?;
    let sip_addr = optional_text(&row.sip_addr).map_err(at(Col::SipAddr))?;
    let flags = optional_text(&row.flags).map_err(at(Col::Flags))?;
    let description = optional_text(&row.description).map_err(at(Col::Description))?;
    match NodeAddress::parse(url) {
        Ok(_) => {}
        Err(AddressError::UnknownScheme) => {
            return Err((
                Col::Url,
                RowProblem::UnknownScheme {
                    url: url.to_owned(),
                },
            ));
        }
        Err(reason) => {
            return Err((
                Col::Url,
                RowProblem::BadAddress {
                    url: url.to_owned(),
                    reason,
                },
            ));
        }
    }
    Ok(NodeConfig {
        id: node_id,
        db_id: Some(id),
        url: url.to_owned(),
        sip_addr: sip_addr.unwrap_or_default().to_owned(),
        priority,
        no_ping_retries,
        enabled: state != 0,
        seed: flags.is_some_and(|f| f.starts_with("seed")),
        description: description.filter(|d| !d.is_empty()).map(str::to_owned),
    })
}

fn out_of_range(value: i64, min: i64, max: i64) -> RowProblem {
    RowProblem::OutOfRange { value, min, max }
}

fn required_int(v: &Value) -> Result<i64, RowProblem> {
    match v {
        Value::Int(i) => Ok(*i),
        Value::Null => Err(RowProblem::Null),
        other => Err(RowProblem::WrongType {
            expected: "an integer",
            found: other.type_name(),
        }),
    }
}

fn required_text(v: &Value) -> Result<&str, RowProblem> {
    optional_text(v)?.ok_or(RowProblem::Null)
}

fn optional_text(v: &Value) -> Result<Option<&str>, RowProblem> {
    match v {
        Value::Text(s) => Ok(Some(s)),
        Value::Null => Ok(None),
        other => Err(RowProblem::WrongType {
            expected: "a string",
            found: other.type_name(),
        }),
    }
}

/// A node or cluster id: an integer in 1..=2147483647.
fn id_value<T: TryFrom<i64>>(v: &Value) -> Result<T, RowProblem> {
    let value = required_int(v)?;
    T::try_from(value).map_err(|_| out_of_range(value, 1, i32::MAX.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, cluster: i64, node: i64, url: &str) -> TableRow {
        TableRow {
            id: Value::Int(id),
            cluster_id: Value::Int(cluster),
            node_id: Value::Int(node),
            url: Value::Text(url.to_owned()),
            state: Value::Int(1),
            no_ping_retries: Value::Int(3),
            priority: Value::Int(50),
            sip_addr: Value::Null,
            flags: Value::Null,
            description: Value::Null,
        }
    }

    fn node(id: u32) -> NodeId {
        NodeId::new(id).unwrap()
    }

    fn cluster(id: u32) -> ClusterId {
        ClusterId::new(id).unwrap()
    }

    fn load(rows: &[TableRow], me: u32) -> Provisioning {
        provision(rows, &ColumnNames::default(), node(me))
    }

    #[test]
    fn local_row_gives_the_local_record_and_others_keep_row_order() {
        let mut rows = vec![
            row(1, 1, 1, "bin:10.0.0.1:5566"),
            row(2, 1, 2, "bin:10.0.0.2"),
            row(3, 1, 3, "bins:10.0.0.3"),
        ];
        rows[2].flags = Value::Text("seed,other".to_owned());
        rows[1].state = Value::Int(0);
        rows[1].description = Value::Text("b".to_owned());
        rows[0].description = Value::Text(String::new());
        rows[0].sip_addr = Value::Text("10.0.0.1:5060".to_owned());
        let p = load(&rows, 1);
        assert!(p.skipped.is_empty(), "{:?}", p.skipped);
        assert_eq!(p.clusters.len(), 1);
        let c = &p.clusters[0];
        assert_eq!(c.id, cluster(1));
        assert_eq!(c.local.id, node(1));
        assert_eq!(c.local.db_id, Some(1));
        assert_eq!(c.local.description, None);
        assert_eq!(c.local.sip_addr, "10.0.0.1:5060");
        let ids: Vec<u32> = c.nodes.iter().map(|n| n.id.get()).collect();
        assert_eq!(ids, [2, 3]);
        assert!(!c.nodes[0].enabled);
        assert_eq!(c.nodes[0].description.as_deref(), Some("b"));
        assert!(c.nodes[1].seed);
        assert!(!c.nodes[0].seed);
        assert!(p.clusters_without_seed().is_empty());
    }

    #[test]
    fn seed_is_a_case_sensitive_prefix_and_state_is_nonzero() {
        let mut rows = vec![row(1, 1, 1, "bin:10.0.0.1"), row(2, 1, 2, "bin:10.0.0.2")];
        rows[0].flags = Value::Text("Seed".to_owned());
        rows[1].flags = Value::Text("seeds".to_owned());
        rows[1].state = Value::Int(2);
        let p = load(&rows, 1);
        assert!(!p.clusters[0].local.seed);
        assert!(p.clusters[0].nodes[0].seed);
        assert!(p.clusters[0].nodes[0].enabled);
    }

    #[test]
    fn clusters_without_the_local_node_are_ignored() {
        let mut rows = vec![
            row(1, 1, 1, "bin:10.0.0.1"),
            row(2, 2, 2, "bin:10.0.0.2"),
            row(3, 2, 3, "sip:bad"),
            row(4, 1, 2, "bin:10.0.0.2"),
        ];
        rows[2].state = Value::Null;
        let p = load(&rows, 1);
        assert!(p.skipped.is_empty(), "{:?}", p.skipped);
        assert_eq!(p.ignored, 2);
        assert_eq!(p.clusters.len(), 1);
        assert_eq!(p.clusters[0].nodes.len(), 1);
    }

    #[test]
    fn no_local_row_gives_no_cluster() {
        let p = load(&[row(1, 1, 2, "bin:10.0.0.2")], 1);
        assert!(p.clusters.is_empty());
        assert_eq!(p.ignored, 1);
    }

    #[test]
    fn clusters_follow_the_local_rows() {
        let rows = vec![
            row(1, 7, 2, "bin:10.0.0.2"),
            row(2, 5, 1, "bin:10.0.0.1"),
            row(3, 7, 1, "bin:10.0.0.1"),
        ];
        let p = load(&rows, 1);
        let ids: Vec<u32> = p.clusters.iter().map(|c| c.id.get()).collect();
        assert_eq!(ids, [5, 7]);
        assert_eq!(p.clusters[1].nodes[0].id, node(2));
        assert_eq!(p.clusters_without_seed(), [cluster(5), cluster(7)]);
    }

    #[test]
    fn each_bad_row_is_reported_with_id_and_column() {
        let mut rows = vec![
            row(1, 1, 1, "bin:10.0.0.1"),
            row(2, 1, 0, "bin:10.0.0.2"),
            row(3, 1, 3, "sip:10.0.0.1"),
            row(4, 1, 4, "bin:host.example"),
            row(5, 1, 5, "bin:10.0.0.5"),
            row(6, 1, 5, "bin:10.0.0.6"),
            row(7, 1, 7, "bin:10.0.0.7"),
            row(8, 1, 8, "bin:10.0.0.8"),
            row(9, 1, 9, "bin:10.0.0.9:0"),
            row(10, -1, 10, "bin:10.0.0.10"),
            row(11, 1, 11, "bin:10.0.0.11"),
            row(12, 1, 12, "bin:10.0.0.12"),
        ];
        rows[6].state = Value::Null;
        rows[7].priority = Value::Text("high".to_owned());
        rows[10].no_ping_retries = Value::Int(-1);
        rows[11].flags = Value::Int(1);
        let p = load(&rows, 1);
        let got: Vec<String> = p.skipped.iter().map(ToString::to_string).collect();
        assert_eq!(
            got,
            [
                "row id=2: column node_id: 0 is out of range (expected 1..=2147483647)",
                "row id=3: column url: \"sip:10.0.0.1\" has an unknown scheme (expected bin: or bins:)",
                "row id=4: column url: \"bin:host.example\" is not a valid node address: host must be an IPv4 address or a bracketed IPv6 address",
                "row id=6: column node_id: node 5 is already provisioned in cluster 1 by row id=5",
                "row id=7: column state: is NULL, but a value is required",
                "row id=8: column priority: expected an integer, got text",
                "row id=9: column url: \"bin:10.0.0.9:0\" is not a valid node address: port must be a number in 1..=65535",
                "row id=10: column cluster_id: -1 is out of range (expected 1..=2147483647)",
                "row id=11: column no_ping_retries: -1 is out of range (expected 0..=4294967295)",
                "row id=12: column flags: expected a string, got an integer",
            ]
        );
        let ids: Vec<u32> = p.clusters[0].nodes.iter().map(|n| n.id.get()).collect();
        assert_eq!(ids, [5]);
    }

    #[test]
    fn bad_ids_and_custom_column_names_are_reported() {
        let mut rows = vec![row(1, 1, 1, "bin:10.0.0.1"), row(2, 1, 2, "bin:10.0.0.2")];
        rows[1].id = Value::Null;
        rows[1].url = Value::Null;
        let columns = ColumnNames {
            url: "node_url".to_owned(),
            id: "row_id".to_owned(),
            ..ColumnNames::default()
        };
        let p = provision(&rows, &columns, node(1));
        assert_eq!(
            p.skipped[0].to_string(),
            "row #2 (no usable id): column row_id: is NULL, but a value is required"
        );
        rows[1].id = Value::Int(2);
        let p = provision(&rows, &columns, node(1));
        assert_eq!(
            p.skipped[0].to_string(),
            "row id=2: column node_url: is NULL, but a value is required"
        );
        rows[1].cluster_id = Value::Int(1 << 31);
        let p = provision(&rows, &columns, node(1));
        assert_eq!(p.skipped[0].column, "cluster_id");
    }

    #[test]
    fn a_rejected_local_row_drops_its_cluster() {
        let rows = vec![
            row(1, 1, 1, "udp:10.0.0.1"),
            row(2, 1, 2, "bin:10.0.0.2"),
            row(3, 1, 1, "bin:10.0.0.1"),
            row(4, 2, 1, "bin:10.0.0.1"),
        ];
        let p = load(&rows, 1);
        assert_eq!(p.clusters.len(), 1);
        assert_eq!(p.clusters[0].id, cluster(2));
        let got: Vec<String> = p.skipped.iter().map(ToString::to_string).collect();
        assert_eq!(
            got,
            [
                "row id=1: column url: \"udp:10.0.0.1\" has an unknown scheme (expected bin: or bins:)",
                "row id=2: column cluster_id: cluster 1 is not loaded: the local node's row id=1 was skipped",
                "row id=3: column cluster_id: cluster 1 is not loaded: the local node's row id=1 was skipped",
            ]
        );
    }

    #[test]
    fn a_later_bad_local_row_does_not_drop_the_cluster() {
        let rows = vec![
            row(1, 1, 1, "bin:10.0.0.1"),
            row(2, 1, 1, "udp:10.0.0.1"),
            row(3, 1, 2, "bin:10.0.0.2"),
        ];
        let p = load(&rows, 1);
        assert_eq!(p.clusters.len(), 1);
        assert_eq!(p.clusters[0].nodes.len(), 1);
        assert_eq!(p.skipped.len(), 1);
        assert_eq!(p.skipped[0].row_id, Some(2));
    }

    #[test]
    fn a_duplicate_local_row_is_reported() {
        let rows = vec![row(1, 1, 1, "bin:10.0.0.1"), row(2, 1, 1, "bin:10.0.0.9")];
        let p = load(&rows, 1);
        assert_eq!(p.clusters[0].local.url, "bin:10.0.0.1");
        assert_eq!(
            p.skipped[0].to_string(),
            "row id=2: column node_id: node 1 is already provisioned in cluster 1 by row id=1"
        );
    }

    #[test]
    fn more_than_128_other_nodes_are_refused() {
        let mut rows = vec![row(1, 1, 1, "bin:10.0.0.1")];
        for n in 2..=(MAX_NODES as i64 + 3) {
            rows.push(row(n, 1, n, "bin:10.0.1.1"));
        }
        let p = load(&rows, 1);
        assert_eq!(p.clusters[0].nodes.len(), MAX_NODES);
        assert_eq!(p.skipped.len(), 2);
        assert_eq!(p.skipped[0].row_id, Some(MAX_NODES as i64 + 2));
        assert_eq!(
            p.skipped[0].to_string(),
            "row id=130: column node_id: cluster 1 already has 128 other nodes (the limit)"
        );
    }

    #[test]
    fn more_than_64_clusters_are_refused() {
        let mut rows = Vec::new();
        for c in 1..=(MAX_CLUSTERS as i64 + 1) {
            rows.push(row(c, c, 1, "bin:10.0.0.1"));
        }
        rows.push(row(100, MAX_CLUSTERS as i64 + 1, 2, "bin:10.0.0.2"));
        let p = load(&rows, 1);
        assert_eq!(p.clusters.len(), MAX_CLUSTERS);
        let got: Vec<String> = p.skipped.iter().map(ToString::to_string).collect();
        assert_eq!(
            got,
            [
                "row id=65: column cluster_id: the local node is already in 64 clusters (the limit); cluster 65 is not loaded",
                "row id=100: column cluster_id: cluster 65 is not loaded: the local node's row id=65 was skipped",
            ]
        );
    }

    #[test]
    fn wrong_types_in_any_column_are_reported() {
        let mut rows = vec![row(1, 1, 1, "bin:10.0.0.1"), row(2, 1, 2, "bin:10.0.0.2")];
        rows[1].url = Value::Bytes(vec![0xff]);
        let p = load(&rows, 1);
        assert_eq!(
            p.skipped[0].to_string(),
            "row id=2: column url: expected a string, got binary data"
        );
        rows[1].url = Value::Text("bin:10.0.0.2".to_owned());
        rows[1].state = Value::Float(1.0);
        let p = load(&rows, 1);
        assert_eq!(
            p.skipped[0].to_string(),
            "row id=2: column state: expected an integer, got a floating-point number"
        );
    }
}
