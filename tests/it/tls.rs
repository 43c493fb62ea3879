//! HTTPS with certificates made at test time (rcgen): HTTP/1.1 and HTTP/2
//! over TLS to usher, HTTP/1.1 keep-alive, pipelining and WebSockets over
//! TLS, and usher to an https upstream trusted through a custom CA file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls_pki_types::ServerName;
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::client::TlsStream;

use crate::keepalive::{SHORT_TIMEOUTS, closed_once_idle_for, read_responses};
use crate::support::{Proxy, Seen, Upstream, spawn_echo_upstream, spawn_proxy};
use crate::websocket::{echo_through, spawn_ws_echo_upstream};

/// A CA and a `localhost` / `127.0.0.1` certificate it signed, as PEM files.
pub struct Pki {
    pub dir: PathBuf,
    pub ca_pem: String,
    _tmp: crate::support::TempDir,
}

impl Pki {
    pub fn new(tag: &str) -> Pki {
        let tmp = crate::support::TempDir::new(&format!("pki-{tag}"));
        let dir = tmp.path().to_path_buf();
        let ca_key = KeyPair::generate().expect("ca key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).expect("ca");
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().expect("key");
        let params = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).expect("params");
        let cert = params.signed_by(&key, &issuer).expect("cert");
        std::fs::write(dir.join("cert.pem"), cert.pem()).expect("write");
        std::fs::write(dir.join("key.pem"), key.serialize_pem()).expect("write");
        std::fs::write(dir.join("ca.pem"), ca.pem()).expect("write");
        Pki {
            dir,
            ca_pem: ca.pem(),
            _tmp: tmp,
        }
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

/// TLS client settings trusting only `ca_pem`.
fn client_config(ca_pem: &str) -> rustls::ClientConfig {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.expect("pem")).expect("root");
    }
    rustls::ClientConfig::builder_with_provider(usher::tls::provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// A TLS client trusting only `ca_pem`; `h2` selects HTTP/2 via ALPN.
fn tls_client(
    ca_pem: &str,
    h2: bool,
) -> Client<hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>, Empty<Bytes>> {
    let config = client_config(ca_pem);
    let builder = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_only();
    let connector = if h2 {
        builder.enable_http2().build()
    } else {
        builder.enable_http1().build()
    };
    let mut client = Client::builder(TokioExecutor::new());
    if h2 {
        client.http2_only(true);
    }
    client.build(connector)
}

async fn get_json(
    client: &Client<hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>, Empty<Bytes>>,
    url: &str,
) -> (http::Version, Value) {
    let res = client.get(url.parse().expect("url")).await.expect("request");
    assert_eq!(res.status(), 200);
    let version = res.version();
    let body = res.into_body().collect().await.expect("body").to_bytes();
    (version, serde_json::from_slice(&body).expect("json"))
}

#[tokio::test]
async fn http1_and_http2_over_tls() {
    let pki = Pki::new("server");
    let up = spawn_echo_upstream().await;
    let tls = format!(
        "[server]\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
        pki.path("cert.pem"),
        pki.path("key.pem")
    );
    let proxy = spawn_proxy(up.addr, &tls).await;
    let url = format!("https://localhost:{}/secure", proxy.addr.port());
    for h2 in [false, true] {
        let (version, doc) = get_json(&tls_client(&pki.ca_pem, h2), &url).await;
        assert_eq!(
            version,
            if h2 {
                http::Version::HTTP_2
            } else {
                http::Version::HTTP_11
            }
        );
        let seen = Seen(doc);
        assert_eq!(seen.one("x-forwarded-proto").as_deref(), Some("https"), "h2={h2}");
        assert_eq!(seen.uri(), "/secure");
    }
    proxy.stop().await;
}

/// The echo upstream behind a TLS listener using `pki`'s certificate.
async fn tls_upstream(pki: &Pki) -> (std::net::SocketAddr, crate::support::Upstream) {
    let plain = spawn_echo_upstream().await;
    let config = usher::tls::server_config(Path::new(&pki.path("cert.pem")), Path::new(&pki.path("key.pem")))
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(&config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let target = plain.addr;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // Terminate TLS, then splice to the plain echo upstream.
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    return;
                };
                let Ok(mut inner) = tokio::net::TcpStream::connect(target).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut inner).await;
            });
        }
    });
    (addr, plain)
}

