//! Portcullis as a WebAssembly component (world `portcullis` of
//! `wit/portcullis.wit`), for hosts that are not proxies.
//!
//! The host hands over each request whole and applies the decision. This
//! crate only adapts the component interface to `portcullis-core`, making
//! the same core calls, in the same order, as the proxy-wasm adapter. The
//! order is the request plan, the filter over the headers, token validation,
//! the limits on the headers, the filter over the body and the limits on the
//! body. Response hardening follows through the `exchange` resource.
//!
//! Nothing here panics: a panic would trap and end the host's instance.

mod exchange;
mod host;
mod request;

/// Bindings of the world, generated from `wit/portcullis.wit`.
#[allow(
    unsafe_code,
    reason = "the generated canonical ABI glue reads and writes linear memory"
)]
mod bindings {
    wit_bindgen::generate!({
        world: "portcullis",
        path: "../wit",
    });

    use super::Component;
    export!(Component);
}

use bindings::exports::portcullis::filter::checks::{Decision, Guest, Request};
use bindings::portcullis::filter::log;
use portcullis_core::config::Config;
use portcullis_core::event::{redact_config_message, SecurityEvent};
use portcullis_core::export::LogLimiter;
use portcullis_core::jwt::cache::LocalCache;
use portcullis_core::jwt::policy::KeySource;
use portcullis_core::limits::store::Anchor;
use std::cell::RefCell;
use std::rc::Rc;

/// A compiled configuration and the state that lives as long as it.
pub(crate) struct State {
    /// The applied configuration.
    pub config: Config,
    /// The CAS token of the limits anchor, cached once read.
    pub anchor: Anchor,
    /// Salt of the limits key hashes; empty when the store failed.
    pub salt: Vec<u8>,
    /// Verified tokens of this instance.
    pub verified: RefCell<LocalCache>,
    /// The per-kind rate limit of event lines.
    pub log_limiter: RefCell<LogLimiter>,
}

impl State {
    fn new(config: Config) -> Self {
        let salt = if config.limits.enabled() {
            host::load_salt()
        } else {
            Vec::new()
        };
        State {
            verified: RefCell::new(LocalCache::new(config.jwt.cache_entries)),
            log_limiter: RefCell::new(LogLimiter::default()),
            anchor: Anchor::default(),
            salt,
            config,
        }
    }
}

thread_local! {
    /// The configuration in force; `None` until `configure` succeeds or the
    /// first request compiles the defaults.
    static ACTIVE: RefCell<Option<Rc<State>>> = const { RefCell::new(None) };
}

/// Returns the configuration in force, compiling the defaults before the
/// first `configure`. `None` means the defaults failed to compile, and
/// requests then pass unchanged, as in the proxy module.
fn active() -> Option<Rc<State>> {
    if let Some(state) = ACTIVE.with(|active| active.borrow().clone()) {
        return Some(state);
    }
    match Config::defaults() {
        Ok(config) => {
            let state = Rc::new(State::new(config));
            ACTIVE.with(|active| *active.borrow_mut() = Some(state.clone()));
            Some(state)
        }
        Err(error) => {
            let message = format!(
                "portcullis: default configuration failed to compile: {error}, passing traffic unchanged"
            );
            log::message(log::Level::Error, &message);
            None
        }
    }
}

/// Returns why the component cannot apply a configuration that compiled,
/// or `None` when it can.
fn unsupported(config: &Config) -> Option<String> {
    for provider in &config.jwt.providers {
        if let KeySource::Remote(_) = provider.keys {
            return Some(format!(
                "jwt.providers: provider {} uses remote_jwks, which the component does not support because it has no outbound HTTP: give its keys in local_jwks",
                provider.name
            ));
        }
    }
    if config.events.export.is_some() {
        return Some(
            "events.export: the component does not export events because it has no outbound HTTP: read them from the log sink"
                .to_string(),
        );
    }
    None
}

/// The component's implementation of the exported `checks` interface.
struct Component;

impl Guest for Component {
    type Exchange = exchange::Exchange;

    fn configure(document: String) -> Result<(), String> {
        let compiled = Config::from_json(document.as_bytes())
            .map_err(|error| redact_config_message(&error.to_string()))
            .and_then(|config| match unsupported(&config) {
                Some(message) => Err(message),
                None => Ok(config),
            });
        match compiled {
            Ok(config) => {
                let state = Rc::new(State::new(config));
                ACTIVE.with(|active| *active.borrow_mut() = Some(state));
                Ok(())
            }
            Err(message) => {
                host::write_event(&SecurityEvent::config_rejected(host::now(), &message));
                Err(message)
            }
        }
    }

    fn check_request(request: Request) -> Decision {
        match active() {
            Some(state) => request::check(&state, request),
            None => request::pass(),
        }
    }
}
