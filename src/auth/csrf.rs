//! Login-form CSRF tokens: a signed double submit.
//!
//! The form cookie holds `<issued>.<nonce>`; the hidden form field holds an
//! HMAC of that value under the session signing key. A cookie planted from a
//! sibling domain is useless without the key, and a token is good for one
//! hour. Pure: `now` and the random nonce are passed in.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::session::{Key, Keys};

/// How long a login form stays valid, in seconds.
pub const TOKEN_LIFETIME: u64 = 3600;
/// Domain separation: these MACs can never be mistaken for session tags.
const LABEL: &[u8] = b"usher-login-csrf\0";

/// The cookie value for a new form: `<now>.<nonce>`.
pub fn cookie_value(now: u64, nonce: &str) -> String {
    format!("{now}.{nonce}")
}

/// The form field matching `cookie`, under the signing key.
pub fn token(keys: &Keys, cookie: &str) -> String {
    URL_SAFE_NO_PAD.encode(mac(keys.signing(), cookie).finalize().into_bytes())
}

/// Whether `cookie` is recent (not from the future) and `token` is its MAC
/// under any configured key. Constant-time comparison.
pub fn verify(keys: &Keys, cookie: &str, token: &str, now: u64) -> bool {
    let Some((issued, _nonce)) = cookie.split_once('.') else {
        return false;
    };
    let Ok(issued) = issued.parse::<u64>() else {
        return false;
    };
    if issued > now.saturating_add(300) || now.saturating_sub(issued) > TOKEN_LIFETIME {
        return false;
    }
    let Ok(tag) = URL_SAFE_NO_PAD.decode(token) else {
        return false;
    };
    keys.iter()
        .fold(false, |ok, key| mac(key, cookie).verify_slice(&tag).is_ok() | ok)
}

/// Whether a form cookie is still fresh enough to reuse on a new page.
pub fn is_fresh(cookie: &str, now: u64) -> bool {
    cookie
        .split_once('.')
        .and_then(|(t, _)| t.parse::<u64>().ok())
        .is_some_and(|t| t <= now && now - t < TOKEN_LIFETIME / 2)
}

fn mac(key: &Key, cookie: &str) -> Hmac<Sha256> {
    let mut m = key.hmac();
    m.update(LABEL);
    m.update(cookie.as_bytes());
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Key;

    fn keys(k: &[&str]) -> Keys {
        Keys::new(
            k.iter()
                .map(|s| Key::new(s.as_bytes().to_vec(), 32).expect("key"))
                .collect(),
        )
        .expect("keys")
    }

    #[test]
    fn tokens_verify_for_their_cookie_only() {
        let ks = keys(&["a".repeat(32).as_str()]);
        let c = cookie_value(1000, "nonce1");
        let t = token(&ks, &c);
        assert!(verify(&ks, &c, &t, 1000));
        assert!(verify(&ks, &c, &t, 1000 + TOKEN_LIFETIME));
        assert!(!verify(&ks, &c, &t, 1001 + TOKEN_LIFETIME), "expired");
        assert!(!verify(&ks, &cookie_value(1000, "nonce2"), &t, 1000), "other cookie");
        assert!(!verify(&ks, &c, "", 1000));
        assert!(!verify(&ks, &c, "!!!", 1000));
        assert!(!verify(&ks, "garbage", &t, 1000));
        assert!(
            !verify(
                &ks,
                &cookie_value(2000, "n"),
                &token(&ks, &cookie_value(2000, "n")),
                1000
            ),
            "future"
        );
        let other = keys(&["b".repeat(32).as_str()]);
        assert!(!verify(&other, &c, &t, 1000), "other key");
        let rotated = keys(&["b".repeat(32).as_str(), "a".repeat(32).as_str()]);
        assert!(verify(&rotated, &c, &t, 1000), "old key still verifies");
    }

    #[test]
    fn freshness() {
        assert!(is_fresh(&cookie_value(1000, "n"), 1000));
        assert!(!is_fresh(&cookie_value(1000, "n"), 1000 + TOKEN_LIFETIME / 2));
        assert!(!is_fresh("x.y", 1000));
    }
}
