//! The clusterer firmware for QEMU's `mps2-an386` (Cortex-M4F): a cluster node on
//! embassy-net over the board's LAN9118, configured at build time from the `clusterer run`
//! TOML (see `build.rs`), printing one line per event on UART0 — the lines of the TAP node
//! (`clusterer_embassy::demo`) — and answering GENERIC_MSG requests (`reply:<payload>`;
//! the payload `stats` gets the heap figures instead).
//!
//! ```sh
//! runtime-embassy/firmware/run-qemu.sh --config node3.toml --tap tap0 --ip 10.42.0.3/24
//! ```

#![no_std]
#![no_main]

extern crate alloc;

mod time;
mod uart;

use core::mem::MaybeUninit;
use core::net::Ipv4Addr;

use alloc::format;
use clusterer_core::message::GenericKind;
use clusterer_embassy::demo::{self, EventLine};
use clusterer_embassy::{Handle, Resources, Runner};
use cortex_m_rt::entry;
use embassy_executor::{Executor, Spawner};
use embassy_futures::select::{Either, select};
use embassy_net::{Ipv4Cidr, StackResources, StaticConfigV4};
use embassy_time::{Duration, Timer};
use static_cell::{ConstStaticCell, StaticCell};

/// The configuration `build.rs` baked in.
mod baked {
    use clusterer_core::{
        ClusterConfig, ClusterId, Config, DbMode, ElectionConfig, NodeConfig, NodeId, ShtagConfig,
        ShtagState, SyncOptions, Timers,
    };
    use clusterer_proto::EndpointOptions;
    #[allow(unused_imports)]
    use clusterer_proto::endpoint::IpNet;

    include!(concat!(env!("OUT_DIR"), "/node_config.rs"));
}

/// Sockets of the clusterer pool, sized by `build.rs` for the configured cluster: 2
/// listeners, an outgoing and an accepted connection per neighbour.
const SOCKETS: usize = baked::SOCKETS;
/// TCP receive and send buffer per socket.
const SOCKET_BUF: usize = 1024;
/// Bulk send queue per connection.
const BULK_QUEUE: usize = 2048;
/// Largest packet sent or received (each connection's deframer may buffer one on the heap).
const MAX_PACKET: usize = baked::MAX_PACKET;
/// The heap the core keeps its tables in (and the deframers their packets), from
/// `CLUSTERER_HEAP_KIB` at build time (default 16 KiB + 3 KiB per node + one packet per
/// connection: a 3-node cluster peaks near 6 KiB, a 16-node one near 46 KiB before its
/// deframers fill).
const HEAP_SIZE: usize = baked::HEAP_SIZE;
/// How often the LAN9118 is polled.
const NIC_POLL: Duration = Duration::from_millis(1);

#[global_allocator]
static HEAP: embedded_alloc::LlffHeap = embedded_alloc::LlffHeap::empty();

static LOGGER: uart::Logger = uart::Logger;

#[cfg(not(feature = "stub-nic"))]
type Nic = clusterer_lan9118::Lan9118<clusterer_lan9118::Mmio>;
#[cfg(feature = "stub-nic")]
type Nic = stub::StubNic;

#[cfg(not(feature = "stub-nic"))]
static NIC_WAKEUP: clusterer_lan9118::Wakeup = clusterer_lan9118::Wakeup::new();

#[cfg(not(feature = "stub-nic"))]
fn nic() -> Nic {
    // SAFETY: the board's LAN9118 window; nothing else in the image touches it.
    let bus = unsafe { clusterer_lan9118::Mmio::new(clusterer_lan9118::MPS2_BASE) };
    match clusterer_lan9118::Lan9118::new(bus, &NIC_WAKEUP) {
        Ok(nic) => nic,
        Err(e) => halt(format_args!("NIC: {e}")),
    }
}

#[cfg(feature = "stub-nic")]
fn nic() -> Nic {
    stub::StubNic
}

/// A NIC that drops every frame and receives none (for the runtime's footprint alone).
#[cfg(feature = "stub-nic")]
mod stub {
    use core::task::Context;
    use embassy_net_driver::{Capabilities, HardwareAddress, LinkState, RxToken, TxToken};

