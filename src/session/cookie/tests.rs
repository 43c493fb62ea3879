use super::*;

const NAME: &str = "usher_session";

fn headers(cookies: &[&[u8]]) -> HeaderMap {
    let mut map = HeaderMap::new();
    map.insert("x-other", HeaderValue::from_static("kept"));
    for cookie in cookies {
        let value = HeaderValue::from_bytes(cookie).expect("test header is valid");
        map.append(COOKIE, value);
    }
    map
}

#[track_caller]
fn check_find(cookies: &[&[u8]], expected: Result<&str, Rejected>) {
    let map = headers(cookies);
    assert_eq!(find(&map, NAME), expected, "cookies {cookies:?}");
}

#[test]
fn find_reads_every_cookie_header() {
    check_find(&[b"usher_session=v1.abc"], Ok("v1.abc"));
    check_find(&[b"a=1; usher_session=v1.abc; b=2"], Ok("v1.abc"));
    check_find(&[b"a=1", b"usher_session=v1.abc", b"b=2"], Ok("v1.abc"));
    check_find(&[b"a=1;usher_session = v1.abc ;b=2"], Ok("v1.abc"));
    check_find(&[b"usher_session="], Ok(""));
    check_find(&[b"usher_session=a=b"], Ok("a=b"));
    check_find(&[b"a=\xff\xfe", b"usher_session=v1.abc"], Ok("v1.abc"));
    check_find(&[b"a=\xff; usher_session=v1.abc"], Ok("v1.abc"));
}

#[test]
fn find_reports_missing() {
    check_find(&[], Err(Rejected::Missing));
    check_find(&[b""], Err(Rejected::Missing));
    check_find(&[b"a=1; b=2"], Err(Rejected::Missing));
    check_find(&[b"usher_session2=x; xusher_session=y"], Err(Rejected::Missing));
    check_find(&[b"USHER_SESSION=x"], Err(Rejected::Missing));
    check_find(&[b"usher_session"], Err(Rejected::Missing));
    check_find(&[b"a=usher_session=x"], Err(Rejected::Missing));
    let nameless = headers(&[b"flag; =x"]);
    assert_eq!(find(&nameless, ""), Err(Rejected::Missing));
}

#[test]
fn find_refuses_duplicates_anywhere() {
    check_find(&[b"usher_session=a; usher_session=b"], Err(Rejected::Duplicate));
    check_find(&[b"usher_session=a; usher_session=a"], Err(Rejected::Duplicate));
    check_find(&[b"usher_session=a", b"usher_session=b"], Err(Rejected::Duplicate));
    check_find(
        &[b"usher_session=a", b"x=\xff; usher_session=b"],
        Err(Rejected::Duplicate),
    );
    check_find(&[b"usher_session=a; usher_session="], Err(Rejected::Duplicate));
}

#[test]
fn find_refuses_a_non_utf8_value_of_ours() {
    check_find(&[b"usher_session=\xff"], Err(Rejected::Malformed));
}

#[track_caller]
fn check_strip(cookies: &[&[u8]], expected: &[&[u8]]) {
    let mut map = headers(cookies);
    strip(&mut map, NAME);
    let got: Vec<&[u8]> = map.get_all(COOKIE).iter().map(HeaderValue::as_bytes).collect();
    assert_eq!(got, expected, "cookies {cookies:?}");
    assert_eq!(map.get("x-other").map(HeaderValue::as_bytes), Some(&b"kept"[..]));
}

#[test]
fn strip_removes_only_our_cookie() {
    check_strip(&[], &[]);
    check_strip(&[b"a=1;b=2"], &[b"a=1;b=2"]);
    check_strip(&[b"a=1; usher_session=x; b=2"], &[b"a=1; b=2"]);
    check_strip(&[b"usher_session=x; a=1"], &[b"a=1"]);
    check_strip(&[b"a=1 ;  usher_session=x;b=\"q v\""], &[b"a=1; b=\"q v\""]);
    check_strip(&[b"usher_session=x"], &[]);
    check_strip(&[b"usher_session=x; usher_session=y"], &[]);
    check_strip(&[b"a=1;b=2", b"usher_session=x", b"c=3"], &[b"a=1;b=2", b"c=3"]);
    check_strip(&[b"a=\xff; usher_session=x"], &[b"a=\xff"]);
    check_strip(&[b"usher_session2=x; flag"], &[b"usher_session2=x; flag"]);
}

#[test]
fn strip_keeps_sensitive_flag() {
    let mut value = HeaderValue::from_static("a=1; usher_session=x");
    value.set_sensitive(true);
    let mut map = HeaderMap::new();
    map.insert(COOKIE, value);
    strip(&mut map, NAME);
    assert!(map.get(COOKIE).is_some_and(HeaderValue::is_sensitive));
}

fn attrs(same_site: SameSite, domain: Option<&str>, max_age: Option<u64>) -> CookieAttrs {
    CookieAttrs::new(NAME, true, same_site, "/", domain, max_age).expect("valid attrs")
}

#[track_caller]
fn check_set(attrs: &CookieAttrs, value: &str, expected: &str) {
    let header = set_cookie(attrs, value).expect("fits");
    assert_eq!(header.to_str().ok(), Some(expected));
}