#[tokio::test]
async fn https_upstream_trusted_through_a_ca_file() {
    let pki = Pki::new("upstream");
    let (addr, _plain) = tls_upstream(&pki).await;
    let url = format!("https://localhost:{}", addr.port());
    let proxy = crate::support::spawn_proxy_toml(&format!(
        "[upstream]\nurl = \"{url}\"\nca_file = \"{}\"\npreserve_host = false\n{}[access]\ndefault = \"anyone\"\n",
        pki.path("ca.pem"),
        crate::support::session_toml("")
    ))
    .await;
    let res = crate::support::client()
        .get(proxy.url("/over-tls"))
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 200);
    assert_eq!(Seen(res.json().await.expect("json")).uri(), "/over-tls");
    proxy.stop().await;

    // Without the CA file the upstream's certificate is not trusted: 502.
    let untrusted = crate::support::spawn_proxy_toml(&format!(
        "[upstream]\nurl = \"{url}\"\n{}[access]\ndefault = \"anyone\"\n",
        crate::support::session_toml("")
    ))
    .await;
    let res = crate::support::client()
        .get(untrusted.url("/"))
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 502);
    // Attack review of 9e8e3e0: this was logged as "refused or unreachable".
    // The failure is named as TLS (the log line carries rustls's reason).
    let doc: serde_json::Value = res.json().await.expect("json");
    assert_eq!(
        doc["message"], "The proxy could not make a secure connection to the application.",
        "{doc}"
    );
    untrusted.stop().await;
}

#[test]
fn check_refuses_unreadable_or_mismatched_tls_files() {
    let pki = Pki::new("check");
    let other = Pki::new("check-other");
    let dir = crate::support::TempDir::new("tlscheck");
    for (cert, key, why) in [
        (pki.path("cert.pem"), "/nonexistent/key.pem".to_string(), "key.pem"),
        (pki.path("cert.pem"), other.path("key.pem"), "cannot be used together"),
    ] {
        let path = dir.join("usher.toml");
        std::fs::write(&path, format!("[server]\ntls_cert = \"{cert}\"\ntls_key = \"{key}\"\n")).expect("write");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_usher"))
            .args(["check", "-c"])
            .arg(&path)
            .env("USHER_SECRET_KEYS", crate::support::TEST_KEY)
            .output()
            .expect("run");
        let text = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{text}");
        assert!(text.contains(why), "{text}");
        assert!(!text.contains("PRIVATE KEY"), "key material echoed: {text}");
    }
}

/// The `[server]` lines that make usher terminate TLS with `pki`'s certificate.
fn tls_keys(pki: &Pki) -> String {
    format!(
        "tls_cert = \"{}\"\ntls_key = \"{}\"\n",
        pki.path("cert.pem"),
        pki.path("key.pem")
    )
}

/// A raw TLS connection to `addr` as `localhost`, offering HTTP/1.1 by ALPN.
async fn tls_connect(pki: &Pki, addr: SocketAddr) -> TlsStream<TcpStream> {
    let mut config = client_config(&pki.ca_pem);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let name = ServerName::try_from("localhost").expect("name");
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("TLS handshake")
}

/// The echo upstream, usher in front of it terminating TLS with a fresh
/// certificate, and one raw TLS connection to usher. `server` is config
/// that ends inside the `[server]` table, where the TLS keys go.
async fn tls_connected(tag: &str, server: &str) -> (Upstream, Proxy, TlsStream<TcpStream>) {
    let pki = Pki::new(tag);
    let up = spawn_echo_upstream().await;
    let proxy = spawn_proxy(up.addr, &format!("{server}{}", tls_keys(&pki))).await;
    let tls = tls_connect(&pki, proxy.addr).await;
    (up, proxy, tls)
}

