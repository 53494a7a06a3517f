//! # clusterer-lan9118
//!
//! An [`embassy-net-driver`](embassy_net_driver) for the SMSC LAN9118 Ethernet controller
//! through its 32-bit register interface, as QEMU's Arm MPS2 boards model it (`mps2-an385`,
//! `mps2-an386`, `mps2-an500`: base address [`MPS2_BASE`]). `#![no_std]`, no allocation.
//!
//! How the controller is driven (register offsets and bits in [`regs`]):
//!
//! * **init**: check `BYTE_TEST`, soft reset (`HW_CFG.SRST`), read the MAC address the
//!   EEPROM loaded (`ADDRH`/`ADDRL` through the MAC CSR window), enable the transmitter
//!   (`TX_CFG.TX_ON`) and the MAC (`MAC_CR`: TX, RX, full duplex; exact-address filter and
//!   broadcast);
//! * **receive**: a frame is waiting when `RX_FIFO_INF` counts a status word; the status
//!   word (`RX_STATUS_FIFO`) gives the length with the 4-byte CRC and the error bits; the
//!   data is read from `RX_DATA_FIFO` as little-endian words and the CRC dropped
//!   ([`rx`]);
//! * **transmit**: TX command A (buffer size, first and last segment) and B (tag, frame
//!   length) and the frame as little-endian words go into `TX_DATA_FIFO` once
//!   `TX_FIFO_INF` shows room for the whole frame ([`tx`]); TX status words are drained;
//! * **no interrupts**: the controller is polled. When it has nothing, the driver parks
//!   embassy-net's waker in a [`Wakeup`]; run [`Wakeup::poll_every`] in a task to wake it
//!   periodically (1 ms is plenty for a cluster's traffic).
//!
//! Limits: one frame of at most [`MAX_FRAME`] bytes at a time, no checksum offload (QEMU has
//! none), no multicast filter, link state from the PHY's basic status register. The only
//! `unsafe` is the volatile MMIO access in [`Mmio`].

#![no_std]
#![deny(missing_docs)]

pub mod mmio;
pub mod regs;
pub mod rx;
pub mod tx;

use core::task::Context;

use embassy_net_driver::{Capabilities, HardwareAddress, LinkState};
use embassy_sync::waitqueue::AtomicWaker;

pub use mmio::Mmio;
use regs::*;

/// Where the MPS2 boards map the LAN9118.
pub const MPS2_BASE: usize = 0x4020_0000;
/// The largest Ethernet frame handled (header and payload, without the CRC).
pub const MAX_FRAME: usize = 1514;
/// Register polls before a busy bit is declared stuck.
const BUSY_POLLS: u32 = 100_000;

/// 32-bit register access; [`Mmio`] on the board, a model in tests.
pub trait Bus {
    /// Reads the register at byte `offset`.
    fn read(&self, offset: usize) -> u32;
    /// Writes the register at byte `offset`.
    fn write(&self, offset: usize, value: u32);
}

/// Why [`Lan9118::new`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitError {
    /// `BYTE_TEST` did not read 0x87654321: no LAN9118 at that address, or a bus in the
    /// wrong byte order.
    NotFound(u32),
    /// A busy bit did not clear: the register named.
    Stuck(&'static str),
}

impl core::fmt::Display for InitError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            InitError::NotFound(v) => write!(f, "no LAN9118: BYTE_TEST reads {v:#010x}"),
            InitError::Stuck(what) => write!(f, "LAN9118: {what} stays busy"),
        }
    }
}

/// Frames the driver dropped or refused, by cause.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Frames received and handed to the stack.
    pub rx_frames: u32,
    /// Frames received with an error status or a bad length, dropped.
    pub rx_errors: u32,
    /// Frames sent.
    pub tx_frames: u32,
    /// Frames the stack built larger than [`MAX_FRAME`], not sent.
    pub tx_oversize: u32,
}

/// Wakes embassy-net when the polled controller may have news.
pub struct Wakeup(AtomicWaker);

impl core::fmt::Debug for Wakeup {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Wakeup")
    }
}

