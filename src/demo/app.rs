//! The upstream behind `usher demo`: a small server-rendered web app that
//! shows what usher hands a backend and how a backend writes the session.
//!
//! It never sees a cookie. Usher verifies the session cookie and passes the
//! session's fields in as request headers (`X-Forwarded-User`, `-Email`,
//! `-Groups`, `X-Usher-Cart`, `X-Usher-Prefs`); the app changes the session
//! only by answering with one `Usher-Session` header holding a JSON Merge
//! Patch (RFC 7386), which usher applies, signs and sets as the cookie. So
//! the app is stateless: every page is a function of the request headers.
//!
//! It trusts those headers as any backend behind usher does, so it must only
//! be reachable through the proxy (`usher demo` binds it to loopback).
//! [`context`] reads the headers, [`page`] renders HTML, [`reply`] builds
//! responses; this file owns the accept loop, the routes and the session
//! writes.

mod context;
mod page;
mod reply;
#[cfg(test)]
mod tests;

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::sync::Arc;

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderMap, Method, Request};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tracing::debug;

use context::{Context, Theme};
use reply::{Reject, Response};

/// Largest form body the app reads, in bytes; a larger one is answered 413.
const FORM_LIMIT: usize = 8 * 1024;
/// Most of any one item the cart holds; adding more leaves it at this.
const MAX_QUANTITY: u64 = 99;
/// What the shop sells, in display order.
const PRODUCTS: [&str; 3] = ["apple", "pear", "banana"];
/// The session "Sign in as demo" creates, spelled out so the key order is
/// the one users see in the docs.
const SIGN_IN_PATCH: &str = r#"{"user":"demo","email":"demo@example.com","groups":["demo"]}"#;
/// A top-level `null` merge patch: usher clears the whole session.
const SIGN_OUT_PATCH: &str = "null";

/// Serve the demo app on `listener` until `shutdown` completes.
///
/// Each connection runs on its own task; once `shutdown` completes no new
/// connection is accepted, and those already open finish on their own.
pub async fn serve(listener: TcpListener, shutdown: impl Future<Output = ()> + Send + 'static) -> io::Result<()> {
    let builder = Arc::new(connection_builder());
    tokio::pin!(shutdown);
    while let Some((stream, _)) = crate::server::accept_until(&listener, shutdown.as_mut(), "demo app").await {
        spawn_connection(Arc::clone(&builder), stream);
    }
    Ok(())
}

/// The app as a plain function, for in-process tests.
pub async fn handle(req: Request<Incoming>) -> http::Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let ctx = Context::from_headers(&parts.headers);
    let response = match route(&parts, &ctx, body).await {
        Ok(response) => response,
        Err(reject) => reply::rejected(reject, &ctx),
    };
    debug!(method = %parts.method, path = parts.uri.path(), status = response.status().as_u16(), "demo app");
    response
}

fn connection_builder() -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // A timer turns on hyper's default header-read timeout.
    builder.http1().timer(TokioTimer::new());
    builder
}

fn spawn_connection(builder: Arc<auto::Builder<TokioExecutor>>, stream: TcpStream) {
    tokio::spawn(async move {
        let service = service_fn(|req| async { Ok::<_, Infallible>(handle(req).await) });
        if let Err(e) = builder.serve_connection(TokioIo::new(stream), service).await {
            debug!(error = %e, "demo app: connection ended with an error");
        }
    });
}

/// Every page and action the app has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Home,
    Shop,
    WhoAmI,
    SignIn,
    SignOut,
    Add,
    Remove,
    Prefs,
}

impl Route {
    fn from_path(path: &str) -> Option<Route> {
        Some(match path {
            "/" => Route::Home,
            "/shop" => Route::Shop,
            "/api/whoami" => Route::WhoAmI,
            "/demo/sign-in" => Route::SignIn,
            "/demo/sign-out" => Route::SignOut,
            "/shop/add" => Route::Add,
            "/shop/remove" => Route::Remove,
            "/prefs" => Route::Prefs,
            _ => return None,
        })
    }

    /// Pages answer GET (and HEAD); actions, which write the session, POST.
    fn is_page(self) -> bool {
        matches!(self, Route::Home | Route::Shop | Route::WhoAmI)
    }

    fn check_method(self, method: &Method) -> Result<(), Reject> {
        match (self.is_page(), method) {
            (true, &Method::GET | &Method::HEAD) | (false, &Method::POST) => Ok(()),
            (true, _) => Err(Reject::WrongMethod("GET, HEAD")),
            (false, _) => Err(Reject::WrongMethod("POST")),
        }
    }
}

async fn route(parts: &Parts, ctx: &Context, body: Incoming) -> Result<Response, Reject> {
    let route = Route::from_path(parts.uri.path()).ok_or(Reject::NotFound)?;
    route.check_method(&parts.method)?;
    match route {
        Route::Home => Ok(reply::html(page::home(ctx))),
        Route::Shop => Ok(reply::html(page::shop(ctx))),
        Route::WhoAmI => Ok(reply::json(&ctx.whoami())),
        Route::SignIn => reply::see_other("/", SIGN_IN_PATCH),
        Route::SignOut => reply::see_other("/", SIGN_OUT_PATCH),
        Route::Add => add(ctx, &read_form(body).await?),
        Route::Remove => remove(&read_form(body).await?),
        Route::Prefs => prefs(&parts.headers, &read_form(body).await?),
    }
}

/// One more of `item`, counted from the cart usher sent.
fn add(ctx: &Context, form: &Form) -> Result<Response, Reject> {
    let item = product(form)?;
    let quantity = ctx.quantity(item).saturating_add(1).min(MAX_QUANTITY);
    reply::see_other("/shop", &json!({ "cart": { item: quantity } }).to_string())
}

/// Drop `item` from the cart: `null` deletes a key in a merge patch.
fn remove(form: &Form) -> Result<Response, Reject> {
    let item = product(form)?;
    reply::see_other("/shop", &json!({ "cart": { item: null } }).to_string())
}

/// Save the theme and go back to the page the form was on.
fn prefs(headers: &HeaderMap, form: &Form) -> Result<Response, Reject> {
    let theme = form
        .get("theme")
        .and_then(Theme::parse)
        .ok_or(Reject::BadForm("theme must be light or dark"))?;
    let back = context::back_path(headers);
    reply::see_other(&back, &json!({ "prefs": { "theme": theme.as_str() } }).to_string())
}

/// The form's `item`, as the catalogue's own spelling of it.
fn product(form: &Form) -> Result<&'static str, Reject> {
    let item = form.get("item").unwrap_or_default();
    PRODUCTS
        .into_iter()
        .find(|p| *p == item)
        .ok_or(Reject::BadForm("item must be one of apple, pear, banana"))
}

/// A decoded `application/x-www-form-urlencoded` body.
#[derive(Debug, Default)]
struct Form(Vec<(String, String)>);

impl Form {
    fn parse(body: &[u8]) -> Form {
        Form(form_urlencoded::parse(body).into_owned().collect())
    }

    /// The first value of field `name`.
    fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Read at most [`FORM_LIMIT`] bytes of body and decode them as a form.
async fn read_form(body: Incoming) -> Result<Form, Reject> {
    match Limited::new(body, FORM_LIMIT).collect().await {
        Ok(collected) => Ok(Form::parse(&collected.to_bytes())),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(Reject::TooLarge),
        Err(_) => Err(Reject::BadForm("the request body could not be read")),
    }
}
