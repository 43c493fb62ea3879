//! Drop-in migration, end to end with the real frameworks from PyPI: a
//! FastAPI app (Starlette's `SessionMiddleware`, under uvicorn) and a Flask
//! app (its default cookie session, under Werkzeug's server), each behind
//! usher with `[session] format = "starlette" | "flask"` and the app's own
//! short secret. One cookie, two readers: a session the app creates is seen
//! by usher (`X-Forwarded-User`), a session usher creates or patches is read
//! by the app, and a tampered cookie is refused by both.
//!
//! The apps are `tests/apps/*.py`; the interpreter is the test virtualenv
//! that `scripts/test.sh` makes (with fastapi, uvicorn, flask, itsdangerous).
//! Without it these tests fail, they do not skip.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::{Value, json};

use crate::hardening::ChildApp;
use crate::login::{jar, sign_in_at};
use crate::support::{Proxy, Seen, client, spawn_echo_upstream, spawn_proxy};

/// The apps' secret: short, as real apps' keys often are (usher accepts it
/// in the app formats, with a warning).
const SECRET: &str = "dev-secret-key";

/// usher's own sign-in user.
const USER: &str = "carol";
const PASSWORD: &str = "correct horse";

#[derive(Debug, Clone, Copy)]
enum Framework {
    /// `tests/apps/fastapi_app.py`.
    Starlette,
    /// `tests/apps/flask_app.py`.
    Flask,
}

impl Framework {
    fn script(self) -> &'static str {
        match self {
            Framework::Starlette => "fastapi_app.py",
            Framework::Flask => "flask_app.py",
        }
    }

    /// `[session] format`.
    fn format(self) -> &'static str {
        match self {
            Framework::Starlette => "starlette",
            Framework::Flask => "flask",
        }
    }

    /// The framework's default session lifetime, as usher's `max_age`:
    /// Starlette's `max_age` (14 days), Flask's `PERMANENT_SESSION_LIFETIME`
    /// (31 days).
    fn max_age(self) -> &'static str {
        match self {
            Framework::Starlette => "14d",
            Framework::Flask => "31d",
        }
    }

    /// What the app needs from the virtualenv.
    fn imports(self) -> &'static str {
        match self {
            Framework::Starlette => "import fastapi, uvicorn, itsdangerous, starlette.middleware.sessions",
            Framework::Flask => "import flask, werkzeug, itsdangerous",
        }
    }

    /// The payload segment of a session `{"user": "admin"}`, encoded as
    /// the framework encodes it.
    fn admin_payload(self) -> String {
        match self {
            // json.dumps text in standard, padded base64.
            Framework::Starlette => STANDARD.encode(r#"{"user": "admin"}"#),
            // Compact JSON in unpadded base64url (too small to compress).
            Framework::Flask => URL_SAFE_NO_PAD.encode(r#"{"user":"admin"}"#),
        }
    }

    /// `session` signed as the framework would, with `key`.
    fn seal(self, session: &Value, key: &[u8]) -> String {
        let map = session.as_object().expect("object");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        match self {
            Framework::Starlette => usher::session::compat::starlette::seal(map, key, now),
            Framework::Flask => usher::session::compat::flask::seal(map, key, now),
        }
    }
}

/// The test virtualenv's interpreter, with the framework importable.
fn venv_python(fw: Framework) -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-venv/bin/python");
    assert!(
        python.exists(),
        "{} missing: run scripts/test.sh, which creates it and installs fastapi, uvicorn, flask and itsdangerous",
        python.display()
    );
    let out = Command::new(&python)
        .args(["-c", fw.imports()])
        .output()
        .expect("run the test virtualenv's python");
    assert!(
        out.status.success(),
        "the test virtualenv lacks {fw:?}'s packages ({}): run scripts/test.sh, which installs \
         fastapi, uvicorn, flask and itsdangerous into target/test-venv\n{}",
        fw.imports(),
        String::from_utf8_lossy(&out.stderr)
    );
    python
}

/// A real app in a child process on a free port; killed on drop.
struct App {
    child: ChildApp,
    addr: SocketAddr,
}

