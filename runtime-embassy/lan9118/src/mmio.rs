//! The board's [`Bus`]: volatile 32-bit accesses to the controller's register window. The
//! only `unsafe` code of the driver.

#![allow(unsafe_code)]

use crate::Bus;

/// The register window at a fixed address.
#[derive(Debug)]
pub struct Mmio {
    base: usize,
}

impl Mmio {
    /// The window at `base` (e.g. [`MPS2_BASE`](crate::MPS2_BASE)).
    ///
    /// # Safety
    /// `base` must be the address of a LAN9118's 256-byte register window, mapped as
    /// device memory, and nothing else may access that window while the `Mmio` lives.
    pub const unsafe fn new(base: usize) -> Self {
        Mmio { base }
    }
}

impl Bus for Mmio {
    fn read(&self, offset: usize) -> u32 {
        debug_assert!(offset < 0x100 && offset.is_multiple_of(4));
        let addr = (self.base + (offset & 0xfc)) as *const u32;
        // SAFETY: `new`'s contract: a register of the window, aligned, device memory.
        unsafe { core::ptr::read_volatile(addr) }
    }

    fn write(&self, offset: usize, value: u32) {
        debug_assert!(offset < 0x100 && offset.is_multiple_of(4));
        let addr = (self.base + (offset & 0xfc)) as *mut u32;
        // SAFETY: as in `read`.
        unsafe { core::ptr::write_volatile(addr, value) }
    }
}
