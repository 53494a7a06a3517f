//! `db_mode = 1` provisioning against real databases: every test runs on SQLite (a file in
//! the target directory), on PostgreSQL when `CLUSTERER_TEST_PG_URL` is set and on
//! MariaDB/MySQL when `CLUSTERER_TEST_MYSQL_URL` is set. Start throwaway servers with
//! `.ci/services` (as root), then:
//!
//! ```text
//! source target/ci-services/env && cargo test -p clusterer-tokio --test db
//! ```
//!
//! Without the variables the server tests pass after printing a notice on stderr;
//! `CLUSTERER_TEST_REQUIRE_SERVERS=1` (set in CI) turns a missing variable into a failure.
//! Each test uses its own table (dropped first), so the backends and tests do not collide.

// Test helpers outside #[test] functions: unwrap, panic and friends are the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write as _;
use std::process::Command;
use std::sync::Once;
use std::time::{Duration, Instant};

use clusterer_core::{ClusterConfig, ClusterId, Config, DbMode, NodeConfig, NodeId};
use clusterer_tokio::db::{
    self, ColumnNames, DbError, DbSettings, NewNode, RowProblem, TableRow, Value,
};
use sqlx::{AnyConnection, AssertSqlSafe, Connection, Executor};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Sqlite,
    Postgres,
    MySql,
}

impl Kind {
    fn env(self) -> Option<&'static str> {
        match self {
            Kind::Sqlite => None,
            Kind::Postgres => Some("CLUSTERER_TEST_PG_URL"),
            Kind::MySql => Some("CLUSTERER_TEST_MYSQL_URL"),
        }
    }
}

/// One backend for one test.
struct TestDb {
    kind: Kind,
    url: String,
}

static NOTICE_PG: Once = Once::new();
static NOTICE_MYSQL: Once = Once::new();

impl TestDb {
    /// The database for `test` on `kind`, or `None` (after a notice) when the server's
    /// URL is not set. Panics when it is not set and CLUSTERER_TEST_REQUIRE_SERVERS=1.
    fn get(kind: Kind, test: &str) -> Option<TestDb> {
        let Some(var) = kind.env() else {
            let dir = format!("{}/db-tests", env!("CARGO_TARGET_TMPDIR"));
            std::fs::create_dir_all(&dir).unwrap();
            let path = format!("{dir}/{test}.sqlite");
            let _ = std::fs::remove_file(&path);
            return Some(TestDb {
                kind,
                url: format!("sqlite://{path}"),
            });
        };
        match std::env::var(var) {
            Ok(url) if !url.is_empty() => Some(TestDb { kind, url }),
            _ => {
                let required =
                    std::env::var("CLUSTERER_TEST_REQUIRE_SERVERS").is_ok_and(|v| v == "1");
                assert!(
                    !required,
                    "{var} is not set but CLUSTERER_TEST_REQUIRE_SERVERS=1: start the servers \
                     with `.ci/services` and `source target/ci-services/env`"
                );
                let once = if kind == Kind::Postgres {
                    &NOTICE_PG
                } else {
                    &NOTICE_MYSQL
                };
                once.call_once(|| {
                    // Straight to stderr: libtest does not capture this, so it is seen.
                    let _ = writeln!(
                        std::io::stderr(),
                        "\n#############################################################\n\
                         ## NOTICE: {var} is not set: the {kind:?} database tests\n\
                         ## are NOT run. Start servers with `.ci/services`, then\n\
                         ## `source target/ci-services/env`.\n\
                         #############################################################"
                    );
                });
                None
            }
        }
    }

    fn settings(&self, table: &str) -> DbSettings {
        DbSettings {
            table: table.to_owned(),
            ..DbSettings::new(self.url.clone())
        }
    }

    async fn connect(&self) -> AnyConnection {
        sqlx::any::install_default_drivers();
        let url = if self.kind == Kind::Sqlite {
            format!("{}?mode=rwc", self.url)
        } else {
            self.url.clone()
        };
        AnyConnection::connect(&url).await.unwrap()
    }

    /// Runs SQL written for every backend (unquoted lowercase names, literal values).
    async fn exec(&self, sql: &str) {
        let mut conn = self.connect().await;
        conn.execute(AssertSqlSafe(sql.to_owned()))
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        conn.close().await.unwrap();
    }

    /// Drops `table` and forgets its version row.
    async fn fresh(&self, table: &str) {
        let mut conn = self.connect().await;
        conn.execute(AssertSqlSafe(format!("DROP TABLE IF EXISTS {table}")))
            .await
            .unwrap();
        let _ = conn
            .execute(AssertSqlSafe(format!(
                "DELETE FROM version WHERE table_name = '{table}'"
            )))
            .await;
        conn.close().await.unwrap();
    }