impl App {
    /// Start `fw`'s app with [`SECRET`], and wait until it answers.
    async fn start(fw: Framework) -> App {
        let python = venv_python(fw);
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/apps")
            .join(fw.script());
        let child = ChildApp::start(
            &python,
            &["-u", script.to_str().expect("utf-8 path"), "0"],
            &[("SECRET_KEY", SECRET), ("PYTHONDONTWRITEBYTECODE", "1")],
        );
        let app = App {
            addr: child.addr,
            child,
        };
        app.wait_until_answering(fw).await;
        app
    }

    async fn wait_until_answering(&self, fw: Framework) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let c = client();
        loop {
            if let Ok(res) = c.get(self.url("/app/whoami")).send().await
                && res.status() == 200
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} never answered on {}:\n{}",
                fw.script(),
                self.addr,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn log(&self) -> String {
        self.child.log()
    }
}

/// usher's config for `fw`: the app's format and secret, plain-HTTP
/// cookies, the user header, backend writes of `cart` and `prefs`, anyone
/// may pass, and one user of usher's own sign-in.
fn config(fw: Framework) -> String {
    let hash = usher::users::hash_password(PASSWORD).expect("hash");
    format!(
        "[session]\n\
         format = \"{format}\"\n\
         secret_keys = [\"{SECRET}\"]\n\
         secure = false\n\
         max_age = \"{max_age}\"\n\
         [session.forward]\n\
         \"X-Forwarded-User\" = \"user\"\n\
         [session.upstream]\n\
         writable = [\"cart\", \"prefs\"]\n\
         [access]\n\
         default = \"anyone\"\n\
         [[users]]\n\
         name = \"{USER}\"\n\
         password_hash = \"{hash}\"\n\
         email = \"carol@example.com\"\n\
         groups = [\"staff\"]\n",
        format = fw.format(),
        max_age = fw.max_age(),
    )
}

/// The app, and usher in front of it.
async fn stack(fw: Framework) -> (App, Proxy) {
    let app = App::start(fw).await;
    let proxy = spawn_proxy(app.addr, &config(fw)).await;
    (app, proxy)
}

/// GET `url` with `c`; the response's JSON body (the app's view).
async fn get_json(c: &reqwest::Client, url: &str) -> Value {
    let res = c.get(url).send().await.expect("send");
    assert_eq!(res.status(), 200, "GET {url}");
    res.json().await.expect("json")
}

/// What the app saw on `GET /app/whoami` through usher: its session and
/// the `X-Forwarded-User` it received.
async fn whoami(c: &reqwest::Client, proxy: &Proxy) -> Value {
    get_json(c, &proxy.url("/app/whoami")).await
}

/// `GET /app/whoami` through usher with `Cookie: session=<value>`.
async fn whoami_with(proxy: &Proxy, value: &str) -> (Value, Vec<String>) {
    let res = client()
        .get(proxy.url("/app/whoami"))
        .header(COOKIE, format!("session={value}"))
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 200);
    let cookies = set_cookies(&res);
    (res.json().await.expect("json"), cookies)
}

fn set_cookies(res: &reqwest::Response) -> Vec<String> {
    res.headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().expect("ascii").to_string())
        .collect()
}

/// The value of the last `session=` in `cookies`.
fn session_value(cookies: &[String]) -> String {
    let last = cookies
        .iter()
        .rev()
        .find(|c| c.starts_with("session="))
        .unwrap_or_else(|| panic!("no session cookie set: {cookies:?}"));
    last["session=".len()..].split(';').next().expect("value").to_string()
}

/// The (payload, timestamp, signature) segments of a cookie value, split
/// from the right as itsdangerous does (a Flask payload may start with `.`).
fn segments(value: &str) -> (&str, &str, &str) {
    let (rest, sig) = value.rsplit_once('.').expect("signature");
    let (payload, ts) = rest.rsplit_once('.').expect("timestamp");
    (payload, ts, sig)
}

/// `/app/write?patch=...`: the app answers with that `Usher-Session` patch.
fn write_path(patch: &Value) -> String {
    let q: String = form_urlencoded::byte_serialize(patch.to_string().as_bytes()).collect();
    format!("/app/write?patch={q}")
}

