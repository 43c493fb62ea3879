//! 200 MB each way through the real `usher` binary with its memory flat:
//! bodies are streamed, never collected.

use futures_util::StreamExt;

use crate::support::{Seen, Usher, spawn_echo_upstream};

const SIZE: usize = 200 * 1024 * 1024;
/// Peak RSS allowed for the proxy process: far below the body size.
const RSS_BOUND_KIB: u64 = 64 * 1024;

/// Start the binary on port 0 in front of `upstream`.
fn start_usher(upstream: std::net::SocketAddr) -> Usher {
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[upstream]\nurl = \"http://{upstream}\"\n[access]\ndefault = \"anyone\"\n"
    );
    Usher::start(&["run"], Some(&text))
}

fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("VmHWM")
}

#[tokio::test]
async fn two_hundred_megabytes_each_way_with_flat_memory() {
    let up = spawn_echo_upstream().await;
    let usher = start_usher(up.addr);
    let c = reqwest::Client::new();

    let upload = reqwest::Body::wrap(crate::support::zeros(SIZE));
    let res = c
        .post(format!("http://{}/upload", usher.addr))
        .body(upload)
        .send()
        .await
        .expect("upload");
    assert_eq!(res.status(), 200);
    let seen = Seen(res.json().await.expect("json"));
    assert_eq!(seen.0["body_len"], SIZE as u64, "upstream received every byte");

    let res = c
        .get(format!("http://{}/download/{SIZE}", usher.addr))
        .send()
        .await
        .expect("download");
    assert_eq!(res.status(), 200);
    let mut stream = res.bytes_stream();
    let mut got = 0usize;
    while let Some(chunk) = stream.next().await {
        got += chunk.expect("chunk").len();
    }
    assert_eq!(got, SIZE, "client received every byte");

    let peak = peak_rss_kib(usher.child.id());
    assert!(
        peak < RSS_BOUND_KIB,
        "usher peak RSS {peak} KiB for a {} MiB body",
        SIZE >> 20
    );
    eprintln!("usher peak RSS after 2 x 200 MiB: {peak} KiB");
}
