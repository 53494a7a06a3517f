//! Failure detection and idle cost of the `clusterer` daemon: three real `clusterer run`
//! processes on 127.0.0.1–3, measured the way vectors/opensips/README.md ("Measurements")
//! measured OpenSIPS 3.6.8, so the numbers compare side by side.
//!
//! ```text
//! cargo run --release -p clusterer-tokio --example detect_bench -- [--trials N] [--fast] [--freeze]
//! cargo run --release -p clusterer-tokio --example detect_bench -- --idle 60 [--fast]
//! ```
//!
//! Topology as in the OpenSIPS lab: db_mode 0, cluster 1, node 1 is the seed and holds
//! `vip/1=active`; nodes 2 and 3 know only node 1 (`vip/1=backup`) and find each other by
//! discovery. BIN on `127.0.0.N:27566`, MI on `127.0.0.1:2758N`, metrics on
//! `127.0.0.1:2759N` (see `--bin-port`, `--mi-port`); node 1 and node 2 write an event log.
//!
//! Detection mode (default): once every node shows both links `Up`, each trial waits a
//! little (a different phase of the ping interval per trial), then sends SIGKILL to node 3
//! (`--freeze`: SIGSTOP) and measures, from the signal:
//! * node 1's MI `clusterer_list` showing node 3 not `Up` (`Probe`), then `Down` (polled every
//!   20 ms), and the same `Down` on node 2;
//! * the `E_CLUSTERER_NODE_STATE_CHANGED` event `new_state=0` for node 3 in the event logs of
//!   node 1 and node 2 (its float UNIX `time` minus the UNIX time of the signal);
//!
//! then restarts node 3 (`--freeze`: SIGCONT) and measures, from the restart, node 1's event
//! `new_state=1`, node 1's MI showing node 3 `Up`, and all six links `Up`. Min / median / max
//! over the trials are printed as a markdown table (median of an even count: the mean of the
//! two middle values). A phase that does not finish within `--timeout` seconds is reported
//! as a timeout, never a panic.
//!
//! Idle mode (`--idle SECONDS`): the cluster runs with all links up (10 s settle first), then
//! for every daemon: VmRSS / VmHWM from /proc/PID/status, Pss from /proc/PID/smaps_rollup,
//! threads, and the CPU time (utime + stime of /proc/PID/stat, in clock ticks from
//! `getconf CLK_TCK`) over the window, as a percentage of one core; the same from the
//! nanosecond counters of /proc/PID/task/*/schedstat (live threads only), since an idle
//! daemon uses only a few clock ticks a minute. Nothing polls the daemons during the window.
//!
//! The daemon binary: `--bin PATH`, or else `clusterer` next to this example's directory
//! (`target/<profile>/clusterer` for `target/<profile>/examples/detect_bench`), built first
//! with `$CARGO build -p clusterer-tokio --bin clusterer` (plus `--release` when this example
//! is a release build; `CARGO` as set by `cargo run`, else `cargo`) unless `--no-build`.
//! Configs, daemon logs and event logs go to `target/detect_bench/<label>-<pid>/`, removed
//! after a successful run unless `--keep`. Every daemon is killed when the tool ends (a Drop
//! guard, also on errors).

use std::fmt::Write as _;
use std::fs;
use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime};

use clap::Parser;
use serde_json::{Value, json};

/// Polling period of the MI and the event logs.
const POLL: Duration = Duration::from_millis(20);
/// Wait after the whole cluster is up before the first trial / the idle window.
const SETTLE: Duration = Duration::from_secs(10);
/// The victim.
const VICTIM: u32 = 3;

