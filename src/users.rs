//! The local users table: `[[users]]` with argon2 PHC hashes and Apache
//! htpasswd bcrypt entries, and password checking that takes the same time
//! for an unknown user as for a wrong password.
//!
//! Hashes are checked for form at startup, so a typo fails `usher check`
//! rather than every login. Verification is CPU-heavy by design; callers run
//! it off the async executor.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

/// A stored password hash, checked for form at startup.
#[derive(Clone)]
pub enum Hash {
    /// An argon2 PHC string (`$argon2id$v=19$...`).
    Argon2(String),
    /// A bcrypt hash (`$2a$`, `$2b$` or `$2y$`).
    Bcrypt(String),
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Hashes are secrets too: offline guessing starts from them.
        match self {
            Hash::Argon2(_) => f.write_str("Argon2(<redacted>)"),
            Hash::Bcrypt(_) => f.write_str("Bcrypt(<redacted>)"),
        }
    }
}

impl Hash {
    /// Accept an argon2 PHC string or a bcrypt hash; the error says which
    /// forms are accepted and never repeats the hash.
    pub fn parse(text: &str) -> Result<Hash, String> {
        let text = text.trim();
        if text.starts_with("$argon2") {
            return match PasswordHash::new(text) {
                Ok(_) => Ok(Hash::Argon2(text.to_string())),
                Err(_) => Err("is not a valid argon2 PHC string (make one with `usher hash-password`)".into()),
            };
        }
        if ["$2a$", "$2b$", "$2y$"].iter().any(|p| text.starts_with(p)) && text.len() == 60 {
            return Ok(Hash::Bcrypt(text.to_string()));
        }
        let scheme = scheme_name(text);
        Err(format!(
            "uses {scheme}, which is refused: only argon2 (`usher hash-password`) and bcrypt (`htpasswd -B`) are accepted"
        ))
    }

    /// Whether `password` matches. Malformed stored hashes never match.
    pub fn verify(&self, password: &str) -> bool {
        match self {
            Hash::Argon2(phc) => PasswordHash::new(phc)
                .map(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
                .unwrap_or(false),
            Hash::Bcrypt(h) => bcrypt::verify(password, h).unwrap_or(false),
        }
    }
}

/// Name the scheme of an unacceptable hash, for the error message.
fn scheme_name(text: &str) -> &'static str {
    if text.starts_with("$apr1$") {
        "apr1-MD5"
    } else if text.starts_with("{SHA}") {
        "unsalted SHA-1"
    } else if text.starts_with("$1$") {
        "MD5-crypt"
    } else if text.starts_with("$5$") || text.starts_with("$6$") {
        "SHA-crypt"
    } else if text.starts_with('$') {
        "an unknown hash scheme"
    } else {
        "plain text or DES crypt"
    }
}

/// Hash `password` as argon2id with default parameters (`usher hash-password`).
pub fn hash_password(password: &str) -> Result<String, String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// One local user.
#[derive(Debug, Clone)]
pub struct User {
    /// The name as configured (shown to the backend as `user`).
    pub name: String,
    /// Stored password hash.
    pub hash: Hash,
    /// `email` session field, if any.
    pub email: Option<String>,
    /// `groups` session field.
    pub groups: Vec<String>,
}

/// All local users, looked up by canonical name.
#[derive(Debug, Clone)]
pub struct Users {
    by_name: HashMap<String, User>,
    /// Checked when the user is unknown, so that case costs the same as a
    /// wrong password. Same scheme as most real users.
    decoy: Hash,
    /// Password hash checks so far (real or decoy), for tests and metrics.
    checks: Arc<AtomicU64>,
    /// Checks running now, and the most that ever ran at once.
    running: Arc<(AtomicUsize, AtomicUsize)>,
}

/// The form of a user name used for lookup and rate limiting: trimmed and
/// lower-cased, so `Alice ` and `alice` are one account.
pub fn canonical(name: &str) -> String {
    name.trim().to_lowercase()
}

