//! The `clusterer` daemon as real processes on 127.0.0.x: discovery from one neighbour each,
//! MI shapes, kill -9 and restart with hooks, sharing tag moves, broadcast MI, remove_node,
//! configuration errors.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const BIN_PORT: u16 = 17_301;

fn mi_port(node: u32) -> u16 {
    18_310 + node as u16
}

fn work_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("daemon-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// db_mode 0 configuration of node `me`, knowing only node 1 (node 1 knows nobody).
fn config(dir: &Path, me: u32) -> PathBuf {
    let neighbours = if me == 1 {
        String::new()
    } else {
        format!("neighbor_node_info = \"cluster_id=1, node_id=1, url=bin:127.0.0.1:{BIN_PORT}\"\n")
    };
    let seed = if me == 1 { ", flags=seed" } else { "" };
    let text = format!(
        r#"my_node_id = {me}
db_mode = 0
ping_interval = 1
ping_timeout = 300
node_timeout = 2
my_node_info = "cluster_id=1, url=bin:127.0.0.{me}:{BIN_PORT}{seed}"
{neighbours}sharing_tag = ["vip/1=backup,election,hold_down=1000", "media/1=backup"]

[mi]
listen = "127.0.0.1:{mi}"

[metrics]
enabled = false

[hooks]
node_state_changed = "echo \"$CLUSTERER_NODE_ID $CLUSTERER_NEW_STATE\" >> {dir}/node{me}.hook"
sharing_tag_changed = "echo \"$CLUSTERER_NAME $CLUSTERER_STATE\" >> {dir}/tag{me}.hook"
event_log = "{dir}/events{me}.jsonl"
"#,
        mi = mi_port(me),
        dir = dir.display(),
    );
    let path = dir.join(format!("node{me}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(config: &Path, log: &Path) -> Daemon {
    let log = std::fs::File::create(log).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_clusterer"))
        .args(["run", "--config"])
        .arg(config)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    Daemon(child)
}

fn mi(node: u32, method: &str, params: Value) -> Value {
    mi_on(mi_port(node), method, params)
}

/// An MI call to the daemon whose MI listens on 127.0.0.1:`port`.
fn mi_on(port: u16, method: &str, params: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string();
    let url = format!("http://127.0.0.1:{port}/mi");
    match ureq::post(&url)
        .header("Content-Type", "application/json")
        .send(&body)
    {
        Ok(mut r) => serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap(),
        Err(e) => json!({"transport_error": e.to_string()}),
    }
}

fn wait_until(what: &str, secs: u64, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out after {secs}s waiting for {what}");
}

/// (node_id, link_state) of every node in node `n`'s `clusterer_list`.
fn links(n: u32) -> Vec<(u64, String)> {
    let r = mi(n, "clusterer_list", json!([]));
    r["result"]["Clusters"][0]["Nodes"]
        .as_array()
        .map(|nodes| {
            nodes
                .iter()
                .map(|x| {
                    (
                        x["node_id"].as_u64().unwrap(),
                        x["link_state"].as_str().unwrap().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn all_up(n: u32, count: usize) -> bool {
    let l = links(n);
    l.len() == count && l.iter().all(|(_, s)| s == "Up")
}

fn tag_state_of(n: u32, tag: &str) -> String {
    let r = mi(n, "clusterer_list_shtags", json!([]));
    r["result"]
        .as_array()
        .and_then(|tags| tags.iter().find(|t| t["Tag"] == tag))
        .and_then(|t| t["State"].as_str())
        .unwrap_or("?")
        .to_string()
}

fn tag_state(n: u32) -> String {
    tag_state_of(n, "vip")
}

#[test]
fn three_daemons_form_a_cluster_survive_kill_and_move_the_tag() {
    let dir = work_dir("cluster");
    let cfgs: Vec<PathBuf> = (1..=3).map(|n| config(&dir, n)).collect();
    let mut daemons: Vec<Option<Daemon>> = (1..=3)
        .map(|n| Some(spawn(&cfgs[n - 1], &dir.join(format!("node{n}.log")))))
        .collect();
    for n in 1..=3 {
        wait_until("every daemon sees the other two Up", 30, || all_up(n, 2));
    }
    // MI shapes as OpenSIPS answers them.
    let list = mi(2, "clusterer_list", json!([]));
    let first = &list["result"]["Clusters"][0]["Nodes"][0];
    let keys: Vec<&str> = first
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "node_id",
            "db_id",
            "url",
            "link_state",
            "state",
            "next_hop",
            "description"
        ]
    );
    assert_eq!(
        (
            first["db_id"].clone(),
            first["state"].clone(),
            first["description"].clone()
        ),
        (json!(-1), json!("enabled"), json!("none"))
    );
    let topo = mi(1, "clusterer_list_topology", json!([]));
    assert_eq!(
        topo["result"]["Clusters"][0]["Nodes"][0]["node_id"],
        json!(1)
    );

    // Election: node 1 (best id) holds the tag.
    wait_until("node 1 active", 20, || tag_state(1) == "active");
    assert_eq!(
        (tag_state(2), tag_state(3)),
        ("backup".into(), "backup".into())
    );

    // cluster_broadcast_mi runs everywhere: set a log level nobody has and read it back
    // through each node's own `which`-free core command (uptime works everywhere).
    let r = mi(
        1,
        "cluster_broadcast_mi",
        json!({"cluster_id": 1, "cmd_name": "uptime"}),
    );
    assert!(r["result"]["Up time"].is_string(), "{r}");

    // kill -9 of node 1: the others see it Down, their hooks fire, one takes over the tag.
    let mut killed = daemons[0].take().unwrap();
    killed.0.kill().unwrap();
    killed.0.wait().unwrap();
    for n in [2, 3] {
        wait_until("node 1 Down", 30, || {
            links(n).iter().any(|(id, s)| *id == 1 && s == "Down")
        });
        wait_until("the node hook says node 1 went down", 10, || {
            std::fs::read_to_string(dir.join(format!("node{n}.hook")))
                .unwrap_or_default()
                .lines()
                .any(|l| l == "1 0")
        });
    }
    wait_until("node 2 takes the tag", 20, || tag_state(2) == "active");
    assert_eq!(tag_state(3), "backup");
    wait_until("node 2's hook says vip active", 10, || {
        std::fs::read_to_string(dir.join("tag2.hook"))
            .unwrap_or_default()
            .lines()
            .any(|l| l == "vip active")
    });

    // Restart: node 1 is Up again everywhere, and the better node 1 gets the tag back once
    // the two actives meet; exactly one active at the end.
    daemons[0] = Some(spawn(&cfgs[0], &dir.join("node1-restart.log")));
    for n in [2, 3] {
        wait_until("node 1 Up again", 30, || {
            links(n).iter().any(|(id, s)| *id == 1 && s == "Up")
        });
    }
    wait_until("one active", 20, || {
        let states = [tag_state(1), tag_state(2), tag_state(3)];
        states.iter().filter(|s| *s == "active").count() == 1
    });

    // An election tag is not moved by hand: the MI says so.
    let r = mi(3, "clusterer_shtag_set_active", json!(["vip/1"]));
    assert_eq!(r["error"]["code"], json!(400), "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("election mode"),
        "{r}"
    );

    // MI moves a compatible-mode tag from node 2 to node 3; both hooks fire.
    let r = mi(2, "clusterer_shtag_set_active", json!(["media/1"]));
    assert_eq!(r["result"], json!("OK"), "{r}");
    wait_until("media active on node 2", 10, || {
        tag_state_of(2, "media") == "active"
    });
    let r = mi(3, "clusterer_shtag_set_active", json!({"tag": "media/1"}));
    assert_eq!(r["result"], json!("OK"), "{r}");
    wait_until("media moved to node 3", 10, || {
        tag_state_of(3, "media") == "active" && tag_state_of(2, "media") == "backup"
    });
    // Hooks run as their own processes, after the state changed: wait for them.
    let last_hook_line = |n: u32| {
        let text = std::fs::read_to_string(dir.join(format!("tag{n}.hook"))).unwrap_or_default();
        text.lines().last().map(str::to_owned)
    };
    wait_until("node 2's hook says media backup", 10, || {
        last_hook_line(2).as_deref() == Some("media backup")
    });
    wait_until("node 3's hook says media active", 10, || {
        last_hook_line(3).as_deref() == Some("media active")
    });

    // remove_node: node 3 leaves (disables itself), the others forget it.
    let r = mi(
        1,
        "clusterer_remove_node",
        json!({"cluster_id": 1, "node_id": 3}),
    );
    assert_eq!(r["result"], json!("OK"), "{r}");
    wait_until("node 3 forgotten", 10, || {
        !links(1).iter().any(|(id, _)| *id == 3)
    });
    let events = std::fs::read_to_string(dir.join("events2.jsonl")).unwrap();
    assert!(
        events.contains("E_CLUSTERER_NODE_STATE_CHANGED"),
        "{events}"
    );
    drop(daemons);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 18 item 0, tried as a new user would: db_mode 0, node 1 the seed with no
/// neighbours, nodes 2 and 3 list node 1; an election tag on all three; `node_timeout` left
/// at OpenSIPS's 60 s. Node 1 wins; kill -9 node 1 → node 2 takes the tag; restart node 1,
/// which knows nobody. OpenSIPS's peers re-probed it only after node_timeout and it took
/// the tag after its hold-down: two actives for most of a minute. Checked: exactly one
/// active at every 50 ms poll from 5 s after the restart for 20 s, and node 1 Up again.
#[test]
fn a_restarted_seed_that_knows_nobody_never_holds_the_tag_beside_its_heir() {
    const PORT: u16 = 17_321;
    let mi_port = |n: u32| 18_330 + n as u16;
    let dir = work_dir("seed-restart");
    let cfg = |me: u32| {
        let neighbours = if me == 1 {
            String::new()
        } else {
            format!("neighbor_node_info = \"cluster_id=1, node_id=1, url=bin:127.0.0.1:{PORT}\"\n")
        };
        let seed = if me == 1 { ", flags=seed" } else { "" };
        let text = format!(
            "my_node_id = {me}\ndb_mode = 0\nping_interval = 1\nping_timeout = 300\n\
             my_node_info = \"cluster_id=1, url=bin:127.0.0.{me}:{PORT}{seed}\"\n\
             {neighbours}sharing_tag = \"vip/1=backup,election,hold_down=1000\"\n\
             [mi]\nlisten = \"127.0.0.1:{}\"\n[metrics]\nenabled = false\n",
            mi_port(me)
        );
        let path = dir.join(format!("node{me}.toml"));
        std::fs::write(&path, text).unwrap();
        path
    };
    let tag = |n: u32| {
        let r = mi_on(mi_port(n), "clusterer_list_shtags", json!([]));
        r["result"]
            .as_array()
            .and_then(|tags| tags.iter().find(|t| t["Tag"] == "vip"))
            .and_then(|t| t["State"].as_str())
            .unwrap_or("?")
            .to_string()
    };
    let cfgs: Vec<PathBuf> = (1..=3).map(cfg).collect();
    let mut daemons: Vec<Option<Daemon>> = (1..=3)
        .map(|n| Some(spawn(&cfgs[n - 1], &dir.join(format!("node{n}.log")))))
        .collect();
    wait_until("node 1 holds the tag, the others are backup", 30, || {
        [tag(1), tag(2), tag(3)] == ["active", "backup", "backup"]
    });
    let mut killed = daemons[0].take().unwrap();
    killed.0.kill().unwrap();
    killed.0.wait().unwrap();
    wait_until("node 2 takes the tag", 30, || {
        [tag(2), tag(3)] == ["active", "backup"]
    });
    // Down for a while, as after a real crash (the peers' links to node 1 are DOWN).
    std::thread::sleep(Duration::from_secs(3));
    daemons[0] = Some(spawn(&cfgs[0], &dir.join("node1-restart.log")));
    let restarted = Instant::now();
    std::thread::sleep(Duration::from_secs(5));
    while restarted.elapsed() < Duration::from_secs(25) {
        let states = [tag(1), tag(2), tag(3)];
        let actives = states.iter().filter(|s| *s == "active").count();
        assert_eq!(
            actives,
            1,
            "{:?} after the restart: states {states:?}\n{}",
            restarted.elapsed(),
            std::fs::read_to_string(dir.join("node1-restart.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let list = mi_on(mi_port(2), "clusterer_list", json!([]));
    let node1 = list["result"]["Clusters"][0]["Nodes"]
        .as_array()
        .and_then(|nodes| nodes.iter().find(|x| x["node_id"] == 1))
        .map(|x| x["link_state"].clone());
    assert_eq!(node1, Some(json!("Up")), "node 2 sees node 1 again: {list}");
    drop(daemons);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_config_with_a_bad_key_fails_with_a_clear_message() {
    let dir = work_dir("badkey");
    let path = dir.join("bad.toml");
    std::fs::write(&path, "my_node_id = 1\ndb_mode = 0\nping_intervall = 4\nmy_node_info = \"cluster_id=1, url=bin:127.0.0.1:5566\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_clusterer"))
        .args(["run", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ping_intervall") && err.contains("ping_interval"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