/// Failure detection and idle cost of three `clusterer` daemons on 127.0.0.1-3.
#[derive(Parser, Debug)]
#[command(name = "detect_bench")]
struct Args {
    /// Kill (or freeze) / restart trials.
    #[arg(long, default_value_t = 4)]
    trials: u32,
    /// ping_interval = 1, ping_timeout = 500 instead of the defaults (4, 1000).
    #[arg(long)]
    fast: bool,
    /// SIGSTOP / SIGCONT node 3 instead of SIGKILL / restart.
    #[arg(long)]
    freeze: bool,
    /// Measure idle RSS / PSS / CPU over this many seconds instead of detection.
    #[arg(long, value_name = "SECONDS")]
    idle: Option<u64>,
    /// The `clusterer` binary (default: next to this example, built first).
    #[arg(long, value_name = "PATH")]
    bin: Option<PathBuf>,
    /// Do not run `cargo build` for the default binary.
    #[arg(long)]
    no_build: bool,
    /// BIN port of every node (on 127.0.0.N).
    #[arg(long, default_value_t = 27_566)]
    bin_port: u16,
    /// MI of node N on 127.0.0.1:(mi_port + N); metrics on mi_port + 10 + N.
    #[arg(long, default_value_t = 27_580)]
    mi_port: u16,
    /// Longest wait of any phase, in seconds.
    #[arg(long, default_value_t = 40)]
    timeout: u64,
    /// Keep the work directory (configs, logs) after a successful run.
    #[arg(long)]
    keep: bool,
}

#[derive(Clone, Copy, Debug)]
struct Timers {
    ping_interval_s: u64,
    ping_timeout_ms: u64,
}

impl Timers {
    fn of(args: &Args) -> Self {
        if args.fast {
            Timers {
                ping_interval_s: 1,
                ping_timeout_ms: 500,
            }
        } else {
            Timers {
                ping_interval_s: 4,
                ping_timeout_ms: 1000,
            }
        }
    }

    fn label(&self) -> String {
        format!(
            "ping_interval={}, ping_timeout={}",
            self.ping_interval_s, self.ping_timeout_ms
        )
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("detect_bench: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let timers = Timers::of(args);
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    // target/<profile>/examples/detect_bench → target/<profile>, target.
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or("cannot locate the target directory from the executable path")?
        .to_path_buf();
    let target_dir = profile_dir
        .parent()
        .ok_or("cannot locate the target directory")?
        .to_path_buf();
    let bin = match &args.bin {
        Some(b) => b.clone(),
        None => {
            if !args.no_build {
                build_daemon()?;
            }
            profile_dir.join("clusterer")
        }
    };
    if !bin.is_file() {
        return Err(format!(
            "daemon binary {} not found (build it with `cargo build --release -p clusterer-tokio --bin clusterer` or pass --bin)",
            bin.display()
        ));
    }
    let mode = match (args.idle, args.freeze) {
        (Some(_), _) => "idle",
        (None, true) => "freeze",
        (None, false) => "kill",
    };
    let label = format!(
        "{mode}-{}-{}",
        if args.fast { "fast" } else { "default" },
        std::process::id()
    );
    let dir = target_dir.join("detect_bench").join(label);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    println!("# detect_bench: {mode}, {}", timers.label());
    println!("daemon binary: {}", bin.display());
    println!("work directory: {}", dir.display());
    print_machine();

    let ports = Ports {
        bin: args.bin_port,
        mi: args.mi_port,
    };
    check_ports_free(&ports)?;
    let mut cluster = Cluster::new(bin, dir.clone(), ports, timers)?;
    let timeout = Duration::from_secs(args.timeout);
    let result = match args.idle {
        Some(secs) => idle(&mut cluster, Duration::from_secs(secs), timeout),
        None => detection(&mut cluster, args, timers, timeout),
    };
    drop(cluster);
    match &result {
        Ok(()) if !args.keep => {
            let _ = fs::remove_dir_all(&dir);
        }
        _ => println!("logs kept in {}", dir.display()),
    }
    result
}

/// Builds the daemon binary in the profile of this example.
fn build_daemon() -> Result<(), String> {
    let cargo = std::env::var_os("CARGO")
        .or_else(|| option_env!("CARGO").map(Into::into))
        .unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(&cargo);
    cmd.args(["build", "-p", "clusterer-tokio", "--bin", "clusterer"]);
    if !cfg!(debug_assertions) {
        cmd.arg("--release");
    } else {
        eprintln!("detect_bench: warning: a debug build; run with --release for real numbers");
    }
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run {}: {e}", Path::new(&cargo).display()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("building the daemon failed ({status})"))
    }
}

fn print_machine() {
    let nproc = std::thread::available_parallelism().map_or(0, usize::from);
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "?".into());
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into());
    println!(
        "machine: {nproc} CPUs, {cpu}, Linux {kernel}; UNIX time {:.0}",
        unix_now()
    );
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[derive(Clone, Copy, Debug)]
struct Ports {
    bin: u16,
    mi: u16,
}