impl Users {
    /// Build the table; names must be unique once canonicalised.
    pub fn new(users: Vec<User>) -> Result<Users, String> {
        let bcrypt = users.iter().filter(|u| matches!(u.hash, Hash::Bcrypt(_))).count();
        let decoy = decoy(bcrypt * 2 > users.len())?;
        let mut by_name = HashMap::with_capacity(users.len());
        for user in users {
            if let Some(old) = by_name.insert(canonical(&user.name), user) {
                return Err(format!("user {:?} is defined twice", old.name));
            }
        }
        Ok(Users {
            by_name,
            decoy,
            checks: Arc::default(),
            running: Arc::default(),
        })
    }

    /// The user whose password this is, or `None`. An unknown name costs
    /// one hash check, like a wrong password.
    pub fn verify(&self, name: &str, password: &str) -> Option<&User> {
        self.checks.fetch_add(1, Ordering::Relaxed);
        let (now, peak) = &*self.running;
        peak.fetch_max(now.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
        let found = match self.by_name.get(&canonical(name)) {
            Some(user) => user.hash.verify(password).then_some(user),
            None => {
                let _ = self.decoy.verify(password);
                None
            }
        };
        now.fetch_sub(1, Ordering::SeqCst);
        found
    }

    /// Whether a user of this name (canonicalised) is configured.
    pub fn contains(&self, name: &str) -> bool {
        self.by_name.contains_key(&canonical(name))
    }

    /// Password hash checks made so far.
    pub fn checks(&self) -> u64 {
        self.checks.load(Ordering::Relaxed)
    }

    /// The most password hash checks that ever ran at once.
    pub fn peak_concurrent_checks(&self) -> usize {
        self.running.1.load(Ordering::SeqCst)
    }

    /// The users' names as configured, sorted (for `usher check`).
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.by_name.values().map(|u| u.name.as_str()).collect();
        names.sort_unstable();
        names
    }

    /// How many users there are.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

/// A hash of a random password, for unknown users: made once per scheme
/// per process and shared by every configuration loaded after (a reload
/// used to hash a fresh one, 19 MiB of Argon2 memory each time).
fn decoy(bcrypt: bool) -> Result<Hash, String> {
    static ARGON2: OnceLock<Hash> = OnceLock::new();
    static BCRYPT: OnceLock<Hash> = OnceLock::new();
    let cell = if bcrypt { &BCRYPT } else { &ARGON2 };
    if let Some(made) = cell.get() {
        return Ok(made.clone());
    }
    let made = fresh_decoy(bcrypt)?;
    Ok(cell.get_or_init(|| made).clone())
}

fn fresh_decoy(bcrypt: bool) -> Result<Hash, String> {
    let password = crate::session::key::generate().map_err(|e| e.to_string())?;
    if bcrypt {
        bcrypt::hash(&password, bcrypt::DEFAULT_COST)
            .map(Hash::Bcrypt)
            .map_err(|e| e.to_string())
    } else {
        hash_password(&password).map(Hash::Argon2)
    }
}

/// Parse Apache htpasswd text into `(name, hash)` pairs; every refused line
/// is reported by number, never by content.
pub fn parse_htpasswd(text: &str) -> Result<Vec<(String, Hash)>, Vec<String>> {
    let mut users = Vec::new();
    let mut errors = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.split_once(':') {
            Some((name, hash)) if !name.is_empty() => match Hash::parse(hash) {
                Ok(h) => users.push((name.to_string(), h)),
                Err(why) => errors.push(format!("line {} (user {name:?}) {why}", i + 1)),
            },
            _ => errors.push(format!("line {} is not `name:hash`", i + 1)),
        }
    }
    if errors.is_empty() { Ok(users) } else { Err(errors) }
}

#[cfg(test)]
mod tests;
