//! Login-form CSRF tokens: a signed double submit.
//!
//! The form cookie holds `<issued>.<nonce>.<seal>`, where the seal is an
//! HMAC of `<issued>.<nonce>` that only usher can make; the hidden form
//! field holds an HMAC of the whole cookie value under the session signing
//! key. A page reuses a form cookie (so two tabs can sign in) only when its
//! seal verifies: usher never signs a token for a value the client chose,
//! so a cookie planted from a sibling domain gets no token. A token is good
//! for one hour. Pure: `now` and the random nonce are passed in.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::session::{Key, Keys};

/// How long a login form stays valid, in seconds.
pub const TOKEN_LIFETIME: u64 = 3600;
/// Domain separation: these MACs can never be mistaken for session tags.
const LABEL: &[u8] = b"usher-login-csrf\0";
/// Domain separation for the form cookie's own seal.
const SEAL_LABEL: &[u8] = b"usher-login-csrf-cookie\0";

/// The cookie value for a new form: `<now>.<nonce>.<seal>`.
pub fn cookie_value(keys: &Keys, now: u64, nonce: &str) -> String {
    let body = format!("{now}.{nonce}");
    let seal = URL_SAFE_NO_PAD.encode(sealed(keys.signing(), &body).finalize().into_bytes());
    format!("{body}.{seal}")
}

/// Whether usher made `cookie` (its seal verifies under any key).
/// Constant-time comparison.
pub fn is_ours(keys: &Keys, cookie: &str) -> bool {
    let Some((body, seal)) = cookie.rsplit_once('.') else {
        return false;
    };
    let Ok(tag) = URL_SAFE_NO_PAD.decode(seal) else {
        return false;
    };
    keys.iter()
        .fold(false, |ok, key| sealed(key, body).verify_slice(&tag).is_ok() | ok)
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

/// Whether a form cookie is one usher made and still fresh enough to
/// reuse on a new page.
pub fn is_fresh(keys: &Keys, cookie: &str, now: u64) -> bool {
    let young = cookie
        .split_once('.')
        .and_then(|(t, _)| t.parse::<u64>().ok())
        .is_some_and(|t| t <= now && now - t < TOKEN_LIFETIME / 2);
    young && is_ours(keys, cookie)
}

fn sealed(key: &Key, body: &str) -> Hmac<Sha256> {
    let mut m = key.hmac();
    m.update(SEAL_LABEL);
    m.update(body.as_bytes());
    m
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
        let c = cookie_value(&ks, 1000, "nonce1");
        let t = token(&ks, &c);
        assert!(verify(&ks, &c, &t, 1000));
        assert!(verify(&ks, &c, &t, 1000 + TOKEN_LIFETIME));
        assert!(!verify(&ks, &c, &t, 1001 + TOKEN_LIFETIME), "expired");
        assert!(
            !verify(&ks, &cookie_value(&ks, 1000, "nonce2"), &t, 1000),
            "other cookie"
        );
        assert!(!verify(&ks, &c, "", 1000));
        assert!(!verify(&ks, &c, "!!!", 1000));
        assert!(!verify(&ks, "garbage", &t, 1000));
        assert!(
            !verify(
                &ks,
                &cookie_value(&ks, 2000, "n"),
                &token(&ks, &cookie_value(&ks, 2000, "n")),
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
        let ks = keys(&["a".repeat(32).as_str()]);
        assert!(is_fresh(&ks, &cookie_value(&ks, 1000, "n"), 1000));
        assert!(!is_fresh(&ks, &cookie_value(&ks, 1000, "n"), 1000 + TOKEN_LIFETIME / 2));
        assert!(!is_fresh(&ks, "x.y", 1000));
    }

    /// Attack review of 9e8e3e0: the sign-in page signed a token for any
    /// fresh-looking form cookie, so a planted `<now>.<anything>` got one.
    #[test]
    fn a_client_chosen_form_cookie_is_never_reused() {
        let ks = keys(&["a".repeat(32).as_str()]);
        assert!(!is_fresh(&ks, "1000.attacker-chosen", 1000));
        assert!(!is_fresh(&ks, "1000.attacker.AAAA", 1000));
        let ours = cookie_value(&ks, 1000, "n");
        let forged = ours.replace("1000.n.", "1000.m.");
        assert!(!is_fresh(&ks, &forged, 1000));
        let other = keys(&["b".repeat(32).as_str()]);
        assert!(!is_fresh(&other, &ours, 1000), "another deployment's cookie");
    }
}