impl Ports {
    fn mi(&self, node: u32) -> u16 {
        self.mi + node as u16
    }

    fn metrics(&self, node: u32) -> u16 {
        self.mi + 10 + node as u16
    }
}

fn check_ports_free(ports: &Ports) -> Result<(), String> {
    let mut addrs = Vec::new();
    for n in 1..=3u32 {
        addrs.push(format!("127.0.0.{n}:{}", ports.bin));
        addrs.push(format!("127.0.0.1:{}", ports.mi(n)));
        addrs.push(format!("127.0.0.1:{}", ports.metrics(n)));
    }
    for a in addrs {
        let addr: SocketAddr = a.parse().map_err(|e| format!("{a}: {e}"))?;
        if let Err(e) = TcpListener::bind(addr) {
            return Err(format!(
                "{addr} is not free ({e}); another run still going? pick other ports with --bin-port / --mi-port"
            ));
        }
    }
    Ok(())
}

/// The three daemons; every process is killed on drop.
struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    ports: Ports,
    configs: Vec<PathBuf>,
    children: Vec<Option<Child>>,
    stopped: Vec<bool>,
    starts: u32,
    mi: ureq::Agent,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in self.children.iter_mut().flatten() {
            // SIGKILL also ends a stopped process.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Cluster {
    fn new(bin: PathBuf, dir: PathBuf, ports: Ports, timers: Timers) -> Result<Self, String> {
        let mut configs = Vec::new();
        for n in 1..=3 {
            configs.push(write_config(&dir, n, &ports, timers)?);
        }
        let mi = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_millis(1000)))
            .build()
            .into();
        let mut cluster = Cluster {
            bin,
            dir,
            ports,
            configs,
            children: vec![None, None, None],
            stopped: vec![false; 3],
            starts: 0,
            mi,
        };
        for n in 1..=3 {
            cluster.spawn(n)?;
        }
        Ok(cluster)
    }

    fn spawn(&mut self, node: u32) -> Result<(), String> {
        self.starts += 1;
        let log_path = self
            .dir
            .join(format!("node{node}-start{}.log", self.starts));
        let log = fs::File::create(&log_path)
            .map_err(|e| format!("create {}: {e}", log_path.display()))?;
        let child = Command::new(&self.bin)
            .args(["run", "--config"])
            .arg(&self.configs[node as usize - 1])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.bin.display()))?;
        self.children[node as usize - 1] = Some(child);
        self.stopped[node as usize - 1] = false;
        Ok(())
    }

    fn pid(&self, node: u32) -> Option<u32> {
        self.children[node as usize - 1].as_ref().map(Child::id)
    }

    /// SIGKILL and reap.
    fn kill(&mut self, node: u32) -> Result<(), String> {
        let Some(mut child) = self.children[node as usize - 1].take() else {
            return Err(format!("node {node} is not running"));
        };
        child.kill().map_err(|e| format!("kill node {node}: {e}"))?;
        let _ = child.wait();
        Ok(())
    }

    /// SIGSTOP / SIGCONT through kill(1).
    fn signal(&mut self, node: u32, sig: &str) -> Result<(), String> {
        let pid = self
            .pid(node)
            .ok_or_else(|| format!("node {node} is not running"))?;
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string())
            .status()
            .map_err(|e| format!("kill -{sig} {pid}: {e}"))?;
        if !status.success() {
            return Err(format!("kill -{sig} {pid} failed ({status})"));
        }
        self.stopped[node as usize - 1] = sig == "STOP";
        Ok(())
    }

    /// Fails when a daemon that should run has exited (e.g. a bind error).
    fn check_alive(&mut self) -> Result<(), String> {
        for (i, child) in self.children.iter_mut().enumerate() {
            if let Some(c) = child
                && let Ok(Some(status)) = c.try_wait()
            {
                return Err(format!(
                    "node {} exited ({status}); see its log in {}",
                    i + 1,
                    self.dir.display()
                ));
            }
        }
        Ok(())
    }

    /// Node `node`'s view: (node_id, link_state) per known node; `None` when its MI does
    /// not answer.
    fn links(&self, node: u32) -> Option<Vec<(u64, String)>> {
        if self.stopped[node as usize - 1] || self.children[node as usize - 1].is_none() {
            return None;
        }
        let url = format!("http://127.0.0.1:{}/mi", self.ports.mi(node));
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "clusterer_list"}).to_string();
        let mut reply = self
            .mi
            .post(&url)
            .header("Content-Type", "application/json")
            .send(body.as_bytes())
            .ok()?;
        let text = reply.body_mut().read_to_string().ok()?;
        let value: Value = serde_json::from_str(&text).ok()?;
        let nodes = value["result"]["Clusters"][0]["Nodes"].as_array()?;
        Some(
            nodes
                .iter()
                .filter_map(|x| Some((x["node_id"].as_u64()?, x["link_state"].as_str()?.into())))
                .collect(),
        )
    }

    fn link_state(&self, node: u32, peer: u32) -> Option<String> {
        self.links(node)?
            .into_iter()
            .find(|(id, _)| *id == u64::from(peer))
            .map(|(_, s)| s)
    }

    /// Every node shows the two others `Up`.
    fn all_up(&self) -> bool {
        (1..=3).all(|n| {
            self.links(n).is_some_and(|l| {
                l.len() == 2
                    && l.iter()
                        .all(|(id, s)| *id != u64::from(n) && s.as_str() == "Up")
            })
        })
    }

    fn wait_all_up(&mut self, timeout: Duration) -> Result<Duration, String> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            self.check_alive()?;
            if self.all_up() {
                return Ok(start.elapsed());
            }
            sleep(Duration::from_millis(100));
        }
        let views: Vec<String> = (1..=3)
            .map(|n| format!("node {n}: {:?}", self.links(n)))
            .collect();
        Err(format!(
            "timed out after {:?} waiting for all six links Up ({})",
            timeout,
            views.join("; ")
        ))
    }

    fn event_log(&self, node: u32) -> PathBuf {
        self.dir.join(format!("events{node}.jsonl"))
    }
}

