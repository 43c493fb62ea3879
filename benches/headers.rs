//! The header plan on a realistic browser request: strip every spelling of
//! the three `[session.forward]` headers, then inject them from the session;
//! and the whole header phase of the pipeline around it (hop-by-hop strip,
//! cookie strip, X-Forwarded-*). Run: `cargo bench --bench headers`.
//! Numbers and method: docs/PERFORMANCE.md.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Map, Value, json};
use usher::config::Forward;
use usher::headers::HeaderPlan;
use usher::hop::{self, Added, Peer};
use usher::session::cookie;

fn plan() -> HeaderPlan {
    let forward: Vec<Forward> = [
        ("x-forwarded-user", "user"),
        ("x-forwarded-email", "email"),
        ("x-forwarded-groups", "groups"),
    ]
    .into_iter()
    .map(|(h, f)| Forward {
        header: HeaderName::from_static(h),
        field: f.to_string(),
    })
    .collect();
    HeaderPlan::new(&forward)
}

fn session() -> Map<String, Value> {
    let Value::Object(map) = json!({
        "user": "alice",
        "email": "alice@example.com",
        "groups": ["admin", "staff"],
        "auth_time": 1_790_000_000u64
    }) else {
        unreachable!()
    };
    map
}

/// 14 headers as a browser sends them, with one spoofed session header and
/// one `_` variant that strip must remove.
fn request_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    for (name, value) in [
        ("host", "app.example.com"),
        (
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        ),
        (
            "accept",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        ),
        ("accept-language", "en-GB,en;q=0.5"),
        ("accept-encoding", "gzip, deflate, br, zstd"),
        ("referer", "https://app.example.com/orders"),
        ("connection", "keep-alive"),
        ("upgrade-insecure-requests", "1"),
        ("sec-fetch-dest", "document"),
        ("sec-fetch-mode", "navigate"),
        ("sec-fetch-site", "same-origin"),
        (
            "cookie",
            "_ga=GA1.1.123456789.1790000000; usher_session=v1.1790000000.eyJ1c2VyIjoiYWxpY2UifQ.AAAA; lang=en",
        ),
        ("x-forwarded-user", "mallory"),
        ("x_forwarded_email", "mallory@example.com"),
    ] {
        h.append(HeaderName::from_static(name), HeaderValue::from_static(value));
    }
    h
}

fn headers(c: &mut Criterion) {
    let plan = plan();
    let session = std::sync::Arc::new(session());
    let base = request_headers();
    let peer = Peer {
        ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)),
        proto: "https",
        trusted: false,
    };

    c.bench_function("headers/plan_strip_inject", |b| {
        b.iter_batched_ref(
            || base.clone(),
            |h| {
                plan.strip(h);
                let mut added = Added::with_capacity(3);
                plan.inject(&mut added, Some(black_box(&session)));
                added
            },
            BatchSize::SmallInput,
        )
    });
    c.bench_function("headers/plan_strip", |b| {
        b.iter_batched_ref(|| base.clone(), |h| plan.strip(h), BatchSize::SmallInput)
    });
    c.bench_function("headers/plan_inject", |b| {
        b.iter_batched_ref(
            || Added::with_capacity(3),
            |added| plan.inject(added, Some(black_box(&session))),
            BatchSize::SmallInput,
        )
    });
    // Every header step the pipeline takes on an authenticated request.
    c.bench_function("headers/full_phase", |b| {
        b.iter_batched_ref(
            || base.clone(),
            |h| {
                let host = h.get(http::header::HOST).cloned();
                let _upgrade = hop::strip_hop_by_hop(h);
                plan.strip(h);
                cookie::strip(h, "usher_session");
                let mut added = Added::with_capacity(6);
                hop::set_forwarded(h, &mut added, peer, host);
                plan.inject(&mut added, Some(black_box(&session)));
                added
            },
            BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, headers);
criterion_main!(benches);
