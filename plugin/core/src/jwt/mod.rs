//! Token validation after Envoy's `jwt_authn` filter.
//!
//! - [`config`] is the JSON form of Envoy's `JwtAuthentication` message and
//!   [`policy`] compiles it.
//! - [`token`] parses compact JWS strictly, [`keys`] parses JWKS and PEM
//!   keys, [`verify`] checks HMAC tags with `hmac` and signatures
//!   with `rsa`, `p256`, `p384`, `p521` and [`ed25519`] ([`montgomery`]
//!   does RSA's arithmetic on wasm32, and [`weierstrass`] ECDSA's), [`claims`]
//!   checks the time window, issuer, audiences and rule claim requirements.
//! - [`check::evaluate`] runs a request through the rules and returns a
//!   [`check::Decision`]; [`response`] builds the 401 and 403 answers.
//! - [`cache`] keeps verified tokens per VM and in shared-data slots, and
//!   [`remote`] schedules remote JWKS fetches shared by worker VMs.

pub mod cache;
pub mod check;
pub mod claims;
pub(crate) mod config;
pub mod ed25519;
pub mod error;
pub mod keys;
pub mod montgomery;
pub mod policy;
pub mod remote;
pub mod response;
mod roca;
pub mod token;
pub mod verify;
pub mod weierstrass;