fn write_config(dir: &Path, n: u32, ports: &Ports, t: Timers) -> Result<PathBuf, String> {
    let (seed, tag, neighbours) = if n == 1 {
        (", flags=seed", "vip/1=active", String::new())
    } else {
        (
            "",
            "vip/1=backup",
            format!(
                "neighbor_node_info = \"cluster_id=1, node_id=1, url=bin:127.0.0.1:{}, flags=seed\"\n",
                ports.bin
            ),
        )
    };
    let event_log = if n == VICTIM {
        String::new()
    } else {
        format!(
            "event_log = \"{}\"\n",
            dir.join(format!("events{n}.jsonl")).display()
        )
    };
    let text = format!(
        "# detect_bench node {n}\n\
         my_node_id = {n}\n\
         db_mode = 0\n\
         ping_interval = {pi}\n\
         ping_timeout = {pt}\n\
         my_node_info = \"cluster_id=1, url=bin:127.0.0.{n}:{bin}{seed}\"\n\
         {neighbours}\
         sharing_tag = \"{tag}\"\n\
         \n\
         [mi]\n\
         listen = \"127.0.0.1:{mi}\"\n\
         \n\
         [metrics]\n\
         listen = \"127.0.0.1:{metrics}\"\n\
         \n\
         [hooks]\n\
         {event_log}",
        pi = t.ping_interval_s,
        pt = t.ping_timeout_ms,
        bin = ports.bin,
        mi = ports.mi(n),
        metrics = ports.metrics(n),
    );
    let path = dir.join(format!("node{n}.toml"));
    fs::write(&path, text).map_err(|e| format!("write {}: {e}", path.display()))?;
    Ok(path)
}

/// Reads NODE_STATE_CHANGED events appended to an event log after a given offset.
struct EventLog {
    path: PathBuf,
    offset: usize,
}

impl EventLog {
    /// Starts at the current end of the file.
    fn from_end(path: PathBuf) -> Self {
        let offset = fs::read(&path).map_or(0, |b| b.len());
        EventLog { path, offset }
    }

