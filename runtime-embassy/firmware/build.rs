//! Bakes the node configuration into the image: reads the `clusterer run` TOML named by
//! `CLUSTERER_CONFIG` (default `node.toml`) with the daemon's own parser, restricted to the
//! keys an embedded node uses (`clusterer_tokio::config::embedded`), and writes
//! `$OUT_DIR/node_config.rs`: a `node_config()` that builds the same `Config`, and the
//! node's address from `CLUSTERER_IP` (`ADDRESS/PREFIX`; default the local URL's IP, /24)
//! and `CLUSTERER_GATEWAY`; the socket pool sized for the cluster in the file, the heap
//! from `CLUSTERER_HEAP_KIB` (default 16 KiB + 3 KiB per node + one 4 KiB packet per
//! connection). A bad or unsupported key stops the build with the parser's message. Also puts `memory.x` where cortex-m-rt's `link.x` finds it.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use clusterer_core::{Config, NodeConfig, ShtagState};
use clusterer_tokio::config::embedded;

/// Largest packet the firmware sends or accepts (`EndpointOptions::max_packet_len`, the
/// packet buffer): a 16-node cluster's FULL_TOP_UPDATE is about 1.2 KiB, and this node
/// registers no capability with bulk sync data.
const MAX_PACKET: usize = 4096;

fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    std::process::exit(1);
}

fn node_literal(n: &NodeConfig) -> String {
    format!(
        "NodeConfig {{ id: NodeId::new({})?, db_id: {:?}, url: {:?}.into(), sip_addr: {:?}.into(), \
         priority: {}, no_ping_retries: {}, enabled: {}, seed: {}, description: {} }}",
        n.id.get(),
        n.db_id,
        n.url,
        n.sip_addr,
        n.priority,
        n.no_ping_retries,
        n.enabled,
        n.seed,
        match &n.description {
            Some(d) => format!("Some({d:?}.into())"),
            None => "None".into(),
        }
    )
}

/// Rust source that rebuilds `c` (every field the configuration file can set).
fn config_source(c: &Config, allow: Option<&[String]>) -> String {
    let t = &c.timers;
    let s = &c.sync;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "/// The node configuration baked in from the TOML.\n\
         pub fn node_config() -> Option<(Config, EndpointOptions)> {{\n\
         let mut c = Config::new(NodeId::new({})?, DbMode::Discovery);\n\
         c.timers = Timers {{ ping_interval_s: {}, ping_timeout_ms: {}, node_timeout_s: {}, \
         seed_fallback_interval_s: {}, sync_timeout_s: {} }};\n\
         c.enable_rerouting = {};\nc.sync_packet_size = {};\n\
         c.sync = SyncOptions {{ best_donor: {}, first_packet_timeout: {}, retry: {}, \
         ignore_unsolicited: {}, skip_rejected_chunks: {}, buffer_from_request: {}, \
         max_buffered_packets: {} }};",
        c.node_id.get(),
        t.ping_interval_s,
        t.ping_timeout_ms,
        t.node_timeout_s,
        t.seed_fallback_interval_s,
        t.sync_timeout_s,
        c.enable_rerouting,
        c.sync_packet_size,
        s.best_donor,
        s.first_packet_timeout,
        s.retry,
        s.ignore_unsolicited,
        s.skip_rejected_chunks,
        s.buffer_from_request,
        s.max_buffered_packets,
    );
    for cluster in &c.clusters {
        let nodes: Vec<String> = cluster.nodes.iter().map(node_literal).collect();
        let _ = writeln!(
            out,
            "c.clusters.push(ClusterConfig {{ id: ClusterId::new({})?, local: {}, nodes: alloc::vec![{}] }});",
            cluster.id.get(),
            node_literal(&cluster.local),
            nodes.join(", ")
        );
    }
    for tag in &c.sharing_tags {
        let election = match &tag.election {
            Some(e) => format!(
                "Some(ElectionConfig {{ hold_down_ms: {}, preempt: {} }})",
                e.hold_down_ms, e.preempt
            ),
            None => "None".into(),
        };
        let state = match tag.state {
            ShtagState::Active => "ShtagState::Active",
            ShtagState::Backup => "ShtagState::Backup",
        };
        let _ = writeln!(
            out,
            "c.sharing_tags.push(ShtagConfig {{ name: {:?}.into(), cluster: ClusterId::new({})?, \
             state: {state}, election: {election} }});",
            tag.name,
            tag.cluster.get()
        );
    }
    let allow = match allow {
        Some(nets) => {
            let nets: Vec<String> = nets
                .iter()
                .map(|n| format!("IpNet::parse({n:?}).ok()?"))
                .collect();
            format!("Some(alloc::vec![{}])", nets.join(", "))
        }
        None => "None".into(),
    };
    let _ = writeln!(
        out,
        "Some((c, EndpointOptions {{ discovery_allow: {allow}, ..EndpointOptions::default() }}))\n}}"
    );
    out
}

