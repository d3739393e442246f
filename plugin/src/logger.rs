//! The logger behind the `log` macros: each record goes to the host with
//! `proxy_log`, whose own level filter applies.
//!
//! The SDK's logger unwraps the status of `proxy_log`, so a host that failed
//! one log call would trap the VM. This one drops the line instead, because
//! a log call has no caller that could act on the failure.

use crate::abi;

struct HostLogger;

static LOGGER: HostLogger = HostLogger;

/// Installs the logger at trace level, so the host decides what it keeps,
/// and a panic hook that logs a panic's message at critical level before the
/// VM aborts.
pub fn install() {
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Trace);
        std::panic::set_hook(Box::new(|info| {
            let _ = abi::log(CRITICAL, &info.to_string());
        }));
    }
}

/// The ABI's critical log level, which the `log` crate does not have.
const CRITICAL: u32 = 5;

impl log::Log for HostLogger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        // The ABI's levels run from 0 (trace) to 4 (error).
        let level = match record.level() {
            log::Level::Trace => 0,
            log::Level::Debug => 1,
            log::Level::Info => 2,
            log::Level::Warn => 3,
            log::Level::Error => 4,
        };
        let message = match record.args().as_str() {
            Some(text) => std::borrow::Cow::Borrowed(text),
            None => std::borrow::Cow::Owned(record.args().to_string()),
        };
        let _ = abi::log(level, &message);
    }

    fn flush(&self) {}
}
