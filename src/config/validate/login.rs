//! `[login]` and `[[users]]` validation: local users from the config and
//! from an htpasswd file, checked for form (never echoed), and the
//! brute-force limits.

use std::num::{NonZeroU32, NonZeroUsize};
use std::path::Path;

use super::Problems;
use crate::config::raw::{RawLogin, RawUser};
use crate::config::{Environment, Login};
use crate::users::{Hash, User, Users, parse_htpasswd};

pub(super) fn login(raw: &RawLogin, users: &[RawUser], env: &Environment<'_>, p: &mut Problems) -> Option<Login> {
    let per_ip = attempts("login.ip_attempts_per_minute", raw.ip_attempts_per_minute, 20, p);
    let per_user = attempts("login.user_attempts_per_minute", raw.user_attempts_per_minute, 5, p);
    let hashes = p.check("login.concurrent_hashes", raw.concurrent_hashes.as_ref(), None, |n| {
        super::count(*n, 0, 1024).map(NonZeroUsize::new)
    });
    let mut list = configured_users(users, p);
    if let Some(path) = &raw.htpasswd_file {
        list.extend(htpasswd_users(path, env, p));
    }
    let users = match Users::new(list) {
        Ok(u) => Some(u),
        Err(why) => {
            p.push("users", why);
            None
        }
    };
    let app_name = raw.app_name.clone().unwrap_or_else(|| "usher".to_string());
    Some(Login {
        app_name,
        hint: raw.hint.clone(),
        users: users?,
        per_ip: per_ip?,
        per_user: per_user?,
        concurrent_hashes: hashes?,
        auto_redirect: raw.auto_redirect.clone(),
        provider_logout: raw.provider_logout.unwrap_or(false),
        basic_auth: raw.basic_auth.unwrap_or(false),
    })
}

fn attempts(key: &str, value: Option<i64>, default: u32, p: &mut Problems) -> Option<NonZeroU32> {
    let n = value.unwrap_or(i64::from(default));
    match u32::try_from(n).ok().and_then(NonZeroU32::new) {
        Some(n) if n.get() <= 10_000 => Some(n),
        _ => {
            p.push(key, format!("expected a number of attempts from 1 to 10000, got {n}"));
            None
        }
    }
}

fn configured_users(raw: &[RawUser], p: &mut Problems) -> Vec<User> {
    let mut users = Vec::with_capacity(raw.len());
    for (i, u) in raw.iter().enumerate() {
        let key = format!("users[{i}]");
        let Some(name) = u.name.as_deref().map(str::trim).filter(|n| !n.is_empty()) else {
            p.push(&format!("{key}.name"), "every user needs a non-empty name".into());
            continue;
        };
        let hash = match u.password_hash.as_deref().map(Hash::parse) {
            Some(Ok(h)) => h,
            Some(Err(why)) => {
                p.push(&format!("{key}.password_hash"), format!("(user {name:?}) {why}"));
                continue;
            }
            None => {
                p.push(
                    &format!("{key}.password_hash"),
                    format!("user {name:?} has no password_hash"),
                );
                continue;
            }
        };
        users.push(User {
            name: name.to_string(),
            hash,
            email: u.email.clone(),
            groups: u.groups.clone(),
        });
    }
    users
}

fn htpasswd_users(path: &str, env: &Environment<'_>, p: &mut Problems) -> Vec<User> {
    let text = match (env.read_file)(Path::new(path)) {
        Ok(t) => t,
        Err(why) => {
            p.push("login.htpasswd_file", format!("cannot read {path:?}: {why}"));
            return Vec::new();
        }
    };
    match parse_htpasswd(&text) {
        Ok(entries) => entries
            .into_iter()
            .map(|(name, hash)| User {
                name,
                hash,
                email: None,
                groups: Vec::new(),
            })
            .collect(),
        Err(errors) => {
            p.push("login.htpasswd_file", format!("{path}: {}", errors.join("; ")));
            Vec::new()
        }
    }
}