/// HTTP/1.1 over TLS keeps alive the way plain HTTP/1.1 does: between
/// requests the connection waits `server.idle_timeout`, not hyper's
/// `header_read_timeout`, also after a request body (by length or
/// chunked); once idle for longer it is closed with `close_notify`.
#[tokio::test]
async fn tls_keep_alive_waits_idle_timeout_between_requests() {
    let (up, proxy, mut tls) = tls_connected("keepalive", SHORT_TIMEOUTS).await;
    let requests: [(&[u8], &str); 3] = [
        (b"GET /first HTTP/1.1\r\nHost: app.test\r\n\r\n", "/first"),
        (
            b"POST /length HTTP/1.1\r\nHost: app.test\r\nContent-Length: 5\r\n\r\nhello",
            "/length",
        ),
        (
            b"POST /chunked HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            "/chunked",
        ),
    ];
    for (request, path) in requests {
        tls.write_all(request).await.expect("write");
        let doc: Value = serde_json::from_str(&read_responses(&mut tls, 1).await[0]).expect("json");
        assert_eq!(doc["uri"], path);
        // Longer than header_read_timeout, shorter than idle_timeout.
        tokio::time::sleep(Duration::from_millis(1800)).await;
    }
    tls.write_all(b"GET /last HTTP/1.1\r\nHost: app.test\r\n\r\n")
        .await
        .expect("write");
    assert!(read_responses(&mut tls, 1).await[0].contains("/last"));
    // A clean end of stream: rustls reports a close without `close_notify`
    // as an error.
    closed_once_idle_for(&mut tls, Duration::from_millis(2500)).await;
    // One upstream connection of each kind for every request: usher's own
    // exchange for the GETs, hyper's for the POSTs.
    assert_eq!(up.connections(), 2, "one upstream connection of each kind");
    proxy.stop().await;
}

/// Requests pipelined in one TLS write are answered in order, also when
/// the first one fills hyper's 8 KiB read buffer exactly, so that what
/// follows may wait inside rustls, where the socket's readiness cannot
/// show it.
#[tokio::test]
async fn pipelined_requests_over_tls_are_answered_in_order() {
    let (_up, proxy, mut tls) = tls_connected("pipelined", "[server]\n").await;
    let mut first = b"GET /first HTTP/1.1\r\nHost: app.test\r\nX-Pad: ".to_vec();
    let pad = 8192 - first.len() - 4;
    first.extend(std::iter::repeat_n(b'p', pad));
    first.extend_from_slice(b"\r\n\r\n");
    assert_eq!(first.len(), 8192);
    let mut all = first;
    all.extend_from_slice(b"GET /second HTTP/1.1\r\nHost: app.test\r\n\r\n");
    all.extend_from_slice(b"POST /third HTTP/1.1\r\nHost: app.test\r\nContent-Length: 3\r\n\r\nabc");
    all.extend_from_slice(b"GET /fourth HTTP/1.1\r\nHost: app.test\r\n\r\n");
    tls.write_all(&all).await.expect("write");
    let uris: Vec<String> = read_responses(&mut tls, 4)
        .await
        .iter()
        .map(|body| {
            let doc: Value = serde_json::from_str(body).expect("json");
            doc["uri"].as_str().expect("uri").to_string()
        })
        .collect();
    assert_eq!(uris, ["/first", "/second", "/third", "/fourth"]);
    proxy.stop().await;
}

/// A WebSocket over TLS: the `101` hands the TLS stream to the tunnel.
#[tokio::test]
async fn websocket_over_tls() {
    let pki = Pki::new("websocket");
    let (addr, upstream) = spawn_ws_echo_upstream().await;
    let proxy = spawn_proxy(addr, &format!("[server]\n{}", tls_keys(&pki))).await;
    let tls = tls_connect(&pki, proxy.addr).await;
    let url = format!("wss://localhost:{}/socket", proxy.addr.port());
    echo_through(tokio_tungstenite::client_async(url, tls), upstream).await;
    proxy.stop().await;
}
