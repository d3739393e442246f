//! Request evaluation: rule match, token extraction, verification through the
//! verified-token cache, requirement logic, and the edits and response that
//! follow.

use super::cache::{Reach, Verified, VerifiedStore};
use super::claims::{check_issuer_and_audience, check_time, lookup};
use super::error::JwtError;
use super::keys::Key;
use super::policy::{
    HeaderMatch, JwtPolicy, KeySource, PathMatch, Provider, Requirement, Rule, TokenSource,
    ValueMatch, MAX_TOKEN_BYTES,
};
use super::response::Rejection;
use super::token::{parse, ParsedToken, Token, BASE64URL};
use crate::decode::{percent_decode, Plus};
use crate::http::{lower_case, split_cookies, split_path, HeaderPairs};
use base64::Engine as _;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::rc::Rc;

/// The keys of a provider as the host currently has them.
#[derive(Debug, Clone, Copy)]
pub enum KeyState<'a> {
    /// Keys to verify with.
    Ready(&'a [Key]),
    /// The first fetch is still running; the request may wait.
    Pending,
    /// No keys: the fetch failed, or waiting is not allowed.
    Unavailable,
}

/// Supplies each provider's keys by index.
pub trait KeyLookup {
    /// Returns the keys of the provider at `index`.
    fn keys(&self, index: usize) -> KeyState<'_>;
}

/// Key lookup for hosts without remote JWKS: the inline keys of each
/// provider, and no keys for a provider with a remote JWKS.
pub struct InlineKeys<'a>(pub &'a JwtPolicy);

impl KeyLookup for InlineKeys<'_> {
    fn keys(&self, index: usize) -> KeyState<'_> {
        match self.0.providers.get(index).map(|provider| &provider.keys) {
            Some(KeySource::Local(set)) => KeyState::Ready(&set.keys),
            Some(KeySource::Remote(_)) | None => KeyState::Unavailable,
        }
    }
}

/// A change to the request headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestEdit {
    /// Remove every copy of the header.
    Remove(String),
    /// Add one copy of the header. The value keeps the bytes the client
    /// sent, which need not be UTF-8.
    Add(String, Vec<u8>),
    /// Replace `:path`, byte for byte except for the removed parameters.
    SetPath(Vec<u8>),
}

/// A verified token that the request carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// Provider name.
    pub provider: String,
    /// Whether the signature check came from the verified-token cache.
    pub cached: bool,
    /// The token's claims, for controls that key on them.
    pub claims: Rc<Map<String, Value>>,
}

/// The result of evaluating a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The request goes on with these edits.
    Allow {
        /// Header and path edits, in order.
        edits: Vec<RequestEdit>,
        /// Verified tokens.
        accepted: Vec<Accepted>,
        /// Whether a rule with a requirement matched.
        checked: bool,
    },
    /// The request gets this rejection as its response.
    Reject(Rejection),
    /// A provider's keys are still being fetched; evaluate again later.
    Wait,
}

/// Request data the evaluation reads.
pub struct Request<'a> {
    /// Every request header pair.
    pub headers: &'a HeaderPairs,
    /// Seconds since the epoch, from the host clock.
    pub now: u64,
}

#[derive(Debug, Clone)]
enum ProviderResult {
    Missing,
    Invalid(JwtError),
    Pending,
    Valid(Rc<ValidToken>),
}

#[derive(Debug, Clone)]
struct ValidToken {
    registered: super::token::RegisteredClaims,
    claims: Rc<Map<String, Value>>,
    payload_part: String,
    sources: Vec<TokenSource>,
    cached: bool,
}

enum Eval {
    Ok,
    Fail(JwtError, Option<usize>),
    Wait,
}

/// Evaluates the request against the policy.
pub fn evaluate(
    policy: &JwtPolicy,
    request: &Request<'_>,
    keys: &dyn KeyLookup,
    store: &mut dyn VerifiedStore,
) -> Decision {
    let headers = request.headers;
    let mut edits = client_copies_to_remove(policy, headers);
    if policy.bypass_cors_preflight && is_cors_preflight(headers) {
        return Decision::Allow {
            edits,
            accepted: Vec::new(),
            checked: false,
        };
    }
    let raw_path = header(headers, ":path").unwrap_or_default();
    // Each reading of the path selects its first matching rule, and the
    // request must pass every rule selected, so that an encoded slash cannot
    // move it from a protected route to an open one.
    let mut selected: Vec<&Rule> = Vec::new();
    for route in crate::http::route_paths(raw_path) {
        let found = policy
            .rules
            .iter()
            .find(|rule| rule_matches(rule, &route, headers));
        if let Some(rule) = found {
            if !selected.iter().any(|seen| std::ptr::eq(*seen, rule)) {
                selected.push(rule);
            }
        }
    }
    let mut accepted: Vec<Accepted> = Vec::new();
    let mut checked = false;
    for rule in selected {
        match evaluate_rule(policy, rule, request, keys, store, edits.clone(), raw_path) {
            Decision::Allow {
                edits: rule_edits,
                accepted: rule_accepted,
                checked: rule_checked,
            } => {
                for edit in rule_edits {
                    if !edits.contains(&edit) {
                        edits.push(edit);
                    }
                }
                for token in rule_accepted {
                    if !accepted.iter().any(|seen| seen.provider == token.provider) {
                        accepted.push(token);
                    }
                }
                checked |= rule_checked;
            }
            other => return other,
        }
    }
    Decision::Allow {
        edits,
        accepted,
        checked,
    }
}

