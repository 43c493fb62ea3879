//! The HTML of usher's own pages: sign-in form and sign-out confirmation.
//! Server-rendered, no JavaScript; maud templates, checked at compile time,
//! escape every value they interpolate.

use maud::html;

use crate::respond::page;

/// What the sign-in form shows.
pub struct LoginForm<'a> {
    /// Product name in the heading (`[login] app_name`).
    pub app_name: &'a str,
    /// Where the form posts (`<prefix>/login`).
    pub action: &'a str,
    /// Hidden CSRF token.
    pub csrf: &'a str,
    /// Hidden post-login target (already validated or `/`).
    pub rd: &'a str,
    /// Name to pre-fill after a failure.
    pub username: &'a str,
    /// A generic error line, if any.
    pub error: Option<&'a str>,
    /// A hint line under the form (e.g. the demo's credentials).
    pub hint: Option<&'a str>,
    /// A warning above the form about the deployment (cookies that cannot
    /// work over plain HTTP).
    pub notice: Option<&'a str>,
    /// Who is signed in already, with the sign-out path: the page then
    /// offers to continue or to switch user.
    pub signed_in: Option<(&'a str, &'a str)>,
    /// One button per identity provider: (start URL, label).
    pub providers: &'a [(String, String)],
    /// Whether to show the password form (local users exist).
    pub password: bool,
}

/// The sign-in page.
pub fn login(form: &LoginForm<'_>) -> String {
    let body = html! {
        h1 { "Sign in to " (form.app_name) }
        @if let Some(notice) = form.notice {
            p.error role="alert" { strong { "Setup problem:" } " " (notice) }
        }
        @if let Some((user, logout)) = form.signed_in {
            p {
                "You are signed in as " strong { (user) } ". "
                a href=(form.rd) { "Continue" } ", or "
                a href=(logout) { "sign out" } " to switch user."
            }
        }
        @if let Some(error) = form.error {
            p.error role="alert" { (error) }
        }
        @for (href, label) in form.providers {
            p { a.button href=(href) { "Sign in with " (label) } }
        }
        @if form.password && !form.providers.is_empty() {
            p.muted.or { "or with a password" }
        }
        @if form.password {
            form method="post" action=(form.action) {
                input type="hidden" name="csrf" value=(form.csrf);
                input type="hidden" name="rd" value=(form.rd);
                label for="username" { "Username" }
                input type="text" id="username" name="username" value=(form.username) autocomplete="username"
                    autocapitalize="none" spellcheck="false" required autofocus;
                label for="password" { "Password" }
                input type="password" id="password" name="password" autocomplete="current-password" required;
                button type="submit" { "Sign in" }
            }
        }
        @if let Some(hint) = form.hint {
            p.muted { (hint) }
        }
    };
    page(&format!("Sign in · {}", form.app_name), body)
}

/// The sign-out confirmation (GET never signs out: a link or image could).
pub fn logout(app_name: &str, action: &str, rd: &str, user: Option<&str>) -> String {
    let body = html! {
        h1 { "Sign out of " (app_name) "?" }
        @if let Some(user) = user {
            p { "Signed in as " strong { (user) } "." }
        }
        form method="post" action=(action) {
            input type="hidden" name="rd" value=(rd);
            button type="submit" { "Sign out" }
        }
    };
    page(&format!("Sign out · {app_name}"), body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_page_escapes_everything() {
        let html = login(&LoginForm {
            app_name: "<App>",
            action: "/.usher/login",
            csrf: "t\"ok",
            rd: "/x?a=1&b=\"2\"",
            username: "<script>",
            error: Some("Invalid username or password."),
            notice: None,
            signed_in: None,
            hint: None,
            providers: &[("/.usher/oidc/corp/start?rd=%2F\"".into(), "<Corp>".into())],
            password: true,
        });
        assert!(html.contains("Sign in with &lt;Corp&gt;"));
        assert!(html.contains("href=\"/.usher/oidc/corp/start?rd=%2F&quot;\""));
        assert!(html.contains("Sign in to &lt;App&gt;"));
        assert!(html.contains("value=\"&lt;script&gt;\""));
        assert!(html.contains("value=\"/x?a=1&amp;b=&quot;2&quot;\""));
        assert!(!html.contains("<script>"));
        assert!(!html.contains("<script"), "no scripts at all");
        assert!(html.contains("name=\"viewport\""));
    }

    #[test]
    fn logout_page_posts() {
        let html = logout("usher", "/.usher/logout", "/", Some("alice"));
        assert!(html.contains("method=\"post\"") && html.contains("alice"));
    }
}
