use super::*;

fn map(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            HeaderName::from_bytes(k.as_bytes()).expect("name"),
            HeaderValue::from_str(v).expect("value"),
        );
    }
    h
}

fn names(h: &HeaderMap) -> Vec<String> {
    let mut n: Vec<String> = h.keys().map(|k| k.to_string()).collect();
    n.sort();
    n
}

#[test]
fn removes_hop_by_hop_and_connection_named_headers() {
    let mut h = map(&[
        ("connection", "keep-alive, X-Forwarded-For, x-custom"),
        ("connection", "close"),
        ("keep-alive", "timeout=5"),
        ("proxy-connection", "keep-alive"),
        ("transfer-encoding", "chunked"),
        ("trailer", "x-checksum"),
        ("upgrade", "h2c"),
        ("proxy-authorization", "Basic eA=="),
        ("x-forwarded-for", "6.6.6.6"),
        ("x-custom", "1"),
        ("accept", "*/*"),
    ]);
    assert_eq!(strip_hop_by_hop(&mut h), None, "no upgrade token, no upgrade");
    assert_eq!(names(&h), ["accept"]);
}

#[test]
fn upgrade_is_reported_and_restorable() {
    let mut h = map(&[
        ("connection", "Upgrade"),
        ("upgrade", "websocket"),
        ("sec-websocket-key", "k"),
    ]);
    let up = strip_hop_by_hop(&mut h).expect("upgrade requested");
    assert_eq!(up, "websocket");
    assert!(!h.contains_key(header::UPGRADE));
    restore_upgrade(&mut h, up);
    assert_eq!(h[header::CONNECTION], "upgrade");
    assert_eq!(h[header::UPGRADE], "websocket");
    assert_eq!(h["sec-websocket-key"], "k");
}

#[test]
fn te_trailers_survives_other_te_does_not() {
    let mut h = map(&[("te", "trailers")]);
    strip_hop_by_hop(&mut h);
    assert_eq!(h[header::TE], "trailers");
    let mut h = map(&[("te", "gzip")]);
    strip_hop_by_hop(&mut h);
    assert!(!h.contains_key(header::TE));
}

fn peer(trusted: bool) -> Peer {
    Peer {
        ip: "192.0.2.1".parse().expect("ip"),
        proto: "http",
        trusted,
    }
}

const SPOOFS: &[(&str, &str)] = &[
    ("x-forwarded-for", "6.6.6.6"),
    ("x-forwarded-proto", "https"),
    ("x-forwarded-host", "evil.example"),
    ("x-forwarded-port", "443"),
    ("forwarded", "for=6.6.6.6"),
    ("x-real-ip", "6.6.6.6"),
    ("x_forwarded_for", "6.6.6.6"),
    ("x.forwarded.host", "evil.example"),
];

#[test]
fn untrusted_peer_cannot_supply_forwarding_headers() {
    let mut h = map(SPOOFS);
    forwarded(&mut h, peer(false), Some(HeaderValue::from_static("app.example")));
    assert_eq!(names(&h), ["x-forwarded-for", "x-forwarded-host", "x-forwarded-proto"]);
    assert_eq!(h[X_FORWARDED_FOR], "192.0.2.1");
    assert_eq!(h[X_FORWARDED_PROTO], "http");
    assert_eq!(h[X_FORWARDED_HOST], "app.example");
}

#[test]
fn trusted_peer_extends_the_chain_but_not_with_folded_spellings() {
    let mut h = map(SPOOFS);
    h.append(X_FORWARDED_FOR, HeaderValue::from_static("7.7.7.7"));
    forwarded(&mut h, peer(true), Some(HeaderValue::from_static("app.example")));
    assert_eq!(h[X_FORWARDED_FOR], "6.6.6.6, 7.7.7.7, 192.0.2.1");
    assert_eq!(h[X_FORWARDED_PROTO], "https");
    assert_eq!(h[X_FORWARDED_HOST], "evil.example");
    assert_eq!(h["forwarded"], "for=6.6.6.6");
    assert!(!h.contains_key("x_forwarded_for"));
    assert!(!h.contains_key("x.forwarded.host"));
}

#[test]
fn mapped_ipv6_peer_is_written_as_ipv4() {
    let mut h = HeaderMap::new();
    let p = Peer {
        ip: "::ffff:10.1.2.3".parse().expect("ip"),
        proto: "http",
        trusted: false,
    };
    forwarded(&mut h, p, None);
    assert_eq!(h[X_FORWARDED_FOR], "10.1.2.3");
    assert!(!h.contains_key(X_FORWARDED_HOST));
}

#[test]
fn ipv4_text_matches_display_for_every_octet_width() {
    for octet in 0..=255u8 {
        for ip in [
            Ipv4Addr::new(octet, 0, 255, 9),
            Ipv4Addr::new(10, octet, octet, 100),
            Ipv4Addr::new(255, 255, 1, octet),
        ] {
            assert_eq!(ipv4_text(ip).as_slice(), ip.to_string().as_bytes());
        }
    }
}