    /// UNIX time of the first `E_CLUSTERER_NODE_STATE_CHANGED` for `node` with `new_state`
    /// written after the offset.
    fn find(&self, node: u32, new_state: u8) -> Option<f64> {
        let bytes = match fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == ErrorKind::NotFound => return None,
            Err(_) => return None,
        };
        let tail = bytes.get(self.offset..)?;
        String::from_utf8_lossy(tail)
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|v| {
                v["event"] == "E_CLUSTERER_NODE_STATE_CHANGED"
                    && v["params"]["node_id"] == json!(node)
                    && v["params"]["new_state"] == json!(new_state)
            })
            .and_then(|v| v["time"].as_f64())
    }
}

/// One measured quantity per trial, in seconds; `None` = timed out.
#[derive(Clone, Debug, Default)]
struct Trial {
    ev1_down: Option<f64>,
    ev2_down: Option<f64>,
    mi1_not_up: Option<f64>,
    mi1_down: Option<f64>,
    mi2_down: Option<f64>,
    ev1_up: Option<f64>,
    mi1_up: Option<f64>,
    all_up: Option<f64>,
    /// The link seen Up last when all were Up: "observer→peer at seconds".
    last_link: Option<String>,
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map_or_else(|| "timeout".into(), |s| format!("{s:.3}"))
}

