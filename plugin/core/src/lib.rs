//! Security logic of the Portcullis proxy-wasm filter, free of any proxy ABI
//! so that it builds and tests natively.
//!
//! The `portcullis` crate reads host data, calls into this crate and applies
//! its decisions:
//!
//! - [`config::Config::from_json`] turns the plugin configuration into a
//!   compiled [`config::Config`] or an [`error::Error`] naming the failing
//!   JSON path.
//! - [`headers::HeaderPolicy`] computes response header edits, and
//!   [`headers::plan_request`] the request side: host allowlist, CORS
//!   preflights ([`cors`]), headers to strip and the client address
//!   ([`client`]).
//! - [`client::client_address`] finds the client of a request for every
//!   control that needs it.
//! - [`filter::Filter`] splits a request into [`targets`], runs the rules of
//!   [`ruleset`] and the checks of [`protocol`] over them and scores the
//!   matches, and [`body::BodyTracker`] decides when a body is complete.
//! - [`event::SecurityEvent`] renders one log line per decision, and
//!   [`export`] rate-limits those lines per kind and batches them for an HTTP
//!   collector.
//! - [`limits::Limits`] counts attempts per key in shared data and
//!   rejects keys over their limit.
//! - [`pipeline`] contains the steps between those controls that every
//!   adapter takes the same way: verdicts, local response headers and token
//!   events.

pub mod body;
pub mod client;
pub mod config;
pub mod cookies;
pub mod cors;
pub mod decode;
pub mod error;
pub mod event;
pub mod export;
pub mod filter;
mod fnv;
pub mod headers;
pub mod hosts;
pub mod http;
pub mod jwt;
pub mod limits;
pub mod pipeline;
pub mod protocol;
pub mod rules;
pub mod ruleset;
pub mod targets;