    /// The table's version row, as an integer.
    async fn version_of(&self, table: &str) -> Option<i64> {
        let mut conn = self.connect().await;
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT table_version FROM version WHERE table_name = '{table}'"
        )))
        .fetch_optional(&mut conn)
        .await
        .unwrap();
        conn.close().await.unwrap();
        row.map(|r| {
            use sqlx::Row;
            r.try_get::<i64, _>(0).unwrap()
        })
    }

    /// `clusterer db ARGS --db-url URL`, which must succeed; its stdout.
    fn cli(&self, args: &[&str]) -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_clusterer"))
            .arg("db")
            .args(args)
            .args(["--db-url", &self.url])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "clusterer db {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

/// One JSON-RPC request to the MI at `url` (as `clusterer mi` sends it); its `result`.
/// Panics when the server cannot be reached or answers with an error.
fn mi_call(url: &str, method: &str, params: serde_json::Value) -> serde_json::Value {
    let body = serde_json::json!({"jsonrpc": "2.0", "method": method, "params": params, "id": 1});
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let mut response = agent
        .post(url)
        .header("Content-Type", "application/json")
        .send(body.to_string().as_bytes())
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    let text = response.body_mut().read_to_string().unwrap();
    let mut reply: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{url}: not a JSON-RPC response ({e}): {text}"));
    reply
        .remove("result")
        .unwrap_or_else(|| panic!("{url}: {method}: {text}"))
}

fn cluster(id: u32) -> ClusterId {
    ClusterId::new(id).unwrap()
}

fn node(id: u32) -> NodeId {
    NodeId::new(id).unwrap()
}

fn int(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i,
        other => panic!("not an integer: {other:?}"),
    }
}

/// The row of (cluster, node) in a listing.
fn row_of(rows: &[TableRow], c: i64, n: i64) -> &TableRow {
    rows.iter()
        .find(|r| int(&r.cluster_id) == c && int(&r.node_id) == n)
        .unwrap_or_else(|| panic!("no row ({c}, {n})"))
}

// ---------------------------------------------------------------------------------------
// The tests, one body per behaviour, run once per backend (see `per_backend!` below).

/// `init` creates the table and the version row, and is idempotent; a version mismatch is
/// refused by `init` and `load`.
async fn init_creates_the_table_once(db: TestDb) {
    let table = "t_init";
    db.fresh(table).await;
    let settings = db.settings(table);
    let first = db::init(&settings).await.unwrap();
    assert!(first.table_created);
    assert!(first.version_row_created);
    assert_eq!(db.version_of(table).await, Some(db::TABLE_VERSION));
    let again = db::init(&settings).await.unwrap();
    assert!(!again.table_created && !again.version_table_created && !again.version_row_created);
    assert!(db::list(&settings).await.unwrap().is_empty());
    let p = db::load(&settings, node(1)).await.unwrap();
    assert!(p.clusters.is_empty() && p.skipped.is_empty());

    db.exec(&format!(
        "UPDATE version SET table_version = 3 WHERE table_name = '{table}'"
    ))
    .await;
    let e = db::init(&settings).await.unwrap_err();
    assert!(matches!(e, DbError::VersionMismatch { .. }), "{e}");
    let e = db::load(&settings, node(1)).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "table \"t_init\" has version 3 in table \"version\", this clusterer needs version 4"
    );
    db.exec(&format!(
        "UPDATE version SET table_version = 4 WHERE table_name = '{table}'"
    ))
    .await;
    db::init(&settings).await.unwrap();

    // An existing table without the configured columns is reported by init.
    let wrong = DbSettings {
        columns: ColumnNames {
            url: "node_url".to_owned(),
            ..ColumnNames::default()
        },
        ..settings.clone()
    };
    let e = db::init(&wrong).await.unwrap_err();
    assert!(
        e.to_string()
            .contains("checking the columns of the existing table \"t_init\" failed"),
        "{e}"
    );
    // And a missing table by load, naming it.
    let missing = db.settings("t_missing");
    db.fresh("t_missing").await;
    let e = db::load(&missing, node(1)).await.unwrap_err();
    assert!(
        e.to_string().contains("reading table \"t_missing\" failed"),
        "{e}"
    );
}

