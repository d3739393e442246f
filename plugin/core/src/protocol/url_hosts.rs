//! Comparison of URLs in arguments with the request's own host.
//!
//! An application that fetches or redirects to a URL only when it names its
//! own site can be fooled by a URL that merely looks like its own.
//! `https://example.com.evil.net/` and `https://example.com@evil.net/` both
//! start with the site's name. `https://example.com:6379/` names the site
//! but reaches another service on it.

use super::{Hit, HOST_CONFUSION};
use crate::http::{first_value, HeaderPairs};
use crate::rules::TargetKind;
use crate::targets::Target;

/// A host name and the port written after it, if any, both lower-case.
struct Authority {
    host: String,
    port: Option<String>,
}

/// Splits `host[:port]` or `[v6]:port`, lower-cased.
fn split_authority(text: &str) -> Authority {
    let text = text.trim().to_ascii_lowercase();
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        match rest.split_once(']') {
            Some((host, after)) => (host.to_string(), after.strip_prefix(':')),
            None => (rest.to_string(), None),
        }
    } else {
        match text.rsplit_once(':') {
            Some((host, port)) => (host.to_string(), Some(port)),
            None => (text.clone(), None),
        }
    };
    Authority {
        host: host.trim_end_matches('.').to_string(),
        port: port.filter(|port| !port.is_empty()).map(str::to_string),
    }
}

/// Returns the scheme, user information and authority of every absolute URL
/// in `value`.
fn urls(value: &str) -> impl Iterator<Item = (&str, Option<&str>, &str)> {
    value.match_indices("://").filter_map(|(index, _)| {
        let scheme_start = value[..index]
            .char_indices()
            .rev()
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || "+-.".contains(*c)))
            .map_or(0, |(position, c)| position + c.len_utf8());
        let scheme = &value[scheme_start..index];
        let rest = &value[index + 3..];
        let end = rest
            .find(|c: char| "/\\?#\"'<> \t\r\n".contains(c))
            .unwrap_or(rest.len());
        let authority = &rest[..end];
        if scheme.is_empty() || authority.is_empty() {
            return None;
        }
        Some(match authority.rsplit_once('@') {
            Some((user, host)) => (scheme, Some(user), host),
            None => (scheme, None, authority),
        })
    })
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        "ftp" => Some(21),
        "gopher" => Some(70),
        "dict" => Some(2628),
        _ => None,
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host.ends_with(".localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|address| address.is_loopback())
}

/// Returns why the URL with `scheme`, `user` and `authority` imitates
/// `site`, and the paranoia level of that reason, or `None` when it does
/// not.
///
/// Two reasons run at paranoia level 1 because they have no ordinary use:
/// the site's name as user information of another host, and the site's host
/// with a port outside `COMMON_WEB_PORTS`, which reaches another service of
/// the same machine. The other reasons also match ordinary links, so they
/// run from level 2. CDN and storage names such as
/// `example.com.s3.amazonaws.com` start with the site's name. Clone and
/// staging URLs name the site's host with another web port.
fn confusion(
    site: &Authority,
    scheme: &str,
    user: Option<&str>,
    authority: &str,
) -> Option<(&'static str, u8)> {
    let target = split_authority(authority);
    let user_host = user.map(|user| split_authority(user).host);
    if user_host.is_some_and(|user_host| user_host == site.host) && target.host != site.host {
        return Some(("request host as user name of another host", 1));
    }

    // A single-label host such as `api` starts many unrelated names
    // (`api.github.com`), so only a name with a dot counts.
    if site.host.contains('.')
        && target.host.len() > site.host.len()
        && target.host.starts_with(&site.host)
        && target.host.as_bytes()[site.host.len()] == b'.'
    {
        return Some(("request host followed by another domain", 2));
    }

    // A development setup serves its front end and its API on different
    // ports of localhost, and links between them are ordinary. Schemes
    // without a web default port, such as `ssh` for clone URLs, are left out.
    let default = default_port(scheme)?;
    if target.host != site.host || is_loopback(&site.host) {
        return None;
    }
    let port_number = |port: &Option<String>| match port {
        Some(port) => port.parse::<u16>().ok(),
        None => Some(default),
    };
    // An explicit default port is the same URL as one without a port.
    let target_port = port_number(&target.port);
    let other_port = target.port.is_some()
        && target_port != port_number(&site.port)
        && target_port != Some(default);
    if !other_port {
        return None;
    }
    let paranoia = match target_port {
        Some(port) if COMMON_WEB_PORTS.contains(&port) => 2,
        _ => 1,
    };
    Some(("request host with another port", paranoia))
}

/// Ports that web front ends, staging copies and development servers of a
/// site commonly listen on.
const COMMON_WEB_PORTS: &[u16] = &[
    80, 443, 3000, 4200, 5000, 5173, 8000, 8008, 8080, 8081, 8443, 8888,
];