/// Evaluates the request against one rule. `edits` holds the edits made so
/// far, to which the token's forwarding edits are added.
fn evaluate_rule(
    policy: &JwtPolicy,
    rule: &Rule,
    request: &Request<'_>,
    keys: &dyn KeyLookup,
    store: &mut dyn VerifiedStore,
    mut edits: Vec<RequestEdit>,
    raw_path: &[u8],
) -> Decision {
    let headers = request.headers;
    let Some(requirement) = &rule.requires else {
        return Decision::Allow {
            edits,
            accepted: Vec::new(),
            checked: false,
        };
    };
    let mut results: Vec<Option<ProviderResult>> = vec![None; policy.providers.len()];
    let mut passed = vec![false; policy.providers.len()];
    let mut context = Context {
        policy,
        request,
        keys,
        store,
        results: &mut results,
        passed: &mut passed,
        tolerated: None,
    };
    let outcome = context.eval(requirement);
    let tolerated = context.tolerated;
    match outcome {
        Eval::Wait => return Decision::Wait,
        Eval::Fail(error, index) => {
            let provider = index.map(|i| policy.providers[i].name.clone());
            return Decision::Reject(Rejection::new(&policy.realm, error, provider));
        }
        Eval::Ok => {}
    }
    // A token counts only for the providers whose requirement it met: a
    // valid token of the wrong audience or issuer is neither forwarded nor
    // used for the rule's claims.
    let valid: Vec<(usize, &ValidToken)> = results
        .iter()
        .enumerate()
        .filter(|(index, _)| passed[*index])
        .filter_map(|(index, result)| match result {
            Some(ProviderResult::Valid(token)) => Some((index, token.as_ref())),
            _ => None,
        })
        .collect();
    if !rule.claims.is_empty() {
        if valid.is_empty() {
            // A token that `allow_missing_or_failed` let through still
            // failed, and the response reports that failure rather than a
            // missing token.
            let (error, index) = tolerated.unwrap_or((JwtError::Missing, None));
            let provider = index.map(|i| policy.providers[i].name.clone());
            return Decision::Reject(Rejection::new(&policy.realm, error, provider));
        }
        let satisfied = valid
            .iter()
            .any(|(_, token)| rule.claims.iter().all(|claim| claim.holds(&token.claims)));
        if !satisfied {
            let provider = Some(policy.providers[valid[0].0].name.clone());
            return Decision::Reject(Rejection::new(
                &policy.realm,
                JwtError::ClaimMismatch,
                provider,
            ));
        }
    }
    let mut new_path: Option<Vec<u8>> = None;
    let mut new_cookies: Option<Vec<Vec<u8>>> = None;
    for (index, token) in &valid {
        forward_edits(
            &policy.providers[*index],
            token,
            headers,
            raw_path,
            &mut new_path,
            &mut new_cookies,
            &mut edits,
        );
    }
    let valid: Vec<usize> = valid.into_iter().map(|(index, _)| index).collect();
    let mut accepted = Vec::new();
    for index in valid {
        let Some(ProviderResult::Valid(token)) = results[index].take() else {
            continue;
        };
        // The results hold the only reference once evaluation is over, so
        // the claims move rather than copy.
        let token = Rc::try_unwrap(token).unwrap_or_else(|token| (*token).clone());
        accepted.push(Accepted {
            provider: policy.providers[index].name.clone(),
            cached: token.cached,
            claims: token.claims,
        });
    }
    if let Some(path) = new_path {
        edits.push(RequestEdit::SetPath(path));
    }
    // Each Cookie header stays a header of its own, less the token cookies.
    if let Some(cookies) = new_cookies {
        edits.push(RequestEdit::Remove("cookie".to_string()));
        for value in cookies.into_iter().filter(|value| !value.is_empty()) {
            edits.push(RequestEdit::Add("cookie".to_string(), value));
        }
    }
    Decision::Allow {
        edits,
        accepted,
        checked: true,
    }
}

struct Context<'a, 'r> {
    policy: &'a JwtPolicy,
    request: &'a Request<'r>,
    keys: &'a dyn KeyLookup,
    store: &'a mut dyn VerifiedStore,
    results: &'a mut Vec<Option<ProviderResult>>,
    /// Whether each provider's token met a requirement of the rule.
    passed: &'a mut Vec<bool>,
    /// The first failure that `allow_missing_or_failed` let pass.
    tolerated: Option<(JwtError, Option<usize>)>,
}

/// A provider's token as read before verification.
enum Peek {
    /// The provider's locations hold no token.
    Missing,
    /// One token, with its `iss` claim when it has one.
    Token { raw: String, issuer: Option<String> },
    /// Several different tokens, or one too long or malformed.
    Unreadable(JwtError),
}

impl Context<'_, '_> {
    fn eval(&mut self, requirement: &Requirement) -> Eval {
        match requirement {
            Requirement::Provider { index, audiences } => match self.provider(*index) {
                ProviderResult::Missing => Eval::Fail(JwtError::Missing, Some(*index)),
                ProviderResult::Invalid(error) => Eval::Fail(error, Some(*index)),
                ProviderResult::Pending => Eval::Wait,
                ProviderResult::Valid(token) => {
                    let provider = &self.policy.providers[*index];
                    // A failed audience fails this alternative only: another
                    // one may name the same provider with other audiences.
                    match check_issuer_and_audience(provider, audiences, &token.registered) {
                        Ok(()) => {
                            self.passed[*index] = true;
                            Eval::Ok
                        }
                        Err(error) => Eval::Fail(error, Some(*index)),
                    }
                }
            },
            Requirement::Any(list) => {
                let mut waiting = false;
                let mut failure: Option<(JwtError, Option<usize>)> = None;
                for item in list {
                    match self.eval(item) {
                        Eval::Ok => return Eval::Ok,
                        Eval::Wait => waiting = true,
                        Eval::Fail(error, index) => {
                            let replace = match failure {
                                None => true,
                                Some((JwtError::Missing, _)) => error != JwtError::Missing,
                                Some(_) => false,
                            };
                            if replace {
                                failure = Some((error, index));
                            }
                        }
                    }
                }
                if waiting {
                    return Eval::Wait;
                }
                let (error, index) = failure.unwrap_or((JwtError::Missing, None));
                Eval::Fail(error, index)
            }
            Requirement::All(list) => {
                let mut waiting = false;
                for item in list {
                    match self.eval(item) {
                        Eval::Ok => {}
                        Eval::Wait => waiting = true,
                        failure @ Eval::Fail(..) => return failure,
                    }
                }
                if waiting {
                    Eval::Wait
                } else {
                    Eval::Ok
                }
            }
            Requirement::AllowMissing => self.any_provider(false),
            Requirement::AllowMissingOrFailed => self.any_provider(true),
        }
    }