/// The short app key loads, with the warning that says to rotate it.
#[test]
fn the_apps_short_key_is_accepted_with_a_warning() {
    for fw in [Framework::Starlette, Framework::Flask] {
        let text = format!("[upstream]\nurl = \"http://127.0.0.1:1\"\n{}", config(fw));
        let env = usher::config::Environment {
            secret_keys: None,
            read_file: &usher::config::read_file,
            var: &|_| None,
        };
        let config = usher::Config::from_toml_str_with(&text, &env).expect("valid");
        assert!(
            config
                .warnings
                .iter()
                .any(|w| w.contains("shorter than 32 bytes") && w.contains(fw.format())),
            "{fw:?}: {:?}",
            config.warnings
        );
        assert!(
            config.warnings.iter().all(|w| !w.contains(SECRET)),
            "the key is never shown"
        );
    }
}

/// (1) The app signs the user in; usher reads the app's cookie and hands
/// the upstream `X-Forwarded-User`; the app keeps reading (and writing) its
/// session through usher; the app's sign-out signs out of usher too.
async fn app_session_is_seen_by_usher(fw: Framework) {
    let (_app, proxy) = stack(fw).await;
    let c = jar();
    let doc = get_json(&c, &proxy.url("/app/login?user=alice&groups=staff,admin")).await;
    assert_eq!(doc["session"]["user"], "alice", "{fw:?}: {doc}");
    assert_eq!(doc["forwarded_user"], Value::Null, "{fw:?}: no session came in yet");

    let doc = whoami(&c, &proxy).await;
    assert_eq!(
        doc["forwarded_user"], "alice",
        "{fw:?}: usher read the app's cookie: {doc}"
    );
    assert_eq!(
        doc["session"]["user"], "alice",
        "{fw:?}: the cookie still reaches the app"
    );
    assert_eq!(doc["session"]["groups"], json!(["staff", "admin"]), "{fw:?}");

    // The app keeps writing its own session; usher keeps reading it.
    let doc = get_json(&c, &proxy.url("/app/count")).await;
    assert_eq!(doc["session"]["count"], 1, "{fw:?}: {doc}");
    let doc = whoami(&c, &proxy).await;
    assert_eq!(doc["forwarded_user"], "alice", "{fw:?}: {doc}");
    assert_eq!(doc["session"]["count"], 1, "{fw:?}");

    // A client cannot claim to be someone: usher owns the header.
    let res = client()
        .get(proxy.url("/app/whoami"))
        .header("X-Forwarded-User", "mallory")
        .header("X_Forwarded_User", "mallory")
        .send()
        .await
        .expect("send");
    let doc: Value = res.json().await.expect("json");
    assert_eq!(doc["forwarded_user"], Value::Null, "{fw:?}: {doc}");

    // The app signs out: usher sees nobody either.
    let doc = get_json(&c, &proxy.url("/app/logout")).await;
    assert_eq!(doc["session"], json!({}), "{fw:?}");
    let doc = whoami(&c, &proxy).await;
    assert_eq!(doc["forwarded_user"], Value::Null, "{fw:?}: {doc}");
    assert_eq!(doc["session"], json!({}), "{fw:?}");
    proxy.stop().await;
}