impl Wakeup {
    /// A waker slot (for a `static`).
    pub const fn new() -> Self {
        Wakeup(AtomicWaker::new())
    }

    /// Wakes the parked waker every `period`, forever: spawn it in a task of its own.
    pub async fn poll_every(&self, period: embassy_time::Duration) -> ! {
        loop {
            embassy_time::Timer::after(period).await;
            self.0.wake();
        }
    }
}

impl Default for Wakeup {
    fn default() -> Self {
        Self::new()
    }
}

/// The controller and its frame buffers.
pub struct Lan9118<B: Bus> {
    bus: B,
    mac: [u8; 6],
    wakeup: &'static Wakeup,
    rx_buf: [u8; MAX_FRAME],
    tx_buf: [u8; MAX_FRAME],
    rx_counts: RxCounts,
    tx_counts: TxCounts,
}

/// The receive half of [`Counters`] (an RX token and a TX token are alive together).
#[derive(Clone, Copy, Debug, Default)]
struct RxCounts {
    frames: u32,
    errors: u32,
}

/// The transmit half of [`Counters`].
#[derive(Clone, Copy, Debug, Default)]
struct TxCounts {
    frames: u32,
    oversize: u32,
}

impl<B: Bus> Lan9118<B> {
    /// Resets and starts the controller on `bus`.
    ///
    /// # Errors
    /// [`InitError`] when no controller answers or a register stays busy.
    pub fn new(bus: B, wakeup: &'static Wakeup) -> Result<Self, InitError> {
        let test = bus.read(BYTE_TEST);
        if test != BYTE_TEST_VALUE {
            return Err(InitError::NotFound(test));
        }
        bus.write(HW_CFG, HW_CFG_SRST);
        wait_clear(&bus, HW_CFG, HW_CFG_SRST, "HW_CFG.SRST")?;
        let mut dev = Lan9118 {
            bus,
            mac: [0; 6],
            wakeup,
            rx_buf: [0; MAX_FRAME],
            tx_buf: [0; MAX_FRAME],
            rx_counts: RxCounts::default(),
            tx_counts: TxCounts::default(),
        };
        let low = dev.mac_read(MAC_ADDRL)?.to_le_bytes();
        let high = dev.mac_read(MAC_ADDRH)?.to_le_bytes();
        dev.mac = [low[0], low[1], low[2], low[3], high[0], high[1]];
        dev.bus.write(INT_EN, 0);
        dev.bus.write(INT_STS, u32::MAX);
        dev.bus.write(RX_CFG, 0);
        dev.bus.write(TX_CFG, TX_CFG_TX_ON);
        dev.mac_write(MAC_CR, MAC_CR_TXEN | MAC_CR_RXEN | MAC_CR_FDPX)?;
        Ok(dev)
    }

    /// The MAC address the controller's EEPROM holds.
    pub fn mac_address(&self) -> [u8; 6] {
        self.mac
    }

    /// Frame counters.
    pub fn counters(&self) -> Counters {
        Counters {
            rx_frames: self.rx_counts.frames,
            rx_errors: self.rx_counts.errors,
            tx_frames: self.tx_counts.frames,
            tx_oversize: self.tx_counts.oversize,
        }
    }

    fn mac_read(&self, index: u32) -> Result<u32, InitError> {
        self.bus
            .write(MAC_CSR_CMD, MAC_CSR_BUSY | MAC_CSR_READ | index);
        wait_clear(&self.bus, MAC_CSR_CMD, MAC_CSR_BUSY, "MAC_CSR_CMD")?;
        Ok(self.bus.read(MAC_CSR_DATA))
    }

    fn mac_write(&self, index: u32, value: u32) -> Result<(), InitError> {
        self.bus.write(MAC_CSR_DATA, value);
        self.bus.write(MAC_CSR_CMD, MAC_CSR_BUSY | index);
        wait_clear(&self.bus, MAC_CSR_CMD, MAC_CSR_BUSY, "MAC_CSR_CMD")
    }

    /// A PHY register through the MII window (PHY address 1, the internal PHY).
    fn phy_read(&self, reg: u32) -> Option<u32> {
        self.mac_write(MAC_MII_ACC, (1 << 11) | (reg << 6) | MII_ACC_BUSY)
            .ok()?;
        Some(self.mac_read(MAC_MII_DATA).ok()? & 0xffff)
    }