/// Reports argument values with a URL whose host imitates the request's
/// `Host`: the same name followed by another domain, the same name as user
/// information before another host, or the same host with another explicit
/// port. A URL without a port passes, so a site on port 8443 may link to its
/// own default port.
pub fn check_url_hosts(headers: &HeaderPairs, targets: &[Target]) -> Vec<Hit> {
    let Some(host) = first_value(headers, ":authority").or_else(|| first_value(headers, "host"))
    else {
        return Vec::new();
    };
    let site = split_authority(&String::from_utf8_lossy(host));
    if site.host.is_empty() {
        return Vec::new();
    }
    let mut hits = Vec::new();
    for target in targets {
        if target.kind != TargetKind::ArgValue || !target.value.windows(3).any(|w| w == b"://") {
            continue;
        }
        let value = String::from_utf8_lossy(&target.value).to_ascii_lowercase();
        let found = urls(&value)
            .find_map(|(scheme, user, authority)| confusion(&site, scheme, user, authority));
        if let Some((reason, paranoia)) = found {
            hits.push(Hit {
                rule: HOST_CONFUSION,
                paranoia,
                target: target.label.to_string(),
                excerpt: reason.to_string(),
            });
        }
    }
    hits
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(host: &str) -> Authority {
        split_authority(host)
    }

    fn reason(host: &str, url: &str) -> Option<&'static str> {
        level(host, url).map(|(reason, _)| reason)
    }

    fn level(host: &str, url: &str) -> Option<(&'static str, u8)> {
        let site = site(host);
        urls(url).find_map(|(scheme, user, authority)| confusion(&site, scheme, user, authority))
    }

    #[test]
    fn lookalike_hosts_are_found() {
        assert!(reason("example.com", "https://example.com.evil.com/").is_some());
        assert!(reason("example.com:8080", "http://example.com.attacker.net").is_some());
        assert!(reason("example.com", "https://example.com@evil.com/x").is_some());
        assert!(reason("example.com", "https://example.com:pw@evil.com/x").is_some());
        assert!(reason("example.com", "https://example.com:1234/").is_some());
        assert!(reason("example.com:8443", "https://example.com:9200/").is_some());
        assert!(reason("example.com", "x=1&next=gopher://example.com:6379/_").is_some());
    }

    #[test]
    fn ordinary_urls_pass() {
        assert!(reason("example.com", "https://example.com/account").is_none());
        assert!(reason("example.com", "https://example.com:443/account").is_none());
        assert!(reason("example.com", "http://example.com:80/").is_none());
        assert!(reason("example.com:8443", "https://example.com:8443/a").is_none());
        assert!(reason("example.com:8443", "https://example.com/").is_none());
        assert!(reason("example.com", "https://www.example.com/").is_none());
        assert!(reason("example.com", "https://example.community/").is_none());
        assert!(reason("example.com", "https://other.org:8080/").is_none());
        assert!(reason("example.com", "https://user@example.com/").is_none());
        assert!(reason("localhost:3000", "http://localhost:8080/callback").is_none());
        assert!(reason("127.0.0.1:3000", "http://127.0.0.1:8080/").is_none());
        assert!(reason("example.com", "see docs at https://docs.rs/regex").is_none());
        assert!(reason("example.com", "é://example.com.evil.com").is_none());
        assert!(reason("example.com", "aéhttp://example.com:1/").is_some());
    }

    #[test]
    fn service_ports_count_at_level_one() {
        let paranoia = |host: &str, url: &str| level(host, url).map(|(_, paranoia)| paranoia);
        assert_eq!(
            paranoia("example.com", "https://example.com@evil.com/"),
            Some(1)
        );
        assert_eq!(
            paranoia("example.com", "https://example.com.evil.com/"),
            Some(2)
        );
        assert_eq!(
            paranoia("example.com", "https://example.com:8080/"),
            Some(2)
        );
        assert_eq!(
            paranoia("example.com:8443", "https://example.com:443/x"),
            None
        );
        for url in [
            "https://example.com:1234/",
            "http://example.com:6379/",
            "http://example.com:9200/_search",
            "https://example.com:65535/",
            "http://example.com:99999/",
        ] {
            assert_eq!(paranoia("example.com", url), Some(1), "{url}");
        }
    }

    #[test]
    fn cdn_clone_and_short_names_pass_level_one() {
        // CDN and storage names start with the site's name; they count only
        // from paranoia level 2.
        assert_ne!(
            level(
                "example.com",
                "https://example.com.s3.amazonaws.com/logo.png"
            ),
            None
        );
        assert_eq!(
            level(
                "example.com",
                "https://example.com.s3.amazonaws.com/logo.png"
            )
            .map(|(_, paranoia)| paranoia),
            Some(2)
        );
        assert_eq!(reason("api", "https://api.github.com/repos/x/y"), None);
        assert_eq!(reason("web", "https://web.archive.org/web/2020/x"), None);
        assert_eq!(
            reason("git.example.com", "ssh://git@git.example.com:2222/g/r.git"),
            None
        );
        assert_eq!(
            reason("example.com:8443", "https://example.com:443/x"),
            None
        );
        assert_eq!(reason("example.com", "https://example.com:0443/x"), None);
    }
}