    /// Evaluates `allow_missing` (`failed_ok` false) and
    /// `allow_missing_or_failed` (`failed_ok` true), which accept a token of
    /// any provider. As in Envoy, each token goes to one provider chosen by
    /// its `iss`: the first provider that found it and names that issuer,
    /// else the first that found it and names none. A token no provider
    /// takes fails as from an unknown issuer.
    fn any_provider(&mut self, failed_ok: bool) -> Eval {
        let mut tokens: Vec<(String, Option<String>, Vec<usize>)> = Vec::new();
        for index in 0..self.policy.providers.len() {
            match self.peek(index) {
                Peek::Missing => {}
                Peek::Unreadable(error) => {
                    if !failed_ok {
                        return Eval::Fail(error, Some(index));
                    }
                    self.tolerate(error, Some(index));
                }
                Peek::Token { raw, issuer } => {
                    match tokens.iter_mut().find(|(seen, _, _)| *seen == raw) {
                        Some((_, _, finders)) => finders.push(index),
                        None => tokens.push((raw, issuer, vec![index])),
                    }
                }
            }
        }
        let mut waiting = false;
        for (_, issuer, finders) in &tokens {
            let providers = &self.policy.providers;
            let chosen = finders
                .iter()
                .find(|&&index| {
                    providers[index].issuer.is_some() && providers[index].issuer == *issuer
                })
                .or_else(|| {
                    finders
                        .iter()
                        .find(|&&index| providers[index].issuer.is_none())
                })
                .copied();
            let Some(index) = chosen else {
                if failed_ok {
                    self.tolerate(JwtError::UnknownIssuer, finders.first().copied());
                    continue;
                }
                return Eval::Fail(JwtError::UnknownIssuer, finders.first().copied());
            };
            match self.provider(index) {
                ProviderResult::Missing => {}
                ProviderResult::Pending => waiting = true,
                ProviderResult::Invalid(error) => {
                    if !failed_ok {
                        return Eval::Fail(error, Some(index));
                    }
                    self.tolerate(error, Some(index));
                }
                ProviderResult::Valid(token) => {
                    let provider = &self.policy.providers[index];
                    match check_issuer_and_audience(provider, &[], &token.registered) {
                        Ok(()) => self.passed[index] = true,
                        Err(error) if !failed_ok => return Eval::Fail(error, Some(index)),
                        Err(error) => self.tolerate(error, Some(index)),
                    }
                }
            }
        }
        if waiting && !failed_ok {
            Eval::Wait
        } else {
            Eval::Ok
        }
    }

    /// Keeps the first failure that `allow_missing_or_failed` let pass.
    fn tolerate(&mut self, error: JwtError, index: Option<usize>) {
        self.tolerated.get_or_insert((error, index));
    }

    /// Reads the provider's token and its issuer without verifying it.
    fn peek(&self, index: usize) -> Peek {
        let provider = &self.policy.providers[index];
        let raw = match find_token(provider, self.request.headers) {
            Ok(Some((_, raw))) => raw,
            Ok(None) => return Peek::Missing,
            Err(error) => return Peek::Unreadable(error),
        };
        match parse(&raw) {
            Ok(token) => Peek::Token {
                issuer: token.registered.iss.clone(),
                raw,
            },
            Err(error) => Peek::Unreadable(error),
        }
    }

    /// Extracts and verifies the provider's token once per request.
    fn provider(&mut self, index: usize) -> ProviderResult {
        if let Some(result) = &self.results[index] {
            return result.clone();
        }
        let provider = &self.policy.providers[index];
        let result = check_provider(
            provider,
            index,
            self.request,
            self.keys.keys(index),
            self.store,
        );
        self.results[index] = Some(result.clone());
        result
    }
}

fn check_provider(
    provider: &Provider,
    index: usize,
    request: &Request<'_>,
    keys: KeyState<'_>,
    store: &mut dyn VerifiedStore,
) -> ProviderResult {
    let (sources, raw) = match find_token(provider, request.headers) {
        Ok(Some(found)) => found,
        Ok(None) => return ProviderResult::Missing,
        Err(error) => return ProviderResult::Invalid(error),
    };
    // A token this VM verified before comes with its parse. The cache
    // returns a parse only for the same bytes, and `token` checks the lengths.
    // A token over the provider's cache limit is neither looked up nor kept.
    let cacheable = raw.len() <= provider.max_cached_token_bytes;
    let remembered = if cacheable {
        store.parsed(raw.as_bytes())
    } else {
        None
    };
    let token = match remembered
        .as_ref()
        .and_then(|(_, parsed)| parsed.token(&raw))
    {
        Some(token) => token,
        None => match parse(&raw) {
            Ok(token) => token,
            Err(error) => return ProviderResult::Invalid(error),
        },
    };
    let keys = match keys {
        KeyState::Ready(keys) => keys,
        KeyState::Pending => return ProviderResult::Pending,
        KeyState::Unavailable => return ProviderResult::Invalid(JwtError::JwksUnavailable),
    };
    let known = remembered.as_ref().map(|(verified, _)| *verified);
    let verified = if cacheable {
        verify_cached(&token, &raw, index, keys, store, known)
    } else {
        super::verify::verify(&token, keys).map(|_| false)
    };
    let cached = match verified {
        Ok(cached) => cached,
        Err(error) => return ProviderResult::Invalid(error),
    };
    if cacheable && remembered.is_none() {
        store.keep_parsed(raw.as_bytes(), Rc::new(ParsedToken::of(&token)));
    }
    if let Err(error) = check_time(provider, &token.registered, request.now) {
        return ProviderResult::Invalid(error);
    }
    ProviderResult::Valid(Rc::new(ValidToken {
        registered: token.registered.clone(),
        payload_part: token.payload_part.to_string(),
        claims: token.claims,
        sources,
        cached,
    }))
}

