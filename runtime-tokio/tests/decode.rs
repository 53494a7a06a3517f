//! `clusterer decode`, the binary, against the captures of real OpenSIPS 3.6.8 traffic
//! (`vectors/opensips`) and against synthetic captures and streams: error reporting, input
//! detection, exit status and the summary on standard error. The dissector's in-process
//! tests (reassembly, pcapng and Linux cooked captures, damaged input) are unit tests of the
//! binary (`src/bin/clusterer/tools/decode/reader_tests.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

use pcap_file::DataLink;
use serde_json::{Map, Value};

const CAPTURES: [&str; 8] = [
    "01_startup",
    "02_steady_pings",
    "03_kill_restart_node3",
    "05_shtag",
    "06_cluster_mi",
    "07_cap_status",
    "08_remove_node",
    "11_generic_cachedb",
];

/// Keys the dissector adds around the captures' `decoded` object.
const CONTEXT_KEYS: [&str; 4] = ["frame", "hex", "reemit_hex", "reemit_identical"];

mod support {
    pub(crate) mod synthetic;
}
use support::synthetic::{captured, captured_hex, pcap_file, pcap_path, tcp_frame};

/// The hex text of the captures (lower case, no separators) as bytes.
fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("valid hex"))
        .collect()
}

/// Bytes as the dissector prints them in `hex`: lower case, no separators.
fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn clusterer(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_clusterer"))
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run clusterer");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin pipe");
        pipe.write_all(input).expect("write stdin");
    }
    child.wait_with_output().expect("clusterer output")
}

fn stdout_json(output: &Output) -> Vec<Map<String, Value>> {
    String::from_utf8(output.stdout.clone())
        .expect("utf-8 output")
        .lines()
        .map(|l| serde_json::from_str::<Map<String, Value>>(l).expect("one JSON object per line"))
        .collect()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn every_capture_decodes_exactly_like_the_captured_packets() {
    for name in CAPTURES {
        let path = pcap_path(name);
        let output = clusterer(
            &["decode", "--reemit", "--check", path.to_str().unwrap()],
            None,
        );
        assert_eq!(output.status.code(), Some(0), "{name}: {}", stderr(&output));
        let expected = captured(name);
        let got = stdout_json(&output);
        assert_eq!(got.len(), expected.len(), "{name}: packet count");
        for (record, object) in expected.iter().zip(&got) {
            let at = format!("{name} idx {}", record["idx"]);
            assert_eq!(object["hex"], record["hex"], "{at}: packet bytes");
            assert_eq!(
                object["reemit_hex"], record["hex"],
                "{at}: re-emitted bytes"
            );
            assert_eq!(object["reemit_identical"], true, "{at}");
            let frame = &object["frame"];
            assert_eq!(frame["src"], record["src"], "{at}");
            assert_eq!(frame["dst"], record["dst"], "{at}");
            assert_eq!(frame["time"], record["time"], "{at}");
            let decoded: Map<String, Value> = object
                .iter()
                .filter(|(k, _)| !CONTEXT_KEYS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            assert_eq!(
                Value::Object(decoded.clone()),
                record["decoded"],
                "{at}: decoded fields"
            );
            // Same key order too, nested objects included.
            assert_eq!(
                serde_json::to_string(&decoded).unwrap(),
                serde_json::to_string(&record["decoded"]).unwrap(),
                "{at}: key order"
            );
        }
        let summary = stderr(&output);
        let packets = expected.len();
        assert!(
            summary.starts_with(&format!(
                "decoded {packets} packets, 0 errors, 0 re-emit differences ("
            )),
            "{name}: {summary}"
        );
    }
}

#[test]
fn summary_counts_frames_and_tcp_streams_of_a_capture() {
    let path = pcap_path("01_startup");
    let output = clusterer(&["decode", path.to_str().unwrap()], None);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        stderr(&output).trim_end(),
        "decoded 78 packets, 0 errors, 0 re-emit differences (174 frames, 0 skipped, 6 TCP streams)"
    );
}

#[test]
fn hex_option_decodes_back_to_back_packets() {
    let hex = captured_hex("11_generic_cachedb");
    let (a, b) = (&hex[0], &hex[2]);
    let spaced = format!("0x{a}\n  {b} ");
    let output = clusterer(&["decode", "--hex", &spaced, "--reemit", "--check"], None);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let got = stdout_json(&output);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0]["hex"], a.as_str());
    assert_eq!(got[1]["hex"], b.as_str());
    assert_eq!(got[0]["frame"]["offset"], 0);
    assert_eq!(got[1]["frame"]["offset"], a.len() / 2);
    assert_eq!(got[0]["type_name"], "INSERT");
    assert_eq!(got[1]["reemit_identical"], true);
    assert!(stderr(&output).starts_with("decoded 2 packets, 0 errors, 0 re-emit differences\n"));
}

