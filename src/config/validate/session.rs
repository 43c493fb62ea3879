//! `[session]`, `[session.forward]` and `[session.upstream]` validation.
//!
//! Keys come from `$USHER_SECRET_KEYS` (wins), else `secret_keys_file`,
//! else inline `secret_keys` (warned about). Key problems are reported by
//! position and length, never by content.

use std::path::Path;
use std::time::Duration;

use http::HeaderName;
use http::header;

use super::{Problems, positive_duration};
use crate::config::raw::{RawSession, RawSessionWrites};
use crate::config::{Environment, Forward, Session, Writable, Writes};
use crate::hop::fold;
use crate::session::codec::SID_FIELD;
use crate::session::codec::{AUTH_METHOD_FIELD, AUTH_TIME_FIELD};
use crate::session::format::Format;
use crate::session::key::{MIN_KEY_LEN, parse_key_env, parse_key_list};
use crate::session::{AttrError, CookieAttrs, Keys, SameSite};

/// Default `[session.forward]` when the table is absent, in the order a
/// TOML table is read (sorted by header name).
const DEFAULT_FORWARD: [(&str, &str); 3] = [
    ("X-Forwarded-Email", "email"),
    ("X-Forwarded-Groups", "groups"),
    ("X-Forwarded-User", "user"),
];

/// Headers a session field may not be forwarded as: they frame the message,
/// route it, or are written by usher itself.
const RESERVED: [HeaderName; 12] = [
    header::HOST,
    header::COOKIE,
    header::CONTENT_LENGTH,
    header::TRANSFER_ENCODING,
    header::CONNECTION,
    header::UPGRADE,
    header::TE,
    header::TRAILER,
    header::AUTHORIZATION,
    HeaderName::from_static("x-forwarded-for"),
    HeaderName::from_static("x-forwarded-proto"),
    HeaderName::from_static("x-forwarded-host"),
];

pub(super) fn session(
    raw: &RawSession,
    env: &Environment<'_>,
    p: &mut Problems,
    warnings: &mut Vec<String>,
) -> Option<Session> {
    let format = format(raw.format.as_deref(), p);
    let store = super::store::store(raw.store.as_ref(), format, env, p, warnings);
    // `encrypt` seals usher's own format instead of signing it.
    let format = match (format, &store) {
        (Some(Format::Usher), Some((_, true))) => Some(Format::Sealed),
        _ => format,
    };
    let keys = keys(raw, env, format.unwrap_or(Format::Usher), p, warnings);
    let max_age = p.check(
        "session.max_age",
        raw.max_age.as_deref(),
        Duration::from_secs(14 * 86_400),
        positive_duration,
    );
    let lifetime = p.check(
        "session.max_lifetime",
        raw.max_lifetime.as_deref(),
        Some(Duration::from_secs(30 * 86_400)),
        |t| {
            if t == "off" {
                Ok(None)
            } else {
                positive_duration(t).map(Some)
            }
        },
    );
    if raw.cross_site_guard == Some(false) {
        warnings.push(
            "session.cross_site_guard = false: other sites can make a signed-in browser send state-changing \
             requests; keep it on unless the backend checks CSRF itself"
                .into(),
        );
    }
    let cookies = cookie(raw, format.unwrap_or(Format::Usher), max_age, p, warnings);
    let (cookie, legacy_cookie) = match cookies {
        Some((c, legacy)) => (Some(c), legacy),
        None => (None, None),
    };
    let csrf_cookie = cookie.as_ref().and_then(|c| csrf_cookie(c, p));
    let forward = forward(raw.forward.as_ref(), p);
    let writes = raw
        .upstream
        .as_ref()
        .and_then(|w| writes(w, forward.as_deref().unwrap_or(&[]), p));
    let writes = if raw.upstream.is_some() { Some(writes?) } else { None };
    if let Some(w) = &writes {
        let identity: Vec<&str> = ["user", "email", "groups"]
            .into_iter()
            .filter(|f| w.writable.allows(f))
            .collect();
        if !identity.is_empty() {
            warnings.push(format!(
                "session.upstream.writable lets the backend write {}: whatever the backend (or anyone who can \
                 make it send the header) writes there is who the access rules then see; list only the fields \
                 it owns (a cart, preferences)",
                identity.join(", ")
            ));
        }
    }
    Some(Session {
        cookie: cookie?,
        legacy_cookie,
        keys: keys?,
        max_age: max_age?,
        max_lifetime: lifetime?,
        forward: forward?,
        writes,
        cross_site_guard: raw.cross_site_guard.unwrap_or(true),
        csrf_cookie: csrf_cookie?,
        format: format?,
        store: store?.0,
    })
}

