//! What the demo app knows about a request: the session fields usher
//! injected as headers, decoded, plus every header as received for display.
//!
//! Pure, and nothing here fails: a header that is absent, not UTF-8 or not
//! the JSON expected reads as empty. Values are percent-decoded because
//! usher percent-encodes `%`, controls and non-ASCII in what it injects (and
//! `,` inside list elements).

use std::borrow::Cow;

use http::HeaderMap;
use http::header::{self, HeaderValue};
use percent_encoding::percent_decode;
use serde_json::{Map, Value, json};

const USER: &str = "x-forwarded-user";
const EMAIL: &str = "x-forwarded-email";
const GROUPS: &str = "x-forwarded-groups";
const CART: &str = "x-usher-cart";
const PREFS: &str = "x-usher-prefs";
const FORWARDED_HOST: &str = "x-forwarded-host";
/// Where the preferences form returns to when the Referer will not do.
const DEFAULT_BACK: &str = "/shop";

/// The session as usher handed it over, and the headers it came in.
#[derive(Debug, Default, Clone, PartialEq)]
pub(super) struct Context {
    /// Signed-in user; `None` when signed out.
    pub(super) user: Option<String>,
    pub(super) email: Option<String>,
    pub(super) groups: Vec<String>,
    /// Item → quantity, as usher sent it.
    pub(super) cart: Map<String, Value>,
    pub(super) prefs: Map<String, Value>,
    /// Every request header, name and raw value, in the order received.
    pub(super) headers: Vec<(String, String)>,
}

impl Context {
    /// Read the session fields and headers of a request.
    pub(super) fn from_headers(headers: &HeaderMap) -> Context {
        Context {
            user: text(headers, USER),
            email: text(headers, EMAIL),
            groups: list(headers, GROUPS),
            cart: object(headers, CART),
            prefs: object(headers, PREFS),
            headers: headers
                .iter()
                .map(|(n, v)| (n.as_str().to_owned(), lossy(v).into_owned()))
                .collect(),
        }
    }

    /// How many of `item` the cart holds; anything but a count is none.
    pub(super) fn quantity(&self, item: &str) -> u64 {
        self.cart.get(item).and_then(Value::as_u64).unwrap_or(0)
    }

    /// The theme preference, light unless the visitor chose dark.
    pub(super) fn theme(&self) -> Theme {
        self.prefs
            .get("theme")
            .and_then(Value::as_str)
            .and_then(Theme::parse)
            .unwrap_or(Theme::Light)
    }

    /// The `/api/whoami` document.
    pub(super) fn whoami(&self) -> Value {
        json!({
            "user": self.user,
            "email": self.email,
            "groups": self.groups,
            "cart": self.cart,
            "prefs": self.prefs,
            "headers": self.headers.iter().map(|(n, v)| [n, v]).collect::<Vec<_>>(),
        })
    }
}

/// The page colours the visitor can choose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Theme {
    Light,
    Dark,
}

impl Theme {
    /// Exactly `light` or `dark`.
    pub(super) fn parse(s: &str) -> Option<Theme> {
        match s {
            "light" => Some(Theme::Light),
            "dark" => Some(Theme::Dark),
            _ => None,
        }
    }

    /// The name stored in the session.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Theme::Light => "light",
            Theme::Dark => "dark",
        }
    }
}

/// Where to send the browser after the preferences form: the Referer's
/// path when it is a path on this origin, else `/shop`. Never an open
/// redirect: `//host`, `/\host`, other hosts and schemes all fall back.
pub(super) fn back_path(headers: &HeaderMap) -> String {
    let Some(referer) = headers.get(header::REFERER).and_then(|v| v.to_str().ok()) else {
        return DEFAULT_BACK.to_owned();
    };
    let origins = [headers.get(FORWARDED_HOST), headers.get(header::HOST)];
    let hosts: Vec<&str> = origins.into_iter().flatten().filter_map(first_host).collect();
    same_origin_path(referer, &hosts).unwrap_or_else(|| DEFAULT_BACK.to_owned())
}

/// The path and query of `referer` if it names one of `hosts` (or no host).
pub(super) fn same_origin_path(referer: &str, hosts: &[&str]) -> Option<String> {
    let uri: http::Uri = referer.parse().ok()?;
    if let Some(authority) = uri.authority() {
        let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
        let host_ok = hosts.iter().any(|h| h.eq_ignore_ascii_case(authority.as_str()));
        if !(scheme_ok && host_ok) {
            return None;
        }
    } else if uri.scheme().is_some() {
        return None;
    }
    let path = uri.path_and_query()?.as_str();
    is_local_path(path).then(|| path.to_owned())
}

/// A path that a browser resolves on this origin: one leading `/`, no `\`.
fn is_local_path(path: &str) -> bool {
    path.starts_with('/') && !path.starts_with("//") && !path.bytes().any(|b| b == b'\\' || b.is_ascii_control())
}

/// The first host of a possibly comma-joined `X-Forwarded-Host`.
fn first_host(value: &HeaderValue) -> Option<&str> {
    let first = value.to_str().ok()?.split(',').next()?.trim();
    (!first.is_empty()).then_some(first)
}

/// A text field, decoded; empty counts as absent.
fn text(headers: &HeaderMap, name: &str) -> Option<String> {
    let value = headers.get(name)?;
    let decoded = decode(value.as_bytes());
    (!decoded.is_empty()).then_some(decoded)
}

/// A comma-joined list field; each element is decoded on its own since
/// usher escapes `,` inside elements.
fn list(headers: &HeaderMap, name: &str) -> Vec<String> {
    let Some(value) = headers.get(name) else {
        return Vec::new();
    };
    value
        .as_bytes()
        .split(|b| *b == b',')
        .map(decode)
        .filter(|s| !s.is_empty())
        .collect()
}

/// A JSON object field; anything else (malformed, an array, ...) is empty.
fn object(headers: &HeaderMap, name: &str) -> Map<String, Value> {
    let Some(value) = headers.get(name) else {
        return Map::new();
    };
    match serde_json::from_str(&decode(value.as_bytes())) {
        Ok(Value::Object(map)) => map,
        Ok(_) | Err(_) => Map::new(),
    }
}

fn decode(bytes: &[u8]) -> String {
    percent_decode(bytes).decode_utf8_lossy().into_owned()
}

/// A raw header value as text, for display.
fn lossy(value: &HeaderValue) -> Cow<'_, str> {
    String::from_utf8_lossy(value.as_bytes())
}
