//! The root context: configuration, metric definitions and HTTP context
//! creation.

use crate::host;
use crate::metrics::Metrics;
use crate::stream::{PassThrough, Shared, Stream};
use portcullis_core::config::Config;
use portcullis_core::event::{redact_config_message, SecurityEvent};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;
use std::cell::OnceCell;
use std::rc::Rc;
use std::time::Duration;

/// Tick period for sweeping counters and flushing the event export queue,
/// used when remote JWKS do not set a shorter one.
const TICK_PERIOD: Duration = Duration::from_secs(1);

/// The root context of one plugin instance.
#[derive(Default)]
pub struct Root {
    /// Counters, defined once on first use.
    metrics: OnceCell<Rc<Metrics>>,
    /// The configuration that the last successful `on_configure` applied.
    active: Option<Rc<Shared>>,
    /// Defaults for HTTP contexts created before any configuration was
    /// applied, compiled on first use. `None` inside means they failed to
    /// compile and such contexts pass traffic unchanged.
    fallback: OnceCell<Option<Rc<Shared>>>,
}

impl Context for Root {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        if let Some(active) = &self.active {
            if crate::events::on_http_call_response(active, token_id, num_headers) {
                return;
            }
            crate::jwt::on_http_call_response(active, token_id, num_headers, body_size);
        }
    }
}

impl RootContext for Root {
    fn on_queue_ready(&mut self, queue_id: u32) {
        if let Some(active) = &self.active {
            crate::jwt::on_queue_ready(active, queue_id);
        }
    }

    fn on_vm_start(&mut self, _vm_configuration_size: usize) -> bool {
        log::info!("portcullis: VM started");
        true
    }

    /// Compiles the whole configuration before applying any of it, so a
    /// rejected document leaves the previous configuration in force.
    fn on_configure(&mut self, plugin_configuration_size: usize) -> bool {
        let metrics = self.metrics();
        let plugin_name = host::plugin_name();
        let compiled = host::plugin_configuration(plugin_configuration_size).and_then(|document| {
            Config::from_json(&document).map_err(|error| redact_config_message(&error.to_string()))
        });
        let config = match compiled {
            Ok(config) => config,
            Err(message) => {
                log::error!("portcullis: invalid plugin configuration: {message}");
                let event = SecurityEvent::config_rejected(host::current_time(), &message)
                    .with_observer(plugin_name.as_deref());
                log::error!("{}", event.to_json());
                return false;
            }
        };
        log::info!(
            "portcullis: configuration applied: filter {}, header hardening {}",
            describe_filter(&config),
            if config.headers.enabled() {
                "on"
            } else {
                "off"
            }
        );
        let jwt = crate::jwt::JwtRuntime::new(&config.jwt);
        let limits = crate::limits::LimitsRuntime::new(&config.limits);
        let shared = Rc::new(Shared {
            config,
            metrics,
            plugin_name,
            jwt,
            limits,
            events: crate::events::EventsRuntime::new(),
        });
        let wants_ticks = shared.config.limits.enabled() || shared.config.events.export.is_some();
        if !crate::jwt::start(&shared) && wants_ticks {
            if let Err(status) = crate::abi::set_tick_period(TICK_PERIOD) {
                log::error!("portcullis: setting the tick period failed with status {status}, expired counters are reclaimed only when their keys return and events are not exported");
            }
        }
        self.active = Some(shared);
        true
    }

    fn on_tick(&mut self) {
        if let Some(active) = &self.active {
            crate::jwt::on_tick(active);
            crate::limits::on_tick(active);
            crate::events::on_tick(active);
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        match self.shared() {
            Some(shared) => Some(Box::new(Stream::new(context_id, shared))),
            None => Some(Box::new(PassThrough)),
        }
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

impl Root {
    fn metrics(&self) -> Rc<Metrics> {
        self.metrics
            .get_or_init(|| Rc::new(Metrics::define()))
            .clone()
    }

    fn shared(&self) -> Option<Rc<Shared>> {
        if let Some(active) = &self.active {
            return Some(active.clone());
        }
        self.fallback
            .get_or_init(|| {
                log::warn!("portcullis: no plugin configuration applied yet, using the defaults");
                match Config::defaults() {
                    Ok(config) => Some(Rc::new(Shared {
                        jwt: crate::jwt::JwtRuntime::new(&config.jwt),
                        limits: crate::limits::LimitsRuntime::new(&config.limits),
                        events: crate::events::EventsRuntime::new(),
                        config,
                        metrics: self.metrics(),
                        plugin_name: host::plugin_name(),
                    })),
                    Err(error) => {
                        log::error!("portcullis: default configuration failed to compile: {error}, passing traffic unchanged");
                        None
                    }
                }
            })
            .clone()
    }
}

fn describe_filter(config: &Config) -> String {
    let filter = &config.filter;
    if !filter.enabled() {
        return "off".to_string();
    }
    format!(
        "on ({:?} mode, {} rules, max body {} bytes, {:?} larger bodies)",
        filter.mode(),
        filter.rules().len(),
        filter.max_body_bytes(),
        filter.on_body_too_large()
    )
    .to_lowercase()
}