/// (2) usher's own sign-in writes a session the app reads from
/// `request.session` / `flask.session`, and the app may add to it.
async fn usher_sign_in_is_read_by_the_app(fw: Framework) {
    let (app, proxy) = stack(fw).await;
    let c = jar();
    let res = sign_in_at(&c, &proxy.url(""), USER, PASSWORD, "/app/whoami").await;
    assert_eq!(res.status(), 303, "{fw:?}");
    assert_eq!(res.headers()[LOCATION], "/app/whoami");
    let written = session_value(&set_cookies(&res));

    let doc = whoami(&c, &proxy).await;
    assert_eq!(doc["forwarded_user"], USER, "{fw:?}: {doc}");
    let session = &doc["session"];
    assert_eq!(session["user"], USER, "{fw:?}: the app reads usher's session: {doc}");
    assert_eq!(session["email"], "carol@example.com", "{fw:?}");
    assert_eq!(session["groups"], json!(["staff"]), "{fw:?}");
    assert!(session["auth_time"].as_u64().is_some(), "{fw:?}: {doc}");

    // The app reads the cookie usher wrote on its own, without usher.
    let direct = client()
        .get(app.url("/app/whoami"))
        .header(COOKIE, format!("session={written}"))
        .send()
        .await
        .expect("send");
    let direct: Value = direct.json().await.expect("json");
    assert_eq!(direct["session"]["user"], USER, "{fw:?}: {direct}\n{}", app.log());

    // The app adds to usher's session; the sign-in survives it.
    let doc = get_json(&c, &proxy.url("/app/count")).await;
    assert_eq!(doc["session"]["count"], 1, "{fw:?}");
    let doc = whoami(&c, &proxy).await;
    assert_eq!(doc["forwarded_user"], USER, "{fw:?}: {doc}");
    assert_eq!(doc["session"]["count"], 1, "{fw:?}");
    assert_eq!(doc["session"]["auth_time"], session["auth_time"], "{fw:?}");

    // usher's sign-out ends the app's session too.
    let res = c
        .post(proxy.url("/.usher/logout"))
        .form(&[("rd", "/app/whoami")])
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 303);
    let doc = whoami(&c, &proxy).await;
    assert_eq!(doc["forwarded_user"], Value::Null, "{fw:?}: {doc}");
    assert_eq!(doc["session"], json!({}), "{fw:?}");
    proxy.stop().await;
}

/// (3) The backend answers with an `Usher-Session` merge patch; usher
/// applies the writable fields to the app's session and the app reads them
/// on the next request.
async fn backend_patch_reaches_the_app_session(fw: Framework) {
    let (_app, proxy) = stack(fw).await;
    let c = jar();
    get_json(&c, &proxy.url("/app/login?user=alice&groups=staff")).await;

    let patch = json!({"cart": {"apple": 2}, "user": "mallory"});
    let res = c.get(proxy.url(&write_path(&patch))).send().await.expect("send");
    assert_eq!(res.status(), 200);
    assert!(
        res.headers().get("usher-session").is_none(),
        "{fw:?}: the patch header is usher's"
    );
    // Flask re-signs its permanent session on every response; usher's
    // cookie comes after it, so it is the one the browser keeps.
    let cookies = set_cookies(&res);
    assert!(
        cookies.last().is_some_and(|c| c.starts_with("session=")),
        "{fw:?}: {cookies:?}"
    );

    let doc = whoami(&c, &proxy).await;
    assert_eq!(doc["session"]["cart"], json!({"apple": 2}), "{fw:?}: {doc}");
    assert_eq!(doc["session"]["user"], "alice", "{fw:?}: user is not writable");
    assert_eq!(doc["session"]["groups"], json!(["staff"]), "{fw:?}: the rest is kept");
    assert_eq!(doc["forwarded_user"], "alice", "{fw:?}");

    let patch = json!({"cart": {"apple": null, "pear": 1}});
    c.get(proxy.url(&write_path(&patch))).send().await.expect("send");
    let doc = whoami(&c, &proxy).await;
    assert_eq!(doc["session"]["cart"], json!({"pear": 1}), "{fw:?}: {doc}");

    if let Framework::Flask = fw {
        // The sign-in flashed a message: a list of tuples, which usher wrote
        // back as lists. Flask reads them all the same.
        let doc = get_json(&c, &proxy.url("/app/flashes")).await;
        assert_eq!(doc["flashes"], json!(["Welcome, alice"]), "{doc}");
    }

    // A top-level null signs out, for the app too.
    c.get(proxy.url(&write_path(&Value::Null))).send().await.expect("send");
    let doc = whoami(&c, &proxy).await;
    assert_eq!(doc["session"], json!({}), "{fw:?}: {doc}");
    assert_eq!(doc["forwarded_user"], Value::Null, "{fw:?}");
    proxy.stop().await;
}

