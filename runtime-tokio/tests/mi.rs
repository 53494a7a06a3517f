//! The MI layer against real engines on 127.0.0.x and the captures of OpenSIPS 3.6.8 in
//! `vectors/opensips/mi/`: the captured JSON-RPC requests are sent as they are and the
//! answers compared byte for byte (BIN port substituted) wherever the cluster state is the
//! same, by shape otherwise. Also: HTTP edge cases, remote MI, `clusterer mi`, and the real
//! `opensips-cli` from PyPI.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clusterer_core::capability::{Capability, Rejected};
use clusterer_core::message::{GenericKind, ModulePacket, RoutedBody};
use clusterer_core::{
    ClusterConfig, ClusterId, Config, DbMode, Event, NodeConfig, NodeId, NodeMatch, ShtagConfig,
    ShtagState,
};
use clusterer_tokio::mi::commands::core::server_string;
use clusterer_tokio::mi::ctime::ctime_utc;
use clusterer_tokio::mi::{
    CommandSpec, MiError, MiOptions, MiService, Origin, ReloadHook, RemoteMiOutcome,
};
use clusterer_tokio::runtime::{CapabilityRegistration, Cluster, Handle, StartOptions};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::broadcast;

const C1: ClusterId = match ClusterId::new(1) {
    Some(c) => c,
    None => panic!(),
};

fn n(i: u32) -> NodeId {
    NodeId::new(i).unwrap()
}

// ---------------------------------------------------------------------------------------
// Captures

#[derive(Clone, Debug)]
struct Exchange {
    node: String,
    note: String,
    request: String,
    response: Option<String>,
}

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../vectors/opensips/mi")
}

fn load(file: &str) -> Vec<Exchange> {
    let text = std::fs::read_to_string(vectors().join(format!("{file}.json"))).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    v["exchanges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| Exchange {
            node: e["node"].as_str().unwrap().to_owned(),
            note: e["note"].as_str().unwrap_or_default().to_owned(),
            request: e["request_raw"].as_str().unwrap().to_owned(),
            response: e["response_raw"].as_str().map(str::to_owned),
        })
        .collect()
}

/// The exchange of `file` whose request has JSON-RPC id `id`.
fn by_id(file: &str, id: i64) -> Exchange {
    load(file)
        .into_iter()
        .find(|e| {
            serde_json::from_str::<Value>(&e.request)
                .ok()
                .and_then(|r| r["id"].as_i64())
                == Some(id)
        })
        .unwrap_or_else(|| panic!("no request id {id} in {file}"))
}

/// Types and keys, values replaced by their type name (arrays: the shape of each item).
fn skeleton(v: &Value) -> Value {
    match v {
        Value::Object(o) => {
            Value::Object(o.iter().map(|(k, v)| (k.clone(), skeleton(v))).collect())
        }
        Value::Array(a) => {
            let mut items: Vec<Value> = a.iter().map(skeleton).collect();
            items.dedup();
            Value::Array(items)
        }
        Value::String(_) => json!("<string>"),
        Value::Number(_) => json!("<number>"),
        Value::Bool(_) => json!("<bool>"),
        Value::Null => Value::Null,
    }
}

// ---------------------------------------------------------------------------------------
// HTTP

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// One HTTP/1.1 request on a fresh connection, read to the end.
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> Reply {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(ct) = content_type {
        head.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut raw))
        .await
        .expect("MI server answers")
        .unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Reply {
        status,
        headers,
        body: body.to_owned(),
    }
}

async fn post(addr: SocketAddr, body: &str) -> Reply {
    http(
        addr,
        "POST",
        "/mi",
        Some("application/json"),
        body.as_bytes(),
    )
    .await
}

// ---------------------------------------------------------------------------------------
// Nodes

struct NullCap;

impl Capability for NullCap {
    fn produce_sync_chunks(&mut self, _requester: NodeId, _chunk: &mut dyn FnMut(&[u8])) {}

    fn apply_sync_chunk(&mut self, _donor: NodeId, _v: i32, _chunk: &[u8]) -> Result<(), Rejected> {
        Ok(())
    }

    fn apply_packet(
        &mut self,
        _source: NodeId,
        _v: i16,
        _p: &ModulePacket,
    ) -> Result<(), Rejected> {
        Ok(())
    }
}

struct TestNode {
    id: u32,
    port: u16,
    handle: Handle,
    mi: MiService,
    addr: SocketAddr,
}

impl TestNode {
    /// Starts a node of cluster 1 on 127.0.0.`me`:`port` with its MI on 127.0.0.1:0.
    async fn start(
        me: u32,
        port: u16,
        neighbours: &[u32],
        tag: Option<ShtagState>,
        cap: bool,
    ) -> TestNode {
        let mut config = Config::new(n(me), DbMode::Discovery);
        config.timers.ping_interval_s = 1;
        config.timers.ping_timeout_ms = 300;
        config.timers.node_timeout_s = 2;
        let mut local = NodeConfig::new(n(me), format!("bin:127.0.0.{me}:{port}"));
        local.seed = neighbours.is_empty();
        config.clusters.push(ClusterConfig {
            id: C1,
            local,
            nodes: neighbours
                .iter()
                .map(|&p| NodeConfig::new(n(p), format!("bin:127.0.0.{p}:{port}")))
                .collect(),
        });
        if let Some(state) = tag {
            config.sharing_tags.push(ShtagConfig {
                name: "vip".into(),
                cluster: C1,
                state,
                election: None,
            });
        }
        let mut opts = StartOptions::new(config);
        opts.seed = Some(u64::from(me));
        if cap {
            opts.capabilities.push(CapabilityRegistration {
                cluster: C1,
                name: "dialog-dlg-repl".into(),
                startup_sync: false,
                condition: NodeMatch::Any,
                handler: Box::new(NullCap),
            });
        }
        let handle = Cluster::start(opts).await.unwrap().0;
        TestNode::with_mi(me, port, handle, MiOptions::default()).await
    }

