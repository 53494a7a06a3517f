//! Example appliance firmware: a clusterer node (node 3 of cluster 1, election-mode tag
//! `vip`) on embassy-net, for `thumbv7em-none-eabihf` (QEMU `mps2-an386` memory map).
//!
//! The network driver is a stub (frames out are dropped, nothing comes in): this image
//! shows what an appliance build links — executor, time driver, heap, embassy-net, the
//! clusterer runtime and core — and gives the footprint recorded in BENCHMARKS.md. A real
//! board replaces `StubNic` with its Ethernet driver and nothing else.
//!
//! ```sh
//! cd runtime-embassy/examples/firmware && cargo build --release
//! arm-none-eabi-size target/thumbv7em-none-eabihf/release/clusterer-firmware-example
//! ```

#![no_std]
#![no_main]

use core::cell::{Cell, RefCell};
use core::mem::MaybeUninit;
use core::net::Ipv4Addr;
use core::task::{Context, Waker};

use clusterer_core::{ClusterConfig, ClusterId, Config, DbMode, NodeConfig, NodeId, ShtagConfig};
use clusterer_core::{ElectionConfig, ShtagState};
use clusterer_embassy::{Handle, Resources, Runner};
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m_rt::{entry, exception};
use critical_section::Mutex;
use defmt_rtt as _;
use embassy_executor::{Executor, Spawner};
use embassy_net::{Ipv4Cidr, StackResources, StaticConfigV4};
use embassy_net_driver::{Capabilities, HardwareAddress, LinkState, RxToken, TxToken};
use embassy_time_queue_utils::Queue;
use panic_probe as _;
use static_cell::{ConstStaticCell, StaticCell};

/// Sockets of the clusterer pool: 2 listeners, 2 outgoing, 2 accepted in a 3-node cluster.
const SOCKETS: usize = 6;
/// Heap for the core's tables (nodes, routes, capabilities, queued transmits).
const HEAP_SIZE: usize = 48 * 1024;
/// The core clock of the mps2-an386 FPGA image (25 MHz), for a 1 kHz SysTick.
const CORE_HZ: u32 = 25_000_000;

#[global_allocator]
static HEAP: embedded_alloc::LlffHeap = embedded_alloc::LlffHeap::empty();

// ----- time: SysTick at 1 kHz, one timer queue --------------------------------------------

struct SysTickDriver {
    ticks: Mutex<Cell<u64>>,
    queue: Mutex<RefCell<Queue>>,
}

impl embassy_time_driver::Driver for SysTickDriver {
    fn now(&self) -> u64 {
        critical_section::with(|cs| self.ticks.borrow(cs).get())
    }

    fn schedule_wake(&self, at: u64, waker: &Waker) {
        critical_section::with(|cs| {
            // Due wakers are woken at the next tick (at most 1 ms late).
            self.queue.borrow_ref_mut(cs).schedule_wake(at, waker);
        });
    }
}

embassy_time_driver::time_driver_impl!(static DRIVER: SysTickDriver = SysTickDriver {
    ticks: Mutex::new(Cell::new(0)),
    queue: Mutex::new(RefCell::new(Queue::new())),
});

#[exception]
fn SysTick() {
    critical_section::with(|cs| {
        let ticks = DRIVER.ticks.borrow(cs);
        ticks.set(ticks.get() + 1);
        DRIVER.queue.borrow_ref_mut(cs).next_expiration(ticks.get());
    });
}

// ----- the stub network driver ------------------------------------------------------------

/// Drops every frame sent and never receives one.
struct StubNic;
struct StubRx;
struct StubTx;

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

// ----- the node ---------------------------------------------------------------------------

fn node_config() -> Option<Config> {
    let me = NodeId::new(3)?;
    let cluster = ClusterId::new(1)?;
    let mut config = Config::new(me, DbMode::Discovery);
    config.clusters.push(ClusterConfig {
        id: cluster,
        local: NodeConfig::new(me, "bin:10.42.0.3:5566"),
        nodes: [(1, "bin:10.42.0.1:5566"), (2, "bin:10.42.0.2:5566")]
            .into_iter()
            .filter_map(|(id, url)| Some(NodeConfig::new(NodeId::new(id)?, url)))
            .collect(),
    });
    config.sharing_tags.push(ShtagConfig {
        name: "vip".into(),
        cluster,
        state: ShtagState::Backup,
        election: Some(ElectionConfig::default()),
    });
    Some(config)
}

#[embassy_executor::task]
async fn net_task(mut runner: embassy_net::Runner<'static, StubNic>) -> ! {
    runner.run().await
}

#[embassy_executor::task]
async fn cluster_task(runner: Runner<SOCKETS>) -> ! {
    runner.run().await
}

/// The application: logs every event (a real appliance moves its VIP here).
#[embassy_executor::task]
async fn app_task(handle: Handle<SOCKETS>) {
    let Ok(mut events) = handle.subscribe() else {
        defmt::error!("no event subscription left");
        return;
    };
    loop {
        match events.next_message_pure().await {
            clusterer_core::Event::NodeStateChanged { node, up, .. } => {
                defmt::info!("node {} {}", node.get(), if up { "up" } else { "down" });
            }
            clusterer_core::Event::ShtagChanged { state, .. } => {
                defmt::info!("vip is now {}", state.name());
            }
            clusterer_core::Event::Received { source, .. } => {
                defmt::info!("message from node {}", source.get());
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
        Err(_) => defmt::panic!("cannot spawn a task"),
    }
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
    let Some(mut peripherals) = cortex_m::Peripherals::take() else {
        defmt::panic!("peripherals taken twice");
    };
    peripherals.SYST.set_clock_source(SystClkSource::Core);
    peripherals.SYST.set_reload(CORE_HZ / 1_000 - 1);
    peripherals.SYST.clear_current();
    peripherals.SYST.enable_interrupt();
    peripherals.SYST.enable_counter();

    let Some(config) = node_config() else {
        defmt::panic!("bad node ids");
    };
    let net_config = embassy_net::Config::ipv4_static(StaticConfigV4 {
        address: Ipv4Cidr::new(Ipv4Addr::new(10, 42, 0, 3), 24),
        gateway: None,
        dns_servers: heapless::Vec::new(),
    });
    static STACK: StaticCell<StackResources<{ SOCKETS + 2 }>> = StaticCell::new();
    let seed = 0x5eed_0003;
    let (stack, net_runner) =
        embassy_net::new(StubNic, net_config, STACK.init(StackResources::new()), seed);
    static RESOURCES: ConstStaticCell<Resources<SOCKETS, 2048, 8192>> =
        ConstStaticCell::new(Resources::new());
    let (handle, runner) = match clusterer_embassy::new(
        stack,
        clusterer_embassy::Config::new(config),
        RESOURCES.take(),
        seed,
    ) {
        Ok(pair) => pair,
        Err(_) => defmt::panic!("the node configuration was refused"),
    };
    static EXECUTOR: StaticCell<Executor> = StaticCell::new();
    EXECUTOR.init(Executor::new()).run(move |spawner| {
        spawn(spawner, net_task(net_runner));
        spawn(spawner, cluster_task(runner));
        spawn(spawner, app_task(handle));
    })
}
