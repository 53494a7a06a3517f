//! Logging: through `defmt` with the `defmt` feature (firmware), through `log` with the
//! `log` feature (the default, host builds), nowhere without either. The two are never
//! linked together. Arguments are ids, counts and transport errors; peer-supplied strings
//! are never logged.

#[cfg(all(feature = "defmt", feature = "log"))]
compile_error!(
    "features `defmt` and `log` exclude each other: build firmware with \
     `default-features = false, features = [\"defmt\"]`"
);

macro_rules! log_at {
    ($level:ident, $($arg:tt)*) => {{
        #[cfg(feature = "log")]
        ::log::$level!($($arg)*);
        #[cfg(feature = "defmt")]
        ::defmt::$level!($($arg)*);
        #[cfg(not(any(feature = "log", feature = "defmt")))]
        {
            let _ = ($($arg)*,);
        }
    }};
}

macro_rules! debug {
    ($($arg:tt)*) => { $crate::log::log_at!(debug, $($arg)*) };
}

macro_rules! info {
    ($($arg:tt)*) => { $crate::log::log_at!(info, $($arg)*) };
}

macro_rules! warning {
    ($($arg:tt)*) => { $crate::log::log_at!(warn, $($arg)*) };
}

pub(crate) use {debug, info, log_at, warning};
