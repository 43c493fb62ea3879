//! Absolute `rd` URLs for single sign-on across subdomains: accepted only
//! for hosts the operator listed in `[forward_auth] allowed_hosts`. Pure.
//!
//! An entry is a host (`app.example.com`), a suffix with its leading dot
//! (`.example.com`: any host *under* example.com, not example.com itself
//! and not `evilexample.com`), optionally with a port (`app.example.com:8443`).
//! A URL is accepted when its scheme is https (or http where allowed), it
//! has no userinfo, its host matches an entry, its port is the scheme's
//! default or the one the entry names, and its path and query pass the same
//! checks as a same-origin `rd`.

use http::Uri;

use super::same_origin_path;

/// One `allowed_hosts` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    /// Lower-case host, or suffix starting with `.`.
    host: String,
    /// An explicitly allowed non-default port.
    port: Option<u16>,
}

/// The absolute-URL allow-list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedHosts {
    entries: Vec<Entry>,
    allow_http: bool,
}

impl AllowedHosts {
    /// Parse the entries; the error names the first bad one.
    pub fn new(entries: &[String], allow_http: bool) -> Result<AllowedHosts, String> {
        let entries = entries.iter().map(|e| entry(e)).collect::<Result<_, _>>()?;
        Ok(AllowedHosts { entries, allow_http })
    }

    /// Whether no absolute URL is allowed (the default).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// `rd` when it is an allowed absolute URL.
    pub fn check<'a>(&self, rd: &'a str) -> Option<&'a str> {
        if self.entries.is_empty() || rd.len() > super::MAX_LEN || !rd.bytes().all(|b| b.is_ascii_graphic()) {
            return None;
        }
        if rd.contains('\\') {
            return None;
        }
        let uri: Uri = rd.parse().ok()?;
        let default_port = match uri.scheme_str()? {
            "https" => 443,
            "http" if self.allow_http => 80,
            _ => return None,
        };
        let authority = uri.authority()?;
        if authority.as_str().contains('@') {
            return None;
        }
        let host = authority.host();
        if !valid_host(host) {
            return None;
        }
        let port = authority.port_u16().unwrap_or(default_port);
        let allowed = self
            .entries
            .iter()
            .any(|e| host_matches(&e.host, host) && (port == default_port || e.port == Some(port)));
        // The path and query must be as safe as a same-origin `rd`.
        let rest = &rd[rd.find(authority.as_str())? + authority.as_str().len()..];
        let rest_ok = rest.is_empty() || same_origin_path(rest).is_some();
        (allowed && rest_ok).then_some(rd)
    }
}

fn entry(text: &str) -> Result<Entry, String> {
    let bad = || format!("{text:?} is not a host, .suffix or host:port");
    let (host, port) = match text.rsplit_once(':') {
        Some((h, p)) => (h, Some(p.parse::<u16>().map_err(|_| bad())?)),
        None => (text, None),
    };
    let name = host.strip_prefix('.').unwrap_or(host);
    if !valid_host(name) || name.is_empty() || (host.starts_with('.') && !name.contains('.')) {
        return Err(bad());
    }
    Ok(Entry {
        host: host.to_ascii_lowercase(),
        port,
    })
}

/// DNS-style names only: letters, digits, `-` and inner dots.
fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && !host.starts_with('.')
        && !host.ends_with('.')
        && !host.contains("..")
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

fn host_matches(entry: &str, host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    match entry.strip_prefix('.') {
        Some(_) => host.ends_with(entry) && host.len() > entry.len(),
        None => host == entry,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(list: &[&str], http: bool) -> AllowedHosts {
        AllowedHosts::new(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>(), http).expect("entries")
    }

    #[track_caller]
    fn check(h: &AllowedHosts, rd: &str, ok: bool) {
        assert_eq!(h.check(rd).is_some(), ok, "{rd}");
    }

    #[test]
    fn suffix_confusion_and_friends_are_refused() {
        let h = hosts(&[".example.com", "app.example.org", "admin.example.net:8443"], false);
        for good in [
            "https://app.example.com/",
            "https://app.example.com",
            "https://a.b.example.com/x?y=1",
            "https://APP.example.com/x",
            "https://app.example.org/path",
            "https://app.example.com:443/x",
            "https://admin.example.net:8443/x",
        ] {
            check(&h, good, true);
        }
        for bad in [
            "https://example.com/",
            "https://evilexample.com/",
            "https://example.com.evil.com/",
            "https://app.example.com.evil.com/",
            "https://evil.com/.example.com",
            "https://evil.com?.example.com",
            "https://evil.com#.example.com",
            "https://user@app.example.com/",
            "https://app.example.com@evil.com/",
            "https://app.example.com:8443/",
            "https://app.example.org:444/",
            "http://app.example.com/",
            "javascript://app.example.com/%0aalert(1)",
            "ftp://app.example.com/",
            "//app.example.com/",
            "https://app.example.com//evil.com",
            "https://app.example.com/\\evil.com",
            "https://app.example.com/%09/evil.com",
            "https://app.example.com./",
            "https://app..example.com/",
            "https:/app.example.com/",
            "https://app.example.com /",
            "https://[::1]/",
            "https://app.example.org.evil/",
        ] {
            check(&h, bad, false);
        }
    }

    #[test]
    fn http_only_when_allowed_and_nothing_when_empty() {
        check(&hosts(&["app.local"], true), "http://app.local/", true);
        check(&hosts(&["app.local"], true), "http://app.local:80/x", true);
        check(&hosts(&[], true), "https://app.local/", false);
    }

    #[test]
    fn entries_are_checked() {
        for bad in [
            "",
            ".",
            ".com",
            "a..b",
            "host:port",
            "host:99999",
            "ex ample.com",
            "http://x.com",
            "*.example.com",
        ] {
            assert!(AllowedHosts::new(&[bad.to_string()], false).is_err(), "{bad}");
        }
    }
}
