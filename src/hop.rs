//! Connection-level headers (RFC 9110 §7.6.1) and the `X-Forwarded-*` set,
//! pure.
//!
//! Hop-by-hop headers and every header a `Connection` header names belong to
//! one connection only and are removed in both directions. `X-Forwarded-*`,
//! `Forwarded` and `X-Real-IP` from the client are believed only when the
//! peer is a trusted proxy; otherwise usher removes them and writes its own.
//! Nothing here knows about sessions or cookies.

use std::net::{IpAddr, Ipv4Addr};

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// Headers that never cross a proxy (RFC 9110 §7.6.1, plus legacy names,
/// plus `HTTP2-Settings`, which only an `h2c` upgrade uses).
static HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("proxy-connection"),
    HeaderName::from_static("keep-alive"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::PROXY_AUTHORIZATION,
    HeaderName::from_static("http2-settings"),
];

/// Headers some frameworks let override the method or path that usher
/// judged (SPEC §3.2); removed from every proxied request.
const ROUTING_OVERRIDES: [&str; 5] = [
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    "x-original-url",
    "x-rewrite-url",
];

/// X-Forwarded-For
pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
/// X-Forwarded-Proto
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
/// X-Forwarded-Host
pub const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
/// X-Request-Id (made or kept by `service::request_id`)
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Remove hop-by-hop headers and those named in `Connection`. Returns the
/// `Upgrade` value when the message asks for a protocol upgrade (a
/// `Connection` token `upgrade` and an `Upgrade` header), so the caller can
/// re-add the pair for a tunnelled WebSocket.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) -> Option<HeaderValue> {
    // Each name is looked at once; values are looked up only for the
    // hop-by-hop headers present (usually none, or `Connection` alone).
    let mut present = [false; HOP_BY_HOP.len()];
    for name in headers.keys() {
        if let Some(i) = hop_index(name.as_str()) {
            present[i] = true;
        }
    }
    let [connection, _, _, te, _, _, upgrade, _, _] = present;
    let mut named: Vec<HeaderName> = Vec::new();
    let mut upgrade_requested = false;
    if connection {
        for value in headers.get_all(header::CONNECTION) {
            let Ok(text) = value.to_str() else { continue };
            for token in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                if token.eq_ignore_ascii_case("upgrade") {
                    upgrade_requested = true;
                } else if is_hop_by_hop(token) {
                    // Removed anyway (`keep-alive`, the usual token): no
                    // name to build.
                } else if let Ok(name) = HeaderName::from_bytes(token.as_bytes()) {
                    named.push(name);
                }
            }
        }
    }
    let offered = if upgrade_requested && upgrade {
        headers.get(header::UPGRADE).cloned()
    } else {
        None
    };
    let te_trailers = te && headers.get_all(header::TE).iter().any(is_trailers);
    for (name, _) in HOP_BY_HOP.iter().zip(present).filter(|(_, here)| *here) {
        headers.remove(name);
    }
    for name in &named {
        headers.remove(name);
    }
    if te_trailers {
        // `TE: trailers` is the one TE value a proxy passes on (gRPC needs it).
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
    }
    offered
}

/// The protocol of an `Upgrade` request value that may be tunnelled: the
/// first offered token that `allowed` names (`websocket` also names
/// `websocket/13`). `None`: nothing offered may pass, and the request goes
/// on without asking for an upgrade.
pub fn permitted_upgrade(offered: &HeaderValue, allowed: &[String]) -> Option<HeaderValue> {
    let text = offered.to_str().ok()?;
    let pick = text.split(',').map(str::trim).find(|token| {
        let name = token.split('/').next().unwrap_or("");
        allowed
            .iter()
            .any(|a| a.eq_ignore_ascii_case(token) || (!a.contains('/') && a.eq_ignore_ascii_case(name)))
    })?;
    HeaderValue::from_str(pick).ok()
}

/// Whether a `101` response's `Upgrade` names the protocol the client
/// asked for (protocol names compare without regard to case).
pub fn upgrade_agrees(response: &HeaderMap, asked: &HeaderValue) -> bool {
    let name = |v: &str| v.split('/').next().unwrap_or("").trim().to_ascii_lowercase();
    let (Some(got), Ok(asked)) = (response.get(header::UPGRADE), asked.to_str()) else {
        return false;
    };
    got.to_str()
        .is_ok_and(|got| !got.contains(',') && name(got) == name(asked))
}

/// Remove what a backend could read as a second request line: routing
/// overrides (`X-HTTP-Method-Override`, `X-Original-URL`, …) and `_` or
/// `.` spellings of the framing headers (`Transfer_Encoding`,
/// `Content_Length`), in every spelling, whoever sent them.
pub fn strip_ambiguous(headers: &mut HeaderMap) {
    remove_where(headers, |name| {
        let n = name.as_str();
        if !folds(n) {
            // Names are lower case already: no allocation per header.
            return ROUTING_OVERRIDES.contains(&n);
        }
        let folded = fold(n);
        ROUTING_OVERRIDES.contains(&folded.as_str())
            || matches!(folded.as_str(), "transfer-encoding" | "content-length")
    });
}