fn detection(
    cluster: &mut Cluster,
    args: &Args,
    timers: Timers,
    timeout: Duration,
) -> Result<(), String> {
    let formed = cluster.wait_all_up(Duration::from_secs(60).max(timeout))?;
    println!(
        "cluster formed: all six links Up {:.2} s after start",
        formed.as_secs_f64()
    );
    sleep(SETTLE);
    let interval = Duration::from_secs(timers.ping_interval_s);
    let (stop_word, start_word) = if args.freeze {
        ("SIGSTOP", "SIGCONT")
    } else {
        ("kill -9", "restart")
    };
    let mut trials = Vec::new();
    for i in 0..args.trials {
        cluster.wait_all_up(timeout)?;
        // A different phase of the keep-alive period on each trial (golden-ratio steps).
        let phase = (f64::from(i) * 0.618_034).fract();
        sleep(Duration::from_secs(2) + interval.mul_f64(phase));
        let mut trial = Trial::default();

        let ev1 = EventLog::from_end(cluster.event_log(1));
        let ev2 = EventLog::from_end(cluster.event_log(2));
        let t0 = Instant::now();
        let u0 = unix_now();
        if args.freeze {
            cluster.signal(VICTIM, "STOP")?;
        } else {
            cluster.kill(VICTIM)?;
        }
        let deadline = t0 + timeout;
        let mut next = t0;
        while Instant::now() < deadline {
            let s1 = cluster.link_state(1, VICTIM);
            let s2 = cluster.link_state(2, VICTIM);
            let at = t0.elapsed().as_secs_f64();
            if trial.mi1_not_up.is_none() && s1.as_deref().is_some_and(|s| s != "Up") {
                trial.mi1_not_up = Some(at);
            }
            if trial.mi1_down.is_none() && s1.as_deref() == Some("Down") {
                trial.mi1_down = Some(at);
            }
            if trial.mi2_down.is_none() && s2.as_deref() == Some("Down") {
                trial.mi2_down = Some(at);
            }
            if trial.ev1_down.is_none() {
                trial.ev1_down = ev1.find(VICTIM, 0).map(|t| t - u0);
            }
            if trial.ev2_down.is_none() {
                trial.ev2_down = ev2.find(VICTIM, 0).map(|t| t - u0);
            }
            if trial.mi1_down.is_some()
                && trial.mi2_down.is_some()
                && trial.ev1_down.is_some()
                && trial.ev2_down.is_some()
            {
                break;
            }
            next += POLL;
            sleep(next.saturating_duration_since(Instant::now()));
        }

        let ev1 = EventLog::from_end(cluster.event_log(1));
        let t1 = Instant::now();
        let u1 = unix_now();
        if args.freeze {
            cluster.signal(VICTIM, "CONT")?;
        } else {
            cluster.spawn(VICTIM)?;
        }
        let deadline = t1 + timeout;
        let mut next = t1;
        // First time each link (observer, peer) is seen Up; the last one names the link
        // that held back "all links Up".
        let mut link_up: Vec<((u32, u32), f64)> = Vec::new();
        while Instant::now() < deadline {
            cluster.check_alive()?;
            let views: Vec<Option<Vec<(u64, String)>>> =
                (1..=3).map(|n| cluster.links(n)).collect();
            let at = t1.elapsed().as_secs_f64();
            for (i, view) in views.iter().enumerate() {
                let me = i as u32 + 1;
                for (peer, state) in view.iter().flatten() {
                    let key = (me, *peer as u32);
                    if state == "Up" && !link_up.iter().any(|(k, _)| *k == key) {
                        link_up.push((key, at));
                    }
                }
            }
            let up_on = |n: usize, peer: u64| {
                views[n - 1]
                    .iter()
                    .flatten()
                    .any(|(id, s)| *id == peer && s == "Up")
            };
            if trial.mi1_up.is_none() && up_on(1, u64::from(VICTIM)) {
                trial.mi1_up = Some(at);
            }
            let all = views.iter().enumerate().all(|(i, v)| {
                v.as_ref().is_some_and(|l| {
                    l.len() == 2 && l.iter().all(|(id, s)| *id != i as u64 + 1 && s == "Up")
                })
            });
            if trial.all_up.is_none() && all {
                trial.all_up = Some(at);
                trial.last_link = link_up
                    .iter()
                    .max_by(|a, b| a.1.total_cmp(&b.1))
                    .map(|((a, b), t)| format!("{a}→{b} at {t:.3}"));
            }
            if trial.ev1_up.is_none() {
                trial.ev1_up = ev1.find(VICTIM, 1).map(|t| t - u1);
            }
            if trial.mi1_up.is_some() && trial.all_up.is_some() && trial.ev1_up.is_some() {
                break;
            }
            next += POLL;
            sleep(next.saturating_duration_since(Instant::now()));
        }
        println!(
            "trial {}: {stop_word} → node1 MI not Up {}, node1 event down {}, node2 event down {}, node1 MI Down {}, node2 MI Down {}; {start_word} → node1 event up {}, node1 MI Up {}, all links Up {} (last: {})",
            i + 1,
            fmt_opt(trial.mi1_not_up),
            fmt_opt(trial.ev1_down),
            fmt_opt(trial.ev2_down),
            fmt_opt(trial.mi1_down),
            fmt_opt(trial.mi2_down),
            fmt_opt(trial.ev1_up),
            fmt_opt(trial.mi1_up),
            fmt_opt(trial.all_up),
            trial.last_link.as_deref().unwrap_or("-"),
        );
        trials.push(trial);
    }

    let col = |f: fn(&Trial) -> Option<f64>| summary(trials.iter().map(f).collect());
    let setting = format!(
        "{}, {}",
        timers.label(),
        if args.freeze { "freeze" } else { "kill" }
    );
    println!();
    println!(
        "min / median / max over {} trials, seconds from the {stop_word} / {start_word}:",
        trials.len()
    );
    println!();
    println!(
        "| setting | {stop_word} → node1 event `new_state=0` | {stop_word} → node1 MI `Down` | {start_word} → node1 MI `Up` (event `new_state=1`) | {start_word} → all 6 links Up |"
    );
    println!("|---|---|---|---|---|");
    println!(
        "| {setting} | {} | {} | {} ({}) | {} |",
        col(|t| t.ev1_down),
        col(|t| t.mi1_down),
        col(|t| t.mi1_up),
        col(|t| t.ev1_up),
        col(|t| t.all_up),
    );
    println!();
    println!(
        "| setting | {stop_word} → node1 MI not `Up` | {stop_word} → node2 event `new_state=0` | {stop_word} → node2 MI `Down` |"
    );
    println!("|---|---|---|---|");
    println!(
        "| {setting} | {} | {} | {} |",
        col(|t| t.mi1_not_up),
        col(|t| t.ev2_down),
        col(|t| t.mi2_down),
    );
    if trials
        .iter()
        .any(|t| t.ev1_down.is_none() || t.mi1_down.is_none() || t.all_up.is_none())
    {
        println!("\nnote: some phases timed out (after {timeout:?}); see the trial lines");
    }
    Ok(())
}