#[test]
fn connection_naming_a_hop_by_hop_header_still_strips_custom_names() {
    let mut h = map(&[
        ("connection", "Keep-Alive, X-Private, TE"),
        ("keep-alive", "timeout=5"),
        ("x-private", "1"),
        ("x-kept", "1"),
    ]);
    strip_hop_by_hop(&mut h);
    assert_eq!(names(&h), ["x-kept"]);
}

/// SPEC §3.2: routing overrides and `_` framing headers never reach the
/// backend, from anyone (attack review of 9e8e3e0).
#[test]
fn ambiguous_headers_are_stripped() {
    let mut h = map(&[
        ("x-http-method-override", "DELETE"),
        ("x-http-method", "DELETE"),
        ("x-method-override", "PUT"),
        ("x-original-url", "/admin"),
        ("x-rewrite-url", "/admin"),
        ("x_original_url", "/admin"),
        ("x.rewrite.url", "/admin"),
        ("transfer_encoding", "chunked"),
        ("content_length", "5"),
        ("content.length", "5"),
        ("content-length", "0"),
        ("x-custom_name", "kept"),
        ("accept", "*/*"),
    ]);
    strip_ambiguous(&mut h);
    assert_eq!(names(&h), ["accept", "content-length", "x-custom_name"]);
}

#[test]
fn only_listed_upgrades_pass_and_h2c_settings_never_do() {
    let allowed = vec!["websocket".to_string()];
    let v = |s: &str| HeaderValue::from_str(s).expect("value");
    assert_eq!(permitted_upgrade(&v("websocket"), &allowed), Some(v("websocket")));
    assert_eq!(permitted_upgrade(&v("WebSocket"), &allowed), Some(v("WebSocket")));
    assert_eq!(
        permitted_upgrade(&v("h2c, websocket/13"), &allowed),
        Some(v("websocket/13"))
    );
    assert_eq!(permitted_upgrade(&v("h2c"), &allowed), None);
    assert_eq!(permitted_upgrade(&v("TLS/1.0"), &allowed), None);
    let mut res = map(&[("upgrade", "websocket")]);
    assert!(upgrade_agrees(&res, &v("WebSocket")));
    assert!(!upgrade_agrees(&res, &v("h2c")));
    res.insert(header::UPGRADE, v("websocket, h2c"));
    assert!(!upgrade_agrees(&res, &v("websocket")));
    assert!(!upgrade_agrees(&HeaderMap::new(), &v("websocket")));
    let mut h = map(&[
        ("connection", "Upgrade, HTTP2-Settings"),
        ("upgrade", "h2c"),
        ("http2-settings", "AAMAAABkAAQAAP__"),
    ]);
    strip_hop_by_hop(&mut h);
    assert!(h.is_empty(), "{h:?}");
    let mut h = map(&[("http2-settings", "AAMAAABkAAQAAP__")]);
    strip_hop_by_hop(&mut h);
    assert!(
        h.is_empty(),
        "HTTP2-Settings is removed even when Connection does not name it"
    );
}

/// Attack review of 9e8e3e0: behind the documented nginx every user shared
/// the front proxy's sign-in bucket. The real client comes from
/// `X-Forwarded-For`, believed only as far as trusted hops wrote it.
#[test]
fn the_real_client_is_the_rightmost_untrusted_hop() {
    let proxy: IpAddr = "10.0.0.1".parse().expect("ip");
    let trusted = |ip: IpAddr| ip.to_string().starts_with("10.");
    let check = |xff: &[&str], peer: IpAddr, want: &str| {
        let h = map(&xff.iter().map(|v| ("x-forwarded-for", *v)).collect::<Vec<_>>());
        assert_eq!(client_ip(&h, peer, trusted).to_string(), want, "{xff:?} from {peer}");
    };
    check(&["203.0.113.9"], proxy, "203.0.113.9");
    check(&["6.6.6.6, 203.0.113.9"], proxy, "203.0.113.9");
    check(&["6.6.6.6, 203.0.113.9, 10.0.0.2"], proxy, "203.0.113.9");
    check(&["6.6.6.6", "203.0.113.9"], proxy, "203.0.113.9");
    check(&["203.0.113.9:4711"], proxy, "203.0.113.9");
    check(&["[2001:db8::1]:4711"], proxy, "2001:db8::1");
    check(&["junk, 10.0.0.3"], proxy, "10.0.0.3");
    check(&[], proxy, "10.0.0.1");
    let stranger: IpAddr = "198.51.100.1".parse().expect("ip");
    check(&["203.0.113.9"], stranger, "198.51.100.1");
}