#[test]
fn stdin_raw_bytes_and_hex_text_are_both_understood() {
    let hex = captured_hex("01_startup");
    let stream: Vec<u8> = hex[..5].iter().flat_map(|h| unhex(h)).collect();
    let raw = clusterer(&["decode"], Some(&stream));
    assert_eq!(raw.status.code(), Some(0), "{}", stderr(&raw));
    let from_raw = stdout_json(&raw);
    assert_eq!(from_raw.len(), 5);

    let text = hex[..5].join("\n");
    let dashed = clusterer(&["decode", "-"], Some(text.as_bytes()));
    assert_eq!(dashed.status.code(), Some(0), "{}", stderr(&dashed));
    assert_eq!(stdout_json(&dashed), from_raw);
    for (object, h) in from_raw.iter().zip(&hex) {
        assert_eq!(object["hex"], h.as_str());
    }

    // A capture arrives on stdin too (`tcpdump -w - | clusterer decode`).
    let pcap = std::fs::read(pcap_path("05_shtag")).unwrap();
    let piped = clusterer(&["decode"], Some(&pcap));
    assert_eq!(piped.status.code(), Some(0));
    assert_eq!(stdout_json(&piped).len(), captured("05_shtag").len());
}

#[test]
fn a_corrupt_packet_in_a_hex_stream_is_reported_and_the_next_one_decodes() {
    let hex = captured_hex("01_startup");
    // A PING whose cluster id is 0: framing is intact, the contents are not.
    let mut bad = unhex(&hex[0]);
    bad[34..38].copy_from_slice(&0i32.to_le_bytes());
    let stream = format!("{} {} {}", hex[1], to_hex(&bad), hex[2]);

    let output = clusterer(&["decode", "--hex", &stream], None);
    assert_eq!(
        output.status.code(),
        Some(0),
        "without --check a bad packet is not fatal"
    );
    let got = stdout_json(&output);
    assert_eq!(got.len(), 3);
    assert_eq!(got[0]["type_name"], "UNKNOWN_ID");
    assert_eq!(
        got[1]["error"],
        "field 'cluster_id' holds id 0, expected 1..=2147483647"
    );
    assert_eq!(got[1]["error_kind"], "decode");
    assert_eq!(got[1]["hex"], to_hex(&bad));
    assert_eq!(got[2]["type_name"], "NODE_DESCRIPTION");
    assert!(stderr(&output).starts_with("decoded 2 packets, 1 errors, 0 re-emit differences"));

    let checked = clusterer(
        &["decode", "--check", "--format", "text", "--hex", &stream],
        None,
    );
    assert_eq!(checked.status.code(), Some(1));
    let text = String::from_utf8(checked.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(
        lines[1].starts_with("ERROR @42 decode: field 'cluster_id' holds id 0"),
        "{}",
        lines[1]
    );
    assert!(lines[2].starts_with("@88 NODE_DESCRIPTION v1 cluster=1 src=2 url=bin:127.0.0.2:5566"));
}

#[test]
fn a_bad_marker_stream_reports_once_and_other_streams_go_on() {
    let hex = captured_hex("02_steady_pings");
    let (p1, p2, p3) = (unhex(&hex[0]), unhex(&hex[1]), unhex(&hex[2]));
    let bad = (2, 40000);
    let good = (3, 40001);
    let listener = (1, 5566);
    let mut frames = vec![
        tcp_frame(bad, listener, 100, true, &[]),
        tcp_frame(good, listener, 500, true, &[]),
        tcp_frame(bad, listener, 101, false, b"GET / HTTP/1.0\r\n\r\n"),
        tcp_frame(good, listener, 501, false, &p1),
    ];
    // The bad direction goes on sending valid packets: they are skipped.
    let after = 101 + 18;
    frames.push(tcp_frame(bad, listener, after, false, &p2));
    frames.push(tcp_frame(good, listener, 501 + p1.len() as u32, false, &p2));
    frames.push(tcp_frame(
        bad,
        listener,
        after + p2.len() as u32,
        false,
        &p3,
    ));
    frames.push(tcp_frame(
        good,
        listener,
        501 + (p1.len() + p2.len()) as u32,
        false,
        &p3,
    ));
    let capture = pcap_file(DataLink::ETHERNET, &frames);
    let dir = std::env::temp_dir().join(format!("clusterer-decode-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // No pcap extension: the magic bytes decide.
    let path = dir.join("bad_marker.bin");
    std::fs::write(&path, &capture).unwrap();

    let output = clusterer(&["decode", "--check", path.to_str().unwrap()], None);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(output.status.code(), Some(1));
    let got = stdout_json(&output);
    let errors: Vec<_> = got.iter().filter(|o| o.contains_key("error")).collect();
    assert_eq!(errors.len(), 1, "{got:?}");
    assert_eq!(errors[0]["error_kind"], "framing");
    assert_eq!(errors[0]["frame"]["src"], "127.0.0.2:40000");
    assert_eq!(errors[0]["frame"]["number"], 3);
    assert!(
        errors[0]["error"]
            .as_str()
            .unwrap()
            .starts_with("bad marker")
    );
    let packets: Vec<_> = got.iter().filter(|o| !o.contains_key("error")).collect();
    assert_eq!(packets.len(), 3);
    for (object, expected) in packets.iter().zip([&hex[0], &hex[1], &hex[2]]) {
        assert_eq!(object["frame"]["src"], "127.0.0.3:40001");
        assert_eq!(object["hex"], expected.as_str());
    }
    assert_eq!(
        stderr(&output).trim_end(),
        "decoded 3 packets, 1 errors, 0 re-emit differences (8 frames, 0 skipped, 2 TCP streams)"
    );
}

#[test]
fn text_format_prints_one_summary_line_per_packet() {
    let path = pcap_path("01_startup");
    let output = clusterer(
        &[
            "decode",
            "--format",
            "text",
            "--reemit",
            path.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2 * 78);
    assert_eq!(
        lines[0],
        "1795658148.238646 127.0.0.2:53915 -> 127.0.0.1:5566 PING v1 cluster=1 src=2 req_node_list=1"
    );
    for pair in lines.chunks(2) {
        assert!(
            !pair[0].starts_with(' ') && !pair[0].starts_with("ERROR"),
            "{}",
            pair[0]
        );
        assert!(pair[1].starts_with("    reemit 5034434b") && pair[1].ends_with("(identical)"));
    }
    let find = |needle: &str| {
        lines
            .iter()
            .find(|l| l.contains(needle))
            .copied()
            .unwrap_or_default()
    };
    assert!(find(" FULL_TOP_UPDATE ").contains("nodes={1: ls=-1@0 neighbours=[2]} path=[1]"));
    assert!(find(" CAP_UPDATE ").contains("nodes={1: dialog-dlg-repl=0} require_reply=1 path=[1]"));
    assert!(find(" SHTAG_ACTIVE ").ends_with("SHTAG_ACTIVE v1 cluster=1 src=1 dst=2 tag=vip"));
    assert!(find(" LS_UPDATE ").contains("neigh_id=3 LS_UP path=[1]"));

    let sync = clusterer(
        &[
            "decode",
            "--format",
            "text",
            pcap_path("11_generic_cachedb").to_str().unwrap(),
        ],
        None,
    );
    let text = String::from_utf8(sync.stdout).unwrap();
    let line = text.lines().find(|l| l.contains(" SYNC v3 ")).unwrap();
    assert!(
        line.ends_with(
            "SYNC v3 cluster=1 src=1 dst=3 capability=cachedb-local-repl data_version=1 chunks=4 \
             sizes=[53,27,36,44] entries={collection=default key=offline:1 value=\"stored while node3 \
             was down\" expiry=0; collection=default key=flag:empty value=\"\" expiry=0; \
             collection=default key=greeting value=\"grüße ☃\" expiry=0; collection=sess \
             key=sess-0002 value=\"created during outage\" expiry=295}"
        ),
        "{line}"
    );
}

/// A truncated capture is reported, not fatal; a capture cut inside its header cannot be
/// read (exit status 2). (Damaged and garbage input decoded in-process, and never
/// panicking, is a unit test of the dissector.)
#[test]
fn a_truncated_capture_through_the_binary_is_reported_not_fatal() {
    let pcap = std::fs::read(pcap_path("11_generic_cachedb")).unwrap();
    let output = clusterer(&["decode", "--check", "-"], Some(&pcap[..pcap.len() - 7]));
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let got = stdout_json(&output);
    let last = got.last().unwrap();
    assert_eq!(last["error_kind"], "capture", "{last:?}");
    // The lost 7 bytes belong to the last frame, a bare ACK: every packet still decodes.
    assert_eq!(got.len() - 1, 123);
    let header_only = clusterer(&["decode", "-"], Some(&pcap[..10]));
    assert_eq!(header_only.status.code(), Some(2));
    assert!(stderr(&header_only).starts_with("clusterer decode: unreadable capture"));
}

#[test]
fn odd_hex_is_an_input_error() {
    let output = clusterer(&["decode", "--hex", "5034434"], None);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("odd number of hex digits"));
    assert!(output.stdout.is_empty());
}

#[test]
fn help_describes_the_decode_subcommand() {
    let output = clusterer(&["decode", "--help"], None);
    assert_eq!(output.status.code(), Some(0));
    let help = String::from_utf8(output.stdout).unwrap();
    assert!(
        help.contains("Usage: clusterer decode [OPTIONS] [INPUT]"),
        "{help}"
    );
    assert!(help.contains("--reemit") && help.contains("--check") && help.contains("--hex <HEX>"));
    assert!(help.contains("error_kind"));
}
