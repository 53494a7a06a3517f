//! Time as an input: a monotonic [`Instant`] in milliseconds and the wall-clock UNIX time,
//! bundled as [`Now`]. The core never reads a clock; every entry point is given one.

use core::fmt;

/// A point on the caller's monotonic clock, in milliseconds from an arbitrary origin.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Instant(u64);

impl Instant {
    /// The origin of the clock.
    pub const ZERO: Instant = Instant(0);

    /// An instant `ms` milliseconds after the origin.
    pub const fn from_millis(ms: u64) -> Self {
        Instant(ms)
    }

    /// Milliseconds since the origin.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// Milliseconds from `earlier` to `self`, 0 if `earlier` is later.
    pub const fn since(self, earlier: Instant) -> u64 {
        self.0.saturating_sub(earlier.0)
    }

    /// This instant plus `ms` milliseconds (saturating).
    pub const fn plus(self, ms: u64) -> Instant {
        Instant(self.0.saturating_add(ms))
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:03}s", self.0 / 1000, self.0 % 1000)
    }
}

/// The current time as given to every `handle_*` call: the monotonic instant drives timers,
/// the UNIX time (seconds) fills the timestamps of LS_UPDATE, FULL_TOP_UPDATE and CAP_UPDATE
/// and of status reports. The two may drift or jump independently (a wall-clock step never
/// disturbs a timer).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Now {
    /// Monotonic time.
    pub instant: Instant,
    /// Wall-clock UNIX time in seconds.
    pub unix_time: i64,
}

impl Now {
    /// Builds a `Now` from monotonic milliseconds and UNIX seconds.
    pub const fn new(monotonic_ms: u64, unix_time: i64) -> Self {
        Now {
            instant: Instant(monotonic_ms),
            unix_time,
        }
    }

    /// The UNIX time as the wire's `int` (truncated like OpenSIPS does).
    pub const fn unix_wire(self) -> i32 {
        self.unix_time as i32
    }
}