#[test]
fn set_cookie_carries_every_attribute() {
    let lax = attrs(SameSite::Lax, Some("example.com"), Some(1_209_600));
    check_set(
        &lax,
        "v1.1.e30.tag",
        "usher_session=v1.1.e30.tag; HttpOnly; SameSite=Lax; Secure; Path=/; \
         Domain=example.com; Max-Age=1209600",
    );
    let strict = attrs(SameSite::Strict, None, None);
    check_set(
        &strict,
        "v",
        "usher_session=v; HttpOnly; SameSite=Strict; Secure; Path=/",
    );
    let none = attrs(SameSite::None, Some(".example.com"), Some(60));
    check_set(
        &none,
        "v",
        "usher_session=v; HttpOnly; SameSite=None; Secure; Path=/; Domain=example.com; Max-Age=60",
    );
    let insecure = CookieAttrs::new("s", false, SameSite::Lax, "/app", None, None).expect("valid");
    check_set(&insecure, "v", "s=v; HttpOnly; SameSite=Lax; Path=/app");
    let forever = attrs(SameSite::Lax, None, Some(u64::MAX));
    check_set(
        &forever,
        "v",
        "usher_session=v; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=9223372036854775807",
    );
}

#[test]
fn clear_cookie_carries_the_same_attributes() {
    let lax = attrs(SameSite::Lax, Some("example.com"), Some(1_209_600));
    let header = clear_cookie(&lax);
    assert_eq!(
        header.to_str().ok(),
        Some(
            "usher_session=; HttpOnly; SameSite=Lax; Secure; Path=/; Domain=example.com; \
             Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT"
        )
    );
}

#[test]
fn set_cookie_refuses_headers_over_4096_bytes() {
    let lax = attrs(SameSite::Lax, None, None);
    let overhead = "usher_session=; HttpOnly; SameSite=Lax; Secure; Path=/".len();
    let fits = "a".repeat(MAX_SET_COOKIE_LEN - overhead);
    assert_eq!(set_cookie(&lax, &fits).map(|h| h.len()), Ok(4096));
    let over = "a".repeat(MAX_SET_COOKIE_LEN - overhead + 1);
    assert_eq!(set_cookie(&lax, &over), Err(SetCookieError::TooLarge { len: 4097 }));
}

#[test]
fn set_cookie_refuses_characters_outside_cookie_octets() {
    let lax = attrs(SameSite::Lax, None, None);
    for value in ["a;b", "a b", "a,b", "\"a\"", "a\\b", "a\nb", "é"] {
        assert_eq!(set_cookie(&lax, value), Err(SetCookieError::InvalidValue), "{value:?}");
    }
}

#[track_caller]
fn check_attrs(
    name: &str,
    secure: bool,
    same_site: SameSite,
    path: &str,
    domain: Option<&str>,
    expected: Result<(), &str>,
) {
    let got = CookieAttrs::new(name, secure, same_site, path, domain, None)
        .map(|_| ())
        .map_err(|e| e.to_string());
    assert_eq!(got, expected.map_err(str::to_owned));
}

#[test]
fn attributes_are_checked_once() {
    use SameSite::{Lax, None as NoSameSite};
    check_attrs("__Host-usher", true, Lax, "/", None, Ok(()));
    check_attrs("__Secure-usher", true, Lax, "/app", Some("example.com"), Ok(()));
    check_attrs("s", true, NoSameSite, "/", None, Ok(()));
    check_attrs(
        "",
        true,
        Lax,
        "/",
        None,
        Err("cookie name \"\" must be a non-empty token (letters, digits, !#$%&'*+-.^_`|~)"),
    );
    for bad in ["a b", "a=b", "a;b", "é", "a\"", "a,b"] {
        assert!(CookieAttrs::new(bad, true, Lax, "/", None, None).is_err(), "{bad:?}");
    }
    let path_error =
        |p: &str| format!("cookie path {p:?} must start with / and hold no ';', spaces or control characters");
    for bad in ["", "app", "/a;b", "/a b", "/\t"] {
        check_attrs("s", true, Lax, bad, None, Err(&path_error(bad)));
    }
    for bad in ["", ".", "a..b", "example.com.", "exa mple.com", "a;b", "a/b"] {
        assert!(
            CookieAttrs::new("s", true, Lax, "/", Some(bad), None).is_err(),
            "{bad:?}"
        );
    }
    let host = "cookie name \"__Host-s\" has the __Host- prefix, which requires secure, path / and no domain";
    check_attrs("__Host-s", false, Lax, "/", None, Err(host));
    check_attrs("__Host-s", true, Lax, "/app", None, Err(host));
    check_attrs("__Host-s", true, Lax, "/", Some("example.com"), Err(host));
    check_attrs(
        "__host-s",
        true,
        Lax,
        "/",
        Some("example.com"),
        Err("cookie name \"__host-s\" has the __Host- prefix, which requires secure, path / and no domain"),
    );
    check_attrs(
        "__Secure-s",
        false,
        Lax,
        "/",
        None,
        Err("cookie name \"__Secure-s\" has the __Secure- prefix, which requires secure"),
    );
    check_attrs(
        "s",
        false,
        NoSameSite,
        "/",
        None,
        Err("same_site none requires secure (browsers drop the cookie otherwise)"),
    );
}

#[test]
fn attributes_read_back() {
    let lax = attrs(SameSite::Lax, Some(".example.com"), Some(60));
    assert_eq!(lax.name(), NAME);
    assert!(lax.secure());
    assert_eq!(lax.same_site(), SameSite::Lax);
    assert_eq!(lax.path(), "/");
    assert_eq!(lax.domain(), Some("example.com"));
    assert_eq!(lax.max_age(), Some(60));
}
