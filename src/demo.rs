//! `usher demo`: the proxy in front of a built-in app, with no config file.
//!
//! The app (`demo::app`) is an ordinary upstream on an ephemeral loopback
//! port that knows nothing of cookies: it reads the identity, cart and
//! preference headers usher injects and writes the session back with the
//! `Usher-Session` merge-patch header. The session key is random per run.

pub mod app;

use std::future::Future;
use std::net::SocketAddr;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::config::{Config, Environment};

/// The demo account, printed at start and shown under the sign-in form.
pub const DEMO_USER: (&str, &str) = ("demo", "demo");

/// The demo's configuration: everything else is the documented default.
fn config_text(upstream: SocketAddr, password_hash: &str) -> String {
    format!(
        r#"[upstream]
url = "http://{upstream}"

[login]
app_name = "the usher demo"
hint = "Demo account: {user} / {password}"

[[users]]
name = "{user}"
password_hash = "{password_hash}"
email = "demo@example.com"
groups = ["demo"]

# Every page is open; /.usher/login shows the built-in sign-in.
[access]
default = "anyone"

[session]
# The demo is served over plain HTTP on loopback.
secure = false

[session.forward]
"X-Forwarded-User" = "user"
"X-Forwarded-Email" = "email"
"X-Forwarded-Groups" = "groups"
"X-Usher-Cart" = "cart"
"X-Usher-Prefs" = "prefs"

[session.upstream]
header = "Usher-Session"
writable = ["user", "email", "groups", "cart", "prefs"]
"#,
        user = DEMO_USER.0,
        password = DEMO_USER.1,
    )
}

/// `usher demo --oidc ISSUER`: a provider button beside the demo account.
#[derive(Debug, Clone, Default)]
pub struct DemoOidc {
    /// The provider's issuer URL.
    pub issuer: String,
    /// The client registered there for the demo.
    pub client_id: String,
    /// `$USHER_OIDC_DEMO_SECRET`; `None` for a public client.
    pub secret: Option<String>,
}

/// The `[[oidc]]` table for the demo's provider, calling back to `listen`.
fn oidc_text(oidc: &DemoOidc, listen: SocketAddr) -> String {
    // TOML basic strings: the issuer and client id are quoted as JSON does.
    let quote = |s: &str| serde_json::Value::from(s).to_string();
    format!(
        "\n[[oidc]]\nid = \"demo\"\nissuer = {}\nclient_id = {}\nredirect_url = \"http://{listen}/.usher/oidc/demo/callback\"\n\
         display_name = \"the demo provider\"\nscopes = [\"openid\", \"email\", \"profile\", \"groups\"]\n",
        quote(&oidc.issuer),
        quote(&oidc.client_id)
    )
}

/// Build the demo configuration for an app listening on `upstream`, signing
/// with `key`; with `oidc`, a provider whose callback is on `listen`.
pub fn config(upstream: SocketAddr, key: String, oidc: Option<(&DemoOidc, SocketAddr)>) -> anyhow::Result<Config> {
    let secret = oidc.and_then(|(o, _)| o.secret.clone());
    let var = move |name: &str| (name == "USHER_OIDC_DEMO_SECRET").then(|| secret.clone()).flatten();
    let env = Environment {
        secret_keys: Some(key),
        var: &var,
        ..Environment::none()
    };
    let hash = crate::users::hash_password(DEMO_USER.1).map_err(|e| anyhow::anyhow!(e))?;
    let mut text = config_text(upstream, &hash);
    if let Some((oidc, listen)) = oidc {
        text.push_str(&oidc_text(oidc, listen));
    }
    Config::from_toml_str_with(&text, &env).context("demo configuration")
}

/// Start the demo app on an ephemeral loopback port, then serve the proxy on
/// `listener` until `shutdown` completes.
pub async fn run(
    listener: TcpListener,
    oidc: Option<DemoOidc>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let app_listener = TcpListener::bind("127.0.0.1:0").await.context("binding the demo app")?;
    let app_addr = app_listener.local_addr().context("demo app address")?;
    let key = crate::session::key::generate().map_err(|e| anyhow::anyhow!("{e}"))?;
    let listen = listener.local_addr().context("demo address")?;
    let config = config(app_addr, key, oidc.as_ref().map(|o| (o, listen)))?;
    let (stop_app, app_stopped) = tokio::sync::oneshot::channel::<()>();
    let app = tokio::spawn(app::serve(app_listener, async move {
        let _ = app_stopped.await;
    }));
    let served = crate::run(config, listener, shutdown).await;
    let _ = stop_app.send(());
    let _ = app.await;
    served
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_config_is_valid_and_warns_only_about_plain_http_and_identity_writes() {
        let c = config("127.0.0.1:9".parse().expect("addr"), "d".repeat(43), None).expect("valid");
        assert_eq!(c.session.forward.len(), 5);
        assert!(c.session.writes.is_some());
        // The demo app signs people in itself ("Sign in as demo"), so it
        // may write identity fields, and `check` says what that means.
        assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
        assert!(
            c.warnings.iter().any(|w| w.contains("session.secure = false")),
            "{:?}",
            c.warnings
        );
        assert!(
            c.warnings.iter().any(|w| w.contains("write user, email, groups")),
            "{:?}",
            c.warnings
        );
    }
}

#[cfg(test)]
mod oidc_tests {
    use super::*;

    #[test]
    fn demo_with_a_provider_adds_its_button() {
        let oidc = DemoOidc {
            issuer: "http://127.0.0.1:9400".into(),
            client_id: "proxy".into(),
            secret: Some("proxy-secret".into()),
        };
        let listen = "127.0.0.1:8080".parse().expect("addr");
        let c = config(
            "127.0.0.1:9".parse().expect("addr"),
            "d".repeat(43),
            Some((&oidc, listen)),
        )
        .expect("valid");
        let p = &c.oidc[0];
        assert_eq!(p.redirect_url, "http://127.0.0.1:8080/.usher/oidc/demo/callback");
        assert_eq!(p.client_secret.as_ref().map(|s| s.expose()), Some("proxy-secret"));
        let bad = DemoOidc {
            issuer: "http://idp.example.com\"\nx = 1".into(),
            ..oidc
        };
        assert!(
            config(
                "127.0.0.1:9".parse().expect("addr"),
                "d".repeat(43),
                Some((&bad, listen))
            )
            .is_err()
        );
    }
}
