//! Output on UART0 of the board (an Arm CMSDK APB UART; QEMU `-serial stdio`): the event
//! lines, and the `log` records of the runtime.

use core::fmt::{self, Write};

/// UART0 of the MPS2 boards.
const UART0: usize = 0x4000_4000;
const DATA: usize = 0x00;
const STATE: usize = 0x04;
const CTRL: usize = 0x08;
const BAUDDIV: usize = 0x10;
const STATE_TX_FULL: u32 = 1 << 0;
const CTRL_TX_EN: u32 = 1 << 0;

fn reg(offset: usize) -> *mut u32 {
    (UART0 + offset) as *mut u32
}

/// Enables the transmitter (the baud divisor only matters on hardware: 115200 at 25 MHz).
pub fn init() {
    // SAFETY: UART0's registers on this board; only this module touches them.
    unsafe {
        core::ptr::write_volatile(reg(BAUDDIV), 217);
        core::ptr::write_volatile(reg(CTRL), CTRL_TX_EN);
    }
}

/// Writes text to UART0, waiting for room byte by byte.
pub struct Uart;

impl Write for Uart {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for byte in s.bytes() {
            // SAFETY: as in `init`.
            unsafe {
                while core::ptr::read_volatile(reg(STATE)) & STATE_TX_FULL != 0 {}
                core::ptr::write_volatile(reg(DATA), u32::from(byte));
            }
        }
        Ok(())
    }
}

/// One line on UART0, in a critical section so lines never interleave.
pub fn line(args: fmt::Arguments<'_>) {
    critical_section::with(|_| {
        let _ = Uart.write_fmt(args);
        let _ = Uart.write_str("\n");
    });
}

/// Prints a line on UART0 (`format!` syntax).
#[macro_export]
macro_rules! uart_line {
    ($($arg:tt)*) => { $crate::uart::line(format_args!($($arg)*)) };
}

/// The `log` facade on UART0: `LEVEL target: message`.
pub struct Logger;

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Info
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            line(format_args!(
                "{} {}: {}",
                record.level(),
                record.target(),
                record.args()
            ));
        }
    }

    fn flush(&self) {}
}
