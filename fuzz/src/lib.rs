//! Shared code of the clusterer fuzz targets and their seed-corpus generator.
//!
//! Each target in `fuzz_targets/` is one line: it hands the input to a property in
//! [`checks`], which panics when the property does not hold. Keeping the properties here lets
//! `cargo test --manifest-path fuzz/Cargo.toml --no-default-features` replay the captured
//! packets and the committed regressions through them without libFuzzer or a nightly flag.
//!
//! - [`checks::decode`]: any bytes through every decoder; never panics, owned and borrowed
//!   decoders agree.
//! - [`checks::roundtrip`]: `emit(parse(bytes)) == bytes` whenever both succeed, and a message
//!   built from the input ([`generate`]) survives `parse(emit(m)) == m`.
//! - [`checks::deframe`]: a stream built from the input ([`stream`]) deframes to the same
//!   packets and error whether it is fed whole or in input-chosen chunks, within the
//!   deframer's memory bound.

pub mod checks;
pub mod generate;
pub mod stream;
pub mod vectors;
