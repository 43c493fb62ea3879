//! `usher demo` as a user meets it: the real binary with no config file,
//! driven through the demo app's sign-in, cart and preferences, and through
//! the built-in sign-in page with the demo account.

use serde_json::{Value, json};

use crate::login::{jar, sign_in_at};
use crate::support::Usher;

async fn whoami(c: &reqwest::Client, demo: &Usher) -> Value {
    c.get(demo.url("/api/whoami"))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json")
}

#[tokio::test]
async fn demo_sign_in_cart_and_preferences() {
    let demo = Usher::start(&["demo", "--listen", "127.0.0.1:0"], None);
    let c = jar();
    let home = c.get(demo.url("/")).send().await.expect("home");
    assert_eq!(home.status(), 200);
    assert!(home.text().await.expect("html").contains("Not signed in"));

    let res = c.post(demo.url("/demo/sign-in")).send().await.expect("sign in");
    assert_eq!(res.status(), 303);
    assert!(
        res.headers().get("usher-session").is_none(),
        "the write header is usher's, not the client's"
    );
    let me = whoami(&c, &demo).await;
    assert_eq!(me["user"], "demo");
    assert_eq!(me["groups"], json!(["demo"]));
    let headers = me["headers"].to_string();
    assert!(
        !headers.contains("usher_session"),
        "the app saw usher's cookie: {headers}"
    );

    for item in ["apple", "apple", "pear"] {
        let res = c
            .post(demo.url("/shop/add"))
            .form(&[("item", item)])
            .send()
            .await
            .expect("add");
        assert_eq!(res.status(), 303);
    }
    assert_eq!(whoami(&c, &demo).await["cart"], json!({"apple": 2, "pear": 1}));
    c.post(demo.url("/shop/remove"))
        .form(&[("item", "apple")])
        .send()
        .await
        .expect("remove");
    c.post(demo.url("/prefs"))
        .form(&[("theme", "dark")])
        .send()
        .await
        .expect("prefs");
    let me = whoami(&c, &demo).await;
    assert_eq!(me["cart"], json!({"pear": 1}));
    assert_eq!(me["prefs"], json!({"theme": "dark"}));
    assert!(
        c.get(demo.url("/shop"))
            .send()
            .await
            .expect("shop")
            .text()
            .await
            .expect("html")
            .contains("pear")
    );

    c.post(demo.url("/demo/sign-out")).send().await.expect("sign out");
    let me = whoami(&c, &demo).await;
    assert_eq!(me["user"], Value::Null);
    assert_eq!(me["cart"], json!({}), "signing out clears the whole session");
}

#[tokio::test]
async fn demo_account_signs_in_through_the_login_page() {
    let demo = Usher::start(&["demo", "--listen", "127.0.0.1:0"], None);
    let c = jar();
    let page = c
        .get(demo.url("/.usher/login"))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(page.contains("demo / demo"), "the login hint is shown");
    let res = sign_in_at(&c, &demo.url(""), "demo", "demo", "/").await;
    assert_eq!(res.status(), 303);
    assert_eq!(whoami(&c, &demo).await["user"], "demo");
}
