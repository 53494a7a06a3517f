//! The namespace lab shared by the TAP and QEMU tests: two `clusterer run` daemons and one
//! embedded node (the `tap_node` example, or the firmware under QEMU) in a network namespace
//! the test creates. Needs root (namespaces, TAP devices): elsewhere the tests skip with a
//! notice, unless `CLUSTERER_TEST_REQUIRE_ROOT=1` (CI) makes that a failure.
//!
//! Every address lives inside the namespace (10.213.0.0/24 on the TAP device, 127.0.0.1 for
//! the daemons' MI); the namespace, and with it the TAP device, is deleted when the test
//! ends, also when it fails.
//!
//! [`scenario`] runs the checks of both issues: (a) both daemons list the embedded node Up
//! and it reports both up; (b) both daemons' topologies agree on the three nodes; (c) a
//! GENERIC_MSG request from a daemon (MI `cluster_send_req`) reaches the embedded node and
//! its reply comes back; (d) the embedded node, best ranked in an election-mode tag, becomes
//! active; killed, a daemon takes the tag; restarted, the tag moves back (`preempt`); never
//! two actives at any sample; (e) kill -9 and restart are seen Down and Up by both daemons.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Timers of every node (seconds / milliseconds as in the TOML).
const PING_INTERVAL_S: u64 = 1;
const PING_TIMEOUT_MS: u64 = 500;
const NO_PING_RETRIES: u64 = 3;
const HOLD_DOWN_MS: u64 = 2000;
/// Scheduling slack on a shared 2-core machine.
const SLACK: Duration = Duration::from_secs(4);

/// A node that stops answering is seen Down after its pings time out: at most one interval
/// until the next ping, then `no_ping_retries + 1` timeouts.
fn down_bound() -> Duration {
    Duration::from_millis(PING_INTERVAL_S * 1000 + (NO_PING_RETRIES + 1) * PING_TIMEOUT_MS) + SLACK
}

/// A node that starts is seen Up within a re-probe of a DOWN link (`min(ping_interval,
/// node_timeout)`) plus a ping round and a connect.
fn up_bound() -> Duration {
    Duration::from_millis(2 * PING_INTERVAL_S * 1000 + PING_TIMEOUT_MS) + SLACK
}

/// The tag is taken within the hold-down after the owner is Down (plus the discovery bound
/// at start: ping_interval + ping_timeout + 2 ticks).
fn takeover_bound() -> Duration {
    down_bound()
        + Duration::from_millis(HOLD_DOWN_MS + PING_INTERVAL_S * 1000 + PING_TIMEOUT_MS + 200)
}

fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// The embedded node of the lab.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Embedded {
    /// `examples/tap_node` (embassy-net on the host).
    TapNode,
    /// `firmware/` under `qemu-system-arm -M mps2-an386`, through `run-qemu.sh`.
    Qemu,
}

