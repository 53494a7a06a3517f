//! A clusterer node on embassy-net over a Linux TAP device: the embassy runtime on a real
//! TCP/IP stack (smoltcp), joining a cluster of `clusterer run` daemons or OpenSIPS.
//!
//! ```sh
//! ip tuntap add dev tap0 mode tap && ip addr add 10.42.0.1/24 dev tap0 && ip link set tap0 up
//! cargo run -p clusterer-embassy --example tap_node -- \
//!     --config node3.toml --tap tap0 --ip 10.42.0.3/24
//! ```
//!
//! The configuration is the TOML of `clusterer run`, limited to what a node without a
//! database, MI or hooks uses (`clusterer_tokio::config::embedded`); any other key is refused by name. One
//! line per event goes to stdout:
//!
//! ```text
//! node_up cluster=1 node=2
//! tag_changed cluster=1 tag="vip" state=active reason="election"
//! received cluster=1 source=2 kind=request tag="..." msg="..."
//! ```
//!
//! Every GENERIC_MSG request is answered with a reply carrying the same tag and the
//! payload `reply:<request payload>`, so a peer can check the round trip.

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use clusterer_embassy::demo::{self, EventLine};
use clusterer_embassy::{Config, Handle, Resources, Runner};
use clusterer_tokio::config::embedded;
use embassy_executor::{Executor, Spawner};
use embassy_net::{Ipv4Cidr, StackResources, StaticConfigV4};
use embassy_net_tuntap::TunTapDevice;
use static_cell::StaticCell;

/// Sockets in the clusterer pool (the type of the tasks below fixes it).
const SOCKETS: usize = 8;

/// Runs a clusterer node on embassy-net over a TAP device.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// The node's configuration: the TOML of `clusterer run` (db_mode = 0).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// The TAP device (it must exist; create it with `ip tuntap add dev NAME mode tap`).
    #[arg(long, value_name = "NAME")]
    tap: String,
    /// The node's IPv4 address and prefix on the TAP network, e.g. 10.42.0.3/24. It must
    /// be the IP of the local node's URL.
    #[arg(long, value_name = "CIDR")]
    ip: String,
    /// Default gateway.
    #[arg(long, value_name = "IP")]
    gateway: Option<Ipv4Addr>,
    /// PRNG seed (default: from the clock and the process id).
    #[arg(long)]
    seed: Option<u64>,
}

/// Reads and checks the configuration: keys this node takes, `db_mode = 0`, and a local
/// URL on `ip`.
fn load(args: &Args, ip: Ipv4Addr) -> Result<Config, String> {
    let path = args.config.display();
    let text =
        std::fs::read_to_string(&args.config).map_err(|e| format!("cannot read {path}: {e}"))?;
    let daemon = embedded::load(&text, &path.to_string())?;
    embedded::check_local_ip(&daemon, std::net::IpAddr::V4(ip), &path.to_string())?;
    for w in &daemon.warnings {
        eprintln!("warning: {w}");
    }
    let unix_time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    Ok(Config {
        node: daemon.core,
        endpoint: daemon.endpoint,
        unix_time,
    })
}

fn print_line(line: &str) {
    let mut out = std::io::stdout().lock();
    // A closed stdout must not stop the node.
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

#[embassy_executor::task]
async fn net_task(mut runner: embassy_net::Runner<'static, TunTapDevice>) -> ! {
    runner.run().await
}

#[embassy_executor::task]
async fn cluster_task(runner: Runner<SOCKETS>) -> ! {
    runner.run().await
}

/// Prints every event and answers every GENERIC_MSG request.
#[embassy_executor::task]
async fn app_task(handle: Handle<SOCKETS>) {
    let mut events = match handle.subscribe() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    print_line(&format!("started node={}", handle.my_id()));
    loop {
        let event = match events.next_message().await {
            embassy_sync::pubsub::WaitResult::Message(e) => e,
            embassy_sync::pubsub::WaitResult::Lagged(n) => {
                print_line(&format!("lagged events={n}"));
                continue;
            }
        };
        print_line(&EventLine(&event).to_string());
        if let Some((cluster, source, status)) = demo::answer_request(&handle, &event) {
            print_line(&format!(
                "replied cluster={cluster} to={source} status={status:?}"
            ));
        }
    }
}

fn spawn_or_exit<S>(
    spawner: Spawner,
    token: Result<embassy_executor::SpawnToken<S>, embassy_executor::SpawnError>,
) {
    match token {
        Ok(t) => spawner.spawn(t),
        Err(e) => {
            eprintln!("error: cannot spawn a task: {e:?}");
            std::process::exit(1);
        }
    }
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .target(env_logger::Target::Stderr)
        .init();
    let args = Args::parse();
    let cidr = match embedded::parse_ipv4_cidr(&args.ip) {
        Ok((ip, len)) => Ipv4Cidr::new(ip, len),
        Err(e) => {
            eprintln!("error: --ip {e}");
            return ExitCode::FAILURE;
        }
    };
    let config = match load(&args, cidr.address()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let device = match TunTapDevice::new(&args.tap) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: cannot open TAP device {:?}: {e}", args.tap);
            return ExitCode::FAILURE;
        }
    };
    let seed = args.seed.unwrap_or_else(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        nanos ^ (u64::from(std::process::id()) << 32)
    });
    let net_config = embassy_net::Config::ipv4_static(StaticConfigV4 {
        address: cidr,
        gateway: args.gateway,
        dns_servers: heapless::Vec::new(),
    });
    static STACK: StaticCell<StackResources<{ SOCKETS + 4 }>> = StaticCell::new();
    let (stack, net_runner) =
        embassy_net::new(device, net_config, STACK.init(StackResources::new()), seed);
    static RESOURCES: StaticCell<Resources<SOCKETS>> = StaticCell::new();
    let resources = RESOURCES.init_with(Resources::new);
    let (handle, runner) = match clusterer_embassy::new(stack, config, resources, seed) {
        Ok(pair) => pair,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    static EXECUTOR: StaticCell<Executor> = StaticCell::new();
    let executor = EXECUTOR.init(Executor::new());
    executor.run(move |spawner| {
        spawn_or_exit(spawner, net_task(net_runner));
        spawn_or_exit(spawner, cluster_task(runner));
        spawn_or_exit(spawner, app_task(handle));
    })
}