    pub(crate) struct StubNic;
    pub(crate) struct StubRx;
    pub(crate) struct StubTx;

    impl RxToken for StubRx {
        fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, f: F) -> R {
            f(&mut [])
        }
    }

    impl TxToken for StubTx {
        fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
            let mut frame = [0u8; 1514];
            f(&mut frame[..len.min(1514)])
        }
    }

    impl embassy_net_driver::Driver for StubNic {
        type RxToken<'a> = StubRx;
        type TxToken<'a> = StubTx;
        fn receive(&mut self, _cx: &mut Context<'_>) -> Option<(StubRx, StubTx)> {
            None
        }
        fn transmit(&mut self, _cx: &mut Context<'_>) -> Option<StubTx> {
            Some(StubTx)
        }
        fn link_state(&mut self, _cx: &mut Context<'_>) -> LinkState {
            LinkState::Up
        }
        fn capabilities(&self) -> Capabilities {
            let mut caps = Capabilities::default();
            caps.max_transmission_unit = 1514;
            caps
        }
        fn hardware_address(&self) -> HardwareAddress {
            HardwareAddress::Ethernet([0x02, 0, 0, 0, 0, 0x03])
        }
    }
}

/// Prints `why` and stops.
fn halt(why: core::fmt::Arguments<'_>) -> ! {
    uart::line(format_args!("fatal: {why}"));
    loop {
        cortex_m::asm::wfi();
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    halt(format_args!("panic: {info}"))
}

#[embassy_executor::task]
async fn net_task(mut runner: embassy_net::Runner<'static, Nic>) -> ! {
    runner.run().await
}

#[embassy_executor::task]
async fn cluster_task(runner: Runner<SOCKETS>) -> ! {
    runner.run().await
}

#[cfg(not(feature = "stub-nic"))]
#[embassy_executor::task]
async fn nic_poll_task() -> ! {
    NIC_WAKEUP.poll_every(NIC_POLL).await
}

/// Heap use now and at its highest since boot.
struct HeapWatch {
    peak: usize,
}

impl HeapWatch {
    fn sample(&mut self) -> usize {
        let used = HEAP.used();
        self.peak = self.peak.max(used);
        used
    }
}

/// Prints every event, answers requests, and reports the heap every 10 s.
#[embassy_executor::task]
async fn app_task(handle: Handle<SOCKETS>) {
    let Ok(mut events) = handle.subscribe() else {
        uart_line!("error: no event subscription left");
        return;
    };
    uart_line!("started node={} config={}", handle.my_id(), baked::SOURCE);
    let mut heap = HeapWatch { peak: 0 };
    let mut seconds = 0u32;
    // A fixed cadence: a busy event stream must not postpone the report forever.
    let mut next_sample = embassy_time::Instant::now() + Duration::from_secs(1);
    loop {
        match select(events.next_message(), Timer::at(next_sample)).await {
            Either::First(embassy_sync::pubsub::WaitResult::Lagged(n)) => {
                uart_line!("lagged events={n}");
            }
            Either::First(embassy_sync::pubsub::WaitResult::Message(event)) => {
                heap.sample();
                uart_line!("{}", EventLine(&event));
                match demo::request(&event) {
                    Some((cluster, source, m)) if m.payload == b"stats" => {
                        let used = heap.sample();
                        let text = format!(
                            "heap_used={used} heap_peak={} heap_size={HEAP_SIZE}",
                            heap.peak
                        );
                        let status = handle.send_generic(
                            cluster,
                            source,
                            GenericKind::Reply,
                            &m.tag,
                            text.as_bytes(),
                        );
                        uart_line!("replied cluster={cluster} to={source} status={status:?}");
                    }
                    _ => {
                        if let Some((cluster, source, status)) =
                            demo::answer_request(&handle, &event)
                        {
                            uart_line!("replied cluster={cluster} to={source} status={status:?}");
                        }
                    }
                }
            }
            Either::Second(()) => {
                next_sample += Duration::from_secs(1);
                let used = heap.sample();
                seconds += 1;
                if seconds.is_multiple_of(10) {
                    let (_, c) = handle.counters();
                    uart_line!(
                        "heap used={used} peak={} size={HEAP_SIZE} closed={} no_free_socket={} \
                         queue_full={} lost_on_close={} connect_failures={}",
                        heap.peak,
                        c.closed,
                        c.no_free_socket,
                        c.queue_full,
                        c.lost_on_close,
                        c.connect_failures
                    );
                }
            }
        }
    }
}

fn spawn<S>(
    spawner: Spawner,
    token: Result<embassy_executor::SpawnToken<S>, embassy_executor::SpawnError>,
) {
    match token {
        Ok(t) => spawner.spawn(t),
        Err(e) => halt(format_args!("cannot spawn a task: {e:?}")),
    }
}

/// The host's UNIX time through semihosting (QEMU `-semihosting-config enable=on`): the
/// board has no RTC, and topology stamps need a wall clock so that a restarted node's
/// updates are newer than its old ones.
fn unix_time() -> i64 {
    // SAFETY: SYS_TIME takes no argument; run-qemu.sh enables semihosting.
    let secs = unsafe { cortex_m_semihosting::syscall!(TIME) };
    i64::try_from(secs).unwrap_or(0)
}

#[entry]
fn main() -> ! {
    {
        static mut HEAP_MEM: [MaybeUninit<u8>; HEAP_SIZE] = [MaybeUninit::uninit(); HEAP_SIZE];
        // SAFETY: called once, before any allocation; HEAP_MEM is used by nothing else.
        #[allow(static_mut_refs)]
        unsafe {
            HEAP.init(HEAP_MEM.as_ptr() as usize, HEAP_SIZE)
        }
    }
    uart::init();
    // Only fails when a logger is already set, which nothing else does.
    let _ = log::set_logger(&LOGGER).map(|()| log::set_max_level(log::LevelFilter::Info));
    let Some(peripherals) = cortex_m::Peripherals::take() else {
        halt(format_args!("peripherals taken twice"));
    };
    time::start(peripherals.SYST);

    let Some((config, endpoint)) = baked::node_config() else {
        halt(format_args!(
            "the baked configuration has a bad id or network"
        ));
    };
    let [a, b, c, d] = baked::IP;
    let net_config = embassy_net::Config::ipv4_static(StaticConfigV4 {
        address: Ipv4Cidr::new(Ipv4Addr::new(a, b, c, d), baked::PREFIX),
        gateway: baked::GATEWAY.map(|[a, b, c, d]| Ipv4Addr::new(a, b, c, d)),
        dns_servers: heapless::Vec::new(),
    });
    let nic = nic();
    // No RNG on the board: the node id and the boot's tick count make the seed.
    let seed = u64::from(config.node_id.get()) << 32 | embassy_time::Instant::now().as_ticks();
    static STACK: StaticCell<StackResources<{ SOCKETS + 2 }>> = StaticCell::new();
    let (stack, net_runner) =
        embassy_net::new(nic, net_config, STACK.init(StackResources::new()), seed);
    static RESOURCES: ConstStaticCell<
        Resources<SOCKETS, SOCKET_BUF, BULK_QUEUE, MAX_PACKET, { baked::CONTROL_QUEUE }>,
    > = ConstStaticCell::new(Resources::new());
    let runtime_config = clusterer_embassy::Config {
        node: config,
        endpoint,
        unix_time: unix_time(),
    };
    let (handle, runner) =
        match clusterer_embassy::new(stack, runtime_config, RESOURCES.take(), seed) {
            Ok(pair) => pair,
            Err(e) => halt(format_args!("{e}")),
        };
    static EXECUTOR: StaticCell<Executor> = StaticCell::new();
    EXECUTOR.init(Executor::new()).run(move |spawner| {
        spawn(spawner, net_task(net_runner));
        spawn(spawner, cluster_task(runner));
        #[cfg(not(feature = "stub-nic"))]
        spawn(spawner, nic_poll_task());
        spawn(spawner, app_task(handle));
    })
}