/// (4) A tampered cookie is no session for usher and for the app.
async fn tampered_cookie_is_refused_by_both(fw: Framework) {
    let (_app, proxy) = stack(fw).await;
    let res = client()
        .get(proxy.url("/app/login?user=alice"))
        .send()
        .await
        .expect("send");
    let good = session_value(&set_cookies(&res));
    let (payload, ts, sig) = segments(&good);

    let (doc, _) = whoami_with(&proxy, &good).await;
    assert_eq!(
        doc["forwarded_user"], "alice",
        "{fw:?}: the untouched cookie works: {doc}"
    );

    // One signature character changed (in the middle: every bit counts).
    let mut flipped: Vec<char> = sig.chars().collect();
    let i = flipped.len() / 2;
    flipped[i] = if flipped[i] == 'A' { 'B' } else { 'A' };
    let flipped: String = flipped.into_iter().collect();
    // Another user's payload under the original signature.
    let forged_payload = fw.admin_payload();
    // A well-formed cookie signed with another key.
    let other_key = fw.seal(&json!({"user": "admin"}), b"not-the-app-secret");

    for (what, value) in [
        ("flipped signature", format!("{payload}.{ts}.{flipped}")),
        ("forged payload", format!("{forged_payload}.{ts}.{sig}")),
        ("another key", other_key),
        ("truncated", good[..good.len() - 1].to_string()),
    ] {
        let (doc, cookies) = whoami_with(&proxy, &value).await;
        assert_eq!(
            doc["forwarded_user"],
            Value::Null,
            "{fw:?} {what}: usher refused it: {doc}"
        );
        assert_eq!(doc["session"], json!({}), "{fw:?} {what}: the app refused it: {doc}");
        assert!(
            cookies
                .iter()
                .all(|c| !c.starts_with("session=") || c.starts_with("session=;")),
            "{fw:?} {what}: nothing is signed for it: {cookies:?}"
        );
    }
    proxy.stop().await;
}

/// (5) The cookie the app sets reaches the client byte for byte when usher
/// has nothing to change, and usher adds no cookie of its own.
async fn app_cookie_passes_through_untouched(fw: Framework) {
    let (app, proxy) = stack(fw).await;
    let c = client();
    let target = "/app/login?user=alice&groups=staff";
    // The same request straight to the app and through usher, in the same
    // second (the cookie carries the time), gives the same header.
    let mut tries = 0;
    let (direct, via) = loop {
        let direct = set_cookies(&c.get(app.url(target)).send().await.expect("send"));
        let res = c.get(proxy.url(target)).send().await.expect("send");
        assert!(res.headers().get("vary").is_some(), "{fw:?}: the app's Vary passes");
        let via = set_cookies(&res);
        assert_eq!(via.len(), 1, "{fw:?}: only the app's cookie: {via:?}");
        assert_eq!(direct.len(), 1, "{fw:?}: {direct:?}");
        let same_second = segments(&session_value(&direct)).1 == segments(&session_value(&via)).1;
        tries += 1;
        if same_second || tries == 5 {
            break (direct, via);
        }
    };
    assert_eq!(via, direct, "{fw:?}: the app's Set-Cookie, untouched");

    // usher reads it, the app reads it, and usher signs nothing new.
    let value = session_value(&via);
    let (doc, cookies) = whoami_with(&proxy, &value).await;
    assert_eq!(doc["forwarded_user"], "alice", "{fw:?}: {doc}");
    assert_eq!(doc["session"]["user"], "alice", "{fw:?}");
    match fw {
        // Starlette 1.x writes only what the view changed.
        Framework::Starlette => assert_eq!(cookies, Vec::<String>::new(), "{fw:?}"),
        // Flask re-signs a permanent session on every response: its own
        // cookie, in its own attribute spelling, and nothing from usher.
        Framework::Flask => {
            assert_eq!(cookies.len(), 1, "{cookies:?}");
            assert!(cookies[0].ends_with("; HttpOnly; Path=/"), "{cookies:?}");
            assert_eq!(segments(&session_value(&cookies)).0, segments(&value).0, "same data");
        }
    }
    proxy.stop().await;
}