/// A 3-node cluster provisioned with `clusterer db add-node` (plus one row inserted with
/// the schema defaults) loads back as the exact `ClusterConfig`.
async fn cluster_provisioned_with_add_node_loads_back(db: TestDb) {
    let table = "t_three";
    db.fresh(table).await;
    let t = ["--table", table];
    assert!(
        db.cli(&["init", t[0], t[1]])
            .contains("created table \"t_three\"")
    );
    let added = db.cli(&[
        "add-node",
        t[0],
        t[1],
        "--cluster-id",
        "1",
        "--node-id",
        "1",
        "--url",
        "bin:127.0.0.1:5566",
        "--flags",
        "seed",
        "--sip-addr",
        "127.0.0.1:5060",
    ]);
    assert!(
        added.starts_with("added node 1 to cluster 1 (row id="),
        "{added}"
    );
    db.cli(&[
        "add-node",
        t[0],
        t[1],
        "--cluster-id",
        "1",
        "--node-id",
        "2",
        "--url",
        "bin:127.0.0.2:5566",
        "--description",
        "second",
    ]);
    db.cli(&[
        "add-node",
        t[0],
        t[1],
        "--cluster-id",
        "1",
        "--node-id",
        "3",
        "--url",
        "bins:127.0.0.3",
        "--priority",
        "10",
        "--no-ping-retries",
        "5",
        "--state",
        "0",
    ]);
    // The schema's own defaults: state 1, no_ping_retries 3, priority 50.
    db.exec(&format!(
        "INSERT INTO {table} (cluster_id, node_id, url) VALUES (1, 4, 'bin:127.0.0.4')"
    ))
    .await;
    // A cluster node 1 is not in: ignored.
    db.cli(&[
        "add-node",
        t[0],
        t[1],
        "--cluster-id",
        "2",
        "--node-id",
        "5",
        "--url",
        "bin:127.0.0.5",
    ]);

    // A duplicate (cluster, node) is refused with a clear error.
    let out = Command::new(env!("CARGO_BIN_EXE_clusterer"))
        .args(["db", "add-node", "--table", table, "--db-url", &db.url])
        .args([
            "--cluster-id",
            "1",
            "--node-id",
            "2",
            "--url",
            "bin:127.0.0.9",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("error: node 2 is already in cluster 1 in table \"t_three\" (row id="),
        "{stderr}"
    );

    let settings = db.settings(table);
    let rows = db::list(&settings).await.unwrap();
    assert_eq!(rows.len(), 5);
    let id = |n: i64| Some(int(&row_of(&rows, if n == 5 { 2 } else { 1 }, n).id));
    let expected = ClusterConfig {
        id: cluster(1),
        local: NodeConfig {
            db_id: id(1),
            sip_addr: "127.0.0.1:5060".to_owned(),
            seed: true,
            ..NodeConfig::new(node(1), "bin:127.0.0.1:5566")
        },
        nodes: vec![
            NodeConfig {
                db_id: id(2),
                description: Some("second".to_owned()),
                ..NodeConfig::new(node(2), "bin:127.0.0.2:5566")
            },
            NodeConfig {
                db_id: id(3),
                priority: 10,
                no_ping_retries: 5,
                enabled: false,
                ..NodeConfig::new(node(3), "bins:127.0.0.3")
            },
            NodeConfig {
                db_id: id(4),
                ..NodeConfig::new(node(4), "bin:127.0.0.4")
            },
        ],
    };
    let p = db::load(&settings, node(1)).await.unwrap();
    assert!(p.skipped.is_empty(), "{:?}", p.skipped);
    assert_eq!(p.ignored, 1);
    assert_eq!(p.clusters, [expected]);
    assert!(p.clusters_without_seed().is_empty());
    // The core accepts it as is.
    let mut config = Config::new(node(1), DbMode::Database);
    config.clusters = p.clusters;
    config.validate().unwrap();

    // Seen from node 3: it is the local record, the others keep row order.
    let p = db::load(&settings, node(3)).await.unwrap();
    let c = &p.clusters[0];
    assert_eq!(c.local.id, node(3));
    assert!(!c.local.enabled);
    let others: Vec<u32> = c.nodes.iter().map(|n| n.id.get()).collect();
    assert_eq!(others, [1, 2, 4]);

    // The listing through the CLI, both formats.
    let listing = db.cli(&["list", t[0], t[1]]);
    assert!(listing.starts_with("id"), "{listing}");
    assert!(listing.contains("bins:127.0.0.3"), "{listing}");
    let json: serde_json::Value =
        serde_json::from_str(&db.cli(&["list", t[0], t[1], "--format", "json"])).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 5);
    assert_eq!(json[2]["priority"], 10);
    assert!(json[0]["description"].is_null());
    let check = db.cli(&["check", t[0], t[1], "--my-node-id", "1"]);
    assert!(
        check.contains(
            "cluster 1: node 1 at bin:127.0.0.1:5566, seed; 3 other node(s), list order: 4, 3, 2"
        ),
        "{check}"
    );
}

