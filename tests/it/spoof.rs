//! The spoof matrix: forwarded-identity headers sent by the client in every
//! spelling a backend could fold to the real name, with and without a valid
//! session. The upstream must never see a client-supplied value.

use crate::support::{Proxy, Seen, json_body_of, raw_get, session_toml, spawn_echo_upstream, spawn_proxy, status_of};

const FORWARD: &str = "[session.forward]\n\"X-Forwarded-User\" = \"user\"\n\"X-Forwarded-Email\" = \"email\"\n\
                       \"X-Forwarded-Groups\" = \"groups\"\n[session.upstream]\nwritable = [\"user\", \"email\", \"groups\"]\n";

const SPOOF: &str = "mallory";

/// Header blocks a hostile client might send. Each is sent with and
/// without a session: with more than 30 forms that is over 60 requests.
fn forms() -> Vec<String> {
    let mut forms = Vec::new();
    for base in ["Forwarded-User", "Forwarded-Email", "Forwarded-Groups"] {
        let (first, rest) = ("X", base);
        let dashed = format!("{first}-{rest}");
        for name in [
            dashed.clone(),
            dashed.to_ascii_lowercase(),
            dashed.to_ascii_uppercase(),
            dashed.replace('-', "_"),
            dashed.replace('-', "."),
            dashed.to_ascii_lowercase().replace('-', "_"),
            format!("{first}_{}", rest),
            format!("{first}-{}", rest.replace('-', "_")),
            format!("{first}.{}", rest.replace('-', "_")),
        ] {
            forms.push(format!("{name}: {SPOOF}\r\n"));
        }
        forms.push(format!("{dashed}: {SPOOF}\r\n{dashed}: {SPOOF}2\r\n"));
        forms.push(format!("{dashed}: \r\n"));
        forms.push(format!("Connection: {dashed}\r\n{dashed}: {SPOOF}\r\n"));
        forms.push(format!(
            "{dashed}: {SPOOF}\r\n{}: {SPOOF}\r\n",
            dashed.replace('-', "_")
        ));
    }
    forms.push(format!(
        "X-Forwarded-User: {SPOOF}\r\nX-Forwarded-Groups: admin\r\nX_Forwarded_Email: {SPOOF}\r\n"
    ));
    forms
}

async fn sign_in(proxy: &Proxy) -> String {
    let q = crate::support::write_query(r#"{"user":"alice","email":"alice@example.com","groups":["staff"]}"#);
    let res = crate::support::client()
        .get(proxy.url(&format!("/w?{q}")))
        .send()
        .await
        .expect("send");
    let set = res.headers()["set-cookie"].to_str().expect("ascii").to_string();
    set.split(';').next().expect("pair").to_string()
}

#[tokio::test]
async fn no_client_value_reaches_the_upstream() {
    let up = spawn_echo_upstream().await;
    let proxy = spawn_proxy(up.addr, &format!("{}{FORWARD}", session_toml(""))).await;
    let cookie = sign_in(&proxy).await;
    let forms = forms();
    assert!(forms.len() >= 30, "only {} forms", forms.len());
    let mut checked = 0;
    for form in &forms {
        for session in [None, Some(cookie.as_str())] {
            let extra = match session {
                Some(c) => format!("{form}Cookie: {c}\r\n"),
                None => form.clone(),
            };
            let text = raw_get(proxy.addr, "/spoof", &extra).await;
            assert_eq!(status_of(&text), 200, "{extra:?} -> {text}");
            let s = Seen(json_body_of(&text));
            let leaked: Vec<String> = s.0["headers"]
                .as_array()
                .expect("headers")
                .iter()
                .filter(|pair| pair[1].as_str().is_some_and(|v| v.contains(SPOOF)))
                .map(|pair| pair.to_string())
                .collect();
            assert!(
                leaked.is_empty(),
                "client value reached the upstream for {extra:?}: {leaked:?}"
            );
            let names = s.names();
            for name in &names {
                let folded = name.replace(['_', '.'], "-");
                if folded.starts_with("x-forwarded-")
                    && matches!(
                        folded.as_str(),
                        "x-forwarded-user" | "x-forwarded-email" | "x-forwarded-groups"
                    )
                {
                    assert_eq!(
                        name, &folded,
                        "a folded spelling reached the upstream: {name} for {extra:?}"
                    );
                }
            }
            match session {
                Some(_) => {
                    assert_eq!(s.one("x-forwarded-user").as_deref(), Some("alice"), "{extra:?}");
                    assert_eq!(
                        s.one("x-forwarded-email").as_deref(),
                        Some("alice@example.com"),
                        "{extra:?}"
                    );
                    assert_eq!(s.one("x-forwarded-groups").as_deref(), Some("staff"), "{extra:?}");
                }
                None => {
                    for h in ["x-forwarded-user", "x-forwarded-email", "x-forwarded-groups"] {
                        assert_eq!(s.one(h), None, "{h} present without a session for {extra:?}");
                    }
                }
            }
            checked += 1;
        }
    }
    assert!(checked >= 60);
    proxy.stop().await;
}

#[tokio::test]
async fn spoofing_over_h2_is_stripped_too() {
    let up = spawn_echo_upstream().await;
    let proxy = spawn_proxy(up.addr, &format!("{}{FORWARD}", session_toml(""))).await;
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .expect("client");
    let res = h2
        .get(proxy.url("/h2"))
        .header("x-forwarded-user", SPOOF)
        .header("x_forwarded_user", SPOOF)
        .header("x.forwarded.groups", SPOOF)
        .send()
        .await
        .expect("send");
    assert_eq!(res.version(), reqwest::Version::HTTP_2);
    let s = Seen(res.json().await.expect("json"));
    assert!(
        s.names()
            .iter()
            .all(|n| !n.contains("forwarded-user") && !n.contains("forwarded_user"))
    );
    assert!(s.all("x.forwarded.groups").is_empty());
    proxy.stop().await;
}