/// Put back the pair of headers that asks the next hop to upgrade.
pub fn restore_upgrade(headers: &mut HeaderMap, protocol: HeaderValue) {
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, protocol);
}

/// The place of a (lower-case) name in [`HOP_BY_HOP`]: a `match` on the
/// text compiles to a switch on the length and one comparison, where
/// comparing `HeaderName`s would take nine.
fn hop_index(name: &str) -> Option<usize> {
    match name {
        "connection" => Some(0),
        "proxy-connection" => Some(1),
        "keep-alive" => Some(2),
        "te" => Some(3),
        "trailer" => Some(4),
        "transfer-encoding" => Some(5),
        "upgrade" => Some(6),
        "proxy-authorization" => Some(7),
        "http2-settings" => Some(8),
        _ => None,
    }
}

fn is_hop_by_hop(token: &str) -> bool {
    HOP_BY_HOP.iter().any(|name| token.eq_ignore_ascii_case(name.as_str()))
}

fn is_trailers(v: &HeaderValue) -> bool {
    v.to_str()
        .is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case("trailers")))
}

/// What usher knows first-hand about the client connection.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    /// The address the TCP connection came from.
    pub ip: IpAddr,
    /// `http` or `https`, as the client reached usher.
    pub proto: &'static str,
    /// Whether `ip` is a trusted proxy.
    pub trusted: bool,
}

/// Remove untrusted forwarding headers, then set `X-Forwarded-For`,
/// `-Proto` and `-Host` in `added` (which must hold none of them yet: this
/// comes first). `host` is the host the client asked for.
pub fn set_forwarded(headers: &mut HeaderMap, added: &mut Added, peer: Peer, host: Option<HeaderValue>) {
    remove_forwarding(headers, peer.trusted);
    let chain = if peer.trusted {
        let prior = joined(headers, &X_FORWARDED_FOR);
        if prior.is_some() {
            // Its values travel in usher's one, after them.
            headers.remove(&X_FORWARDED_FOR);
        }
        prior
    } else {
        None
    };
    let ip = peer.ip.to_canonical();
    let xff = match (chain, ip) {
        (Some(prior), _) => HeaderValue::from_maybe_shared(bytes::Bytes::from(format!("{prior}, {ip}"))),
        // The common case, once per request: no `fmt`, one exact allocation.
        (None, IpAddr::V4(v4)) => HeaderValue::from_bytes(ipv4_text(v4).as_slice()),
        (None, IpAddr::V6(_)) => HeaderValue::from_maybe_shared(bytes::Bytes::from(ip.to_string())),
    };
    if let Ok(v) = xff {
        added.push(X_FORWARDED_FOR, v);
    }
    // An untrusted peer's forwarding headers are gone already: nothing to
    // look up. A trusted proxy's own `-Proto` and `-Host` are kept.
    let absent = |headers: &HeaderMap, name| !peer.trusted || !headers.contains_key(name);
    if absent(headers, X_FORWARDED_PROTO) {
        added.push(X_FORWARDED_PROTO, HeaderValue::from_static(peer.proto));
    }
    if let Some(host) = host.filter(|_| absent(headers, X_FORWARDED_HOST)) {
        added.push(X_FORWARDED_HOST, host);
    }
}

/// The fields usher adds to a proxied request, kept beside its header map
/// until it is sent: usher's own exchange writes them after the map's
/// fields, and they are inserted into the map for hyper's client. Kept
/// apart because inserting a name into a `HeaderMap` hashes it and probes
/// the table, a cost paid for each of them on every request only to have
/// the map written out once.
///
/// A name is set at most once (a later value replaces the earlier one, as
/// `HeaderMap::insert` would), and whoever sets a name has removed it from
/// the map first (stripped it, or found it absent): the upstream never
/// gets a client's value beside usher's.
#[derive(Debug, Default)]
pub struct Added(Vec<(HeaderName, HeaderValue)>);

impl Added {
    /// Room for `n` fields.
    pub fn with_capacity(n: usize) -> Added {
        Added(Vec::with_capacity(n))
    }

    /// Set `name` to `value` (replacing a value set before). The map the
    /// fields go with must not hold `name`.
    pub fn set(&mut self, name: HeaderName, value: HeaderValue) {
        match self.0.iter_mut().find(|(known, _)| *known == name) {
            Some((_, slot)) => *slot = value,
            None => self.0.push((name, value)),
        }
    }

    /// Set `name`, which the caller knows is not set yet, to `value`
    /// (what [`set`](Self::set) does without looking: each look compares
    /// names). The map the fields go with must not hold `name`.
    pub fn push(&mut self, name: HeaderName, value: HeaderValue) {
        debug_assert!(self.get(&name).is_none(), "{name} set twice");
        self.0.push((name, value));
    }

