//! 200 MB each way through the real `usher` binary with its memory flat:
//! bodies are streamed, never collected.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use futures_util::StreamExt;

use crate::support::{Seen, spawn_echo_upstream};

const SIZE: usize = 200 * 1024 * 1024;
/// Peak RSS allowed for the proxy process: far below the body size.
const RSS_BOUND_KIB: u64 = 64 * 1024;

struct Usher {
    child: Child,
    addr: String,
}

impl Drop for Usher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start the binary on port 0 and read the bound address from its log.
fn start_usher(upstream: std::net::SocketAddr) -> Usher {
    let dir = std::env::temp_dir().join(format!("usher-stream-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let path = dir.join("usher.toml");
    let text = format!("[server]\nlisten = \"127.0.0.1:0\"\n[upstream]\nurl = \"http://{upstream}\"\n");
    std::fs::write(&path, text).expect("write config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_usher"))
        .args(["run", "-c"])
        .arg(&path)
        .env("RUST_LOG", "info")
        .env("USHER_SECRET_KEYS", crate::support::TEST_KEY)
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn usher");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let addr = loop {
        let line = lines.next().expect("usher exited before listening").expect("read log");
        if let Some(rest) = line.split("listen=").nth(1) {
            break rest
                .split_whitespace()
                .next()
                .expect("address")
                .trim_matches('"')
                .to_string();
        }
    };
    // Keep draining the log so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Usher { child, addr }
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