/// Verifies the signature, or finds an earlier verification of the same
/// token by a key the provider still has: `known` when the caller has read
/// it already, or one from the store. Returns whether the cache served it.
fn verify_cached(
    token: &Token<'_>,
    raw: &str,
    index: usize,
    keys: &[Key],
    store: &mut dyn VerifiedStore,
    known: Option<Verified>,
) -> Result<bool, JwtError> {
    let reach = Reach::of(token.header.alg);
    if let Some(hit) = known.or_else(|| store.get(raw.as_bytes(), reach)) {
        let still_trusted = hit.provider == index as u16
            && keys.iter().any(|key| {
                key.fingerprint == hit.fingerprint
                    && key.matches(token.header.alg, token.header.kid.as_deref())
            });
        if still_trusted {
            store.record_hit();
            return Ok(true);
        }
    }
    let key = super::verify::verify(token, keys)?;
    if let Some(exp) = token.registered.exp {
        store.put(
            raw.as_bytes(),
            Verified {
                provider: index as u16,
                fingerprint: key.fingerprint,
                exp,
            },
            reach,
        );
    }
    Ok(false)
}

/// Returns the provider's one token with the locations it came from, `None`
/// when the locations hold no token, or the error for different tokens or
/// one over the size limit.
fn find_token(
    provider: &Provider,
    headers: &HeaderPairs,
) -> Result<Option<(Vec<TokenSource>, String)>, JwtError> {
    let found = extract(provider, headers);
    let Some((_, raw)) = found.first() else {
        return Ok(None);
    };
    if found[1..].iter().any(|(_, token)| token != raw) {
        return Err(JwtError::MultipleTokens);
    }
    if raw.len() > MAX_TOKEN_BYTES {
        return Err(JwtError::TooLarge);
    }
    let raw = raw.clone();
    let sources = found.into_iter().map(|(source, _)| source).collect();
    Ok(Some((sources, raw)))
}

/// Reads every token of the provider's locations, in order.
fn extract(provider: &Provider, headers: &HeaderPairs) -> Vec<(TokenSource, String)> {
    let mut found = Vec::new();
    for source in &provider.sources {
        match source {
            TokenSource::Header { name, prefix } => {
                for (key, value) in headers {
                    if !same_header_name(key, name) {
                        continue;
                    }
                    if let Some(token) = strip_prefix(value, prefix) {
                        found.push((source.clone(), token));
                    }
                }
            }
            TokenSource::Param(param) => {
                let raw_path = header(headers, ":path").unwrap_or_default();
                if let (_, Some(query)) = split_path(raw_path) {
                    for (name, value) in token_query_pairs(query) {
                        if !same_argument_name(&decoded(name, Plus::Space), param) {
                            continue;
                        }
                        let value = decoded(value, Plus::Space);
                        if !value.is_empty() {
                            found.push((source.clone(), lossy_string(&value)));
                        }
                    }
                }
            }
            TokenSource::Cookie(cookie) => {
                for (key, value) in headers {
                    if !key.eq_ignore_ascii_case("cookie") {
                        continue;
                    }
                    for (name, value) in split_cookies(value) {
                        if !same_argument_name(&decoded(name, Plus::Literal), cookie) {
                            continue;
                        }
                        let value = decoded(unquote(value), Plus::Literal);
                        if !value.is_empty() {
                            found.push((source.clone(), lossy_string(&value)));
                        }
                    }
                }
            }
        }
    }
    found
}

/// Returns a query or cookie name or value as applications read it:
/// percent-decoded, with `+` as a space in query strings. A token must be
/// found, verified and removed under every spelling that the upstream
/// decodes to the configured name, such as `access%5Ftoken`.
fn decoded(bytes: &[u8], plus: Plus) -> Cow<'_, [u8]> {
    let encoded = bytes
        .iter()
        .any(|&byte| byte == b'%' || (byte == b'+' && plus == Plus::Space));
    if encoded {
        Cow::Owned(percent_decode(bytes, plus))
    } else {
        Cow::Borrowed(bytes)
    }
}

/// Splits a query string into `(name, value)` pairs at `&` and at `;`, which
/// older Rack and Python versions read as a separator too: a token in
/// `a=1;access_token=x` is found by the filter as those upstreams find it.
fn token_query_pairs(query: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    query
        .split(|&byte| byte == b'&' || byte == b';')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.iter().position(|&byte| byte == b'=') {
            Some(index) => (&pair[..index], &pair[index + 1..]),
            None => (pair, &pair[pair.len()..]),
        })
}