    /// The value set for `name`.
    pub fn get(&self, name: &HeaderName) -> Option<&HeaderValue> {
        self.0.iter().find(|(known, _)| known == name).map(|(_, value)| value)
    }

    /// Each field, in the order first set.
    pub fn iter(&self) -> impl Iterator<Item = (&HeaderName, &HeaderValue)> {
        self.0.iter().map(|(name, value)| (name, value))
    }

    /// Put every field into `headers`, replacing any value there.
    pub fn insert_into(self, headers: &mut HeaderMap) {
        for (name, value) in self.0 {
            headers.insert(name, value);
        }
    }
}

/// The real client of a request: the TCP peer, or, when the peer is a
/// trusted proxy, the rightmost `X-Forwarded-For` address that is not one
/// (each trusted hop appends the address it saw; anything left of the first
/// untrusted one could be the client's own invention). An entry that does
/// not parse stops the walk at the last address known good.
pub fn client_ip(headers: &HeaderMap, peer: IpAddr, trusted: impl Fn(IpAddr) -> bool) -> IpAddr {
    let peer = peer.to_canonical();
    if !trusted(peer) {
        return peer;
    }
    let values: Vec<&[u8]> = headers
        .get_all(X_FORWARDED_FOR)
        .iter()
        .map(HeaderValue::as_bytes)
        .collect();
    let mut client = peer;
    for value in values.into_iter().rev() {
        let Ok(text) = std::str::from_utf8(value) else {
            return client;
        };
        for entry in text.rsplit(',') {
            let Some(ip) = parse_hop(entry.trim()) else {
                return client;
            };
            client = ip.to_canonical();
            if !trusted(client) {
                return client;
            }
        }
    }
    client
}

/// One `X-Forwarded-For` entry: an address, or an address and a port.
fn parse_hop(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<std::net::SocketAddr>().ok().map(|s| s.ip()))
}

/// Dotted-decimal text of `ip`, as `Display` writes it (no leading zeros).
fn ipv4_text(ip: Ipv4Addr) -> ArrayText {
    let mut text = ArrayText::default();
    for (i, octet) in ip.octets().into_iter().enumerate() {
        if i > 0 {
            text.push(b'.');
        }
        if octet >= 100 {
            text.push(b'0' + octet / 100);
        }
        if octet >= 10 {
            text.push(b'0' + octet / 10 % 10);
        }
        text.push(b'0' + octet % 10);
    }
    text
}

/// Room for the longest IPv4 text, `255.255.255.255`.
#[derive(Default)]
struct ArrayText {
    bytes: [u8; 15],
    len: usize,
}

impl ArrayText {
    fn push(&mut self, byte: u8) {
        if let Some(slot) = self.bytes.get_mut(self.len) {
            *slot = byte;
            self.len += 1;
        }
    }

    fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// Drop `X-Forwarded-*`, `Forwarded` and `X-Real-IP` unless the peer is
/// trusted. Spellings with `_` or `.` (which some backends fold to `-`) are
/// dropped whoever sent them: no honest proxy writes them.
fn remove_forwarding(headers: &mut HeaderMap, trusted: bool) {
    remove_where(headers, |name| {
        let n = name.as_str();
        let folded = folds(n);
        // Fold only the rare names that need it: no allocation per header.
        let forwarding = if folded {
            is_forwarding(&fold(n))
        } else {
            is_forwarding(n)
        };
        forwarding && (folded || !trusted)
    });
}

/// Remove every header whose name `doomed` picks, looking at each name
/// once (`keys` yields a repeated name once): a request usually carries
/// none of them, and then nothing is hashed or allocated.
pub fn remove_where(headers: &mut HeaderMap, mut doomed: impl FnMut(&HeaderName) -> bool) {
    let picked: Vec<HeaderName> = headers.keys().filter(|name| doomed(name)).cloned().collect();
    for name in picked {
        headers.remove(&name);
    }
}

/// Whether `name` holds a `_` or `.`, which [`fold`] changes. A byte loop:
/// `str::contains` with a set of chars decodes each char first, and this
/// runs on every header of every request, three times.
pub fn folds(name: &str) -> bool {
    name.bytes().any(|b| matches!(b, b'_' | b'.'))
}

/// A header name as backends that fold `_` and `.` to `-` (CGI, WSGI, many
/// frameworks) see it, lower-cased.
pub fn fold(name: &str) -> String {
    name.to_ascii_lowercase().replace(['_', '.'], "-")
}

fn is_forwarding(lower: &str) -> bool {
    lower.starts_with("x-forwarded-") || lower == "forwarded" || lower == "x-real-ip"
}

/// All values of `name` joined with `, `, or `None` when absent or not text.
fn joined(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    let parts: Vec<&str> = headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

#[cfg(test)]
mod tests;