/// The sign-in form cookie: the session cookie's name with `_csrf`, its
/// `Secure` and domain, `SameSite=Strict`, one hour.
fn csrf_cookie(session: &CookieAttrs, p: &mut Problems) -> Option<CookieAttrs> {
    let name = format!("{}_csrf", session.name());
    let attrs = CookieAttrs::new(
        &name,
        session.secure(),
        SameSite::Strict,
        "/",
        session.domain(),
        Some(3600),
    );
    attrs.map_err(|e| p.push("session.cookie_name", e.to_string())).ok()
}

fn keys(
    raw: &RawSession,
    env: &Environment<'_>,
    format: Format,
    p: &mut Problems,
    warnings: &mut Vec<String>,
) -> Option<Keys> {
    let (key, bytes) = if let Some(text) = env.secret_keys.as_deref().filter(|t| !t.trim().is_empty()) {
        ("USHER_SECRET_KEYS", parse_key_env(text))
    } else if let Some(path) = &raw.secret_keys_file {
        if raw.secret_keys.is_some() {
            p.push(
                "session.secret_keys",
                "set either secret_keys_file or secret_keys, not both".into(),
            );
            return None;
        }
        match (env.read_file)(Path::new(path)) {
            Ok(text) => ("session.secret_keys_file", parse_key_list(&text)),
            Err(why) => {
                let fix = if why.contains("not found") || why.contains("No such file") {
                    format!(
                        "; create it with `usher gen-secret > {path}` (one key per line), or set $USHER_SECRET_KEYS"
                    )
                } else {
                    String::new()
                };
                p.push("session.secret_keys_file", format!("cannot read {path:?}: {why}{fix}"));
                return None;
            }
        }
    } else if let Some(list) = &raw.secret_keys {
        warnings.push(
            "session.secret_keys holds keys inline in the config file; prefer secret_keys_file or \
             $USHER_SECRET_KEYS so the file can be shared without the keys"
                .into(),
        );
        (
            "session.secret_keys",
            list.iter().map(|k| k.trim().as_bytes().to_vec()).collect(),
        )
    } else {
        p.push(
            "session.secret_keys_file",
            "no secret key configured: set session.secret_keys_file, $USHER_SECRET_KEYS or \
             session.secret_keys (make one with `usher gen-secret`)"
                .into(),
        );
        return None;
    };
    // An app's existing key is taken as it is (refusing it would block the
    // migration the format exists for), with a warning when short.
    let min = if format.shared_with_app() { 0 } else { MIN_KEY_LEN };
    if format.shared_with_app() && bytes.iter().any(|k| k.len() < MIN_KEY_LEN) {
        warnings.push(format!(
            "{key}: a key shorter than {MIN_KEY_LEN} bytes is accepted for the {} format because the app already \
             uses it; rotate to a longer one (`usher gen-secret`) when you can",
            format.as_str()
        ));
    }
    match Keys::from_bytes(bytes, min) {
        Ok(keys) => Some(keys),
        Err(errors) => {
            let reasons: Vec<String> = errors.iter().map(ToString::to_string).collect();
            p.push(key, reasons.join("; "));
            None
        }
    }
}

fn format(raw: Option<&str>, p: &mut Problems) -> Option<Format> {
    match raw.unwrap_or("usher") {
        "usher" => Some(Format::Usher),
        "starlette" => Some(Format::Starlette),
        "flask" => Some(Format::Flask),
        other => {
            p.push(
                "session.format",
                format!("expected one of usher, starlette, flask, got {other:?}"),
            );
            None
        }
    }
}

/// usher's cookie name by default when it can carry the `__Host-` prefix.
const HOST_DEFAULT_NAME: &str = "__Host-usher_session";
/// usher's cookie name by default otherwise, and before 0.2.
const LEGACY_DEFAULT_NAME: &str = "usher_session";

