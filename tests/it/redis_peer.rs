//! Real Redis servers for the store tests: Debian's `redis-server` on
//! loopback, one per test, and a three-master Redis Cluster made with
//! `redis-cli --cluster create`. Installed by `scripts/test.sh`; a missing
//! binary fails the test.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::TempDir;

/// A free loopback port (Redis cannot listen on port 0 and report it).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// One `redis-server`; killed on drop. Persists every write to an
/// append-only file, so a server killed and started again keeps its data
/// (the outage tests need the sessions back).
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
    dir: TempDir,
    extra: Vec<String>,
    /// Only a TLS port (`--tls-port`), no plain one.
    tls: bool,
}

impl RedisServer {
    /// Start a standalone server.
    pub fn start() -> RedisServer {
        RedisServer::start_with(&[])
    }

    /// Start with extra `redis-server` arguments.
    pub fn start_with(extra: &[&str]) -> RedisServer {
        let mut server = RedisServer {
            port: free_port(),
            child: None,
            dir: TempDir::new("redis"),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            tls: false,
        };
        server.spawn();
        server
    }

    /// Start speaking only TLS, with `cert`/`key` (PEM files), on its port.
    pub fn start_tls(cert: &str, key: &str, ca: &str) -> RedisServer {
        let mut server = RedisServer {
            port: free_port(),
            child: None,
            dir: TempDir::new("redis-tls"),
            extra: ["--tls-cert-file", cert, "--tls-key-file", key, "--tls-ca-cert-file", ca]
                .into_iter()
                .chain(["--tls-auth-clients", "no"])
                .map(String::from)
                .collect(),
            tls: true,
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let port = self.port.to_string();
        let ports: Vec<&str> = if self.tls {
            vec!["--port", "0", "--tls-port", &port]
        } else {
            vec!["--port", &port]
        };
        let child = Command::new("redis-server")
            .args(ports)
            .args(["--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (installed by scripts/test.sh)");
        self.child = Some(child);
        if self.tls {
            wait_for_listen(self.port);
        } else {
            wait_for_pong(self.port);
        }
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// SIGKILL and reap: the port stops answering at once.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start again on the same port, with the data written before.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// SIGSTOP / SIGCONT: the port accepts but nothing answers.
    pub fn pause(&self, paused: bool) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        let signal = if paused { "-STOP" } else { "-CONT" };
        let status = Command::new("kill").args([signal, &pid]).status().expect("kill");
        assert!(status.success());
    }

    /// Run one command through `redis-cli`; its output.
    pub fn cli(&self, args: &[&str]) -> String {
        redis_cli(self.port, args)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            // A paused server must be resumed to die cleanly.
            let _ = Command::new("kill").args(["-CONT", &child.id().to_string()]).status();
        }
        self.kill();
    }
}

/// `redis-cli -p PORT ARGS...`.
pub fn redis_cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn wait_for_listen(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "redis-server did not listen on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_for_pong(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
            let mut buf = [0u8; 64];
            if s.write_all(b"PING\r\n").is_ok()
                && let Ok(n) = s.read(&mut buf)
                // A server with a password answers NOAUTH: up all the same.
                && (buf[..n].starts_with(b"+PONG") || buf[..n].starts_with(b"-NOAUTH"))
            {
                return;
            }
        }
        assert!(Instant::now() < deadline, "redis-server on {port} did not answer PING");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Three masters, no replicas, slots spread by `redis-cli --cluster create`.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    pub fn start() -> RedisCluster {
        let nodes: Vec<RedisServer> = (0..3)
            .map(|_| RedisServer::start_with(&["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]))
            .collect();
        let addrs: Vec<String> = nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
        let out = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli --cluster create");
        assert!(
            out.status.success(),
            "cluster create failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        for node in &nodes {
            while !node.cli(&["cluster", "info"]).contains("cluster_state:ok") {
                assert!(Instant::now() < deadline, "cluster did not become ok");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        RedisCluster { nodes }
    }

    /// `["redis://127.0.0.1:P1", ...]` as TOML array items.
    pub fn nodes_toml(&self) -> String {
        let nodes: Vec<String> = self.nodes.iter().map(|n| format!("\"{}\"", n.url())).collect();
        format!("[{}]", nodes.join(", "))
    }
}

/// A Redis Sentinel watching `primary` as `mymaster` (the same
/// `redis-server` binary in sentinel mode); killed on drop.
pub struct RedisSentinel {
    pub port: u16,
    child: Child,
    _dir: TempDir,
}

impl RedisSentinel {
    pub fn start(primary: &RedisServer) -> RedisSentinel {
        let dir = TempDir::new("sentinel");
        let port = free_port();
        let conf = dir.join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "port {port}\nbind 127.0.0.1\ndir {}\nsentinel monitor mymaster 127.0.0.1 {} 1\n",
                dir.path().display(),
                primary.port
            ),
        )
        .expect("sentinel.conf");
        let child = Command::new("redis-server")
            .arg(&conf)
            .arg("--sentinel")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server --sentinel");
        wait_for_pong(port);
        // Asked at once, a sentinel already names the primary it monitors.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !redis_cli(port, &["sentinel", "get-master-addr-by-name", "mymaster"]).contains(&primary.port.to_string())
        {
            assert!(Instant::now() < deadline, "the sentinel does not know the primary");
            std::thread::sleep(Duration::from_millis(50));
        }
        RedisSentinel { port, child, _dir: dir }
    }
}

impl Drop for RedisSentinel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
