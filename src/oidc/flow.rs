//! One sign-in through a provider, bound to the browser that started it.
//!
//! `start` makes a random `state`, `nonce` and PKCE verifier and keeps them
//! in a cookie of their own, named after the state (so two tabs signing in
//! at once each keep theirs), signed with the session key under a label of
//! its own and bound to its name, and good for [`FLOW_LIFETIME`]. The
//! callback finds the cookie by the `state` the provider sent back: a
//! callback opened in another browser finds none, a forged `state` names a
//! cookie that does not exist, and the cookie is cleared once used.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::Mac;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::session::{CookieAttrs, Key, Keys, SameSite};

/// Seconds a browser has from the button to the callback.
pub const FLOW_LIFETIME: u64 = 600;
/// Domain separation: these MACs are never session or CSRF tags.
const LABEL: &[u8] = b"usher-oidc-flow\0";

/// The secrets of one authorization request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flow {
    /// Provider id.
    #[serde(rename = "p")]
    pub provider: String,
    #[serde(rename = "s")]
    pub state: String,
    #[serde(rename = "n")]
    pub nonce: String,
    /// PKCE `code_verifier`.
    #[serde(rename = "v")]
    pub verifier: String,
    /// Validated post-sign-in target.
    #[serde(rename = "r")]
    pub rd: String,
    /// Unix seconds.
    #[serde(rename = "t")]
    pub issued: u64,
}

impl Flow {
    /// A new flow with fresh randomness; `None` if the OS RNG failed.
    pub fn new(provider: &str, rd: &str, now: u64) -> Option<Flow> {
        let random = || crate::session::key::generate().ok();
        Some(Flow {
            provider: provider.to_string(),
            state: random()?,
            nonce: random()?,
            verifier: random()?,
            rd: rd.to_string(),
            issued: now,
        })
    }

    /// PKCE S256 `code_challenge` of the verifier (RFC 7636 §4.2).
    pub fn challenge(&self) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(self.verifier.as_bytes()))
    }
}

/// The cookie that holds the flow for `state`: `usher_oidc_<tag>`, with
/// the `__Host-` prefix when cookies are `Secure`. Any `state` text gives
/// a valid name (the tag is a digest).
pub fn cookie(state: &str, secure: bool) -> CookieAttrs {
    let tag = Sha256::digest(state.as_bytes());
    let tag = URL_SAFE_NO_PAD.encode(&tag[..9]);
    let name = if secure {
        format!("__Host-usher_oidc_{tag}")
    } else {
        format!("usher_oidc_{tag}")
    };
    // Lax: the provider sends the browser back with a top-level GET.
    CookieAttrs::new(&name, secure, SameSite::Lax, "/", None, Some(FLOW_LIFETIME))
        .expect("a fixed-form cookie name with path / and no domain is valid")
}

/// `<payload>.<mac>`: the flow as base64url JSON, and its MAC bound to the
/// cookie name.
pub fn seal(keys: &Keys, name: &str, flow: &Flow) -> String {
    let json = serde_json::to_vec(flow).unwrap_or_default();
    let payload = URL_SAFE_NO_PAD.encode(json);
    let tag = URL_SAFE_NO_PAD.encode(mac(keys.signing(), name, &payload).finalize().into_bytes());
    format!("{payload}.{tag}")
}

/// The flow in `value` when its MAC verifies under any key (constant
/// time), it is for `state`, and it is no older than [`FLOW_LIFETIME`].
pub fn open(keys: &Keys, name: &str, value: &str, state: &str, now: u64) -> Option<Flow> {
    let (payload, tag) = value.split_once('.')?;
    let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
    let ok = keys
        .iter()
        .fold(false, |ok, key| mac(key, name, payload).verify_slice(&tag).is_ok() | ok);
    if !ok {
        return None;
    }
    let flow: Flow = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    let fresh = flow.issued <= now.saturating_add(60) && now.saturating_sub(flow.issued) <= FLOW_LIFETIME;
    let same = bool::from(flow.state.as_bytes().ct_eq(state.as_bytes()));
    (fresh && same).then_some(flow)
}

fn mac(key: &Key, name: &str, payload: &str) -> hmac::Hmac<Sha256> {
    let mut m = key.hmac();
    m.update(LABEL);
    m.update(name.as_bytes());
    m.update(b"=");
    m.update(payload.as_bytes());
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(k: &[&str]) -> Keys {
        Keys::new(
            k.iter()
                .map(|s| Key::new(s.as_bytes().to_vec(), 32).expect("key"))
                .collect(),
        )
        .expect("keys")
    }

    #[test]
    fn a_flow_opens_only_for_its_state_name_key_and_time() {
        let ks = keys(&[&"k".repeat(32)]);
        let flow = Flow::new("corp", "/x", 1000).expect("rng");
        let attrs = cookie(&flow.state, true);
        assert!(attrs.name().starts_with("__Host-usher_oidc_"));
        let value = seal(&ks, attrs.name(), &flow);
        assert_eq!(open(&ks, attrs.name(), &value, &flow.state, 1000), Some(flow.clone()));
        assert_eq!(
            open(&ks, attrs.name(), &value, &flow.state, 1000 + FLOW_LIFETIME),
            Some(flow.clone())
        );
        assert!(
            open(&ks, attrs.name(), &value, &flow.state, 1001 + FLOW_LIFETIME).is_none(),
            "expired"
        );
        assert!(open(&ks, attrs.name(), &value, "other", 1000).is_none(), "other state");
        assert!(
            open(&ks, "usher_oidc_x", &value, &flow.state, 1000).is_none(),
            "other name"
        );
        assert!(open(&keys(&[&"o".repeat(32)]), attrs.name(), &value, &flow.state, 1000).is_none());
        let rotated = keys(&[&"n".repeat(32), &"k".repeat(32)]);
        assert!(
            open(&rotated, attrs.name(), &value, &flow.state, 1000).is_some(),
            "old key verifies"
        );
        let (payload, tag) = value.split_once('.').expect("two parts");
        let mut forged = serde_json::from_slice::<Flow>(&URL_SAFE_NO_PAD.decode(payload).expect("b64")).expect("json");
        forged.rd = "https://evil.example".into();
        let forged = format!(
            "{}.{tag}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).expect("json"))
        );
        assert!(
            open(&ks, attrs.name(), &forged, &flow.state, 1000).is_none(),
            "payload changed"
        );
        for junk in ["", ".", "a.b", "a", "..."] {
            assert!(open(&ks, attrs.name(), junk, &flow.state, 1000).is_none());
        }
    }

    #[test]
    fn pkce_challenge_matches_rfc_7636_example() {
        let mut flow = Flow::new("corp", "/", 0).expect("rng");
        flow.verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into();
        assert_eq!(flow.challenge(), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }

    #[test]
    fn any_state_names_a_valid_cookie() {
        for state in ["", "; Path=/", "\u{0}", &"x".repeat(5000)] {
            let plain = cookie(state, false);
            assert!(plain.name().starts_with("usher_oidc_") && plain.name().len() < 32);
        }
    }
}