/// The table and every column can be renamed.
async fn custom_table_and_column_names_work(db: TestDb) {
    let table = "t_custom";
    db.fresh(table).await;
    let settings = DbSettings {
        table: table.to_owned(),
        columns: ColumnNames {
            id: "row_id".to_owned(),
            cluster_id: "cl".to_owned(),
            node_id: "nid".to_owned(),
            url: "node_url".to_owned(),
            state: "st".to_owned(),
            no_ping_retries: "retries".to_owned(),
            priority: "prio".to_owned(),
            sip_addr: "sip".to_owned(),
            flags: "fl".to_owned(),
            description: "descr".to_owned(),
        },
        url: db.url.clone(),
    };
    assert!(db::init(&settings).await.unwrap().table_created);
    for (n, url) in [
        (1, "bin:10.0.0.1"),
        (2, "bin:10.0.0.2"),
        (3, "bin:10.0.0.3"),
    ] {
        let mut new = NewNode::new(cluster(7), node(n), url);
        new.flags = (n == 2).then(|| "seed".to_owned());
        db::add_node(&settings, &new).await.unwrap();
    }
    // The physical columns carry the configured names.
    db.exec(&format!(
        "INSERT INTO {table} (cl, nid, node_url, st, retries, prio) \
         VALUES (7, 4, 'bin:10.0.0.4', 0, 1, 5)"
    ))
    .await;
    db::set_state(&settings, cluster(7), node(1), false)
        .await
        .unwrap();
    let p = db::load(&settings, node(1)).await.unwrap();
    assert!(p.skipped.is_empty(), "{:?}", p.skipped);
    let c = &p.clusters[0];
    assert_eq!(c.id, cluster(7));
    assert!(!c.local.enabled);
    let others: Vec<(u32, bool, bool, i32, u32)> = c
        .nodes
        .iter()
        .map(|n| (n.id.get(), n.seed, n.enabled, n.priority, n.no_ping_retries))
        .collect();
    assert_eq!(
        others,
        [
            (2, true, true, 50, 3),
            (3, false, true, 50, 3),
            (4, false, false, 5, 1)
        ]
    );
    db::remove_node(&settings, cluster(7), node(3))
        .await
        .unwrap();
    assert_eq!(db::list(&settings).await.unwrap().len(), 3);
    // The default names do not exist in this table: a clear error naming the table.
    let e = db::load(&db.settings(table), node(1)).await.unwrap_err();
    assert!(matches!(e, DbError::Query { .. }), "{e}");
    assert!(
        e.to_string().contains("reading table \"t_custom\" failed"),
        "{e}"
    );
}

/// set_state writes exactly the (cluster_id, node_id) row (quirk #19 fixed), also for the
/// local node present in two clusters; a missing row is reported.
async fn set_state_changes_only_its_row(db: TestDb) {
    let table = "t_state";
    db.fresh(table).await;
    let settings = db.settings(table);
    db::init(&settings).await.unwrap();
    for (c, n) in [(1, 1), (1, 2), (2, 1), (2, 2)] {
        let url = format!("bin:10.0.{c}.{n}");
        db::add_node(&settings, &NewNode::new(cluster(c), node(n), url))
            .await
            .unwrap();
    }
    let states = async || {
        let rows = db::list(&settings).await.unwrap();
        [(1, 1), (1, 2), (2, 1), (2, 2)].map(|(c, n)| int(&row_of(&rows, c, n).state))
    };
    db::set_state(&settings, cluster(2), node(1), false)
        .await
        .unwrap();
    assert_eq!(states().await, [1, 1, 0, 1]);
    // Same value again (MySQL reports 0 changed rows): still fine.
    db::set_state(&settings, cluster(2), node(1), false)
        .await
        .unwrap();
    assert_eq!(states().await, [1, 1, 0, 1]);
    db::set_state(&settings, cluster(1), node(2), false)
        .await
        .unwrap();
    assert_eq!(states().await, [1, 0, 0, 1]);
    db::set_state(&settings, cluster(2), node(1), true)
        .await
        .unwrap();
    assert_eq!(states().await, [1, 0, 1, 1]);

    // What node 1 loads reflects it per cluster.
    let p = db::load(&settings, node(1)).await.unwrap();
    let enabled: Vec<(u32, bool, bool)> = p
        .clusters
        .iter()
        .map(|c| (c.id.get(), c.local.enabled, c.nodes[0].enabled))
        .collect();
    assert_eq!(enabled, [(1, true, false), (2, true, true)]);

    let e = db::set_state(&settings, cluster(3), node(1), false)
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "no row for node 1 in cluster 3 in table \"t_state\""
    );
    assert_eq!(states().await, [1, 0, 1, 1]);
    let e = db::remove_node(&settings, cluster(3), node(1))
        .await
        .unwrap_err();
    assert!(matches!(e, DbError::NoSuchRow { .. }), "{e}");
}

