//! Verified claims → session fields (`[oidc.claims]`, dotted paths reach
//! into nested objects such as Keycloak's `realm_access.roles`), and the
//! allow lists. Pure.

use serde_json::{Map, Value};

use crate::config::oidc::Provider;

/// Who the claims say signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub user: String,
    pub email: Option<String>,
    pub groups: Vec<String>,
    /// `email_verified` is `true` (or the string `"true"`).
    pub email_verified: bool,
}

/// Why the allow lists refused someone whose token was good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// No email, an unverified one, or outside `allowed_email_domains`.
    EmailDomain,
    /// None of `allowed_groups`.
    Groups,
}

/// The value at a dotted `path`.
pub fn lookup<'a>(claims: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    // A claim whose own name holds dots (a URL-named claim such as
    // "https://example.com/groups") is found whole first.
    if let Some(v) = claims.get(path) {
        return Some(v);
    }
    let mut parts = path.split('.');
    let mut here = claims.get(parts.next()?)?;
    for part in parts {
        here = here.as_object()?.get(part)?;
    }
    Some(here)
}

/// Whether a mapped claim is missing (the userinfo endpoint may have it).
pub fn missing(claims: &Map<String, Value>, provider: &Provider) -> bool {
    let c = &provider.claims;
    [&c.user, &c.email, &c.groups]
        .into_iter()
        .any(|path| lookup(claims, path).is_none())
}

/// The person the claims describe. The user is the mapped claim when it is
/// a non-empty string, else `sub`.
pub fn person(claims: &Map<String, Value>, provider: &Provider) -> Option<Person> {
    let c = &provider.claims;
    let text = |path: &str| {
        lookup(claims, path)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let user = text(&c.user).or_else(|| text("sub"))?;
    let groups = match lookup(claims, &c.groups) {
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        Some(Value::String(one)) => vec![one.clone()],
        _ => Vec::new(),
    };
    let email_verified = match claims.get("email_verified") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        _ => false,
    };
    Some(Person {
        user,
        email: text(&c.email),
        groups,
        email_verified,
    })
}

/// Apply `allowed_email_domains` (needs a verified email) and
/// `allowed_groups`.
pub fn allowed(person: &Person, provider: &Provider) -> Result<(), Refused> {
    if !provider.allowed_email_domains.is_empty() {
        let domain = person
            .email
            .as_deref()
            .filter(|_| person.email_verified)
            .and_then(|e| e.rsplit_once('@'))
            .map(|(_, d)| d.to_ascii_lowercase());
        let ok = domain.is_some_and(|d| provider.allowed_email_domains.iter().any(|a| domain_matches(&d, a)));
        if !ok {
            return Err(Refused::EmailDomain);
        }
    }
    if !provider.allowed_groups.is_empty() && !person.groups.iter().any(|g| provider.allowed_groups.contains(g)) {
        return Err(Refused::Groups);
    }
    Ok(())
}

/// `example.com` matches only itself; `*.example.com` matches its
/// subdomains (not itself).
fn domain_matches(domain: &str, allowed: &str) -> bool {
    match allowed.strip_prefix("*.") {
        Some(parent) => domain
            .strip_suffix(parent)
            .is_some_and(|rest| rest.ends_with('.') && rest.len() > 1),
        None => domain == allowed,
    }
}

/// The session payload for a signed-in person.
pub fn session(person: &Person, provider: &Provider) -> Map<String, Value> {
    let mut s = Map::new();
    s.insert("user".into(), Value::from(person.user.clone()));
    if let Some(email) = &person.email {
        s.insert("email".into(), Value::from(email.clone()));
    }
    s.insert("groups".into(), Value::from(person.groups.clone()));
    s.insert("idp".into(), Value::from(provider.id.clone()));
    s
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::config::oidc::tests_support::provider;

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().expect("object").clone()
    }

    #[test]
    fn dotted_paths_and_fallbacks() {
        let mut p = provider("kc", "https://kc.example.com");
        p.claims.groups = "realm_access.roles".into();
        let c = claims(json!({"sub": "u-1", "realm_access": {"roles": ["admin", 3, "ops"]}, "email": "a@x.io"}));
        let who = person(&c, &p).expect("person");
        assert_eq!(who.user, "u-1", "no preferred_username: sub");
        assert_eq!(who.groups, ["admin", "ops"], "non-strings dropped");
        assert!(!who.email_verified);
        assert!(missing(&c, &p), "preferred_username is missing");
        p.claims.groups = "https://example.com/groups".into();
        let c = claims(json!({"sub": "u", "https://example.com/groups": "one"}));
        assert_eq!(person(&c, &p).expect("person").groups, ["one"]);
        assert!(person(&claims(json!({"sub": ""})), &p).is_none(), "nobody");
    }

    #[test]
    fn email_domains_need_a_verified_email() {
        let mut p = provider("corp", "https://idp.example.com");
        p.allowed_email_domains = vec!["example.com".into(), "*.corp.example".into()];
        let who = |email: &str, verified: bool| Person {
            user: "u".into(),
            email: Some(email.into()),
            groups: vec![],
            email_verified: verified,
        };
        assert_eq!(allowed(&who("a@Example.COM", true), &p), Ok(()));
        assert_eq!(allowed(&who("a@eu.corp.example", true), &p), Ok(()));
        for (email, verified) in [
            ("a@example.com", false),
            ("a@evilexample.com", true),
            ("a@example.com.evil", true),
            ("a@corp.example", true),
            ("a@xcorp.example", true),
            ("example.com", true),
        ] {
            assert_eq!(allowed(&who(email, verified), &p), Err(Refused::EmailDomain), "{email}");
        }
    }

    #[test]
    fn groups_must_overlap() {
        let mut p = provider("corp", "https://idp.example.com");
        p.allowed_groups = vec!["admins".into()];
        let mut who = Person {
            user: "u".into(),
            email: None,
            groups: vec!["users".into()],
            email_verified: false,
        };
        assert_eq!(allowed(&who, &p), Err(Refused::Groups));
        who.groups.push("admins".into());
        assert_eq!(allowed(&who, &p), Ok(()));
    }
}