/// Returns whether a decoded query or cookie name reads as `configured` in
/// some upstream: PHP ends names at a NUL byte, drops leading spaces and
/// turns spaces, dots and an opening bracket into underscores, cookie
/// parsers trim the whitespace around a name, and ASP.NET Core compares
/// names ignoring case. A token under any such spelling is verified, and
/// removed when not forwarded.
fn same_argument_name(name: &[u8], configured: &str) -> bool {
    let name = name
        .split(|&byte| byte == 0)
        .next()
        .unwrap_or_default()
        .trim_ascii();
    let fold = |byte: u8| match byte {
        b' ' | b'.' | b'[' => b'_',
        other => other.to_ascii_lowercase(),
    };
    name.len() == configured.len()
        && name
            .iter()
            .zip(configured.as_bytes())
            .all(|(&a, &b)| fold(a) == fold(b))
}

/// Returns whether a request header name reads as `configured`, compared
/// ignoring case with `_` and `-` as one, because CGI-style servers read
/// `x_access_token` and `x-access-token` as the same variable.
fn same_header_name(name: &str, configured: &str) -> bool {
    let fold = |byte: u8| match byte {
        b'_' => b'-',
        other => other.to_ascii_lowercase(),
    };
    name.len() == configured.len()
        && name
            .bytes()
            .zip(configured.bytes())
            .all(|(a, b)| fold(a) == fold(b))
}

/// Returns a cookie value without the double quotes that may enclose it
/// (RFC 6265, section 4.1.1).
fn unquote(value: &[u8]) -> &[u8] {
    value
        .strip_prefix(b"\"")
        .and_then(|inner| inner.strip_suffix(b"\""))
        .unwrap_or(value)
}

/// Returns the token after a case-insensitive prefix, trimmed; `None` when
/// the value lacks the prefix or nothing follows it.
///
/// The prefix counts anywhere in the value, as in Envoy, so that the token
/// of `Basic x, Bearer token` is verified too. A space that ends the prefix
/// matches any run of whitespace and control bytes, NBSP and NEL among
/// them, so that `Bearer<TAB>token` and `Bearer<VT>token` are verified.
/// Left unread, such a header would pass a route that allows a missing
/// token and reach an upstream that splits on any whitespace.
fn strip_prefix(value: &[u8], prefix: &str) -> Option<String> {
    let prefix = prefix.as_bytes();
    let word = prefix.trim_ascii_end();
    let spaced = word.len() < prefix.len();
    let trim = |bytes: &[u8]| -> Option<String> {
        let start = bytes.iter().position(|&byte| !is_gap(byte))?;
        let end = bytes.iter().rposition(|&byte| !is_gap(byte))?;
        Some(lossy_string(&bytes[start..=end]))
    };
    if word.is_empty() {
        return trim(value);
    }
    let mut from = 0;
    while let Some(found) = value
        .get(from..)?
        .windows(word.len())
        .position(|window| window.eq_ignore_ascii_case(word))
    {
        let rest = &value[from + found + word.len()..];
        if !spaced || rest.first().is_some_and(|&byte| is_gap(byte)) {
            if let Some(token) = trim(rest) {
                return Some(token);
            }
        }
        from += found + 1;
    }
    None
}

/// Returns whether a byte separates a scheme from its token for some upstream:
/// ASCII whitespace and control bytes, DEL, and the bytes of NBSP and NEL
/// in Latin-1 and UTF-8.
fn is_gap(byte: u8) -> bool {
    byte <= b' ' || matches!(byte, 0x7f | 0x85 | 0xa0 | 0xc2)
}

/// Returns bytes as a string, invalid UTF-8 replaced. `from_utf8` checks
/// ASCII a word at a time, where the lossy decoder goes byte by byte.
fn lossy_string(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
    }
}

fn header<'h>(headers: &'h HeaderPairs, name: &str) -> Option<&'h [u8]> {
    headers
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_slice())
}

fn is_cors_preflight(headers: &HeaderPairs) -> bool {
    header(headers, ":method") == Some(b"OPTIONS".as_slice())
        && header(headers, "origin").is_some()
        && header(headers, "access-control-request-method").is_some()
}

/// Matches a rule against the route path (see [`crate::http::route_path`]),
/// so that `//admin`, `/./admin`, `/%61dmin` and `/public/../admin` meet the
/// rules of `/admin` rather than slipping past them.
fn rule_matches(rule: &Rule, path: &str, headers: &HeaderPairs) -> bool {
    let fold = |text| fold_case(text, rule.case_insensitive);
    let path_ok = match &rule.path {
        PathMatch::Prefix(prefix) => fold(path).starts_with(&*fold(prefix)),
        PathMatch::Exact(exact) => crate::http::exact_path_matches(&fold(path), &fold(exact)),
        PathMatch::SeparatedPrefix(prefix) => {
            let path = fold(path);
            let prefix = fold(prefix);
            path == prefix || (path.starts_with(&*prefix) && path[prefix.len()..].starts_with('/'))
        }
        PathMatch::Regex(regex) => regex.is_match(path),
    };
    path_ok
        && rule
            .headers
            .iter()
            .all(|matcher| header_matches(matcher, headers))
}

/// Returns `text` in ASCII lower case when `fold` is set, else as it is.
fn fold_case(text: &str, fold: bool) -> Cow<'_, str> {
    if fold {
        lower_case(text)
    } else {
        Cow::Borrowed(text)
    }
}

fn header_matches(matcher: &HeaderMatch, headers: &HeaderPairs) -> bool {
    let values: Vec<&[u8]> = headers
        .iter()
        .filter(|(key, _)| key.eq_ignore_ascii_case(&matcher.name))
        .map(|(_, value)| value.as_slice())
        .collect();
    let matched = if values.is_empty() {
        false
    } else {
        // Envoy matches a repeated header against its values joined by commas.
        let joined = values.join(&b","[..]);
        let text = String::from_utf8_lossy(&joined);
        let (value, fold) = if matcher.ignore_case {
            (text.to_ascii_lowercase(), true)
        } else {
            (text.into_owned(), false)
        };
        let prepare = |expected| fold_case(expected, fold);
        match &matcher.value {
            ValueMatch::Present => true,
            ValueMatch::Exact(expected) => value == *prepare(expected),
            ValueMatch::Prefix(expected) => value.starts_with(&*prepare(expected)),
            ValueMatch::Suffix(expected) => value.ends_with(&*prepare(expected)),
            ValueMatch::Contains(expected) => value.contains(&*prepare(expected)),
        }
    };
    matched != matcher.invert
}