/// Each hop-by-hop name is removed on its own, in any company, and an
/// upgrade is reported only when both halves of the pair are there.
#[test]
fn each_hop_by_hop_header_alone_is_removed_and_upgrade_needs_both_halves() {
    for name in &HOP_BY_HOP {
        let mut h = map(&[(name.as_str(), "x"), ("accept", "*/*")]);
        assert_eq!(strip_hop_by_hop(&mut h), None, "{name}");
        assert_eq!(names(&h), ["accept"], "{name}");
    }
    let mut h = map(&[("connection", "upgrade")]);
    assert_eq!(strip_hop_by_hop(&mut h), None, "Connection: upgrade without Upgrade");
    let mut h = map(&[("upgrade", "websocket")]);
    assert_eq!(strip_hop_by_hop(&mut h), None, "Upgrade without the Connection token");
    assert!(h.is_empty());
    let mut h = map(&[("te", "gzip, trailers"), ("connection", "te")]);
    strip_hop_by_hop(&mut h);
    assert_eq!(h.get_all(header::TE).iter().collect::<Vec<_>>(), ["trailers"]);
}

#[test]
fn the_name_switch_agrees_with_the_table() {
    for (i, name) in HOP_BY_HOP.iter().enumerate() {
        assert_eq!(hop_index(name.as_str()), Some(i), "{name}");
    }
    for other in ["host", "cookie", "connections", "tE", "x-upgrade", ""] {
        assert_eq!(hop_index(other), None, "{other}");
    }
}

#[test]
fn connection_tokens_name_hop_by_hop_headers_in_any_case() {
    for name in &HOP_BY_HOP {
        let lower = name.as_str();
        for token in [lower.to_string(), lower.to_ascii_uppercase(), mixed(lower)] {
            assert!(is_hop_by_hop(&token), "{token}");
        }
    }
    let longest = "Proxy-Authorization";
    for other in [
        "",
        "close",
        "x-keep-alive",
        "keep-alive2",
        "Proxy-Authorizationx",
        "proxy-authorizatio",
        "t e",
    ] {
        assert!(!is_hop_by_hop(other), "{other}");
    }
    assert!(is_hop_by_hop(longest));
    // Non-ASCII bytes are never lower-cased into a match.
    assert!(!is_hop_by_hop("KEEP-ALİVE"));
}

fn mixed(name: &str) -> String {
    name.chars()
        .enumerate()
        .map(|(i, c)| if i % 2 == 0 { c.to_ascii_uppercase() } else { c })
        .collect()
}

/// `set_forwarded` into `h`, with what it adds put into the map as it is
/// for hyper's client.
fn forwarded(h: &mut HeaderMap, peer: Peer, host: Option<HeaderValue>) {
    let mut added = Added::default();
    set_forwarded(h, &mut added, peer, host);
    added.insert_into(h);
}

#[test]
fn added_fields_are_set_once_each_and_replace_nothing_in_the_map_themselves() {
    let mut added = Added::with_capacity(2);
    added.push(X_FORWARDED_FOR, HeaderValue::from_static("192.0.2.1"));
    added.set(X_REQUEST_ID, HeaderValue::from_static("one"));
    added.set(X_REQUEST_ID, HeaderValue::from_static("two"));
    let fields: Vec<_> = added
        .iter()
        .map(|(n, v)| (n.as_str(), v.to_str().expect("text")))
        .collect();
    assert_eq!(fields, [("x-forwarded-for", "192.0.2.1"), ("x-request-id", "two")]);
    assert_eq!(added.get(&X_REQUEST_ID).map(|v| v.as_bytes()), Some(&b"two"[..]));
    assert!(added.get(&X_FORWARDED_HOST).is_none());
    // Into a map: usher's value replaces whatever the map held.
    let mut h = HeaderMap::new();
    h.append(X_REQUEST_ID, HeaderValue::from_static("client"));
    h.append(X_REQUEST_ID, HeaderValue::from_static("client-again"));
    added.insert_into(&mut h);
    let ids: Vec<_> = h.get_all(X_REQUEST_ID).iter().collect();
    assert_eq!(ids, ["two"]);
}

#[test]
fn a_trusted_chain_leaves_the_map_for_the_one_value_usher_adds() {
    let mut h = HeaderMap::new();
    h.append(X_FORWARDED_FOR, HeaderValue::from_static("6.6.6.6"));
    h.append(X_FORWARDED_FOR, HeaderValue::from_static("7.7.7.7"));
    let mut added = Added::default();
    set_forwarded(&mut h, &mut added, peer(true), None);
    assert!(
        !h.contains_key(X_FORWARDED_FOR),
        "the map keeps no client value beside usher's"
    );
    assert_eq!(added.get(&X_FORWARDED_FOR).expect("set"), "6.6.6.6, 7.7.7.7, 192.0.2.1");
}