    async fn with_mi(me: u32, port: u16, handle: Handle, mut options: MiOptions) -> TestNode {
        options.listen = "127.0.0.1:0".parse().unwrap();
        let mi = MiService::start(handle.clone(), &options).await.unwrap();
        let addr = mi.local_addr().unwrap();
        TestNode {
            id: me,
            port,
            handle,
            mi,
            addr,
        }
    }

    async fn ask(&self, body: &str) -> String {
        let r = post(self.addr, body).await;
        assert_eq!(r.status, 200, "{body} -> {r:?}");
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(
            r.header("content-length"),
            Some(r.body.len().to_string().as_str())
        );
        r.body
    }

    async fn call(&self, method: &str, params: Value) -> Value {
        let body = json!({"jsonrpc": "2.0", "method": method, "params": params, "id": 1});
        serde_json::from_str(&self.ask(&body.to_string()).await).unwrap()
    }

    async fn stop(self) {
        self.mi.shutdown().await;
        self.handle.shutdown().await;
    }
}

/// The captured answer with the BIN port of the captures (5566) replaced by ours.
fn expected(e: &Exchange, port: u16) -> String {
    e.response
        .as_deref()
        .unwrap()
        .replace(":5566\"", &format!(":{port}\""))
}

fn node_of<'a>(nodes: &'a [&'a TestNode], e: &Exchange) -> &'a TestNode {
    let id: u32 = e.node.trim_start_matches("node").parse().unwrap();
    nodes.iter().find(|t| t.id == id).unwrap()
}

/// Sends the captured request to the captured node and expects the captured answer.
async fn replay(nodes: &[&TestNode], file: &str, id: i64) {
    let e = by_id(file, id);
    let node = node_of(nodes, &e);
    let got = node.ask(&e.request).await;
    assert_eq!(
        got,
        expected(&e, node.port),
        "{file} #{id} on {} ({})",
        e.node,
        e.note
    );
}

/// Replays until the answer equals the capture (the cluster converges), at most `secs`.
async fn replay_until(nodes: &[&TestNode], file: &str, id: i64, secs: u64) {
    replay_until_any(nodes, file, id, &[], secs).await;
}

/// As [`replay_until`], also accepting the captured answers to requests `alternatives`
/// (other captures of the same state, e.g. neighbour lists whose order depends on which
/// link came up first) with their id replaced by `id`.
async fn replay_until_any(
    nodes: &[&TestNode],
    file: &str,
    id: i64,
    alternatives: &[i64],
    secs: u64,
) {
    let e = by_id(file, id);
    let node = node_of(nodes, &e);
    let mut wanted = vec![expected(&e, node.port)];
    for &alt in alternatives {
        let a = by_id(file, alt);
        assert_eq!(a.node, e.node, "{file} #{alt} is not from {}", e.node);
        let body = expected(&a, node.port);
        let body = body
            .strip_suffix(&format!(",\"id\":{alt}}}"))
            .map(|b| format!("{b},\"id\":{id}}}"))
            .unwrap();
        wanted.push(body);
    }
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let got = node.ask(&e.request).await;
        if wanted.contains(&got) {
            return;
        }
        if Instant::now() > deadline {
            panic!(
                "{file} #{id} on {} ({}):\n  got  {got}\n  want {}",
                e.node,
                e.note,
                wanted.join("\n    or ")
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every `Neighbours` list sorted.
fn sort_neighbours(v: &mut Value) {
    if let Some(clusters) = v["result"]["Clusters"].as_array_mut() {
        for c in clusters {
            for node in c["Nodes"].as_array_mut().into_iter().flatten() {
                if let Some(list) = node["Neighbours"].as_array_mut() {
                    list.sort_by_key(|x| x.as_u64());
                }
            }
        }
    }
}

/// A topology after links went down and came back: their order then depends on which
/// PONG came first, so the lists are compared as sets, against the captured answer
/// changed by `fixup` (for a state where our core knows something OpenSIPS did not; each
/// use says what and why).
async fn replay_topology_until(
    nodes: &[&TestNode],
    id: i64,
    secs: u64,
    fixup: impl Fn(&mut Value),
) {
    let e = by_id("clusterer_list_topology", id);
    let node = node_of(nodes, &e);
    let mut want: Value = serde_json::from_str(&expected(&e, node.port)).unwrap();
    fixup(&mut want);
    sort_neighbours(&mut want);
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let mut got: Value = serde_json::from_str(&node.ask(&e.request).await).unwrap();
        sort_neighbours(&mut got);
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "topology #{id} on {} ({}):\n  got  {got}\n  want {want}",
            e.node,
            e.note
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every node sees every link of the full mesh, in whatever order the links came up.
async fn full_mesh(nodes: &[&TestNode]) {
    let ids: Vec<u64> = nodes.iter().map(|t| u64::from(t.id)).collect();
    for node in nodes {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let v = node.call("clusterer_list_topology", json!([])).await;
            let entries = v["result"]["Clusters"][0]["Nodes"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let complete = entries.len() == ids.len()
                && entries.iter().all(|e| {
                    let me = e["node_id"].as_u64().unwrap();
                    let mut got: Vec<u64> = e["Neighbours"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|x| x.as_u64().unwrap())
                        .collect();
                    got.sort_unstable();
                    let want: Vec<u64> = ids.iter().copied().filter(|&i| i != me).collect();
                    got == want
                });
            if complete {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "node {}: no full mesh: {v}",
                node.id
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The steady-state topology on each node, accepting every captured neighbour order.
async fn steady_topology(nodes: &[&TestNode]) {
    for group in [
        [17, 319, 596, 612],
        [21, 323, 598, 616],
        [25, 327, 600, 620],
    ] {
        replay_until_any(nodes, "clusterer_list_topology", group[0], &group[1..], 20).await;
    }
}

async fn wait_outcome(
    rx: &mut broadcast::Receiver<RemoteMiOutcome>,
    command: &str,
) -> RemoteMiOutcome {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let o = rx.recv().await.unwrap();
            if o.command == command {
                return o;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no remote run of {command}"))
}

/// node1 (seed, `vip/1=active`), then node2 and node3 (each knowing only node1,
/// `vip/1=backup`), all with `dialog-dlg-repl`: the capture setup.
async fn capture_cluster(port: u16) -> (TestNode, TestNode, TestNode) {
    let a = TestNode::start(1, port, &[], Some(ShtagState::Active), true).await;
    let b = TestNode::start(2, port, &[1], Some(ShtagState::Backup), true).await;
    replay_until_list_len(&a, 1).await;
    let c = TestNode::start(3, port, &[1], Some(ShtagState::Backup), true).await;
    (a, b, c)
}

/// Waits until `node` lists `count` Up nodes.
async fn replay_until_list_len(node: &TestNode, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let v = node.call("clusterer_list", json!({})).await;
        let nodes = v["result"]["Clusters"][0]["Nodes"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if nodes.len() == count && nodes.iter().all(|x| x["link_state"] == "Up") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "node {} never saw {count} nodes up: {v}",
            node.id
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---------------------------------------------------------------------------------------
// The capture sequence

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_the_captured_mi_session() {
    let port = 17_201;
    let (a, b, c) = capture_cluster(port).await;
    let all = [&a, &b, &c];

    // Steady state, all nodes up: lists, topology, capabilities, tags, statistics.
    for id in [16, 20, 24] {
        replay_until(&all, "clusterer_list", id, 20).await;
    }
    steady_topology(&all).await;
    for id in [18, 22, 26] {
        replay(&all, "clusterer_list_cap", id).await;
    }
    for id in [19, 23, 27] {
        replay(&all, "clusterer_list_shtags", id).await;
    }
    replay(&all, "sr_clusterer", 610).await;

    // JSON-RPC and parameter errors.
    let errors = load("jsonrpc_errors");
    for e in errors.iter().filter(|e| e.response.is_some()) {
        assert_eq!(a.ask(&e.request).await, expected(e, port), "{}", e.note);
    }
    replay(&all, "clusterer_list", 603).await;
    for id in [601, 602] {
        replay(&all, "clusterer_reload", id).await;
    }
    for id in [485, 486, 487, 488] {
        replay(&all, "clusterer_set_status", id).await;
    }
    replay(&all, "clusterer_set_cap_status", 526).await;
    for id in [502, 503] {
        replay(&all, "clusterer_shtag_set_active", id).await;
    }
    for id in [527, 528] {
        replay(&all, "clusterer_remove_node", id).await;
    }
    for id in [510, 511, 512] {
        replay(&all, "cluster_send_mi", id).await;
    }

    // cluster_send_mi: OK as soon as sent; the command runs (or fails) on the destination.
    let mut on2 = b.mi.remote().subscribe();
    let mut on3 = c.mi.remote().subscribe();
    for id in [507, 508, 509, 513] {
        replay(&all, "cluster_send_mi", id).await;
    }
    let uptime = wait_outcome(&mut on3, "uptime").await;
    assert_eq!((uptime.source, uptime.cluster), (n(1), C1));
    assert_eq!(
        skeleton(&uptime.result.unwrap()),
        skeleton(&json!({"Now": "", "Up since": "", "Up time": ""}))
    );
    let version = wait_outcome(&mut on3, "version").await;
    assert_eq!(version.result, Ok(json!({"Server": server_string()})));
    let missing = wait_outcome(&mut on3, "no_such_cmd").await;
    assert_eq!(
        missing.result,
        Err(MiError::new(400, "Command to be run not found"))
    );
    let xlog = wait_outcome(&mut on2, "xlog_level").await;
    assert_eq!(xlog.params, ["3"]);
    assert_eq!(
        xlog.result,
        Err(MiError::new(400, "Command to be run not found"))
    );

    // cluster_broadcast_mi: the local result, whatever the cluster id.
    for id in [514, 517] {
        let e = by_id("cluster_broadcast_mi", id);
        let got: Value = serde_json::from_str(&node_of(&all, &e).ask(&e.request).await).unwrap();
        let want: Value = serde_json::from_str(e.response.as_deref().unwrap()).unwrap();
        assert_eq!(skeleton(&got), skeleton(&want), "{}", e.note);
        let up = got["result"]["Up time"].as_str().unwrap();
        assert!(up.ends_with(" [sec]"), "{up}");
    }
    let e = by_id("cluster_broadcast_mi", 516);
    assert_eq!(
        a.ask(&e.request).await,
        json!({"jsonrpc": "2.0", "result": {"Server": server_string()}, "id": 516}).to_string()
    );

    // Sharing tags: node2 takes vip/1, node1 takes it back, then creates nosuch/1.
    for (set, lists) in [(492, [493, 494, 495]), (496, [497, 498, 499])] {
        replay(&all, "clusterer_shtag_set_active", set).await;
        for id in lists {
            replay_until(&all, "clusterer_list_shtags", id, 10).await;
        }
    }
    for id in [500, 501] {
        replay(&all, "clusterer_shtag_set_active", id).await;
    }
    for id in [504, 505, 506] {
        replay_until(&all, "clusterer_list_shtags", id, 10).await;
    }
    let tags = a
        .call(
            "sr_list_reports",
            json!({"group": "clusterer", "identifier": "sharing_tags"}),
        )
        .await;
    let logs: Vec<&str> = tags["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["Log"].as_str().unwrap())
        .collect();
    let captured: Value =
        serde_json::from_str(by_id("sr_clusterer", 608).response.as_deref().unwrap()).unwrap();
    let captured_logs: Vec<&str> = captured["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["Log"].as_str().unwrap())
        .collect();
    assert_eq!(logs, captured_logs);

    // Capability disabled then enabled on node1: it stays "not synced".
    replay(&all, "clusterer_set_cap_status", 518).await;
    for id in [519, 520, 521] {
        replay(&all, "clusterer_list_cap", id).await;
    }
    replay(&all, "clusterer_set_cap_status", 522).await;
    for id in [523, 524, 525] {
        replay(&all, "clusterer_list_cap", id).await;
    }

    // Status/report group after all that.
    replay(&all, "sr_clusterer", 609).await;
    let e = by_id("sr_clusterer", 607);
    let got: Value = serde_json::from_str(&a.ask(&e.request).await).unwrap();
    let want: Value = serde_json::from_str(e.response.as_deref().unwrap()).unwrap();
    assert_eq!(skeleton(&got), skeleton(&want));
    let reports = got["result"].as_array().unwrap();
    for r in reports {
        assert_eq!(r["Date"], ctime_utc(r["Timestamp"].as_i64().unwrap()));
    }
    let first: Vec<&str> = reports
        .iter()
        .take(2)
        .map(|r| r["Log"].as_str().unwrap())
        .collect();
    assert_eq!(
        first,
        ["Node [2], cluster [1] is UP", "Node [3], cluster [1] is UP"]
    );

    // node2 disables itself (named params), everyone sees it down; re-enables (positional).
    replay(&all, "clusterer_set_status", 356).await;
    for id in [455, 456] {
        replay_until(&all, "clusterer_list", id, 15).await;
    }
    replay(&all, "clusterer_set_status", 458).await;
    for id in [16, 20, 24] {
        replay_until(&all, "clusterer_list", id, 20).await;
    }
    // Neighbour lists are most recent first: node2's links are now the newest.
    full_mesh(&all).await;

    // node1 disables node 3 in its own view, then re-enables it.
    replay(&all, "clusterer_set_status", 461).await;
    replay_until(&all, "clusterer_list", 462, 15).await;
    replay_topology_until(&all, 463, 15, |_| {}).await;
    replay_until(&all, "clusterer_list", 464, 15).await;
    replay_topology_until(&all, 465, 15, |_| {}).await;
    replay_until(&all, "clusterer_list", 466, 15).await;
    // OpenSIPS showed node1's gossiped neighbour list as [] on node3 here; node1 still has
    // its link with node2 and our core keeps it (node3 learned it and nothing withdrew it).
    replay_topology_until(&all, 467, 15, |v| {
        v["result"]["Clusters"][0]["Nodes"][2]["Neighbours"] = json!([2]);
    })
    .await;
    replay(&all, "clusterer_set_status", 468).await;
    for id in [611, 615, 619] {
        replay_until(&all, "clusterer_list", id, 20).await;
    }
    full_mesh(&all).await;

    // node1 removes node 3 (running): node3 disables itself, the others forget it.
    replay(&all, "clusterer_remove_node", 529).await;
    for id in [530, 532] {
        replay_until(&all, "clusterer_list", id, 15).await;
    }
    for id in [531, 533] {
        replay_topology_until(&all, id, 15, |_| {}).await;
    }
    replay_until(&all, "clusterer_list", 534, 15).await;
    replay_topology_until(&all, 535, 15, |_| {}).await;

    // node3 comes back only after a restart, through normal discovery.
    c.stop().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let c = TestNode::start(3, port, &[1], Some(ShtagState::Backup), true).await;
    let all = [&a, &b, &c];
    for id in [595, 597, 599] {
        replay_until(&all, "clusterer_list", id, 20).await;
    }
    full_mesh(&all).await;

    for t in [a, b, c] {
        t.stop().await;
    }
}

// ---------------------------------------------------------------------------------------
// Remote MI

/// Registers `demo_touch` ([] or [tag]) counting its runs, and `demo_named` (named only).
fn demo_commands(node: &TestNode) -> Arc<AtomicUsize> {
    let count = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    let me = node.id;
    node.mi
        .dispatcher()
        .register("demo_touch", &[&[], &["tag"]], move |call| {
            let seen = Arc::clone(&seen);
            async move {
                seen.fetch_add(1, Ordering::SeqCst);
                let tag = call.params.opt_string("tag")?;
                Ok(json!({ "node": me, "tag": tag, "remote": matches!(call.origin, Origin::Remote { .. }) }))
            }
        })
        .unwrap();
    node.mi
        .dispatcher()
        .register_command(
            CommandSpec::new("demo_named", "demo")
                .recipe(&["x"])
                .named_only(),
            |_| async { Ok(json!("OK")) },
        )
        .unwrap();
    count
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_mi_runs_on_every_node_and_answers_locally() {
    let port = 17_202;
    let (a, b, c) = capture_cluster(port).await;
    replay_until_list_len(&a, 2).await;
    replay_until_list_len(&b, 2).await;
    replay_until_list_len(&c, 2).await;
    let counts = [demo_commands(&a), demo_commands(&b), demo_commands(&c)];
    let mut on2 = b.mi.remote().subscribe();
    let mut on3 = c.mi.remote().subscribe();

    let got = a
        .call(
            "cluster_broadcast_mi",
            json!({"cluster_id": 1, "cmd_name": "demo_touch", "cmd_params": ["t1"]}),
        )
        .await;
    assert_eq!(
        got["result"],
        json!({"node": 1, "tag": "t1", "remote": false})
    );
    for rx in [&mut on2, &mut on3] {
        let o = wait_outcome(rx, "demo_touch").await;
        assert_eq!((o.source, o.params.clone()), (n(1), vec!["t1".to_owned()]));
        assert_eq!(o.result.unwrap()["remote"], json!(true));
    }
    for count in &counts {
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }

    // Positional form, without cmd_params; unknown cluster: still the local result.
    let got = b
        .call("cluster_broadcast_mi", json!([9, "demo_touch"]))
        .await;
    assert_eq!(
        got["result"],
        json!({"node": 2, "tag": null, "remote": false})
    );
    assert_eq!(counts[1].load(Ordering::SeqCst), 2);
    assert_eq!(counts[0].load(Ordering::SeqCst), 1);

    // To self: the captured error; named-only commands are refused remotely.
    let got = c
        .call(
            "cluster_send_mi",
            json!({"cluster_id": 1, "destination": 3, "cmd_name": "uptime"}),
        )
        .await;
    assert_eq!(
        got["error"],
        json!({"code": 400, "message": "Local node specified as destination"})
    );
    let got = c
        .call("cluster_send_mi", json!([1, 2, "demo_named", ["1"]]))
        .await;
    assert_eq!(got["result"], "OK");
    let o = wait_outcome(&mut on2, "demo_named").await;
    assert_eq!(
        o.result,
        Err(MiError::new(
            400,
            "Commands requiring named params not supported"
        ))
    );
    // A bad cmd_params item cannot be sent; locally it is a parameter error.
    let got = c
        .call("cluster_send_mi", json!([1, 2, "demo_touch", [{}]]))
        .await;
    assert_eq!(got["error"], json!({"code": 400, "message": "Send error"}));
    let got = c
        .call("cluster_broadcast_mi", json!([1, "demo_touch", [[1]]]))
        .await;
    assert_eq!(
        got["error"],
        json!({"code": -32602, "message": "Invalid params", "data": "Bad type for array item in parameter 'cmd_params'"})
    );

    // The local node disabled: a string result, not an error.
    let got = c.call("clusterer_set_status", json!([1, 0])).await;
    assert_eq!(got["result"], "OK");
    let got = c.call("cluster_send_mi", json!([1, 2, "demo_touch"])).await;
    assert_eq!(got["result"], "Local node disabled");

    for t in [a, b, c] {
        t.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_send_req_delivers_a_generic_request_with_its_tag() {
    let port = 17_206;
    let (a, b, c) = capture_cluster(port).await;
    replay_until_list_len(&a, 2).await;
    let mut on2 = b.handle.subscribe();
    let wait_request = async |rx: &mut broadcast::Receiver<Event>| loop {
        match rx.recv().await {
            Ok(Event::Received {
                source,
                body: RoutedBody::GenericMsg(m),
                ..
            }) => return (source, m),
            Ok(_) => {}
            Err(e) => panic!("event stream ended: {e}"),
        }
    };

    // A generated tag: `<cluster>-<node>-` and random characters, answered to the caller.
    let got = a
        .call(
            "cluster_send_req",
            json!({"cluster_id": 1, "destination": 2, "msg": "ping?"}),
        )
        .await;
    let tag = got["result"]["tag"].as_str().unwrap().to_owned();
    assert!(tag.starts_with("1-1-"), "{tag}");
    let (source, m) = tokio::time::timeout(Duration::from_secs(5), wait_request(&mut on2))
        .await
        .unwrap();
    assert_eq!(
        (source, m.kind, m.tag, m.payload),
        (
            n(1),
            GenericKind::Request,
            tag.into_bytes(),
            b"ping?".to_vec()
        )
    );

    // A given tag travels as it is.
    let got = a
        .call("cluster_send_req", json!([1, 2, "again", "t-9"]))
        .await;
    assert_eq!(got["result"], json!({"tag": "t-9"}));
    let (_, m) = tokio::time::timeout(Duration::from_secs(5), wait_request(&mut on2))
        .await
        .unwrap();
    assert_eq!((m.tag, m.payload), (b"t-9".to_vec(), b"again".to_vec()));

    // Unknown destination: OpenSIPS's send error text.
    let got = a.call("cluster_send_req", json!([1, 9, "x"])).await;
    assert_eq!(got["error"], json!({"code": 400, "message": "Send error"}));
    for t in [a, b, c] {
        t.stop().await;
    }
}

// ---------------------------------------------------------------------------------------
// HTTP, core commands, the client

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_edge_cases_get_proper_answers() {
    let port = 17_203;
    let mut config = Config::new(n(1), DbMode::Discovery);
    config.clusters.push(ClusterConfig {
        id: C1,
        local: NodeConfig::new(n(1), format!("bin:127.0.0.1:{port}")),
        nodes: vec![NodeConfig::new(n(2), format!("bin:127.0.0.2:{port}"))],
    });
    let handle = Cluster::start(StartOptions::new(config)).await.unwrap().0;
    let options = MiOptions {
        max_body_bytes: 1024,
        ..MiOptions::default()
    };
    let node = TestNode::with_mi(1, port, handle, options).await;
    let count = demo_commands(&node);
    let addr = node.addr;

    // A notification runs, and gets 204 without a body.
    let r = post(addr, r#"{"jsonrpc":"2.0","method":"demo_touch"}"#).await;
    assert_eq!((r.status, r.body.as_str()), (204, ""));
    assert_eq!(count.load(Ordering::SeqCst), 1);

    // Wrong or missing Content-Type: 415 with a JSON-RPC error.
    let body = br#"{"jsonrpc":"2.0","method":"clusterer_list","id":1}"#;
    for ct in [
        Some("application/x-www-form-urlencoded"),
        Some("text/plain"),
        None,
    ] {
        let r = http(addr, "POST", "/mi", ct, body).await;
        assert_eq!(r.status, 415, "{ct:?}");
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(
            r.json(),
            json!({"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request",
                "data": "Content-Type must be application/json"}, "id": null})
        );
    }
    let r = http(
        addr,
        "POST",
        "/mi",
        Some("Application/JSON; charset=utf-8"),
        body,
    )
    .await;
    assert_eq!(r.status, 200);

    // Over the limit: 413 with a JSON-RPC error.
    let big = format!(
        r#"{{"jsonrpc":"2.0","method":"demo_touch","params":["{}"],"id":2}}"#,
        "x".repeat(1100)
    );
    let r = post(addr, &big).await;
    assert_eq!(r.status, 413);
    assert_eq!(
        r.json(),
        json!({"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request",
            "data": "Request body larger than 1024 bytes"}, "id": null})
    );
    assert_eq!(count.load(Ordering::SeqCst), 1);

    // Batches.
    let r = post(
        addr,
        r#"[{"jsonrpc":"2.0","method":"demo_touch","params":["a"],"id":1},{"jsonrpc":"2.0","method":"demo_touch"},{"jsonrpc":"2.0","method":"nope","id":"x"}]"#,
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json(),
        json!([
            {"jsonrpc": "2.0", "result": {"node": 1, "tag": "a", "remote": false}, "id": 1},
            {"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "x"}
        ])
    );
    assert_eq!(count.load(Ordering::SeqCst), 3);

    // GET: help text; other methods and paths.
    let r = http(addr, "GET", "/mi", None, b"").await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    assert!(r.body.contains("POST JSON-RPC 2.0"));
    assert_eq!(
        http(addr, "PUT", "/mi", Some("application/json"), body)
            .await
            .status,
        405
    );
    assert_eq!(post_path(addr, "/other", body).await, 404);

    // Core commands.
    let which = node.call("which", json!([])).await["result"].clone();
    let names: Vec<&str> = which
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for cmd in [
        "uptime",
        "version",
        "which",
        "help",
        "ps",
        "clusterer_reload",
        "clusterer_set_status",
        "clusterer_list",
        "clusterer_list_topology",
        "cluster_send_mi",
        "cluster_broadcast_mi",
        "clusterer_list_cap",
        "clusterer_set_cap_status",
        "clusterer_list_shtags",
        "clusterer_shtag_set_active",
        "clusterer_remove_node",
        "sr_get_status",
        "sr_list_status",
        "sr_list_reports",
        "sr_list_identifiers",
        "get_statistics",
        "list_statistics",
        "reset_statistics",
        "demo_touch",
    ] {
        assert!(names.contains(&cmd), "{cmd} missing from which: {names:?}");
    }
    assert_eq!(
        node.call("which", json!({"command": "clusterer_set_status"}))
            .await["result"],
        json!([
            ["cluster_id", "status"],
            ["cluster_id", "node_id", "status"]
        ])
    );
    assert_eq!(
        node.call("help", json!(["clusterer_list"])).await["result"],
        json!({"Help": "lists the available connections for the specified server", "Exported by": "clusterer"})
    );
    assert_eq!(
        skeleton(&node.call("ps", json!([])).await["result"]),
        json!({"Processes": [{"ID": "<number>", "PID": "<number>", "Type": "<string>"}]})
    );

    // Status/report group and statistics.
    assert_eq!(
        node.call("sr_get_status", json!(["clusterer", "node_states"]))
            .await["result"],
        json!({"Readiness": true, "Status": 1})
    );
    assert_eq!(
        node.call("sr_get_status", json!(["clusterer", "all"]))
            .await["result"],
        json!({"Readiness": true, "Status": 1, "Details": "aggregated"})
    );
    assert_eq!(
        node.call("sr_get_status", json!(["clusterer"])).await["error"],
        json!({"code": 404, "message": "Identity not found"})
    );
    assert_eq!(
        node.call("sr_list_status", json!(["nosuch"])).await["error"],
        json!({"code": 404, "message": "Group not found"})
    );
    assert_eq!(
        node.call("sr_list_reports", json!(["clusterer", "nosuch"]))
            .await["error"],
        json!({"code": 404, "message": "Identifier not found"})
    );
    assert_eq!(
        node.call("sr_list_status", json!([])).await["result"],
        json!([{"Name": "clusterer", "Identifiers": [
            {"Name": "sharing_tags", "Readiness": true, "Status": 1},
            {"Name": "node_states", "Readiness": true, "Status": 1}]}])
    );
    assert_eq!(
        node.call("sr_list_reports", json!(["clusterer"])).await["result"],
        json!([{"Name": "sharing_tags", "Reports": []}, {"Name": "node_states", "Reports": []}])
    );
    assert_eq!(
        node.call("sr_list_identifiers", json!(["clusterer"])).await["result"],
        json!({"Group": "clusterer", "Identifiers": ["sharing_tags", "node_states"]})
    );
    let stats = json!({"clusterer:clusterer_nodes": 1, "clusterer:clusterer_nodes_up": 0, "clusterer:clusterer_nodes_down": 1});
    assert_eq!(
        node.call("get_statistics", json!([["all"]])).await["result"],
        stats
    );
    assert_eq!(
        node.call("get_statistics", json!({"statistics": ["clusterer:"]}))
            .await["result"],
        stats
    );
    assert_eq!(
        node.call(
            "get_statistics",
            json!([["CLUSTERER_NODES_DOWN", "nosuch"]])
        )
        .await["result"],
        json!({"clusterer:clusterer_nodes_down": 1})
    );
    assert_eq!(
        node.call("get_statistics", json!([["nosuch"]])).await["error"],
        json!({"code": 404, "message": "Statistics Not Found"})
    );
    assert_eq!(
        node.call("get_statistics", json!(["clusterer:"])).await["error"],
        json!({"code": -32602, "message": "Invalid params", "data": "Bad type for parameter 'statistics'"})
    );
    assert_eq!(
        node.call("list_statistics", json!([["clusterer_nodes"]]))
            .await["result"],
        json!({"clusterer_nodes": "non-incremental"})
    );

    // Parameter types: numeric strings are ints, anything else is a bad type.
    assert_eq!(
        node.call("clusterer_set_status", json!(["1", "2", "0"]))
            .await["result"],
        "OK"
    );
    assert_eq!(
        node.call("clusterer_set_status", json!(["one", 2, 0]))
            .await["error"],
        json!({"code": -32602, "message": "Invalid params", "data": "Bad type for parameter 'cluster_id'"})
    );
    assert_eq!(
        node.call("clusterer_set_status", json!([0, 1])).await["error"],
        json!({"code": 400, "message": "Bad value for 'cluster_id'"})
    );
    assert_eq!(
        node.call("clusterer_set_status", json!([1, -2, 1])).await["error"],
        json!({"code": 400, "message": "Bad value for 'node_id'"})
    );
    assert_eq!(
        node.call("clusterer_shtag_set_active", json!(["vip/x"]))
            .await["error"],
        json!({"code": 400, "message": "Bad cluster ID in tag"})
    );

    // The client, `clusterer mi`: a JSON-RPC error is printed with its code and message.
    let url = format!("http://{addr}/mi");
    let bin = env!("CARGO_BIN_EXE_clusterer");
    let u = url.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(bin)
            .args([
                "mi",
                "--url",
                &u,
                "--timeout",
                "5",
                "clusterer_set_status",
                "cluster_id=1",
                "status=7",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        format!("error {}", MiError::new(400, "Bad value for 'status'"))
    );
    let u = url.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(bin)
            .args([
                "mi",
                "--url",
                &u,
                "get_statistics",
                "statistics[]=clusterer:",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{out:?}");
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed, stats);
    assert!(String::from_utf8_lossy(&out.stdout).contains("\n  \"clusterer:clusterer_nodes\": 1"));
    let u = url.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(bin)
            .args(["mi", "--url", &u, "clusterer_set_status", "1", "9", "0"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "error 404: Node id not found"
    );
    let out = tokio::task::spawn_blocking(move || {
        Command::new(bin)
            .args([
                "mi",
                "--url",
                "http://127.0.0.1:9/mi",
                "--timeout",
                "2",
                "uptime",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(2));

    node.stop().await;
}

async fn post_path(addr: SocketAddr, path: &str, body: &[u8]) -> u16 {
    http(addr, "POST", path, Some("application/json"), body)
        .await
        .status
}

// ---------------------------------------------------------------------------------------
// db_mode 1

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_mode_commands_and_the_reload_hook() {
    let port = 17_204;
    let mut config = Config::new(n(4), DbMode::Database);
    let c2 = ClusterId::new(2).unwrap();
    let mut five = NodeConfig::new(n(5), format!("bin:127.0.0.5:{port}"));
    five.db_id = Some(2);
    five.description = Some("absent node 5".into());
    let mut local = NodeConfig::new(n(4), format!("bin:127.0.0.4:{port}"));
    local.db_id = Some(1);
    config.clusters.push(ClusterConfig {
        id: c2,
        local,
        nodes: vec![five],
    });
    let handle = Cluster::start(StartOptions::new(config)).await.unwrap().0;
    let node = TestNode::with_mi(4, port, handle, MiOptions::default()).await;
    let all = [&node];

    // The list: same shape; this node may still be probing node 5.
    let e = by_id("clusterer_list", 1);
    let got: Value = serde_json::from_str(&node.ask(&e.request).await).unwrap();
    let want: Value = serde_json::from_str(&expected(&e, port)).unwrap();
    let mut normalized = got.clone();
    normalized["result"]["Clusters"][0]["Nodes"][0]["link_state"] = json!("Down");
    assert_eq!(normalized, want);
    replay(&all, "clusterer_list_topology", 2).await;
    replay(&all, "clusterer_remove_node", 5).await;

    // clusterer_reload without and with the database hook.
    assert_eq!(
        node.call("clusterer_reload", json!([])).await["error"],
        json!({"code": 500, "message": "Failed to reload"})
    );
    let reloads = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&reloads);
    let hook: ReloadHook = Arc::new(move || {
        let seen = Arc::clone(&seen);
        Box::pin(async move {
            seen.fetch_add(1, Ordering::SeqCst);
            Ok(serde_json::Value::from("OK"))
        })
    });
    node.mi.clusterer().set_reload_hook(Some(hook));
    replay(&all, "clusterer_reload", 3).await;
    assert_eq!(reloads.load(Ordering::SeqCst), 1);
    node.stop().await;
}

// ---------------------------------------------------------------------------------------
// opensips-cli

/// `opensips-cli`: on PATH, in target/tmp/opensipscli-venv, or installed there from PyPI.
/// `Err` with the reason when it cannot be had (no python3/venv, PyPI unreachable).
fn opensips_cli() -> Result<PathBuf, String> {
    if let Ok(out) = Command::new("opensips-cli").arg("-h").output()
        && out.status.success()
    {
        return Ok(PathBuf::from("opensips-cli"));
    }
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("opensipscli-venv");
    let cli = venv.join("bin/opensips-cli");
    // Written after a complete install: a venv without it is a leftover, made again.
    let done = venv.join(".installed");
    if done.exists() && cli.exists() {
        return Ok(cli);
    }
    let _ = std::fs::remove_dir_all(&venv);
    let started = Instant::now();
    let out = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .output()
        .map_err(|e| format!("python3 not available: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "python3 -m venv failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let out = Command::new(venv.join("bin/pip"))
        .args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "opensipscli==0.4.1",
        ])
        .output()
        .map_err(|e| format!("pip not available: {e}"))?;
    if !out.status.success() || !cli.exists() {
        let _ = std::fs::remove_dir_all(&venv);
        return Err(format!(
            "pip install opensipscli failed (PyPI unreachable?): {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    std::fs::write(&done, b"opensipscli==0.4.1\n")
        .map_err(|e| format!("{}: {e}", done.display()))?;
    eprintln!(
        "installed opensipscli 0.4.1 into {} in {:.1} s",
        venv.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(cli)
}

async fn run_cli(cli: &Path, url: &str, args: &[&str]) -> (bool, String, String) {
    let mut cmd = Command::new(cli);
    cmd.args(["-o", "communication_type=http", "-o"])
        .arg(format!("url={url}"))
        .args(["-x", "mi"])
        .args(args);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opensips_cli_drives_the_daemon() {
    let cli = match tokio::task::spawn_blocking(opensips_cli).await.unwrap() {
        Ok(cli) => cli,
        Err(why) => {
            // CI sets CLUSTERER_TEST_REQUIRE_OPENSIPS_CLI=1: there a missing cli is a failure.
            assert!(
                std::env::var("CLUSTERER_TEST_REQUIRE_OPENSIPS_CLI").as_deref() != Ok("1"),
                "opensips-cli is required (CLUSTERER_TEST_REQUIRE_OPENSIPS_CLI=1) but: {why}"
            );
            eprintln!("SKIPPED opensips_cli_drives_the_daemon: {why}");
            return;
        }
    };
    let port = 17_205;
    let a = TestNode::start(1, port, &[], Some(ShtagState::Active), true).await;
    let b = TestNode::start(2, port, &[1], Some(ShtagState::Backup), true).await;
    replay_until_list_len(&a, 1).await;
    replay_until_list_len(&b, 1).await;
    let url = format!("http://{}/mi", a.addr);

    let (ok, out, err) = run_cli(&cli, &url, &["clusterer_list"]).await;
    assert!(ok, "{err}");
    let printed: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out} {err}"));
    assert_eq!(
        printed,
        json!({"Clusters": [{"cluster_id": 1, "Nodes": [{"node_id": 2, "db_id": -1,
            "url": format!("bin:127.0.0.2:{port}"), "link_state": "Up", "state": "enabled",
            "next_hop": "2", "description": "none"}]}]})
    );
    // opensips-cli prints with 4-space indentation, keys in our order.
    assert!(
        out.starts_with("{\n    \"Clusters\": [\n        {\n            \"cluster_id\": 1,"),
        "{out}"
    );

    let (ok, out, err) = run_cli(&cli, &url, &["clusterer_list_topology"]).await;
    assert!(ok, "{err}");
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap(),
        json!({"Clusters": [{"cluster_id": 1, "Nodes": [
            {"node_id": 1, "Neighbours": [2]}, {"node_id": 2, "Neighbours": [1]}]}]})
    );

    let (ok, out, err) = run_cli(&cli, &url, &["sr_list_status", "clusterer"]).await;
    assert!(ok, "{err}");
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap(),
        json!([{"Name": "cap:dialog-dlg-repl", "Readiness": true, "Status": 1, "Details": "synced"},
            {"Name": "sharing_tags", "Readiness": true, "Status": 1},
            {"Name": "node_states", "Readiness": true, "Status": 1}])
    );

    let (ok, out, err) = run_cli(&cli, &url, &["get_statistics", "clusterer:"]).await;
    assert!(ok, "{err}");
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap(),
        json!({"clusterer:clusterer_nodes": 1, "clusterer:clusterer_nodes_up": 1, "clusterer:clusterer_nodes_down": 0})
    );

    // Positional string parameters, then named ones.
    let (ok, out, err) = run_cli(&cli, &url, &["clusterer_set_status", "1", "2", "0"]).await;
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "\"OK\"");
    let (ok, _, err) = run_cli(
        &cli,
        &url,
        &[
            "clusterer_set_status",
            "cluster_id=1",
            "node_id=2",
            "status=1",
        ],
    )
    .await;
    assert!(ok, "{err}");
    let (ok, out, err) = run_cli(&cli, &url, &["cluster_broadcast_mi", "1", "version"]).await;
    assert!(ok, "{err}");
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap(),
        json!({"Server": server_string()})
    );

    // An MI error: opensips-cli logs it and fails.
    let (ok, _, err) = run_cli(&cli, &url, &["clusterer_set_status", "1", "9", "0"]).await;
    assert!(!ok);
    assert!(err.contains("404: Node id not found"), "{err}");

    for t in [a, b] {
        t.stop().await;
    }
}
