//! `[access]` validation: the default, and each rule's pattern, `allow`,
//! methods, groups and users, compiled into an `access::Policy`.

use http::Method;

use super::Problems;
use crate::access::{Allow, PathPattern, Policy, Rule};
use crate::config::raw::{RawAccess, RawRule};

pub(super) fn access(raw: &RawAccess, p: &mut Problems) -> Option<Policy> {
    let default = p.check("access.default", raw.default.as_deref(), Allow::Authenticated, allow);
    let before = p.0.len();
    let rules: Vec<Rule> = raw
        .rules
        .iter()
        .enumerate()
        .filter_map(|(i, r)| rule(i, r, p))
        .collect();
    if p.0.len() != before {
        return None;
    }
    Some(Policy::new(rules, default?, raw.case_insensitive.unwrap_or(false)))
}

fn allow(text: &str) -> Result<Allow, String> {
    match text {
        "anyone" => Ok(Allow::Anyone),
        "authenticated" => Ok(Allow::Authenticated),
        "nobody" => Ok(Allow::Nobody),
        other => Err(format!("expected one of anyone, authenticated, nobody, got {other:?}")),
    }
}

fn rule(i: usize, raw: &RawRule, p: &mut Problems) -> Option<Rule> {
    let key = format!("access.rules[{i}]");
    let Some(path) = raw.path.as_deref() else {
        p.push(
            &format!("{key}.path"),
            "every rule needs a path such as \"/admin/**\"".into(),
        );
        return None;
    };
    let pattern = PathPattern::parse(path)
        .map_err(|e| p.push(&format!("{key}.path"), e))
        .ok();
    let groups = raw.groups.clone().unwrap_or_default();
    let users = raw.users.clone().unwrap_or_default();
    let restricted = !groups.is_empty() || !users.is_empty();
    // groups/users without `allow` mean "signed in, and one of these".
    let default_allow = if restricted {
        Allow::Authenticated
    } else {
        Allow::Anyone
    };
    let allow = match raw.allow.as_deref() {
        None if !restricted => {
            p.push(&format!("{key}.allow"), "a rule needs allow, groups or users".into());
            None
        }
        None => Some(default_allow),
        Some(text) => allow(text).map_err(|e| p.push(&format!("{key}.allow"), e)).ok(),
    };
    if restricted && !matches!(allow, Some(Allow::Authenticated) | None) {
        p.push(
            &format!("{key}.allow"),
            "groups and users only make sense with allow = \"authenticated\"".into(),
        );
        return None;
    }
    let methods = methods(raw.methods.as_deref(), &key, p);
    Some(Rule {
        pattern: pattern?,
        methods: methods?,
        allow: allow?,
        groups,
        users,
    })
}

fn methods(raw: Option<&[String]>, key: &str, p: &mut Problems) -> Option<Option<Vec<Method>>> {
    let Some(list) = raw else { return Some(None) };
    if list.is_empty() {
        p.push(
            &format!("{key}.methods"),
            "an empty list would match nothing; omit methods to match all".into(),
        );
        return None;
    }
    let mut out = Vec::with_capacity(list.len());
    for m in list {
        match Method::from_bytes(m.to_ascii_uppercase().as_bytes()) {
            Ok(method) => out.push(method),
            Err(_) => {
                p.push(&format!("{key}.methods"), format!("{m:?} is not an HTTP method"));
                return None;
            }
        }
    }
    Some(Some(out))
}
