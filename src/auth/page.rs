//! The HTML of usher's own pages: sign-in form and sign-out confirmation.
//! Server-rendered, no JavaScript, every dynamic value escaped.

use crate::respond::{escape, page};

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
    let error = form
        .error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default();
    let hint = form
        .hint
        .map(|h| format!("<p class=\"muted\">{}</p>", escape(h)))
        .unwrap_or_default();
    let notice = form
        .notice
        .map(|n| {
            format!(
                "<p class=\"error\" role=\"alert\"><strong>Setup problem:</strong> {}</p>",
                escape(n)
            )
        })
        .unwrap_or_default();
    let already = form
        .signed_in
        .map(|(user, logout)| {
            format!(
                "<p>You are signed in as <strong>{}</strong>. <a href=\"{}\">Continue</a>, or \
                 <a href=\"{}\">sign out</a> to switch user.</p>",
                escape(user),
                escape(form.rd),
                escape(logout)
            )
        })
        .unwrap_or_default();
    let buttons: String = form
        .providers
        .iter()
        .map(|(href, label)| {
            format!(
                "<p><a class=\"button\" href=\"{}\">Sign in with {}</a></p>",
                escape(href),
                escape(label)
            )
        })
        .collect();
    let or = if form.password && !form.providers.is_empty() {
        "<p class=\"muted or\">or with a password</p>"
    } else {
        ""
    };
    let password = if form.password {
        password_form(form)
    } else {
        String::new()
    };
    let body = format!(
        "<h1>Sign in to {app}</h1>{notice}{already}{error}{buttons}{or}{password}{hint}",
        app = escape(form.app_name),
    );
    page(&format!("Sign in · {}", form.app_name), &body)
}

fn password_form(form: &LoginForm<'_>) -> String {
    format!(
        "<form method=\"post\" action=\"{action}\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <input type=\"hidden\" name=\"rd\" value=\"{rd}\">\
         <label for=\"username\">Username</label>\
         <input type=\"text\" id=\"username\" name=\"username\" value=\"{user}\" autocomplete=\"username\" \
         autocapitalize=\"none\" spellcheck=\"false\" required autofocus>\
         <label for=\"password\">Password</label>\
         <input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\" required>\
         <button type=\"submit\">Sign in</button></form>",
        action = escape(form.action),
        csrf = escape(form.csrf),
        rd = escape(form.rd),
        user = escape(form.username),
    )
}

/// The sign-out confirmation (GET never signs out: a link or image could).
pub fn logout(app_name: &str, action: &str, rd: &str, user: Option<&str>) -> String {
    let who = user
        .map(|u| format!("<p>Signed in as <strong>{}</strong>.</p>", escape(u)))
        .unwrap_or_default();
    let body = format!(
        "<h1>Sign out of {app}?</h1>{who}<form method=\"post\" action=\"{action}\">\
         <input type=\"hidden\" name=\"rd\" value=\"{rd}\"><button type=\"submit\">Sign out</button></form>",
        app = escape(app_name),
        action = escape(action),
        rd = escape(rd),
    );
    page(&format!("Sign out · {app_name}"), &body)
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