/// Returns the removals of the headers this filter sets for the upstream
/// that the client sent, so that a header the request does not carry costs
/// no edit. A copy spelled with underscores is removed too, because
/// CGI-style servers read `x_jwt_sub` and `x-jwt-sub` as the same variable.
fn client_copies_to_remove(policy: &JwtPolicy, headers: &HeaderPairs) -> Vec<RequestEdit> {
    let mut names: Vec<&str> = Vec::new();
    for provider in &policy.providers {
        if let Some(name) = &provider.forward_payload_header {
            names.push(name);
        }
        for (name, _) in &provider.claim_to_headers {
            names.push(name);
        }
    }
    let mut removals: Vec<String> = Vec::new();
    for (sent, _) in headers {
        if names.iter().any(|name| same_header_name(sent, name)) {
            removals.push(sent.to_ascii_lowercase());
        }
    }
    removals.sort_unstable();
    removals.dedup();
    removals.into_iter().map(RequestEdit::Remove).collect()
}

fn forward_edits(
    provider: &Provider,
    token: &ValidToken,
    headers: &HeaderPairs,
    raw_path: &[u8],
    new_path: &mut Option<Vec<u8>>,
    new_cookies: &mut Option<Vec<Vec<u8>>>,
    edits: &mut Vec<RequestEdit>,
) {
    if let Some(name) = &provider.forward_payload_header {
        let mut payload = token.payload_part.clone();
        if provider.pad_forward_payload_header {
            // Re-encoding keeps the bytes and adds the padding.
            if let Ok(bytes) = BASE64URL.decode(&payload) {
                payload = base64::engine::general_purpose::URL_SAFE.encode(bytes);
            }
        }
        edits.push(RequestEdit::Add(name.clone(), payload.into_bytes()));
    }
    for (name, path) in &provider.claim_to_headers {
        if let Some(value) = lookup(&token.claims, path).and_then(claim_header_value) {
            edits.push(RequestEdit::Add(name.clone(), value.into_bytes()));
        }
    }
    if provider.forward {
        return;
    }
    for source in &token.sources {
        match source {
            TokenSource::Header { name, .. } => {
                edits.push(RequestEdit::Remove(name.clone()));
                for (sent, _) in headers {
                    let other = sent.to_ascii_lowercase();
                    if same_header_name(sent, name)
                        && other != *name
                        && !edits.contains(&RequestEdit::Remove(other.clone()))
                    {
                        edits.push(RequestEdit::Remove(other));
                    }
                }
            }
            TokenSource::Param(param) => {
                let current = new_path.as_deref().unwrap_or(raw_path);
                *new_path = Some(remove_param(current, param));
            }
            TokenSource::Cookie(cookie) => {
                let current = new_cookies.get_or_insert_with(|| {
                    headers
                        .iter()
                        .filter(|(key, _)| key.eq_ignore_ascii_case("cookie"))
                        .map(|(_, value)| value.clone())
                        .collect()
                });
                for value in current.iter_mut() {
                    *value = remove_cookie(value, cookie);
                }
            }
        }
    }
}

/// Renders a claim for a header: strings as they are, numbers and booleans
/// as JSON, lists of those joined by commas. Objects, and values with
/// control characters (which would split headers), are left out.
fn claim_header_value(value: &Value) -> Option<String> {
    let text = match value {
        Value::String(text) => text.clone(),
        Value::Number(number) => number.to_string(),
        Value::Bool(flag) => flag.to_string(),
        Value::Array(items) => {
            let parts: Option<Vec<String>> = items
                .iter()
                .map(|item| match item {
                    Value::Array(_) | Value::Object(_) | Value::Null => None,
                    scalar => claim_header_value(scalar),
                })
                .collect();
            parts?.join(",")
        }
        _ => return None,
    };
    if text.len() > 4096 || text.chars().any(char::is_control) {
        return None;
    }
    Some(text)
}

fn remove_param(raw_path: &[u8], param: &str) -> Vec<u8> {
    let (path, Some(query)) = split_path(raw_path) else {
        return raw_path.to_vec();
    };
    let is_token = |piece: &[u8]| {
        let name = piece.split(|&byte| byte == b'=').next().unwrap_or_default();
        !piece.is_empty() && same_argument_name(&decoded(name, Plus::Space), param)
    };
    // Only the pieces that name the token go, so every other byte, empty
    // pairs and `;` inside values among them, reaches the upstream as sent.
    let mut changed = false;
    let remaining: Vec<Vec<u8>> = query
        .split(|&byte| byte == b'&')
        .filter_map(|pair| {
            let pieces: Vec<&[u8]> = pair.split(|&byte| byte == b';').collect();
            let others: Vec<&[u8]> = pieces
                .iter()
                .copied()
                .filter(|piece| !is_token(piece))
                .collect();
            if others.len() == pieces.len() {
                return Some(pair.to_vec());
            }
            changed = true;
            let others: Vec<&[u8]> = others
                .into_iter()
                .filter(|piece| !piece.is_empty())
                .collect();
            (!others.is_empty()).then(|| others.join(&b';'))
        })
        .collect();
    if !changed {
        return raw_path.to_vec();
    }
    let mut out = path.to_vec();
    if !remaining.iter().all(Vec::is_empty) {
        out.push(b'?');
        out.extend_from_slice(&remaining.join(&b'&'));
    }
    out
}