/// A reload (`load` again) sees nodes added and removed since the last one.
async fn reload_sees_added_and_removed_nodes(db: TestDb) {
    let table = "t_reload";
    db.fresh(table).await;
    let settings = db.settings(table);
    db::init(&settings).await.unwrap();
    for n in 1..=3 {
        let url = format!("bin:10.0.0.{n}");
        db::add_node(&settings, &NewNode::new(cluster(1), node(n), url))
            .await
            .unwrap();
    }
    let others = async || {
        let p = db::load(&settings, node(1)).await.unwrap();
        p.clusters[0]
            .nodes
            .iter()
            .map(|n| n.id.get())
            .collect::<Vec<_>>()
    };
    assert_eq!(others().await, [2, 3]);
    db::add_node(
        &settings,
        &NewNode::new(cluster(1), node(4), "bin:10.0.0.4"),
    )
    .await
    .unwrap();
    assert_eq!(others().await, [2, 3, 4]);
    db::remove_node(&settings, cluster(1), node(2))
        .await
        .unwrap();
    assert_eq!(others().await, [3, 4]);
}

/// A table with one row of each bad kind next to good rows: the good rows load, each bad
/// row is reported with its id and column.
async fn bad_rows_are_reported_and_good_rows_load(db: TestDb) {
    let table = "t_bad";
    db.fresh(table).await;
    // No constraints, so every kind of bad row can be stored; `url_int` has the wrong
    // type for a URL.
    db.exec(&format!(
        "CREATE TABLE {table} (id INTEGER PRIMARY KEY, cluster_id INTEGER, node_id INTEGER, \
         url VARCHAR(64), state INTEGER, no_ping_retries INTEGER, priority INTEGER, \
         sip_addr VARCHAR(64), flags VARCHAR(64), description VARCHAR(64), url_int INTEGER)"
    ))
    .await;
    let mut values = vec![
        "(1, 1, 1, 'bin:127.0.0.1:5566', 1, 3, 50, NULL, 'seed', NULL, 1)".to_owned(),
        "(2, 1, 2, 'bin:127.0.0.2', 1, 3, 50, NULL, NULL, NULL, 2)".to_owned(),
        "(3, 1, 0, 'bin:127.0.0.3', 1, 3, 50, NULL, NULL, NULL, 3)".to_owned(),
        "(4, 1, 4, 'sip:10.0.0.1', 1, 3, 50, NULL, NULL, NULL, 4)".to_owned(),
        "(5, 1, 5, 'bin:10.0.0.256', 1, 3, 50, NULL, NULL, NULL, 5)".to_owned(),
        "(6, 1, 2, 'bin:127.0.0.6', 1, 3, 50, NULL, NULL, NULL, 6)".to_owned(),
        "(7, 1, 7, 'bin:127.0.0.7', NULL, 3, 50, NULL, NULL, NULL, 7)".to_owned(),
        "(8, -1, 8, 'bin:127.0.0.8', 1, 3, 50, NULL, NULL, NULL, 8)".to_owned(),
        "(9, 1, 9, 'bin:127.0.0.9', 1, 3, 50, NULL, NULL, 'good', 9)".to_owned(),
        "(10, 3, 10, 'not even a url', NULL, NULL, NULL, NULL, NULL, NULL, 10)".to_owned(),
        "(11, 1, 11, 'bin:127.0.0.11', 1, -1, 50, NULL, NULL, NULL, 11)".to_owned(),
        "(12, 1, 12, NULL, 1, 3, 50, NULL, NULL, NULL, 12)".to_owned(),
    ];
    if db.kind == Kind::Sqlite {
        // SQLite keeps the type of each value: a per-row wrong type.
        values.push("(13, 1, 13, 'bin:127.0.0.13', 1, 3, 'high', NULL, NULL, NULL, 13)".into());
    }
    // Cluster 2: the local node and 129 others, one too many.
    values.push("(100, 2, 1, 'bin:127.0.0.1', 1, 3, 50, NULL, NULL, NULL, 100)".into());
    for n in 101..=229 {
        values.push(format!(
            "({n}, 2, {n}, 'bin:127.0.1.1:{n}', 1, 3, 50, NULL, NULL, NULL, {n})"
        ));
    }
    // Clusters 100..=162: with clusters 1 and 2 that is 65 for the local node, one too many.
    for r in 300..=362 {
        let c = r - 200;
        values.push(format!(
            "({r}, {c}, 1, 'bin:127.0.0.1', 1, 3, 50, NULL, NULL, NULL, {r})"
        ));
    }
    db.exec(&format!(
        "INSERT INTO {table} (id, cluster_id, node_id, url, state, no_ping_retries, priority, \
         sip_addr, flags, description, url_int) VALUES {}",
        values.join(", ")
    ))
    .await;

    let settings = db.settings(table);
    let p = db::load(&settings, node(1)).await.unwrap();
    let got: Vec<(Option<i64>, &str)> = p
        .skipped
        .iter()
        .map(|e| (e.row_id, e.column.as_str()))
        .collect();
    let mut expected = vec![
        (Some(3), "node_id"),
        (Some(4), "url"),
        (Some(5), "url"),
        (Some(6), "node_id"),
        (Some(7), "state"),
        (Some(8), "cluster_id"),
        (Some(11), "no_ping_retries"),
        (Some(12), "url"),
    ];
    if db.kind == Kind::Sqlite {
        expected.push((Some(13), "priority"));
    }
    expected.extend([(Some(229), "node_id"), (Some(362), "cluster_id")]);
    assert_eq!(got, expected, "{:#?}", p.skipped);
    let text: Vec<String> = p.skipped.iter().map(ToString::to_string).collect();
    for line in [
        "row id=3: column node_id: 0 is out of range (expected 1..=2147483647)",
        "row id=4: column url: \"sip:10.0.0.1\" has an unknown scheme (expected bin: or bins:)",
        "row id=5: column url: \"bin:10.0.0.256\" is not a valid node address: host must be an IPv4 address or a bracketed IPv6 address",
        "row id=6: column node_id: node 2 is already provisioned in cluster 1 by row id=2",
        "row id=7: column state: is NULL, but a value is required",
        "row id=8: column cluster_id: -1 is out of range (expected 1..=2147483647)",
        "row id=11: column no_ping_retries: -1 is out of range (expected 0..=4294967295)",
        "row id=12: column url: is NULL, but a value is required",
        "row id=229: column node_id: cluster 2 already has 128 other nodes (the limit)",
        "row id=362: column cluster_id: the local node is already in 64 clusters (the limit); cluster 162 is not loaded",
    ] {
        assert!(
            text.iter().any(|t| t == line),
            "missing {line:?} in {text:#?}"
        );
    }
    if db.kind == Kind::Sqlite {
        assert!(
            text.contains(&"row id=13: column priority: expected an integer, got text".to_owned())
        );
    }
    assert!(matches!(
        p.skipped[0].problem,
        RowProblem::OutOfRange { .. }
    ));

    // The good rows.
    assert_eq!(p.ignored, 1);
    assert_eq!(p.clusters.len(), 64);
    let c1 = &p.clusters[0];
    assert_eq!(c1.id, cluster(1));
    assert!(c1.local.seed);
    let ids: Vec<u32> = c1.nodes.iter().map(|n| n.id.get()).collect();
    assert_eq!(ids, [2, 9]);
    assert_eq!(c1.nodes[1].description.as_deref(), Some("good"));
    assert_eq!(p.clusters[1].nodes.len(), 128);
    assert_eq!(p.clusters[63].id, cluster(161));
    let mut config = Config::new(node(1), DbMode::Database);
    config.clusters = p.clusters;
    config.validate().unwrap();

    // A column of the wrong type: every row of the local node's clusters is reported.
    let small = "t_badtype";
    db.fresh(small).await;
    db.exec(&format!(
        "CREATE TABLE {small} (id INTEGER PRIMARY KEY, cluster_id INTEGER, node_id INTEGER, \
         url VARCHAR(64), state INTEGER, no_ping_retries INTEGER, priority INTEGER, \
         sip_addr VARCHAR(64), flags VARCHAR(64), description VARCHAR(64), url_int INTEGER)"
    ))
    .await;
    db.exec(&format!(
        "INSERT INTO {small} (id, cluster_id, node_id, url, state, no_ping_retries, priority, \
         url_int) VALUES (1, 1, 1, 'bin:127.0.0.1', 1, 3, 50, 1), \
         (2, 1, 2, 'bin:127.0.0.2', 1, 3, 50, 2)"
    ))
    .await;
    let wrong_type = DbSettings {
        columns: ColumnNames {
            url: "url_int".to_owned(),
            ..ColumnNames::default()
        },
        ..db.settings(small)
    };
    let p = db::load(&wrong_type, node(1)).await.unwrap();
    assert!(p.clusters.is_empty());
    let text: Vec<String> = p.skipped.iter().map(ToString::to_string).collect();
    assert_eq!(
        text,
        [
            "row id=1: column url_int: expected a string, got an integer",
            "row id=2: column url_int: expected a string, got an integer",
        ]
    );
}