/// `min / median / max`, with the number of timeouts when there were any.
fn summary(values: Vec<Option<f64>>) -> String {
    let mut v: Vec<f64> = values.iter().flatten().copied().collect();
    let missing = values.len() - v.len();
    if v.is_empty() {
        return "timeout".into();
    }
    v.sort_by(f64::total_cmp);
    let median = if v.len() % 2 == 1 {
        v[v.len() / 2]
    } else {
        (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
    };
    let mut s = format!("{:.2} / {:.2} / {:.2}", v[0], median, v[v.len() - 1]);
    if missing > 0 {
        let _ = write!(s, " ({missing} timed out)");
    }
    s
}

/// CPU ticks (utime + stime) of a process.
fn cpu_ticks(pid: u32) -> Result<u64, String> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("/proc/{pid}/stat: {e}"))?;
    // Fields after the parenthesised command name, which may contain spaces.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or("malformed /proc/PID/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime is field 14, stime field 15.
    let get = |i: usize| -> Result<u64, String> {
        fields
            .get(i - 3)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| format!("/proc/{pid}/stat: no field {i}"))
    };
    Ok(get(14)? + get(15)?)
}

/// Nanoseconds on a CPU summed over the live threads of a process
/// (/proc/PID/task/*/schedstat, first field): finer than the clock ticks of /proc/PID/stat,
/// but the time of threads that exited is not in it.
fn cpu_ns_threads(pid: u32) -> Option<u64> {
    let mut total = 0u64;
    for entry in fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let path = entry.ok()?.path().join("schedstat");
        let text = fs::read_to_string(path).ok()?;
        total += text.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total)
}

/// A `kB` value of a `Key:   N kB` line.
fn kb_field(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
}

fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

fn idle(cluster: &mut Cluster, window: Duration, timeout: Duration) -> Result<(), String> {
    let formed = cluster.wait_all_up(Duration::from_secs(60).max(timeout))?;
    println!(
        "cluster formed: all six links Up {:.2} s after start; settling {} s",
        formed.as_secs_f64(),
        SETTLE.as_secs()
    );
    sleep(SETTLE);
    let hz = clock_ticks();
    let pids: Vec<u32> = (1..=3)
        .map(|n| cluster.pid(n).ok_or(format!("node {n} not running")))
        .collect::<Result<_, _>>()?;
    let before: Vec<u64> = pids
        .iter()
        .map(|p| cpu_ticks(*p))
        .collect::<Result<_, _>>()?;
    let before_ns: Vec<Option<u64>> = pids.iter().map(|p| cpu_ns_threads(*p)).collect();
    let start = Instant::now();
    sleep(window);
    let elapsed = start.elapsed().as_secs_f64();
    let after: Vec<u64> = pids
        .iter()
        .map(|p| cpu_ticks(*p))
        .collect::<Result<_, _>>()?;
    let after_ns: Vec<Option<u64>> = pids.iter().map(|p| cpu_ns_threads(*p)).collect();
    cluster.check_alive()?;
    let still_up = cluster.all_up();
    println!();
    println!("idle window {elapsed:.1} s, CLK_TCK {hz}, all links still Up afterwards: {still_up}");
    println!();
    println!(
        "| node | VmRSS | VmHWM | Pss | threads | CPU s in window (ticks) | % of one core | CPU ms (schedstat) | % of one core (schedstat) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (i, pid) in pids.iter().enumerate() {
        let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let rollup = fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok();
        let mib = |kb: Option<u64>| {
            kb.map_or_else(|| "n/a".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
        };
        let threads = status
            .lines()
            .find(|l| l.starts_with("Threads:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or("?");
        let cpu = after[i].saturating_sub(before[i]) as f64 / hz as f64;
        let (ms, pct) = match (before_ns[i], after_ns[i]) {
            (Some(b), Some(a)) => {
                let s = a.saturating_sub(b) as f64 / 1e9;
                (
                    format!("{:.1}", s * 1000.0),
                    format!("{:.3} %", 100.0 * s / elapsed),
                )
            }
            _ => ("n/a".into(), "n/a".into()),
        };
        println!(
            "| {} (pid {pid}) | {} | {} | {} | {threads} | {cpu:.2} | {:.3} % | {ms} | {pct} |",
            i + 1,
            mib(kb_field(&status, "VmRSS:")),
            mib(kb_field(&status, "VmHWM:")),
            mib(rollup.as_deref().and_then(|r| kb_field(r, "Pss:"))),
            100.0 * cpu / elapsed,
        );
    }
    if !still_up {
        return Err("a link left Up during the idle window".into());
    }
    Ok(())
}
