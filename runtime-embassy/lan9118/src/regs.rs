//! Register offsets and bits of the LAN9118 (SMSC datasheet, "System Control and Status
//! Registers" and "MAC Control and Status Registers"), as far as this driver uses them.

/// RX data FIFO port (reads pop one word); any offset in 0x00..0x20.
pub const RX_DATA_FIFO: usize = 0x00;
/// TX data FIFO port (writes push one word); any offset in 0x20..0x40.
pub const TX_DATA_FIFO: usize = 0x20;
/// RX status FIFO port (reads pop one status word).
pub const RX_STATUS_FIFO: usize = 0x40;
/// TX status FIFO port (reads pop one status word).
pub const TX_STATUS_FIFO: usize = 0x48;
/// Chip id and revision (0x0118_xxxx).
pub const ID_REV: usize = 0x50;
/// Interrupt status (write 1 to clear).
pub const INT_STS: usize = 0x58;
/// Interrupt enable.
pub const INT_EN: usize = 0x5c;
/// Byte order test register.
pub const BYTE_TEST: usize = 0x64;
/// What [`BYTE_TEST`] reads on a correctly wired bus.
pub const BYTE_TEST_VALUE: u32 = 0x8765_4321;
/// Receive configuration (end alignment, data offset, RX_DUMP).
pub const RX_CFG: usize = 0x6c;
/// Transmit configuration.
pub const TX_CFG: usize = 0x70;
/// `TX_CFG`: transmitter on.
pub const TX_CFG_TX_ON: u32 = 1 << 1;
/// Hardware configuration.
pub const HW_CFG: usize = 0x74;
/// `HW_CFG`: soft reset (self-clearing).
pub const HW_CFG_SRST: u32 = 1 << 0;
/// RX FIFO information: status words used (bits 23:16), data bytes used (bits 15:0).
pub const RX_FIFO_INF: usize = 0x7c;
/// TX FIFO information: status words used (bits 23:16), data space free (bits 15:0).
pub const TX_FIFO_INF: usize = 0x80;
/// MAC CSR command: busy (31), read (30), register index (3:0).
pub const MAC_CSR_CMD: usize = 0xa4;
/// MAC CSR data.
pub const MAC_CSR_DATA: usize = 0xa8;
/// `MAC_CSR_CMD`: start / busy.
pub const MAC_CSR_BUSY: u32 = 1 << 31;
/// `MAC_CSR_CMD`: read (else write).
pub const MAC_CSR_READ: u32 = 1 << 30;

/// MAC register: control.
pub const MAC_CR: u32 = 1;
/// MAC register: address bytes 4-5.
pub const MAC_ADDRH: u32 = 2;
/// MAC register: address bytes 0-3.
pub const MAC_ADDRL: u32 = 3;
/// MAC register: MII access (PHY address 15:11, register 10:6, write 1, busy 0).
pub const MAC_MII_ACC: u32 = 6;
/// MAC register: MII data.
pub const MAC_MII_DATA: u32 = 7;
/// `MAC_MII_ACC`: busy / start.
pub const MII_ACC_BUSY: u32 = 1 << 0;
/// `MAC_CR`: full duplex.
pub const MAC_CR_FDPX: u32 = 1 << 20;
/// `MAC_CR`: transmitter enable.
pub const MAC_CR_TXEN: u32 = 1 << 3;
/// `MAC_CR`: receiver enable.
pub const MAC_CR_RXEN: u32 = 1 << 2;

/// PHY register: basic status.
pub const PHY_BASIC_STATUS: u32 = 1;
/// PHY basic status: link up.
pub const PHY_BASIC_STATUS_LINK: u32 = 1 << 2;
