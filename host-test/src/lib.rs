//! `host-test`: a proxy-wasm host on wasmtime that behaves like Envoy's, for running the
//! Portcullis module outside a proxy.
//!
//! - [`module::Plugin`] compiles a module once (cached on disk) for any number of VMs.
//! - [`vm::Vm`] is one VM with its host state; [`stream`] drives HTTP streams through it.
//! - [`shared::HostShared`] is what the VMs of one host share: shared data, queues, metrics
//!   and the clock.
//! - [`scenario`] runs scenario files; [`serve`] is a loopback reverse proxy.
//! - [`startup`] measures compile, instantiate and configure time and memory per VM.
//! - [`oci`] packs the module as OCI images for Istio and Envoy Gateway.

pub mod abi;
pub mod fuzz;
mod hostcalls;
pub mod module;
pub mod oci;
mod props;
pub mod replay;
pub mod scenario;
pub mod serve;
pub mod shared;
pub mod startup;
pub mod state;
pub mod stream;
pub mod vm;

pub use hostcalls::provided_imports;
