//! The demo app's HTML: server-rendered, no JavaScript, one inline style
//! sheet, readable on a phone. maud templates: checked at compile time,
//! and every value interpolated into them is escaped.

use http::StatusCode;
use maud::{DOCTYPE, Markup, PreEscaped, html};

#[cfg(test)]
pub(super) use crate::respond::escape;

use super::PRODUCTS;
use super::context::{Context, Theme};

/// The home page: login status, the sign-in or sign-out button, what usher
/// did, and every header the app received.
pub(super) fn home(ctx: &Context) -> String {
    let body = html! {
        h1 { "usher demo" }
        (status(ctx))
        (injected_table(ctx))
        (PreEscaped(EXPLANATION))
        (headers_table(ctx))
        p { a href="/shop" { "Shop" } " · " a href="/api/whoami" { "/api/whoami" } }
    };
    layout("usher demo", ctx.theme(), body)
}

/// The shop: products, the cart from the session, and the theme form.
pub(super) fn shop(ctx: &Context) -> String {
    let body = html! {
        p { a href="/" { "← Home" } }
        h1 { "Shop" }
        (products())
        (cart(ctx))
        (prefs_form(ctx.theme()))
    };
    layout("usher demo shop", ctx.theme(), body)
}

/// The page for a request the app turned down.
pub(super) fn error(ctx: &Context, status: StatusCode, message: &str) -> String {
    let title = format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or("Error"));
    let body = html! {
        h1 { (title) }
        p { (message) }
        p { a href="/" { "Home" } " · " a href="/shop" { "Shop" } }
    };
    layout(&title, ctx.theme(), body)
}

const EXPLANATION: &str = "<h2>What usher did</h2>\
<p>This page comes from a plain upstream app that has no session code. \
Usher checked your signed session cookie, removed it, and injected the session \
fields as request headers: <code>X-Forwarded-User</code>, <code>X-Forwarded-Email</code>, \
<code>X-Forwarded-Groups</code>, <code>X-Usher-Cart</code> and <code>X-Usher-Prefs</code>. \
Usher strips any copy of those headers a client sends, so the app can trust them; \
the cookie itself never reaches this app.</p>\
<p>The buttons write the session back: the app answers with an <code>Usher-Session</code> \
header holding a JSON merge patch, and usher applies it, signs a new cookie and removes \
the header before the response reaches your browser.</p>";

const STYLE: &str = "body{font:16px/1.5 system-ui,sans-serif;max-width:44rem;margin:0 auto;padding:1rem;\
background:var(--bg);color:var(--fg)}a{color:var(--link)}\
table{border-collapse:collapse;width:100%}th,td{text-align:left;vertical-align:top;padding:.3rem .4rem;\
border-bottom:1px solid var(--rule)}td{overflow-wrap:anywhere}\
form{display:inline;margin:0}button,select{font:inherit;padding:.3rem .8rem}\
code{font-size:.9em}.injected{border:2px solid var(--link);border-radius:.5rem;padding:.2rem .8rem;\
margin:1rem 0}.note{font-size:.9em;opacity:.85}";

fn layout(title: &str, theme: Theme, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                // Both are constants of this file, not request data.
                style { (PreEscaped(format!(":root{{{}}}{STYLE}", palette(theme)))) }
            }
            body class=(theme.as_str()) { (body) }
        }
    }
    .into_string()
}

fn palette(theme: Theme) -> &'static str {
    match theme {
        Theme::Light => "--bg:#fff;--fg:#111;--link:#0645ad;--rule:#ddd;color-scheme:light",
        Theme::Dark => "--bg:#111;--fg:#eee;--link:#8ab4f8;--rule:#444;color-scheme:dark",
    }
}

/// "Signed in as …" with a sign-out button, or a sign-in button.
fn status(ctx: &Context) -> Markup {
    let Some(user) = &ctx.user else {
        return html! {
            p { "Not signed in." }
            p {
                (button("/demo/sign-in", None, "Sign in as demo")) " "
                a href="/.usher/login?rd=%2F" { "Sign in on usher's sign-in page" }
                " (user " code { "demo" } ", password " code { "demo" } ")"
            }
            p.note {
                "Two ways in. usher's sign-in page checks a password and sets the session itself, as it would \
                 in production. The button instead has this app write the session back through the "
                code { "Usher-Session" } " header, which the demo allows for " code { "user" }
                "; a real deployment would not let its backend write identity."
            }
        };
    };
    html! {
        p {
            "Signed in as " (user)
            @if let Some(email) = &ctx.email { " (" (email) ")" }
            @if !ctx.groups.is_empty() { ", groups: " (ctx.groups.join(", ")) }
        }
        (button("/demo/sign-out", None, "Sign out"))
    }
}

/// The headers usher injected, first and set apart: what an app behind
/// usher reads.
fn injected_table(ctx: &Context) -> Markup {
    let injected: Vec<&(String, String)> = ctx.headers.iter().filter(|(name, _)| is_injected(name)).collect();
    html! {
        section.injected {
            h2 { "Headers usher injected" }
            table {
                tr { th { "Name" } th { "Value" } }
                @for (name, value) in &injected {
                    tr { td { code { (name) } } td { strong { (value) } } }
                }
                @if injected.is_empty() {
                    tr { td colspan="2" { "none: not signed in, and no cart or preferences yet" } }
                }
            }
        }
    }
}

/// Whether usher itself set this header for the app (the session fields
/// and the forwarding headers).
fn is_injected(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.starts_with("x-forwarded-") || n.starts_with("x-usher-") || n == "x-request-id"
}

fn headers_table(ctx: &Context) -> Markup {
    html! {
        h2 { "Other request headers received" }
        table {
            tr { th { "Name" } th { "Value" } }
            @for (name, value) in ctx.headers.iter().filter(|(name, _)| !is_injected(name)) {
                tr { td { code { (name) } } td { (value) } }
            }
        }
    }
}

fn products() -> Markup {
    html! {
        h2 { "Products" }
        table {
            @for p in PRODUCTS {
                tr { td { (p) } td { (button("/shop/add", Some(("item", p)), "Add")) } }
            }
        }
    }
}

fn cart(ctx: &Context) -> Markup {
    let rows: Vec<(&str, u64)> = PRODUCTS
        .into_iter()
        .map(|item| (item, ctx.quantity(item)))
        .filter(|(_, quantity)| *quantity > 0)
        .collect();
    html! {
        h2 { "Cart" }
        @if rows.is_empty() {
            p { "Your cart is empty." }
        } @else {
            table {
                tr { th { "Item" } th { "Quantity" } th {} }
                @for (item, quantity) in &rows {
                    tr { td { (item) } td { (quantity) } td { (button("/shop/remove", Some(("item", item)), "Remove")) } }
                }
            }
        }
    }
}

fn prefs_form(theme: Theme) -> Markup {
    html! {
        h2 { "Preferences" }
        form method="post" action="/prefs" {
            label {
                "Theme "
                select name="theme" {
                    @for t in [Theme::Light, Theme::Dark] {
                        option value=(t.as_str()) selected[t == theme] { (t.as_str()) }
                    }
                }
            }
            " "
            button { "Save" }
        }
    }
}

/// A one-button form posting to `action`, with an optional field.
fn button(action: &str, field: Option<(&str, &str)>, label: &str) -> Markup {
    html! {
        form method="post" action=(action) {
            @if let Some((name, value)) = field {
                button name=(name) value=(value) { (label) }
            } @else {
                button { (label) }
            }
        }
    }
}