/// The session cookie, and the old default one still read beside it.
fn cookie(
    raw: &RawSession,
    format: Format,
    max_age: Option<Duration>,
    p: &mut Problems,
    warnings: &mut Vec<String>,
) -> Option<(CookieAttrs, Option<CookieAttrs>)> {
    let same_site = p.check(
        "session.same_site",
        raw.same_site.as_deref(),
        SameSite::Lax,
        |t| match t {
            "lax" => Ok(SameSite::Lax),
            "strict" => Ok(SameSite::Strict),
            "none" => Ok(SameSite::None),
            other => Err(format!("expected one of lax, strict, none, got {other:?}")),
        },
    );
    let secure = raw.secure.unwrap_or(true);
    if !secure {
        warnings.push(
            "session.secure = false: the session cookie will also be sent over plain HTTP, where anyone \
             on the network can read and replay it"
                .into(),
        );
    }
    let path = raw.path.as_deref().unwrap_or("/");
    // The frameworks both call their cookie "session". usher's own takes
    // the `__Host-` prefix when it can (secure, path "/", no domain), so a
    // sibling subdomain cannot plant one; a cookie under the old default
    // name is still read and moved over.
    let host_prefixed = secure && path == "/" && raw.domain.is_none();
    let default_name = match (format.shared_with_app(), host_prefixed) {
        (true, _) => "session",
        (false, true) => HOST_DEFAULT_NAME,
        (false, false) => LEGACY_DEFAULT_NAME,
    };
    let name = raw.cookie_name.as_deref().unwrap_or(default_name);
    let max_age_secs = max_age?.as_secs();
    let same_site = same_site?;
    let attrs = |name: &str| CookieAttrs::new(name, secure, same_site, path, raw.domain.as_deref(), Some(max_age_secs));
    // Only `__Host-usher_session` chosen by default has an old name to read.
    let legacy = (raw.cookie_name.is_none() && name == HOST_DEFAULT_NAME)
        .then(|| attrs(LEGACY_DEFAULT_NAME).ok())
        .flatten();
    match attrs(name) {
        Ok(attrs) => Some((attrs, legacy)),
        Err(e) => {
            let key = match e {
                AttrError::Name(_) | AttrError::HostPrefix(_) | AttrError::SecurePrefix(_) => "session.cookie_name",
                AttrError::Path(_) => "session.path",
                AttrError::Domain(_) => "session.domain",
                AttrError::SameSiteNoneInsecure => "session.same_site",
            };
            p.push(key, e.to_string());
            None
        }
    }
}

fn forward(raw: Option<&std::collections::BTreeMap<String, String>>, p: &mut Problems) -> Option<Vec<Forward>> {
    let pairs: Vec<(String, String)> = match raw {
        Some(map) => map.iter().map(|(h, f)| (h.clone(), f.clone())).collect(),
        None => DEFAULT_FORWARD
            .iter()
            .map(|(h, f)| (h.to_string(), f.to_string()))
            .collect(),
    };
    let mut out: Vec<Forward> = Vec::with_capacity(pairs.len());
    let before = p.0.len();
    for (name, field) in pairs {
        let key = format!("session.forward.{name}");
        let Ok(header) = HeaderName::from_bytes(name.as_bytes()) else {
            p.push(&key, format!("{name:?} is not a valid header name"));
            continue;
        };
        if RESERVED.contains(&header) {
            p.push(
                &key,
                format!("{name:?} is reserved: it frames or routes the request, or usher writes it"),
            );
        } else if field.is_empty() {
            p.push(&key, "the session field name must not be empty".into());
        } else if let Some(twin) = out.iter().find(|f| fold(f.header.as_str()) == fold(header.as_str())) {
            p.push(
                &key,
                format!(
                    "{name:?} and {:?} are the same header to many backends",
                    twin.header.as_str()
                ),
            );
        } else {
            out.push(Forward { header, field });
        }
    }
    (p.0.len() == before).then_some(out)
}

fn writes(raw: &RawSessionWrites, forward: &[Forward], p: &mut Problems) -> Option<Writes> {
    let name = raw.header.as_deref().unwrap_or("Usher-Session");
    let Ok(header) = HeaderName::from_bytes(name.as_bytes()) else {
        p.push(
            "session.upstream.header",
            format!("{name:?} is not a valid header name"),
        );
        return None;
    };
    if forward.iter().any(|f| fold(f.header.as_str()) == fold(header.as_str())) {
        p.push(
            "session.upstream.header",
            format!("{name:?} is also a [session.forward] header"),
        );
        return None;
    }
    let list = raw.writable.clone().unwrap_or_default();
    if let Some(f) = list
        .iter()
        .find(|f| [AUTH_TIME_FIELD, AUTH_METHOD_FIELD, SID_FIELD].contains(&f.as_str()))
    {
        p.push(
            "session.upstream.writable",
            format!("{f} is managed by usher and cannot be writable"),
        );
        return None;
    }
    let writable = if list.iter().any(|f| f == "*") {
        Writable::Any
    } else {
        Writable::Fields(list)
    };
    Some(Writes { header, writable })
}
