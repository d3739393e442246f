//! Portcullis: a proxy-wasm security filter.
//!
//! This crate is the adapter between the proxy-wasm 0.2.5 SDK and
//! `portcullis-core`, which contains all security logic. It reads host data,
//! calls the core, applies its decisions and writes the core's events to the
//! host log.

mod abi;
mod events;
mod headers;
mod host;
mod jwt;
mod limits;
mod logger;
mod metrics;
mod root;
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
mod small_blocks;
mod stream;

#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOCATOR: small_blocks::SmallBlocks = small_blocks::SmallBlocks::new();

use proxy_wasm::traits::RootContext;
use root::Root;

proxy_wasm::main! {{
    logger::install();
    proxy_wasm::set_root_context(|_context_id| -> Box<dyn RootContext> {
        Box::new(Root::default())
    });
}}