#[tokio::test]
async fn fastapi_session_is_seen_by_usher() {
    app_session_is_seen_by_usher(Framework::Starlette).await;
}

#[tokio::test]
async fn flask_session_is_seen_by_usher() {
    app_session_is_seen_by_usher(Framework::Flask).await;
}

#[tokio::test]
async fn usher_sign_in_is_read_by_fastapi() {
    usher_sign_in_is_read_by_the_app(Framework::Starlette).await;
}

#[tokio::test]
async fn usher_sign_in_is_read_by_flask() {
    usher_sign_in_is_read_by_the_app(Framework::Flask).await;
}

#[tokio::test]
async fn backend_patch_reaches_the_fastapi_session() {
    backend_patch_reaches_the_app_session(Framework::Starlette).await;
}

#[tokio::test]
async fn backend_patch_reaches_the_flask_session() {
    backend_patch_reaches_the_app_session(Framework::Flask).await;
}

#[tokio::test]
async fn tampered_cookie_is_refused_by_usher_and_fastapi() {
    tampered_cookie_is_refused_by_both(Framework::Starlette).await;
}

#[tokio::test]
async fn tampered_cookie_is_refused_by_usher_and_flask() {
    tampered_cookie_is_refused_by_both(Framework::Flask).await;
}

#[tokio::test]
async fn fastapi_cookie_passes_through_untouched() {
    app_cookie_passes_through_untouched(Framework::Starlette).await;
}

#[tokio::test]
async fn flask_cookie_passes_through_untouched() {
    app_cookie_passes_through_untouched(Framework::Flask).await;
}

/// A Flask session holding `bytes` is valid for the app but has no JSON
/// form: usher treats it as no session (no `X-Forwarded-User`), and must
/// leave it to the app rather than delete the app's sign-in.
#[tokio::test]
async fn a_flask_session_usher_cannot_represent_is_left_to_the_app() {
    let fw = Framework::Flask;
    let (_app, proxy) = stack(fw).await;
    let c = jar();
    get_json(&c, &proxy.url("/app/login?user=alice")).await;
    get_json(&c, &proxy.url("/app/bytes")).await;
    let res = c.get(proxy.url("/app/whoami")).send().await.expect("send");
    let cookies = set_cookies(&res);
    let doc: Value = res.json().await.expect("json");
    assert_eq!(doc["forwarded_user"], Value::Null, "usher cannot read it: {doc}");
    assert_eq!(doc["session"]["user"], "alice", "the app can: {doc}");
    assert!(
        cookies.iter().all(|c| !c.starts_with("session=;")),
        "usher deleted the app's valid session cookie: {cookies:?}"
    );
    let doc = whoami(&c, &proxy).await;
    assert_eq!(doc["session"]["user"], "alice", "the app's user was signed out: {doc}");
    proxy.stop().await;
}

/// `max_lifetime` bounds a sign-in from its `auth_time` in the app formats
/// too: the app (Flask's permanent session, Starlette 0.x, any write)
/// re-signs the cookie with a fresh time, so nothing else ends it.
#[tokio::test]
async fn a_sign_in_older_than_max_lifetime_is_refused_in_the_app_formats() {
    let up = spawn_echo_upstream().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    for fw in [Framework::Starlette, Framework::Flask] {
        // max_lifetime is left at its default, 30 days.
        let proxy = spawn_proxy(up.addr, &config(fw)).await;
        for (age_days, signed_in) in [(29, true), (31, false)] {
            // Signed a second ago, signed in `age_days` ago.
            let session = json!({"user": USER, "auth_time": now - age_days * 86_400});
            let value = fw.seal(&session, SECRET.as_bytes());
            let res = client()
                .get(proxy.url("/anything"))
                .header(COOKIE, format!("session={value}"))
                .send()
                .await
                .expect("send");
            let seen = Seen(res.json().await.expect("json"));
            assert_eq!(
                seen.one("x-forwarded-user").is_some(),
                signed_in,
                "{fw:?}: signed in {age_days} days ago, max_lifetime 30d"
            );
        }
        proxy.stop().await;
    }
}
