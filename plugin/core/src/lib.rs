//! Security logic of the Portcullis proxy-wasm filter, free of any proxy ABI
//! so that it builds and tests natively.
//!
//! The `portcullis` crate reads host data, calls into this crate and applies
//! its decisions:
//!
//! - [`config::Config::from_json`] turns the plugin configuration into a
//!   compiled [`config::Config`] or an [`error::Error`] naming the failing
//!   JSON path.
//! - [`headers::HeaderPolicy`] computes response header edits and request
//!   headers to strip.
//! - [`filter::Filter`] inspects request headers and bodies with the rules in
//!   [`rules`], and [`body::BodyTracker`] decides when a body is complete.
//! - [`event::SecurityEvent`] renders one log line per decision.

pub mod body;
pub mod config;
pub mod decode;
pub mod error;
pub mod event;
pub mod filter;
pub mod headers;
pub mod http;
pub mod jwt;
pub mod rules;
