//! Access rules (`[access]`, SPEC §2 and §3.4): who may reach which path.
//! Pure.
//!
//! Owns the decision for one request: given the method, the normalised path
//! and the signed-in identity (if any), [`Policy::decide`] answers
//! [`Decision::Allow`], [`Decision::NeedLogin`] or [`Decision::Forbidden`].
//! Rules are tried in order and the first that applies wins. A rule applies
//! when its pattern matches the path and it lists no methods or lists the
//! request's method (`HEAD` is covered by a listed `GET`). With no applicable
//! rule, `default` decides.
//!
//! Does not own: reading TOML into [`Rule`]s (the config layer, which also
//! turns "groups or users without `allow`" into [`Allow::Authenticated`]);
//! path normalisation (`target`); sessions (the caller passes an
//! [`Identity`] borrowed from one); or the response (`service` turns
//! `NeedLogin` into a 302 or 401 and `Forbidden` into a 403).
//!
//! # `;parameters`, read both ways
//!
//! Servlet containers drop `;parameters` from each segment before routing,
//! so `/admin;x=1/secret` reaches their `/admin/secret`, and `/;x/admin`
//! reaches `/admin`. Most other servers keep `;` as an ordinary character.
//! usher cannot know which kind the backend is. So when the path contains a
//! `;`, the policy is evaluated under both readings (see [`PathPattern`]),
//! and the stricter decision wins: `Forbidden`, then `NeedLogin`, then
//! `Allow`. On a tie, the servlet reading names the rule. A rule on
//! `/admin/**` thus covers `/admin;x/y` and `/;x/admin`. A rule on
//! `/a/*/c` still covers `/a/;x/c`, which a servlet container would read as
//! `/a/c`. The price: `/public;x` can need more than `/public/**` grants,
//! when the other reading falls to a stricter rule or to the default. That
//! fails closed.
//!
//! Not modelled: backends that strip trailing dots or spaces from segments
//! (IIS: `/admin.` or `/admin%20`). For those, list the variants or protect
//! by default.

mod pattern;

pub use pattern::PathPattern;
use pattern::Reading;

use http::Method;
use serde_json::Value;

/// Who a rule or the default lets through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allow {
    /// Everyone, signed in or not.
    Anyone,
    /// Anyone signed in. If the rule names `groups` or `users`, only those.
    Authenticated,
    /// No one, signed in or not.
    Nobody,
}

/// The outcome for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Let the request through.
    Allow,
    /// Not signed in, and signing in could allow the request.
    NeedLogin,
    /// Refused whoever asks: signed in without the required user or group,
    /// or an [`Allow::Nobody`] path. A signed-out request for a `Nobody`
    /// path is `Forbidden` too, not `NeedLogin`, since no sign-in would
    /// help and a login redirect would only loop.
    Forbidden,
}

/// The signed-in user, borrowed from the session so that deciding never
/// copies it. Sessions hold `groups` as JSON (a list of strings, or one
/// string), so an identity can borrow that value as it is; one built from a
/// list of names borrows the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity<'a> {
    user: &'a str,
    groups: Groups<'a>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Groups<'a> {
    Json(Option<&'a Value>),
    List(&'a [String]),
}

impl<'a> Identity<'a> {
    /// An identity from a session's `user` and `groups` fields. `groups` is
    /// a list (its string members count, others are ignored) or one string
    /// (one group, not split). Anything else, or `None`, is no groups.
    pub fn new(user: &'a str, groups: Option<&'a Value>) -> Identity<'a> {
        let groups = Groups::Json(groups);
        Identity { user, groups }
    }

    /// An identity from a user name and a list of group names.
    pub fn with_groups(user: &'a str, groups: &'a [String]) -> Identity<'a> {
        let groups = Groups::List(groups);
        Identity { user, groups }
    }

    /// The user name, compared exactly with [`Rule::users`].
    pub fn user(&self) -> &'a str {
        self.user
    }

    /// Whether the user is in `group`, compared exactly with
    /// [`Rule::groups`].
    pub fn in_group(&self, group: &str) -> bool {
        match self.groups {
            Groups::List(list) => list.iter().any(|g| g == group),
            Groups::Json(Some(Value::String(one))) => one == group,
            Groups::Json(Some(Value::Array(list))) => list.iter().any(|g| g.as_str() == Some(group)),
            Groups::Json(_) => false,
        }
    }
}