/// The daemon on this backend (db_mode 1): a 3-node cluster provisioned in the table forms
/// and routes; `clusterer_reload` picks up an added and a removed node; `clusterer_set_status`
/// persists the state of exactly that row.
async fn daemons_provisioned_from_the_table_form_route_reload_and_persist(db: TestDb) {
    use clusterer_core::message::RoutedBody;
    use clusterer_core::{Event, LinkState};
    use clusterer_tokio::config::DaemonConfig;
    use clusterer_tokio::daemon::Daemon;

    let table = "t_daemon";
    db.fresh(table).await;
    let settings = db.settings(table);
    db::init(&settings).await.unwrap();
    let port: u16 = match db.kind {
        Kind::Sqlite => 17_710,
        Kind::Postgres => 17_720,
        Kind::MySql => 17_730,
    };
    let mi_port = port + 1000;
    for n in 1..=3 {
        let url = format!("bin:127.0.0.{n}:{port}");
        db::add_node(&settings, &NewNode::new(cluster(1), node(n), url))
            .await
            .unwrap();
    }
    let start = async |n: u32| {
        let text = format!(
            "my_node_id = {n}\ndb_mode = 1\ndb_url = \"{}\"\ndb_table = \"{table}\"\n\
             ping_interval = 1\nping_timeout = 300\nnode_timeout = 2\n\
             [mi]\nlisten = \"127.0.0.{n}:{mi_port}\"\n[metrics]\nenabled = false\n",
            db.url
        );
        Daemon::start(DaemonConfig::from_toml_str(&text).unwrap())
            .await
            .unwrap()
    };
    let mi = async |n: u32, method: &'static str, params: serde_json::Value| {
        let url = format!("http://127.0.0.{n}:{mi_port}/mi");
        tokio::task::spawn_blocking(move || mi_call(&url, method, params))
            .await
            .unwrap()
    };
    let links = async |d: &Daemon| -> Vec<(u32, LinkState)> {
        d.handle()
            .call(|s| {
                s.endpoint
                    .node()
                    .cluster(cluster(1))
                    .map_or(Vec::new(), |c| {
                        c.nodes()
                            .iter()
                            .map(|n| (n.id().get(), n.link_state()))
                            .collect()
                    })
            })
            .await
            .unwrap()
    };
    let wait = async |what: &str, d: &Daemon, want: &[u32]| {
        for _ in 0..200 {
            let mut up: Vec<u32> = links(d)
                .await
                .into_iter()
                .filter(|(_, s)| *s == LinkState::Up)
                .map(|(n, _)| n)
                .collect();
            up.sort();
            if up == want {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!(
            "{:?}: timed out waiting for {what}: {:?}",
            db.kind,
            links(d).await
        );
    };
    let d1 = start(1).await;
    let d2 = start(2).await;
    let d3 = start(3).await;
    wait("1 sees 2 and 3 Up", &d1, &[2, 3]).await;
    wait("3 sees 1 and 2 Up", &d3, &[1, 2]).await;
    // Routes: a request from 1 reaches 3.
    let mut events = d3.handle().subscribe();
    let (status, _) = d1
        .handle()
        .send_req(cluster(1), node(3), b"ping".to_vec())
        .await
        .unwrap();
    assert_eq!(status, clusterer_core::SendStatus::Success);
    let got = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        loop {
            if let Event::Received {
                source,
                body: RoutedBody::GenericMsg(_),
                ..
            } = events.recv().await.unwrap()
            {
                return source;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(got, node(1));

    // Reload: node 4 added, node 3 removed.
    db::add_node(
        &settings,
        &NewNode::new(cluster(1), node(4), format!("bin:127.0.0.4:{port}")),
    )
    .await
    .unwrap();
    db::remove_node(&settings, cluster(1), node(3))
        .await
        .unwrap();
    let d4 = start(4).await;
    assert_eq!(
        mi(1, "clusterer_reload", serde_json::json!([])).await,
        serde_json::json!("OK")
    );
    let mut ids: Vec<u32> = links(&d1).await.into_iter().map(|(n, _)| n).collect();
    ids.sort();
    assert_eq!(ids, [2, 4], "{:?}: node 3 gone, node 4 added", db.kind);
    wait("1 sees 2 and 4 Up after the reload", &d1, &[2, 4]).await;

    // set_status persists only the (node 2, cluster 1) row.
    assert_eq!(
        mi(1, "clusterer_set_status", serde_json::json!([1, 2, 0])).await,
        serde_json::json!("OK")
    );
    let rows = db::list(&settings).await.unwrap();
    assert_eq!(int(&row_of(&rows, 1, 2).state), 0, "{:?}", db.kind);
    assert_eq!(int(&row_of(&rows, 1, 1).state), 1);
    assert_eq!(int(&row_of(&rows, 1, 4).state), 1);
    for d in [d1, d2, d3, d4] {
        d.stop().await;
    }
}

/// Generates one `#[tokio::test]` per behaviour in a module per backend.
macro_rules! per_backend {
    ($module:ident, $kind:expr, [$($test:ident),* $(,)?]) => {
        mod $module {
            $(
                #[tokio::test]
                async fn $test() {
                    if let Some(db) = super::TestDb::get($kind, stringify!($test)) {
                        super::$test(db).await;
                    }
                }
            )*
        }
    };
}

macro_rules! all_backends {
    ($($test:ident),* $(,)?) => {
        per_backend!(sqlite, super::Kind::Sqlite, [$($test),*]);
        per_backend!(postgres, super::Kind::Postgres, [$($test),*]);
        per_backend!(mysql, super::Kind::MySql, [$($test),*]);
    };
}

all_backends!(
    daemons_provisioned_from_the_table_form_route_reload_and_persist,
    init_creates_the_table_once,
    cluster_provisioned_with_add_node_loads_back,
    custom_table_and_column_names_work,
    set_state_changes_only_its_row,
    reload_sees_added_and_removed_nodes,
    bad_rows_are_reported_and_good_rows_load,
);

/// An unreachable database fails quickly with the URL (password redacted) and the cause.
/// Needs no server: nothing listens on port 1, and the SQLite directory does not exist.
#[tokio::test]
async fn unreachable_databases_fail_quickly_and_clearly() {
    for (url, shown) in [
        (
            "postgres://clusterer:hunter2@127.0.0.1:1/clusterer",
            "postgres://clusterer:***@127.0.0.1:1/clusterer",
        ),
        (
            "mysql://clusterer:hunter2@127.0.0.1:1/clusterer",
            "mysql://clusterer:***@127.0.0.1:1/clusterer",
        ),
        (
            "sqlite:///nonexistent-clusterer-dir/sub/clusterer.sqlite",
            "sqlite:///nonexistent-clusterer-dir/sub/clusterer.sqlite",
        ),
    ] {
        let started = Instant::now();
        let e = db::load(&DbSettings::new(url), node(1)).await.unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{url}: too slow"
        );
        let text = e.to_string();
        assert!(matches!(e, DbError::Connect { .. }), "{text}");
        assert!(
            text.starts_with(&format!("cannot connect to {shown}: ")),
            "{text}"
        );
        assert!(!text.contains("hunter2"), "{text}");
        assert!(
            text.len() > format!("cannot connect to {shown}: ").len(),
            "{text}"
        );
    }
    let e = db::load(&DbSettings::new("redis://127.0.0.1"), node(1))
        .await
        .unwrap_err();
    assert!(matches!(e, DbError::UnsupportedUrl { .. }), "{e}");
}

/// A server that accepts the connection and never answers costs at most
/// [`db::CONNECT_TIMEOUT`], then a clear error.
#[tokio::test]
async fn silent_server_times_out_at_the_connect_timeout() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hold = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            open.push(stream);
        }
    });
    let pg = DbSettings::new(format!(
        "postgres://clusterer:pw@127.0.0.1:{port}/clusterer"
    ));
    let my = DbSettings::new(format!("mysql://clusterer:pw@127.0.0.1:{port}/clusterer"));
    let started = Instant::now();
    let (a, b) = tokio::join!(
        db::load(&pg, node(1)),
        db::set_state(&my, cluster(1), node(1), false),
    );
    let elapsed = started.elapsed();
    assert!(elapsed >= db::CONNECT_TIMEOUT, "{elapsed:?}");
    assert!(
        elapsed < db::CONNECT_TIMEOUT + Duration::from_secs(2),
        "{elapsed:?}"
    );
    for e in [a.unwrap_err(), b.unwrap_err()] {
        let text = e.to_string();
        assert!(
            text.contains(&format!(
                "@127.0.0.1:{port}/clusterer: no answer within 5 s"
            )),
            "{text}"
        );
        assert!(!text.contains(":pw@"), "{text}");
    }
    hold.abort();
}
