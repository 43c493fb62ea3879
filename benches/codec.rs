//! Session cookie codec: seal and open (HMAC-SHA256 + base64url + JSON) of a
//! realistic session, plus finding it in a `Cookie` header first, as the
//! request path does. Run: `cargo bench --bench codec`.
//! Numbers and method: docs/PERFORMANCE.md.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use http::header::{COOKIE, HeaderMap, HeaderValue};
use serde_json::{Map, Value, json};
use usher::session::codec::{DEFAULT_MAX_VALUE_LEN, Limits};
use usher::session::key::MIN_KEY_LEN;
use usher::session::{Key, Keys, cookie, open, seal};

const NAME: &str = "usher_session";
const NOW: u64 = 1_790_000_000;

fn key(fill: u8) -> Key {
    Key::new(vec![fill; MIN_KEY_LEN], MIN_KEY_LEN).expect("a 32-byte key")
}

/// What a signed-in user carries: the sign-in fields plus a small cart.
fn session() -> Map<String, Value> {
    let Value::Object(map) = json!({
        "user": "alice",
        "email": "alice@example.com",
        "groups": ["admin", "staff"],
        "auth_time": NOW - 3600,
        "cart": {"apple": 2, "pear": 1}
    }) else {
        unreachable!()
    };
    map
}

fn limits() -> Limits {
    Limits {
        max_age: 14 * 86_400,
        max_lifetime: Some(30 * 86_400),
        max_value_len: DEFAULT_MAX_VALUE_LEN,
    }
}

fn codec(c: &mut Criterion) {
    let payload = session();
    let signing = key(7);
    let one = Keys::new(vec![key(7)]).expect("one key");
    let rotating = Keys::new(vec![key(9), key(7)]).expect("two keys");
    let value = seal(NAME, &payload, NOW - 60, &signing);
    let limits = limits();

    c.bench_function("codec/seal", |b| {
        b.iter(|| seal(black_box(NAME), black_box(&payload), black_box(NOW), &signing))
    });
    c.bench_function("codec/open", |b| {
        b.iter(|| open(black_box(NAME), black_box(&value), &one, black_box(NOW), &limits).expect("valid"))
    });
    c.bench_function("codec/open_2_keys", |b| {
        b.iter(|| open(black_box(NAME), black_box(&value), &rotating, black_box(NOW), &limits).expect("valid"))
    });
    let mut forged = value.clone();
    forged.replace_range(forged.len() - 2.., "AA");
    c.bench_function("codec/open_bad_mac", |b| {
        b.iter(|| open(black_box(NAME), black_box(&forged), &one, black_box(NOW), &limits).expect_err("forged"))
    });

    // The request path: find our cookie among others, then open it.
    let mut headers = HeaderMap::new();
    let line = format!("_ga=GA1.1.123456789.1790000000; theme=dark; {NAME}={value}; lang=en");
    headers.insert(COOKIE, HeaderValue::from_str(&line).expect("cookie-safe"));
    c.bench_function("codec/find_and_open", |b| {
        b.iter(|| {
            let v = cookie::find(black_box(&headers), NAME).expect("present");
            open(NAME, v, &one, NOW, &limits).expect("valid")
        })
    });
}

criterion_group!(benches, codec);
criterion_main!(benches);