/// Removes the cookies named `cookie` under any spelling from one Cookie
/// header value, keeping every other byte as sent. A pair without a name,
/// such as `=a=b`, stays as it is and so means to the upstream what it
/// meant before.
fn remove_cookie(raw: &[u8], cookie: &str) -> Vec<u8> {
    let remaining: Vec<&[u8]> = raw
        .split(|&byte| byte == b';')
        .filter(|piece| {
            let pair = piece.trim_ascii();
            match pair.iter().position(|&byte| byte == b'=') {
                Some(end) => !same_argument_name(&decoded(&pair[..end], Plus::Literal), cookie),
                None => true,
            }
        })
        .collect();
    let joined = remaining.join(&b';');
    let rest = joined.trim_ascii();
    if rest
        .iter()
        .all(|&byte| byte == b';' || byte.is_ascii_whitespace())
    {
        Vec::new()
    } else {
        rest.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_is_case_insensitive() {
        assert_eq!(
            strip_prefix(b"bearer abc", "Bearer "),
            Some("abc".to_string())
        );
        assert_eq!(
            strip_prefix(b"BEARER  abc ", "Bearer "),
            Some("abc".to_string())
        );
        assert_eq!(strip_prefix(b"Basic abc", "Bearer "), None);
        assert_eq!(strip_prefix(b"Bearer ", "Bearer "), None);
        assert_eq!(
            strip_prefix(b"Bearer\tabc", "Bearer "),
            Some("abc".to_string())
        );
        assert_eq!(strip_prefix(b"Bearerabc", "Bearer "), None);
        assert_eq!(strip_prefix(b"Bearer,abc", "Bearer "), None);
        assert_eq!(strip_prefix(b"abc", ""), Some("abc".to_string()));
    }

    #[test]
    fn prefix_counts_anywhere_and_after_any_gap() {
        let token = Some("abc".to_string());
        for value in [
            &b"Basic x, Bearer abc"[..],
            b"Bearer\x0babc",
            b"Bearer\x0cabc",
            b"Bearer\x1fabc",
            b"Bearer\xa0abc",
            b"Bearer\x85abc",
            b"Bearer\xc2\xa0abc\xc2\x85",
            b"Bearerabc, Bearer abc",
        ] {
            assert_eq!(strip_prefix(value, "Bearer "), token, "{value:?}");
        }
        assert_eq!(strip_prefix(b"Basic YmVhcmVy", "Bearer "), None);
        assert_eq!(strip_prefix(b"Bearer\x0b", "Bearer "), None);
    }

    #[test]
    fn argument_names_read_as_upstreams_read_them() {
        for name in [
            "access_token",
            "access.token",
            "access token",
            "access[token",
            "ACCESS_TOKEN",
        ] {
            assert!(
                same_argument_name(name.as_bytes(), "access_token"),
                "{name}"
            );
        }
        for name in [
            "access-token",
            "accesstoken",
            "access_tokens",
            "access]token",
        ] {
            assert!(
                !same_argument_name(name.as_bytes(), "access_token"),
                "{name}"
            );
        }
        assert!(same_header_name("X_Access_Token", "x-access-token"));
        assert!(!same_header_name("x-access-tokens", "x-access-token"));
    }

    #[test]
    fn every_spelling_of_a_token_parameter_is_removed() {
        assert_eq!(
            remove_param(b"/a?access.token=x&b=1", "access_token"),
            b"/a?b=1"
        );
        assert_eq!(
            remove_param(b"/a?b=1;access_token=x;c=2&d=3", "access_token"),
            b"/a?b=1;c=2&d=3"
        );
        assert_eq!(remove_param(b"/a?ACCESS%20TOKEN=x", "access_token"), b"/a");
        assert_eq!(
            remove_param(b"/a?q=x;y&b=1", "access_token"),
            b"/a?q=x;y&b=1"
        );
    }

    #[test]
    fn param_removal_keeps_others() {
        assert_eq!(
            remove_param(b"/a?access_token=x&b=1", "access_token"),
            b"/a?b=1"
        );
        assert_eq!(remove_param(b"/a?access_token=x", "access_token"), b"/a");
        assert_eq!(remove_param(b"/a", "access_token"), b"/a");
    }

    #[test]
    fn param_removal_keeps_bytes_that_are_not_utf8() {
        assert_eq!(
            remove_param(b"/caf\xe9/%ff?x=\xff&access_token=t", "access_token"),
            b"/caf\xe9/%ff?x=\xff"
        );
    }

    #[test]
    fn names_as_php_and_cookie_parsers_read_them() {
        for name in [
            &b" access_token"[..],
            b"  access.token",
            b"access_token\0x",
            b"access_token\0",
            b"access_token\t",
            b"access_token ",
        ] {
            assert!(same_argument_name(name, "access_token"), "{name:?}");
        }
        assert!(!same_argument_name(b"access_tokens", "access_token"));
        assert!(!same_argument_name(b"x\0access_token", "access_token"));
    }

    #[test]
    fn param_removal_keeps_empty_pairs_and_separators() {
        assert_eq!(
            remove_param(b"/a?x=1&&y=2&+access.token=t&", "access_token"),
            b"/a?x=1&&y=2&"
        );
        assert_eq!(remove_param(b"/a?", "access_token"), b"/a?");
        assert_eq!(remove_param(b"/a?&access_token=t", "access_token"), b"/a");
        assert_eq!(
            remove_param(b"/a?q=%41;b&access_token%00x=t", "access_token"),
            b"/a?q=%41;b"
        );
    }

    #[test]
    fn cookie_removal_keeps_other_bytes() {
        let cases: [(&[u8], &[u8]); 6] = [
            (b"session-token=v; =session-token=f", b"=session-token=f"),
            (b"a=1;b=2; session-token=v", b"a=1;b=2"),
            (b"session-token =f; a=1", b"a=1"),
            (b"a=\xe9; session-token=v;;b=2", b"a=\xe9;;b=2"),
            (b"%20session-token=f", b""),
            (b"session-token=v", b""),
        ];
        for (raw, kept) in cases {
            assert_eq!(
                remove_cookie(raw, "session-token"),
                kept,
                "{:?}",
                raw.escape_ascii().to_string()
            );
        }
    }

    #[test]
    fn param_removal_decodes_names() {
        assert_eq!(
            remove_param(b"/a?access%5Ftoken=x&b=1", "access_token"),
            b"/a?b=1"
        );
        assert_eq!(
            remove_param(b"/a?access%5ftoken=x&access_token=y", "access_token"),
            b"/a"
        );
        assert_eq!(
            remove_param(b"/a?access%255Ftoken=x", "access_token"),
            b"/a?access%255Ftoken=x"
        );
    }

    #[test]
    fn cookie_quotes_are_stripped() {
        assert_eq!(unquote(b"\"a.b.c\""), b"a.b.c");
        assert_eq!(unquote(b"a.b.c"), b"a.b.c");
        assert_eq!(unquote(b"\"a.b.c"), b"\"a.b.c");
        assert_eq!(unquote(b"\""), b"\"");
    }

    #[test]
    fn claim_values_for_headers() {
        assert_eq!(
            claim_header_value(&serde_json::json!("a")),
            Some("a".to_string())
        );
        assert_eq!(
            claim_header_value(&serde_json::json!(["a", 1, true])),
            Some("a,1,true".to_string())
        );
        assert_eq!(claim_header_value(&serde_json::json!("a\r\nx: y")), None);
        assert_eq!(claim_header_value(&serde_json::json!({"a": 1})), None);
    }

    /// Records the reach of every cache read and write.
    #[derive(Default)]
    struct Recorder {
        gets: Vec<Reach>,
        puts: Vec<Reach>,
    }

    impl VerifiedStore for Recorder {
        fn get(&mut self, _token: &[u8], reach: Reach) -> Option<Verified> {
            self.gets.push(reach);
            None
        }

        fn put(&mut self, _token: &[u8], _verified: Verified, reach: Reach) {
            self.puts.push(reach);
        }
    }

    /// Reads the fixture JWKS and tokens of tests/fixtures/jwt.
    fn fixtures() -> (String, serde_json::Value) {
        let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/jwt/");
        let jwks = std::fs::read_to_string(format!("{fixtures}jwks.json")).unwrap();
        let tokens = serde_json::from_str(
            &std::fs::read_to_string(format!("{fixtures}tokens.json")).unwrap(),
        )
        .unwrap();
        (jwks, tokens)
    }

    /// Evaluates a GET of `/api` with `token` as a Bearer token, under one
    /// provider `main` with the fixture keys and the extra provider fields.
    fn evaluate_bearer(
        jwks: &str,
        provider: serde_json::Value,
        token: &str,
        store: &mut Recorder,
    ) -> Decision {
        let mut section = serde_json::json!({
            "issuer": "https://issuer.example",
            "audiences": ["api"],
            "local_jwks": {"inline_string": jwks},
        });
        if let (Some(section), Some(extra)) = (section.as_object_mut(), provider.as_object()) {
            section.extend(extra.clone());
        }
        let document = serde_json::json!({"jwt": {
            "providers": {"main": section},
            "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "main"}}],
        }});
        let config = crate::config::Config::from_json(document.to_string().as_bytes()).unwrap();
        let headers = vec![
            (":path".to_string(), b"/api".to_vec()),
            (
                "authorization".to_string(),
                format!("Bearer {token}").into_bytes(),
            ),
        ];
        let request = Request {
            headers: &headers,
            now: 1_893_456_000,
        };
        evaluate(&config.jwt, &request, &InlineKeys(&config.jwt), store)
    }

    #[test]
    fn hmac_tokens_skip_shared_slots() {
        let (jwks, tokens) = fixtures();
        let cases = [
            ("far_hs256", Reach::Local),
            ("far_rs256", Reach::Shared),
            ("far_es256", Reach::Shared),
            ("far_eddsa", Reach::Shared),
        ];
        for (name, reach) in cases {
            let token = tokens[name].as_str().unwrap();
            let mut store = Recorder::default();
            let decision = evaluate_bearer(&jwks, serde_json::json!({}), token, &mut store);
            assert!(
                matches!(decision, Decision::Allow { .. }),
                "{name}: {decision:?}"
            );
            assert_eq!(store.gets, [reach], "{name}");
            assert_eq!(store.puts, [reach], "{name}");
        }
    }

    #[test]
    fn tokens_over_the_cache_limit_are_verified_but_not_cached() {
        let (jwks, tokens) = fixtures();
        let token = tokens["far_rs256"].as_str().unwrap();
        let last = if token.ends_with('A') { "Q" } else { "A" };
        let forged = format!("{}{last}", &token[..token.len() - 1]);
        for (limit, token, allowed, cached) in [
            (token.len(), token, true, true),
            (token.len() - 1, token, true, false),
            (token.len() - 1, &forged[..], false, false),
        ] {
            let limit_field =
                serde_json::json!({"jwt_cache_config": {"jwt_max_token_size": limit}});
            let mut store = Recorder::default();
            let decision = evaluate_bearer(&jwks, limit_field, token, &mut store);
            assert_eq!(
                matches!(decision, Decision::Allow { .. }),
                allowed,
                "limit {limit}: {decision:?}"
            );
            assert_eq!(!store.gets.is_empty(), cached, "limit {limit}");
            assert_eq!(!store.puts.is_empty(), cached && allowed, "limit {limit}");
        }
    }
}
