//! `clusterer demo` end to end: the README's main command, scripted.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

#[test]
fn demo_provisions_in_sqlite_fails_over_the_tag_and_resyncs_a_restarted_node() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("demo-test");
    let out = Command::new(env!("CARGO_BIN_EXE_clusterer"))
        .args([
            "demo",
            "--port",
            "17601",
            "--mi-port",
            "18601",
            "--duration",
            "20",
        ])
        .arg("--dir")
        .arg(&dir)
        .args(["--script", "4:store 2 user:alice sip:alice@192.0.2.10"])
        .args(["--script", "6:stop 1"])
        .args(["--script", "12:start 1"])
        .args(["--script", "17:fetch 1 user:alice"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        dir.join("demo.sqlite").exists(),
        "db_mode 1 provisioning in SQLite"
    );
    assert!(dir.join("node1.toml").exists());
    // Node 1 (best id) takes the tag; after it stops, node 2 takes over.
    assert!(
        stdout.contains("node 1: E_CLUSTERER_SHARING_TAG_CHANGED name=vip cluster=1 state=active"),
        "{stdout}"
    );
    assert!(
        stdout
            .contains("node 2: E_CLUSTERER_NODE_STATE_CHANGED cluster_id=1 node_id=1 new_state=0"),
        "{stdout}"
    );
    assert!(
        stdout.contains("node 2: E_CLUSTERER_SHARING_TAG_CHANGED name=vip cluster=1 state=active"),
        "{stdout}"
    );
    // The restarted node synced the cache from a donor.
    assert!(
        stdout.contains(
            r#"node 1 cache_fetch user:alice: {"key":"user:alice","value":"sip:alice@192.0.2.10"}"#
        ),
        "{stdout}"
    );
    // The last screen: every node running, exactly one holds the tag.
    let last = stdout.rsplit("clusterer demo — ").next().unwrap();
    let rows: Vec<&str> = last.lines().filter(|l| l.contains(" running ")).collect();
    assert_eq!(rows.len(), 3, "{last}");
    assert_eq!(
        rows.iter().filter(|l| l.contains(" active ")).count(),
        1,
        "{last}"
    );
    let vip_log = std::fs::read_to_string(dir.join("vip.log")).unwrap();
    assert!(
        vip_log.contains("tag vip is active"),
        "hooks ran: {vip_log}"
    );
}