/// `false` (after a notice) when the test cannot run here: not root, no TUN device, or
/// (for QEMU) no `qemu-system-arm`. With `CLUSTERER_TEST_REQUIRE_ROOT=1` any of these fails.
pub(crate) fn can_run(kind: Embedded) -> bool {
    let required = std::env::var("CLUSTERER_TEST_REQUIRE_ROOT").is_ok_and(|v| v == "1");
    let has_qemu = || {
        Command::new("qemu-system-arm")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let why = if effective_uid() != Some(0) {
        Some("not root (network namespaces and TAP devices need root)")
    } else if !Path::new("/dev/net/tun").exists() {
        Some("/dev/net/tun is missing")
    } else if kind == Embedded::Qemu && !has_qemu() {
        Some("qemu-system-arm is not installed (Debian: qemu-system-arm)")
    } else {
        None
    };
    match why {
        None => true,
        Some(why) if required => panic!("CLUSTERER_TEST_REQUIRE_ROOT=1 but {why}"),
        Some(why) => {
            eprintln!("SKIPPED {kind:?} lab test: {why}");
            false
        }
    }
}

/// `target/debug` (or the profile directory the test runs from).
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

fn binary(rel: &str) -> PathBuf {
    let path = bin_dir().join(rel);
    assert!(
        path.exists(),
        "{} is missing: run `cargo test --workspace` (it builds the daemon and the example)",
        path.display()
    );
    path
}

fn run(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The namespace and the processes in it; dropping it kills them and deletes it.
pub(crate) struct Lab {
    kind: Embedded,
    ns: String,
    tap: String,
    dir: PathBuf,
    daemons: Vec<Child>,
    embedded: Option<Child>,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in self.daemons.iter_mut().chain(self.embedded.as_mut()) {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn ip_of(node: u32) -> String {
    format!("10.213.0.{node}")
}

/// The TOML of node `me`: every node knows every other with its priority (the embassy
/// node 3 ranks best), the tag in election mode with preemption.
fn config(me: u32, dir: &Path) -> String {
    let priority = |n: u32| if n == 3 { 1 } else { 10 + n };
    let neighbours: Vec<String> = [1, 2, 3]
        .into_iter()
        .filter(|&n| n != me)
        .map(|n| {
            format!(
                "\"cluster_id=1, node_id={n}, url=bin:{}:5566, priority={}\"",
                ip_of(n),
                priority(n)
            )
        })
        .collect();
    let mut text = format!(
        "my_node_id = {me}\ndb_mode = 0\nping_interval = {PING_INTERVAL_S}\n\
         ping_timeout = {PING_TIMEOUT_MS}\n\
         my_node_info = \"cluster_id=1, url=bin:{}:5566, priority={}, no_ping_retries={NO_PING_RETRIES}\"\n\
         neighbor_node_info = [{}]\n\
         sharing_tag = \"vip/1=backup,election,hold_down={HOLD_DOWN_MS},preempt\"\n",
        ip_of(me),
        priority(me),
        neighbours.join(", ")
    );
    if me != 3 {
        text.push_str(&format!(
            "\n[mi]\nlisten = \"127.0.0.1:{}\"\n\n[metrics]\nenabled = false\n\n\
             [hooks]\nevent_log = \"{}\"\n",
            8880 + me,
            dir.join(format!("events{me}.jsonl")).display()
        ));
    }
    text
}

impl Lab {
    fn new(kind: Embedded) -> Lab {
        let pid = std::process::id();
        let ns = format!("clusterer-tap-{pid}");
        let tap = format!("ctap{}", pid % 100_000);
        let dir = std::env::temp_dir().join(format!("clusterer-tap-{pid}"));
        // A namespace left by a killed earlier run of the same pid (never one of ours
        // otherwise); there is usually none, so its error is not shown.
        let _ = Command::new("ip")
            .args(["netns", "del", &ns])
            .stderr(Stdio::null())
            .status();
        std::fs::create_dir_all(&dir).unwrap();
        let lab = Lab {
            kind,
            ns,
            tap,
            dir,
            daemons: Vec::new(),
            embedded: None,
            lines: Arc::new(Mutex::new(Vec::new())),
        };
        run("ip", &["netns", "add", &lab.ns]);
        run("ip", &["tuntap", "add", "dev", &lab.tap, "mode", "tap"]);
        run("ip", &["link", "set", &lab.tap, "netns", &lab.ns]);
        for args in [
            vec!["link", "set", "lo", "up"],
            vec!["addr", "add", "10.213.0.1/24", "dev", &lab.tap],
            vec!["addr", "add", "10.213.0.2/24", "dev", &lab.tap],
            vec!["link", "set", &lab.tap, "up"],
        ] {
            let mut full = vec!["netns", "exec", &lab.ns, "ip"];
            full.extend(args);
            run("ip", &full);
        }
        for me in 1..=3 {
            std::fs::write(lab.dir.join(format!("n{me}.toml")), config(me, &lab.dir)).unwrap();
        }
        lab
    }

    fn in_ns(&self, program: &Path) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns]).arg(program);
        c
    }

    fn start_daemons(&mut self) {
        let clusterer = binary("clusterer");
        for me in 1..=2 {
            let log = std::fs::File::create(self.dir.join(format!("d{me}.log"))).unwrap();
            let child = self
                .in_ns(&clusterer)
                .arg("run")
                .arg("--config")
                .arg(self.dir.join(format!("n{me}.toml")))
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap();
            self.daemons.push(child);
        }
    }

    /// The firmware script, after building the image for this lab's node 3 (outside the
    /// namespace: the build may need the network).
    fn firmware_script(&self) -> PathBuf {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("firmware/run-qemu.sh");
        let out = Command::new(&script)
            .arg("--config")
            .arg(self.dir.join("n3.toml"))
            .args(["--ip", "10.213.0.3/24", "--build-only"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "building the firmware failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        script
    }

    fn start_embedded(&mut self) {
        self.lines.lock().unwrap().clear();
        let mut command = match self.kind {
            Embedded::TapNode => {
                let mut c = self.in_ns(&binary("examples/tap_node"));
                c.arg("--config").arg(self.dir.join("n3.toml"));
                c.args(["--tap", &self.tap, "--ip", "10.213.0.3/24"]);
                c
            }
            Embedded::Qemu => {
                let mut c = self.in_ns(&self.firmware_script());
                c.arg("--config").arg(self.dir.join("n3.toml"));
                c.args(["--tap", &self.tap, "--ip", "10.213.0.3/24"]);
                c
            }
        };
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let lines = Arc::clone(&self.lines);
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
        self.embedded = Some(child);
    }

    fn kill_embedded(&mut self) {
        if let Some(mut c) = self.embedded.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// One MI call on daemon `node` (through our MI client, inside the namespace).
    fn mi(&self, node: u32, command: &str, params: &[&str]) -> Value {
        let out = self
            .in_ns(&binary("clusterer"))
            .args(["mi", "--timeout", "3", "--url"])
            .arg(format!("http://127.0.0.1:{}/mi", 8880 + node))
            .arg(command)
            .args(params)
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
    }

    /// The link state daemon `node` has of node `of` (`None` when it cannot answer).
    fn link_state(&self, node: u32, of: u32) -> Option<String> {
        let list = self.mi(node, "clusterer_list", &[]);
        let nodes = list["Clusters"][0]["Nodes"].as_array()?;
        nodes
            .iter()
            .find(|n| n["node_id"] == of)
            .and_then(|n| n["link_state"].as_str().map(str::to_owned))
    }

    fn tag_state(&self, node: u32) -> Option<String> {
        let tags = self.mi(node, "clusterer_list_shtags", &[]);
        tags.as_array()?
            .iter()
            .find(|t| t["Tag"] == "vip")
            .and_then(|t| t["State"].as_str().map(str::to_owned))
    }

    /// The embedded node's tag state from its last `tag_changed` line (backup before one).
    fn embedded_tag_active(&self) -> bool {
        self.embedded.is_some()
            && self
                .lines
                .lock()
                .unwrap()
                .iter()
                .rev()
                .find(|l| l.starts_with("tag_changed"))
                .is_some_and(|l| l.contains("state=active"))
    }

    fn embedded_printed(&self, pred: impl Fn(&str) -> bool) -> bool {
        self.lines.lock().unwrap().iter().any(|l| pred(l))
    }

    /// Counts the actives now; panics on two. The embedded node is read first: a
    /// preemption makes it active one announcement's flight before the daemon steps down,
    /// and an MI call takes longer than that, so reading the daemons first could pair a
    /// daemon's old state with the embedded node's new one.
    fn check_one_active(&self) -> usize {
        let mut actives = Vec::new();
        if self.embedded_tag_active() {
            actives.push(3);
        }
        for d in 1..=2 {
            if self.tag_state(d).as_deref() == Some("active") {
                actives.push(d);
            }
        }
        assert!(actives.len() <= 1, "two actives at once: nodes {actives:?}");
        actives.len()
    }
}

/// Polls `cond` until it holds or `bound` passes; every poll also checks that at most one
/// node holds the tag.
fn wait_for(lab: &Lab, what: &str, bound: Duration, mut cond: impl FnMut(&Lab) -> bool) {
    let start = Instant::now();
    loop {
        lab.check_one_active();
        if cond(lab) {
            eprintln!("ok after {:.1}s: {what}", start.elapsed().as_secs_f64());
            return;
        }
        assert!(
            start.elapsed() < bound,
            "not within {bound:?}: {what}; embedded node printed {:?}",
            lab.lines.lock().unwrap()
        );
        thread::sleep(Duration::from_millis(200));
    }
}

/// Runs checks (a) to (e) with `kind` as node 3.
pub(crate) fn scenario(kind: Embedded) {
    if !can_run(kind) {
        return;
    }
    let mut lab = Lab::new(kind);
    if kind == Embedded::Qemu {
        // Build the image for this lab's node 3 before anything runs.
        let _ = lab.firmware_script();
    }
    lab.start_daemons();
    lab.start_embedded();

    // (a) Up on both sides.
    wait_for(&lab, "both daemons list node 3 Up", up_bound() * 2, |l| {
        (1..=2).all(|d| l.link_state(d, 3).as_deref() == Some("Up"))
    });
    wait_for(
        &lab,
        "the embedded node reports both daemons up",
        up_bound(),
        |l| {
            (1..=2)
                .all(|d| l.embedded_printed(|line| line == format!("node_up cluster=1 node={d}")))
        },
    );

    // (b) One topology: each daemon's view lists the three nodes with the same neighbours.
    wait_for(
        &lab,
        "both daemons agree on the topology",
        up_bound(),
        |l| {
            let view = |d: u32| -> Option<Vec<(u64, Vec<u64>)>> {
                let top = l.mi(d, "clusterer_list_topology", &[]);
                let mut nodes: Vec<(u64, Vec<u64>)> = top["Clusters"][0]["Nodes"]
                    .as_array()?
                    .iter()
                    .map(|n| {
                        let mut nb: Vec<u64> = n["Neighbours"]
                            .as_array()
                            .map(|a| a.iter().filter_map(Value::as_u64).collect())
                            .unwrap_or_default();
                        nb.sort_unstable();
                        (n["node_id"].as_u64().unwrap_or(0), nb)
                    })
                    .collect();
                nodes.sort();
                Some(nodes)
            };
            let (one, two) = (view(1), view(2));
            one.as_ref().is_some_and(|v| v.len() == 3) && one == two
        },
    );

    // (c) A request from daemon 1 and the embedded node's reply.
    let sent = lab.mi(1, "cluster_send_req", &["1", "3", "hello from 1"]);
    let tag = sent["tag"].as_str().unwrap_or_default().to_owned();
    assert!(tag.starts_with("1-1-"), "cluster_send_req answered {sent}");
    wait_for(
        &lab,
        "the request reaches the embedded node",
        up_bound(),
        |l| {
            l.embedded_printed(|line| {
                line.starts_with("received cluster=1 source=1 kind=request")
                    && line.contains(&format!("tag={tag:?}"))
                    && line.contains("msg=\"hello from 1\"")
            })
        },
    );
    let log = lab.dir.join("events1.jsonl");
    wait_for(&lab, "the reply reaches daemon 1", up_bound(), |_| {
        std::fs::read_to_string(&log).is_ok_and(|text| {
            text.lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .any(|e| {
                    e.to_string().contains("RPL_RECEIVED")
                        && e.to_string().contains(&tag)
                        && e.to_string().contains("reply:hello from 1")
                })
        })
    });

    if kind == Embedded::Qemu {
        // The firmware answers `stats` with its heap figures: printed for BENCHMARKS.md.
        let sent = lab.mi(1, "cluster_send_req", &["1", "3", "stats"]);
        let tag = sent["tag"].as_str().unwrap_or_default().to_owned();
        wait_for(&lab, "the firmware reports its heap", up_bound(), |_| {
            std::fs::read_to_string(&log).is_ok_and(|text| {
                text.lines()
                    .filter(|l| l.contains(&tag) && l.contains("heap_peak="))
                    .inspect(|l| eprintln!("firmware stats (3-node cluster): {l}"))
                    .count()
                    > 0
            })
        });
    }

    // (d) The best-ranked embedded node holds the tag.
    wait_for(
        &lab,
        "the embedded node becomes active",
        takeover_bound(),
        |l| l.embedded_tag_active() && (1..=2).all(|d| l.tag_state(d).as_deref() == Some("backup")),
    );

    // (e) + (d): kill -9 → Down on both daemons, a daemon takes the tag.
    lab.kill_embedded();
    wait_for(&lab, "both daemons see node 3 Down", down_bound(), |l| {
        (1..=2).all(|d| l.link_state(d, 3).is_some_and(|s| s != "Up"))
    });
    wait_for(&lab, "a daemon takes the tag", takeover_bound(), |l| {
        l.check_one_active() == 1
    });

    // Restart → Up on both daemons, the tag moves back to the embedded node.
    lab.start_embedded();
    wait_for(
        &lab,
        "both daemons see node 3 Up again",
        up_bound() * 2,
        |l| (1..=2).all(|d| l.link_state(d, 3).as_deref() == Some("Up")),
    );
    wait_for(
        &lab,
        "the tag moves back to the embedded node",
        takeover_bound(),
        |l| l.embedded_tag_active() && (1..=2).all(|d| l.tag_state(d).as_deref() == Some("backup")),
    );
}
