//! The demo app's HTML: server-rendered, no JavaScript, one inline style
//! sheet, readable on a phone. Every value that came from a request goes
//! through [`escape`]; the only unescaped text is written here.

use http::StatusCode;

pub(super) use crate::respond::escape;

use super::PRODUCTS;
use super::context::{Context, Theme};

/// The home page: login status, the sign-in or sign-out button, what usher
/// did, and every header the app received.
pub(super) fn home(ctx: &Context) -> String {
    let body = [
        "<h1>usher demo</h1>".to_owned(),
        status(ctx),
        injected_table(ctx),
        EXPLANATION.to_owned(),
        headers_table(ctx),
        r#"<p><a href="/shop">Shop</a> · <a href="/api/whoami">/api/whoami</a></p>"#.to_owned(),
    ];
    layout("usher demo", ctx.theme(), &body.concat())
}

/// The shop: products, the cart from the session, and the theme form.
pub(super) fn shop(ctx: &Context) -> String {
    let body = [
        r#"<p><a href="/">← Home</a></p><h1>Shop</h1>"#.to_owned(),
        products(),
        cart(ctx),
        prefs_form(ctx.theme()),
    ];
    layout("usher demo shop", ctx.theme(), &body.concat())
}

/// The page for a request the app turned down.
pub(super) fn error(ctx: &Context, status: StatusCode, message: &str) -> String {
    let title = format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or("Error"));
    let body = format!(
        r#"<h1>{}</h1><p>{}</p><p><a href="/">Home</a> · <a href="/shop">Shop</a></p>"#,
        escape(&title),
        escape(message),
    );
    layout(&title, ctx.theme(), &body)
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

fn layout(title: &str, theme: Theme, body: &str) -> String {
    format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{}</title><style>:root{{{}}}{STYLE}</style></head>
<body class="{}">{body}</body></html>
"#,
        escape(title),
        palette(theme),
        theme.as_str(),
    )
}

fn palette(theme: Theme) -> &'static str {
    match theme {
        Theme::Light => "--bg:#fff;--fg:#111;--link:#0645ad;--rule:#ddd;color-scheme:light",
        Theme::Dark => "--bg:#111;--fg:#eee;--link:#8ab4f8;--rule:#444;color-scheme:dark",
    }
}

/// "Signed in as …" with a sign-out button, or a sign-in button.
fn status(ctx: &Context) -> String {
    let Some(user) = &ctx.user else {
        return format!(
            "<p>Not signed in.</p><p>{} <a href=\"/.usher/login?rd=%2F\">Sign in on usher's sign-in page</a> \
             (user <code>demo</code>, password <code>demo</code>)</p>\
             <p class=\"note\">Two ways in. usher's sign-in page checks a password and sets the session \
             itself, as it would in production. The button instead has this app write the session back through \
             the <code>Usher-Session</code> header, which the demo allows for <code>user</code>; a real \
             deployment would not let its backend write identity.</p>",
            button("/demo/sign-in", None, "Sign in as demo")
        );
    };
    let email = ctx
        .email
        .as_ref()
        .map(|e| format!(" ({})", escape(e)))
        .unwrap_or_default();
    let groups = if ctx.groups.is_empty() {
        String::new()
    } else {
        format!(", groups: {}", escape(&ctx.groups.join(", ")))
    };
    let signed_in = format!("<p>Signed in as {}{email}{groups}</p>", escape(user));
    signed_in + &button("/demo/sign-out", None, "Sign out")
}

/// The headers usher injected, first and set apart: what an app behind
/// usher reads.
fn injected_table(ctx: &Context) -> String {
    let rows: String = ctx
        .headers
        .iter()
        .filter(|(name, _)| is_injected(name))
        .map(|(name, value)| {
            format!(
                "<tr><td><code>{}</code></td><td><strong>{}</strong></td></tr>",
                escape(name),
                escape(value)
            )
        })
        .collect();
    let rows = if rows.is_empty() {
        "<tr><td colspan=\"2\">none: not signed in, and no cart or preferences yet</td></tr>".to_string()
    } else {
        rows
    };
    format!(
        "<section class=\"injected\"><h2>Headers usher injected</h2>\
         <table><tr><th>Name</th><th>Value</th></tr>{rows}</table></section>"
    )
}

/// Whether usher itself set this header for the app (the session fields
/// and the forwarding headers).
fn is_injected(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.starts_with("x-forwarded-") || n.starts_with("x-usher-") || n == "x-request-id"
}

fn headers_table(ctx: &Context) -> String {
    let rows: String = ctx
        .headers
        .iter()
        .filter(|(name, _)| !is_injected(name))
        .map(|(name, value)| {
            format!(
                "<tr><td><code>{}</code></td><td>{}</td></tr>",
                escape(name),
                escape(value)
            )
        })
        .collect();
    format!("<h2>Other request headers received</h2><table><tr><th>Name</th><th>Value</th></tr>{rows}</table>")
}

fn products() -> String {
    let rows: String = PRODUCTS
        .iter()
        .map(|p| {
            format!(
                "<tr><td>{p}</td><td>{}</td></tr>",
                button("/shop/add", Some(("item", p)), "Add")
            )
        })
        .collect();
    format!("<h2>Products</h2><table>{rows}</table>")
}

fn cart(ctx: &Context) -> String {
    let rows: String = PRODUCTS
        .into_iter()
        .map(|item| (item, ctx.quantity(item)))
        .filter(|(_, quantity)| *quantity > 0)
        .map(|(item, quantity)| {
            let remove = button("/shop/remove", Some(("item", item)), "Remove");
            format!("<tr><td>{item}</td><td>{quantity}</td><td>{remove}</td></tr>")
        })
        .collect();
    if rows.is_empty() {
        return "<h2>Cart</h2><p>Your cart is empty.</p>".to_owned();
    }
    format!("<h2>Cart</h2><table><tr><th>Item</th><th>Quantity</th><th></th></tr>{rows}</table>")
}

fn prefs_form(theme: Theme) -> String {
    let option = |t: Theme| {
        let selected = if t == theme { " selected" } else { "" };
        format!(r#"<option value="{0}"{selected}>{0}</option>"#, t.as_str())
    };
    format!(
        r#"<h2>Preferences</h2><form method="post" action="/prefs"><label>Theme <select name="theme">{}{}</select></label> <button>Save</button></form>"#,
        option(Theme::Light),
        option(Theme::Dark),
    )
}

/// A one-button form posting to `action`, with an optional field.
fn button(action: &str, field: Option<(&str, &str)>, label: &str) -> String {
    let field = field
        .map(|(name, value)| format!(r#" name="{}" value="{}""#, escape(name), escape(value)))
        .unwrap_or_default();
    format!(
        r#"<form method="post" action="{}"><button{field}>{}</button></form>"#,
        escape(action),
        escape(label)
    )
}