/// One `[[access.rules]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The paths the rule covers.
    pub pattern: PathPattern,
    /// The methods the rule covers: `None` for all. A listed `GET` covers
    /// `HEAD` too. `Some` of an empty list covers nothing; the config layer
    /// should refuse it.
    pub methods: Option<Vec<Method>>,
    /// Who is let through.
    pub allow: Allow,
    /// With [`Allow::Authenticated`]: if this or `users` is non-empty, the
    /// identity must be in one of these groups or one of `users`. Ignored
    /// with the other `allow` values.
    pub groups: Vec<String>,
    /// See `groups`.
    pub users: Vec<String>,
}

/// The compiled `[access]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    rules: Vec<Rule>,
    default: Allow,
    case_insensitive: bool,
    /// Some rule's pattern has an upper-case ASCII letter in a literal.
    upper_literals: bool,
}

impl Policy {
    /// A policy trying `rules` in order, with `default` when none applies.
    /// `case_insensitive` (`access.case_insensitive`) no longer changes a
    /// decision: every path is judged as written and ASCII case-folded,
    /// stricter wins, whatever it says. It is kept so that configurations
    /// that set it still load, and reported by `usher check`.
    pub fn new(rules: Vec<Rule>, default: Allow, case_insensitive: bool) -> Policy {
        let upper_literals = rules
            .iter()
            .any(|r| r.pattern.as_str().bytes().any(|b| b.is_ascii_uppercase()));
        Policy {
            rules,
            default,
            case_insensitive,
            upper_literals,
        }
    }

    /// Whether `access.case_insensitive` was set (it changes no decision).
    pub fn case_insensitive(&self) -> bool {
        self.case_insensitive
    }

    /// The rules, in the order they are tried.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// What a path no rule matches requires.
    pub fn default_allow(&self) -> Allow {
        self.default
    }

    /// Decide a request for the normalised `path` (no query). See
    /// [`decide_with_rule`](Self::decide_with_rule).
    pub fn decide(&self, method: &Method, path: &str, who: Option<&Identity<'_>>) -> Decision {
        self.decide_with_rule(method, path, who).0
    }

    /// Decide a request, and name the index of the rule that decided it
    /// (`None`: the default), for logs. A path that does not start with `/`
    /// is `Forbidden` by no rule, since it cannot have been normalised.
    /// Allocation-free.
    pub fn decide_with_rule(
        &self,
        method: &Method,
        path: &str,
        who: Option<&Identity<'_>>,
    ) -> (Decision, Option<usize>) {
        self.decide_for(Some(method), path, who)
    }

    /// Decide a request whose method is not known (a forward-auth check
    /// without `X-Forwarded-Method`): the strictest decision over every
    /// method, that is over each method some rule lists and over a method
    /// no rule lists. Without method-specific rules this is the one
    /// decision every method gets. Allocation-free.
    pub fn decide_any_method(&self, path: &str, who: Option<&Identity<'_>>) -> Decision {
        let listed = self.rules.iter().filter_map(|rule| rule.methods.as_deref()).flatten();
        let mut strictest = self.decide_for(None, path, who).0;
        for method in listed {
            strictest = strictest.stricter(self.decide_for(Some(method), path, who).0);
        }
        strictest
    }

    /// Decide a request described by a front proxy (forward-auth), whose
    /// path may be spelt several ways (as the front proxy sent it, and as
    /// usher normalised it): the strictest decision over every spelling,
    /// and over every method when `method` is `None`.
    pub fn decide_described(&self, method: Option<&Method>, paths: &[&str], who: Option<&Identity<'_>>) -> Decision {
        let mut strictest = Decision::Allow;
        for path in paths {
            let decision = match method {
                Some(method) => self.decide(method, path, who),
                None => self.decide_any_method(path, who),
            };
            strictest = strictest.stricter(decision);
        }
        strictest
    }

    /// `method`: `None` stands for a method no rule lists. The path is read
    /// as written and ASCII case-folded (many backends route without
    /// regard to case), and with `;` both as parameters and as text: the
    /// strictest reading wins.
    fn decide_for(&self, method: Option<&Method>, path: &str, who: Option<&Identity<'_>>) -> (Decision, Option<usize>) {
        if !path.starts_with('/') {
            return (Decision::Forbidden, None);
        }
        let as_written = self.decide_cased(method, path, who, false);
        // Folding changes nothing when neither side has an upper-case letter.
        if !self.upper_literals && !path.bytes().any(|b| b.is_ascii_uppercase()) {
            return as_written;
        }
        let folded = self.decide_cased(method, path, who, true);
        pick_stricter(as_written, folded)
    }