fn env_var(name: &str) -> Option<String> {
    println!("cargo:rerun-if-env-changed={name}");
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());
    if let Err(e) = std::fs::copy("memory.x", out.join("memory.x")) {
        fail(&format!("cannot copy memory.x: {e}"));
    }
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");

    let path = env_var("CLUSTERER_CONFIG").unwrap_or_else(|| "node.toml".into());
    println!("cargo:rerun-if-changed={path}");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| fail(&format!("CLUSTERER_CONFIG: cannot read {path}: {e}")));
    let config = embedded::load(&text, &path).unwrap_or_else(|e| fail(&e));
    let (ip, prefix) = match env_var("CLUSTERER_IP") {
        Some(cidr) => {
            embedded::parse_ipv4_cidr(&cidr).unwrap_or_else(|e| fail(&format!("CLUSTERER_IP {e}")))
        }
        None => {
            let local = config
                .core
                .clusters
                .first()
                .and_then(|c| clusterer_core::NodeAddress::parse(&c.local.url).ok())
                .map(|a| a.ip());
            match local {
                Some(IpAddr::V4(ip)) => (ip, 24),
                _ => fail(&format!(
                    "{path}: the firmware needs an IPv4 local URL (my_node_info), or CLUSTERER_IP"
                )),
            }
        }
    };
    embedded::check_local_ip(&config, IpAddr::V4(ip), &path).unwrap_or_else(|e| fail(&e));
    let gateway: Option<Ipv4Addr> = env_var("CLUSTERER_GATEWAY").map(|g| {
        g.parse()
            .unwrap_or_else(|_| fail(&format!("CLUSTERER_GATEWAY {g:?} is not an IPv4 address")))
    });
    let allow: Option<Vec<String>> = config
        .endpoint
        .discovery_allow
        .as_ref()
        .map(|nets| nets.iter().map(ToString::to_string).collect());
    // Each neighbour keeps two connections with us (each side opens its own), plus two
    // listeners per BIN port: the pool the cluster in the file needs.
    let neighbours: usize = config.core.clusters.iter().map(|c| c.nodes.len()).sum();
    let mut ports: Vec<u16> = config
        .core
        .clusters
        .iter()
        .filter_map(|c| clusterer_core::NodeAddress::parse(&c.local.url).ok())
        .map(|a| a.socket.port())
        .collect();
    ports.sort_unstable();
    ports.dedup();
    let ports = ports.len();
    let sockets = (2 * ports + 2 * neighbours).max(4);
    let mut source = String::from("// Generated by build.rs from the node's TOML; do not edit.\n");
    let heap_kib: usize = match env_var("CLUSTERER_HEAP_KIB") {
        Some(v) => v
            .parse()
            .ok()
            .filter(|k| (4..=3072).contains(k))
            .unwrap_or_else(|| fail(&format!("CLUSTERER_HEAP_KIB {v:?} is not 4..=3072"))),
        // Measured peaks: 5.5 KiB with 3 nodes, 45 KiB with 16 (BENCHMARKS.md); an
        // exhausted heap halts the firmware, so leave room.
        // Plus every connection's deframer buffer (one packet of `MAX_PACKET` each).
        None => 16 + 3 * (neighbours + 1) + sockets * MAX_PACKET / 1024,
    };
    // A burst of topology updates from the whole cluster must fit a connection's control
    // queue: a full one is a failed send, which floods more updates (a 16-node cluster
    // stormed with 2 KiB and was steady with 16 KiB).
    let control = 1024 * neighbours.max(2);
    let _ = writeln!(
        source,
        "/// Sockets of the clusterer pool: two listeners per port, two connections per\n\
         /// neighbour.\n\
         pub const SOCKETS: usize = {sockets};\n\
         /// Control queue per connection: 1 KiB per neighbour, at least 2 KiB.\n\
         pub const CONTROL_QUEUE: usize = {control};\n\
         /// Largest packet sent or accepted.\n\
         pub const MAX_PACKET: usize = {MAX_PACKET};\n\
         /// Heap size in bytes (`CLUSTERER_HEAP_KIB`; default 16 KiB + 3 KiB per node + one\n\
         /// packet per connection).\n\
         pub const HEAP_SIZE: usize = {heap_kib} * 1024;"
    );
    let _ = writeln!(
        source,
        "/// The node's IPv4 address.\npub const IP: [u8; 4] = {:?};\n\
         /// Its prefix length.\npub const PREFIX: u8 = {prefix};\n\
         /// The default gateway.\npub const GATEWAY: Option<[u8; 4]> = {:?};\n\
         /// The configuration file it was built from.\npub const SOURCE: &str = {path:?};",
        ip.octets(),
        gateway.map(|g| g.octets()),
    );
    source.push_str(&config_source(&config.core, allow.as_deref()));
    if let Err(e) = std::fs::write(out.join("node_config.rs"), source) {
        fail(&format!("cannot write node_config.rs: {e}"));
    }
}
