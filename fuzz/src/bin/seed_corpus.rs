//! Writes the seed corpora of the fuzz targets from the captured OpenSIPS packets.
//!
//! ```text
//! cargo run --manifest-path fuzz/Cargo.toml --no-default-features --features seed-corpus \
//!     --bin seed_corpus -- [--vectors DIR] [--out DIR]
//! ```
//!
//! Defaults: `vectors/opensips/bin` and `fuzz/corpus` of this repository. Files go to
//! `<out>/<target>/<name>`; existing files (inputs libFuzzer added) are left alone, and
//! identical seeds are written once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::{env, fs, io};

use clusterer_core::message::{Message, Routed, RoutedBody};
use clusterer_fuzz::stream::{self, TAG_BROKEN, TAG_CUT, TAG_FILLER, TAG_MAXIMUM, TAG_MESSAGE};
use clusterer_fuzz::vectors::{self, Captured};
use clusterer_proto::wire;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("seed_corpus: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> io::Result<()> {
    let mut vectors_dir = vectors::default_dir();
    let mut out = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let mut args = env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().map(PathBuf::from);
        match (arg.as_str(), value) {
            ("--vectors", Some(v)) => vectors_dir = v,
            ("--out", Some(v)) => out = v,
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("usage: seed_corpus [--vectors DIR] [--out DIR] (got {arg:?})"),
                ));
            }
        }
    }
    let packets = vectors::read_dir(&vectors_dir)?;
    if packets.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "no captured packets found",
        ));
    }
    let mut corpus = Corpus::default();
    for p in &packets {
        let name = format!("{}-{:03}", p.capture, p.index);
        corpus.add("decode", &name, p.bytes.clone());
        corpus.add("roundtrip", &name, p.bytes.clone());
        add_payload_seeds(&mut corpus, p);
    }
    add_structured_seeds(&mut corpus, &packets);
    add_stream_seeds(&mut corpus, &packets);
    for (target, seeds) in &corpus.targets {
        let dir = out.join(target);
        fs::create_dir_all(&dir)?;
        for (bytes, name) in seeds {
            fs::write(dir.join(name), bytes)?;
        }
        println!("{}: {} seeds", dir.display(), seeds.len());
    }
    Ok(())
}

/// Seeds per target, keyed by content so duplicates are written once.
#[derive(Default)]
struct Corpus {
    targets: BTreeMap<&'static str, BTreeMap<Vec<u8>, String>>,
}

impl Corpus {
    fn add(&mut self, target: &'static str, name: &str, bytes: Vec<u8>) {
        self.targets
            .entry(target)
            .or_default()
            .entry(bytes)
            .or_insert_with(|| name.to_owned());
    }
}

/// The `decode` target also reads its input as a cachedb-local payload (first byte = type)
/// and as a sync chunk: seed it with the real ones.
fn add_payload_seeds(corpus: &mut Corpus, p: &Captured) {
    let Ok(Message::Routed(Routed { body, .. })) = wire::parse(&p.bytes) else {
        return;
    };
    match body {
        RoutedBody::Module(m) => {
            let mut seed = vec![u8::try_from(m.packet_type & 0xff).unwrap_or(0)];
            seed.extend_from_slice(&m.payload);
            corpus.add(
                "decode",
                &format!("payload-{}-{:03}", p.capture, p.index),
                seed,
            );
        }
        RoutedBody::Sync(s) => {
            for (i, chunk) in s.chunks.into_iter().enumerate() {
                corpus.add(
                    "decode",
                    &format!("chunk-{}-{:03}-{i}", p.capture, p.index),
                    chunk,
                );
            }
        }
        _ => {}
    }
}

/// The `roundtrip` target also builds a message from its input, the first byte choosing the
/// type: one seed per type, the rest taken from captured bytes.
fn add_structured_seeds(corpus: &mut Corpus, packets: &[Captured]) {
    for kind in 0u8..15 {
        let filler = &packets[usize::from(kind) * 29 % packets.len()].bytes;
        let mut seed = vec![kind];
        seed.extend_from_slice(filler);
        corpus.add("roundtrip", &format!("message-kind-{kind:02}"), seed);
    }
}

/// `deframe` seeds: each capture as one stream under each chunking style, all captures in
/// one stream, and streams with large, broken, cut and generated frames.
fn add_stream_seeds(corpus: &mut Corpus, packets: &[Captured]) {
    let mut by_capture: BTreeMap<&str, Vec<&[u8]>> = BTreeMap::new();
    for p in packets {
        by_capture
            .entry(p.capture.as_str())
            .or_default()
            .push(&p.bytes);
    }
    for (n, (capture, list)) in by_capture.iter().enumerate() {
        let style = (n % 8) as u8;
        let seed = stream::encode_verbatim(style, n as u64, list);
        corpus.add("deframe", &format!("stream-{capture}-style{style}"), seed);
    }
    let all: Vec<&[u8]> = packets.iter().map(|p| p.bytes.as_slice()).collect();
    for style in [1u8, 5, 7] {
        let seed = stream::encode_verbatim(style, 0x5eed + u64::from(style), &all);
        corpus.add("deframe", &format!("stream-all-style{style}"), seed);
    }
    let few = &all[..all.len().min(4)];
    let base = stream::encode_verbatim(4, 7, few);
    // A filler frame of 1000 bytes and a maximum-size frame between real packets.
    let mut big = base.clone();
    big.extend_from_slice(&[TAG_FILLER, 0xe8, 0x03, 0x55, TAG_MAXIMUM, 0xaa]);
    big.extend_from_slice(&stream::encode_verbatim(0, 0, few)[9..]);
    corpus.add("deframe", "stream-big-frames", big);
    // Broken frames: a wrong marker, then a length of 16.
    for (name, tail) in [
        ("bad-marker", [TAG_BROKEN, 0, b'P', b'4', b'C', b'X']),
        ("bad-length", [TAG_BROKEN, 1, 16, 0, 0, 0]),
    ] {
        for style in [1u8, 3] {
            let mut seed = stream::encode_verbatim(style, 11, few);
            seed.extend_from_slice(&tail);
            seed.extend_from_slice(&stream::encode_verbatim(0, 0, few)[9..]);
            corpus.add("deframe", &format!("stream-{name}-style{style}"), seed);
        }
    }
    // A frame cut short at the end of the stream.
    let mut cut = stream::encode_verbatim(2, 3, few);
    cut.extend_from_slice(&[TAG_CUT, 40, 0]);
    cut.extend_from_slice(&[0x11; 40]);
    corpus.add("deframe", "stream-cut-tail", cut);
    // Generated messages, one per type.
    let mut generated = vec![6u8];
    generated.extend_from_slice(&9u64.to_le_bytes());
    for kind in 0u8..15 {
        generated.extend_from_slice(&[TAG_MESSAGE, 24, 0, kind]);
        generated.extend_from_slice(&few[0][..23.min(few[0].len())]);
        generated.resize(generated.len() + 23 - 23.min(few[0].len()), 0);
    }
    corpus.add("deframe", "stream-generated", generated);
}