    fn decide_cased(
        &self,
        method: Option<&Method>,
        path: &str,
        who: Option<&Identity<'_>>,
        fold: bool,
    ) -> (Decision, Option<usize>) {
        let servlet = self.decide_as(Reading::Servlet, method, path, who, fold);
        if !path.contains(';') {
            // Both readings are the same path.
            return servlet;
        }
        let raw = self.decide_as(Reading::Raw, method, path, who, fold);
        pick_stricter(servlet, raw)
    }

    fn decide_as(
        &self,
        reading: Reading,
        method: Option<&Method>,
        path: &str,
        who: Option<&Identity<'_>>,
        fold: bool,
    ) -> (Decision, Option<usize>) {
        let found = (self.rules.iter().enumerate()).find(|(_, rule)| rule.applies(method, path, reading, fold));
        match found {
            Some((i, rule)) => (judge(rule.allow, &rule.groups, &rule.users, who), Some(i)),
            None => (judge(self.default, &[], &[], who), None),
        }
    }
}

impl Rule {
    /// One line for `usher check`: the pattern, the methods, who may pass.
    pub fn describe(&self) -> String {
        let methods = match &self.methods {
            None => String::new(),
            Some(m) => format!(" [{}]", m.iter().map(Method::as_str).collect::<Vec<_>>().join(", ")),
        };
        let who = match (self.allow, self.groups.is_empty() && self.users.is_empty()) {
            (Allow::Anyone, _) => "anyone".to_string(),
            (Allow::Nobody, _) => "nobody".to_string(),
            (Allow::Authenticated, true) => "signed in".to_string(),
            (Allow::Authenticated, false) => {
                let mut parts = Vec::new();
                if !self.groups.is_empty() {
                    parts.push(format!("groups {}", self.groups.join(", ")));
                }
                if !self.users.is_empty() {
                    parts.push(format!("users {}", self.users.join(", ")));
                }
                parts.join(" or ")
            }
        };
        format!("{}{methods} -> {who}", self.pattern.as_str())
    }

    fn applies(&self, method: Option<&Method>, path: &str, reading: Reading, case_insensitive: bool) -> bool {
        self.covers(method) && self.pattern.matches_as(path, reading, case_insensitive)
    }

    /// `method`: `None` stands for a method no rule lists, which only the
    /// rules that list no methods cover.
    fn covers(&self, method: Option<&Method>) -> bool {
        let Some(methods) = &self.methods else {
            return true;
        };
        let Some(method) = method else {
            return false;
        };
        let listed = |m: &Method| m == method || (*method == Method::HEAD && *m == Method::GET);
        methods.iter().any(listed)
    }
}

impl Decision {
    /// Order for picking the stricter of two readings.
    fn severity(self) -> u8 {
        match self {
            Decision::Allow => 0,
            Decision::NeedLogin => 1,
            Decision::Forbidden => 2,
        }
    }

    /// The stricter of `self` and `other`.
    pub fn stricter(self, other: Decision) -> Decision {
        if other.severity() > self.severity() {
            other
        } else {
            self
        }
    }
}

/// The stricter of two readings' decisions; on a tie, the first names the
/// rule.
fn pick_stricter(first: (Decision, Option<usize>), second: (Decision, Option<usize>)) -> (Decision, Option<usize>) {
    if second.0.severity() > first.0.severity() {
        second
    } else {
        first
    }
}

fn judge(allow: Allow, groups: &[String], users: &[String], who: Option<&Identity<'_>>) -> Decision {
    match (allow, who) {
        (Allow::Anyone, _) => Decision::Allow,
        (Allow::Nobody, _) => Decision::Forbidden,
        (Allow::Authenticated, None) => Decision::NeedLogin,
        (Allow::Authenticated, Some(who)) if is_listed(groups, users, who) => Decision::Allow,
        (Allow::Authenticated, Some(_)) => Decision::Forbidden,
    }
}

/// Whether `who` passes a `groups`/`users` restriction; an empty
/// restriction passes everyone.
fn is_listed(groups: &[String], users: &[String], who: &Identity<'_>) -> bool {
    (groups.is_empty() && users.is_empty())
        || users.iter().any(|u| u == who.user)
        || groups.iter().any(|g| who.in_group(g))
}

#[cfg(test)]
mod tests;