    fn rx_waiting(&self) -> bool {
        rx::status_words_waiting(self.bus.read(RX_FIFO_INF)) > 0
    }

    fn tx_room(&self) -> bool {
        tx::room(self.bus.read(TX_FIFO_INF)) >= tx::fifo_bytes(MAX_FRAME)
    }
}

fn wait_clear(bus: &impl Bus, reg: usize, bit: u32, what: &'static str) -> Result<(), InitError> {
    for _ in 0..BUSY_POLLS {
        if bus.read(reg) & bit == 0 {
            return Ok(());
        }
    }
    Err(InitError::Stuck(what))
}

/// One received frame to read (see [`rx`]).
pub struct RxToken<'a, B: Bus> {
    bus: &'a B,
    buf: &'a mut [u8; MAX_FRAME],
    counts: &'a mut RxCounts,
}

/// Room for one frame to send (see [`tx`]).
pub struct TxToken<'a, B: Bus> {
    bus: &'a B,
    buf: &'a mut [u8; MAX_FRAME],
    counts: &'a mut TxCounts,
}

impl<B: Bus> embassy_net_driver::RxToken for RxToken<'_, B> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, f: F) -> R {
        match rx::read_frame(self.bus, self.buf) {
            Ok(len) => {
                self.counts.frames += 1;
                f(&mut self.buf[..len])
            }
            Err(_) => {
                // Already skipped in the controller; the stack drops an empty frame.
                self.counts.errors += 1;
                f(&mut [])
            }
        }
    }
}

impl<B: Bus> embassy_net_driver::TxToken for TxToken<'_, B> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        if len > MAX_FRAME {
            // The stack asked for more than the MTU it was given: build it nowhere.
            self.counts.oversize += 1;
            return f(&mut []);
        }
        let r = f(&mut self.buf[..len]);
        tx::write_frame(self.bus, &self.buf[..len], self.counts.frames as u16);
        self.counts.frames += 1;
        tx::drain_status(self.bus);
        r
    }
}

impl<B: Bus> embassy_net_driver::Driver for Lan9118<B> {
    type RxToken<'a>
        = RxToken<'a, B>
    where
        Self: 'a;
    type TxToken<'a>
        = TxToken<'a, B>
    where
        Self: 'a;

    fn receive(&mut self, cx: &mut Context<'_>) -> Option<(RxToken<'_, B>, TxToken<'_, B>)> {
        if !(self.rx_waiting() && self.tx_room()) {
            self.wakeup.0.register(cx.waker());
            return None;
        }
        let Lan9118 {
            bus,
            rx_buf,
            tx_buf,
            rx_counts,
            tx_counts,
            ..
        } = self;
        Some((
            RxToken {
                bus,
                buf: rx_buf,
                counts: rx_counts,
            },
            TxToken {
                bus,
                buf: tx_buf,
                counts: tx_counts,
            },
        ))
    }

    fn transmit(&mut self, cx: &mut Context<'_>) -> Option<TxToken<'_, B>> {
        if !self.tx_room() {
            self.wakeup.0.register(cx.waker());
            return None;
        }
        Some(TxToken {
            bus: &self.bus,
            buf: &mut self.tx_buf,
            counts: &mut self.tx_counts,
        })
    }

    fn link_state(&mut self, cx: &mut Context<'_>) -> LinkState {
        // Polled like the frames: a cable change is seen at the next wake-up.
        self.wakeup.0.register(cx.waker());
        match self.phy_read(PHY_BASIC_STATUS) {
            Some(status) if status & PHY_BASIC_STATUS_LINK != 0 => LinkState::Up,
            _ => LinkState::Down,
        }
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::default();
        caps.max_transmission_unit = MAX_FRAME;
        caps.max_burst_size = Some(1);
        caps
    }

    fn hardware_address(&self) -> HardwareAddress {
        HardwareAddress::Ethernet(self.mac)
    }
}

#[cfg(test)]
mod tests;
