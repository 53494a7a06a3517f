//! The embassy-time driver: time from the board's CMSDK APB timer 0 running free at the
//! 25 MHz peripheral clock (a 32-bit down-counter; its wraps, every 171.8 s, are counted
//! whenever the time is read), alarms checked by SysTick at 1 kHz. Reading time from a
//! counter rather than counting interrupts keeps the clock right when interrupts are held
//! off or QEMU is starved of CPU (counting SysTick interrupts, the clock ran 17 times slow
//! under load). Due wakers are woken at the next tick (at most 1 ms late).

use core::cell::{Cell, RefCell};
use core::task::Waker;

use cortex_m::peripheral::SYST;
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m_rt::exception;
use critical_section::{CriticalSection, Mutex};
use embassy_time_queue_utils::Queue;

/// The core clock of the mps2-an386 FPGA image (and of QEMU's model of it); the APB timers
/// run at the same rate.
pub const CORE_HZ: u32 = 25_000_000;
/// Counter steps per embassy tick (1 kHz).
const STEPS_PER_TICK: u64 = (CORE_HZ / 1_000) as u64;

/// CMSDK APB timer 0 of the MPS2 boards.
const TIMER0: usize = 0x4000_0000;
const CTRL: usize = 0x00;
const VALUE: usize = 0x04;
const RELOAD: usize = 0x08;
const CTRL_ENABLE: u32 = 1 << 0;

fn timer_reg(offset: usize) -> *mut u32 {
    (TIMER0 + offset) as *mut u32
}

/// Steps the counter has gone down since it started, and how often it wrapped.
struct Counter {
    last: Cell<u32>,
    wraps: Cell<u64>,
}

struct Driver {
    counter: Mutex<Counter>,
    queue: Mutex<RefCell<Queue>>,
}

impl Driver {
    fn ticks(&self, cs: CriticalSection<'_>) -> u64 {
        // SAFETY: timer 0's VALUE register; only this module touches the timer.
        let value = unsafe { core::ptr::read_volatile(timer_reg(VALUE)) };
        let elapsed = u32::MAX - value;
        let c = self.counter.borrow(cs);
        if elapsed < c.last.get() {
            c.wraps.set(c.wraps.get() + 1);
        }
        c.last.set(elapsed);
        ((c.wraps.get() << 32) | u64::from(elapsed)) / STEPS_PER_TICK
    }
}

impl embassy_time_driver::Driver for Driver {
    fn now(&self) -> u64 {
        critical_section::with(|cs| self.ticks(cs))
    }

    fn schedule_wake(&self, at: u64, waker: &Waker) {
        critical_section::with(|cs| {
            self.queue.borrow_ref_mut(cs).schedule_wake(at, waker);
        });
    }
}

embassy_time_driver::time_driver_impl!(static DRIVER: Driver = Driver {
    counter: Mutex::new(Counter { last: Cell::new(0), wraps: Cell::new(0) }),
    queue: Mutex::new(RefCell::new(Queue::new())),
});

/// Starts the free-running counter and the 1 kHz alarm check.
pub fn start(mut syst: SYST) {
    // SAFETY: timer 0's registers; only this module touches the timer.
    unsafe {
        core::ptr::write_volatile(timer_reg(CTRL), 0);
        core::ptr::write_volatile(timer_reg(RELOAD), u32::MAX);
        core::ptr::write_volatile(timer_reg(VALUE), u32::MAX);
        core::ptr::write_volatile(timer_reg(CTRL), CTRL_ENABLE);
    }
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(CORE_HZ / 1_000 - 1);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
}

#[exception]
fn SysTick() {
    critical_section::with(|cs| {
        let now = DRIVER.ticks(cs);
        DRIVER.queue.borrow_ref_mut(cs).next_expiration(now);
    });
}
