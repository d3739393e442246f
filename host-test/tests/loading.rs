//! Module loading and start-up, with small modules written in the text format.

// Test helpers outside #[test] functions fail the test on any error, so panicking is right.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use host_test::module::{self, Plugin};
use host_test::shared::{Clock, HostShared};
use host_test::state::VmOptions;
use host_test::vm::{StartError, Vm};

const BASE: &str = r#"
  (memory (export "memory") 1)
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param i32) (result i32) (i32.const 1024))
"#;

fn load(body: &str) -> anyhow::Result<Plugin> {
    let engine = module::engine()?;
    Plugin::from_bytes(&engine, format!("(module {body})").as_bytes())
}

fn start(plugin: &Plugin, configuration: &str) -> Result<Vm, StartError> {
    let options = VmOptions {
        plugin_configuration: configuration.as_bytes().to_vec(),
        ..VmOptions::default()
    };
    Vm::start(
        plugin,
        Arc::new(options),
        HostShared::new(Clock::system()),
        0,
    )
}

#[test]
fn import_envoy_lacks_rejected() {
    let body = format!(
        r#"(import "wasi_snapshot_preview1" "path_open" (func (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32))) {BASE}"#
    );
    let error = load(&body)
        .err()
        .expect("a module importing path_open must not load");
    let message = format!("{error:#}");
    assert!(
        message.contains("wasi_snapshot_preview1.path_open"),
        "{message}"
    );
    assert!(message.contains("does not provide"), "{message}");
}

#[test]
fn unknown_env_import_rejected() {
    let body = format!(r#"(import "env" "proxy_made_up" (func)) {BASE}"#);
    let message = format!("{:#}", load(&body).err().expect("must not load"));
    assert!(message.contains("env.proxy_made_up"), "{message}");
}

#[test]
fn module_without_abi_version_rejected() {
    let body = r#"(memory (export "memory") 1) (func (export "malloc") (param i32) (result i32) (i32.const 8))"#;
    let message = format!("{:#}", load(body).err().expect("must not load"));
    assert!(message.contains("ABI version"), "{message}");
}

#[test]
fn configure_false_rejects_with_logs() {
    let body = format!(
        r#"(import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
        {BASE}
        (data (i32.const 16) "bad configuration")
        (func (export "proxy_on_configure") (param i32 i32) (result i32)
          (drop (call $log (i32.const 4) (i32.const 16) (i32.const 17)))
          (i32.const 0))"#
    );
    let plugin = load(&body).expect("module loads");
    match start(&plugin, "{}") {
        Err(StartError::ConfigRejected { logs }) => {
            assert_eq!(logs.len(), 1);
            assert_eq!(logs[0].message, "bad configuration");
        }
        Err(other) => panic!("unexpected error: {other}"),
        Ok(_) => panic!("a configure returning false must reject the plugin"),
    }
}

#[test]
fn plugin_configuration_visible_in_configure_only() {
    // proxy_on_configure reads the configuration size through proxy_get_buffer_status
    // and rejects unless it matches the size the host passed.
    let body = format!(
        r#"(import "env" "proxy_get_buffer_status" (func $status (param i32 i32 i32) (result i32)))
        {BASE}
        (func (export "proxy_on_configure") (param $ctx i32) (param $size i32) (result i32)
          (if (i32.ne (call $status (i32.const 7) (i32.const 64) (i32.const 68)) (i32.const 0))
            (then (return (i32.const 0))))
          (i32.eq (i32.load (i32.const 64)) (local.get $size)))
        (func (export "proxy_on_tick") (param i32)
          ;; Outside proxy_on_configure the plugin configuration does not exist: NOT_FOUND.
          (if (i32.ne (call $status (i32.const 7) (i32.const 64) (i32.const 68)) (i32.const 1))
            (then unreachable)))"#
    );
    let plugin = load(&body).expect("module loads");
    let mut vm = start(&plugin, "{\"a\":1}").expect("configuration accepted");
    vm.fire_tick();
    assert_eq!(vm.failure(), None);
}

#[test]
fn trap_in_start_names_callback() {
    let body = format!(
        r#"{BASE} (func (export "proxy_on_vm_start") (param i32 i32) (result i32) unreachable)"#
    );
    let plugin = load(&body).expect("module loads");
    match start(&plugin, "") {
        Err(StartError::Trap { callback, .. }) => assert_eq!(callback, "proxy_on_vm_start"),
        Err(other) => panic!("unexpected error: {other}"),
        Ok(_) => panic!("a trapping vm start must fail"),
    }
}

#[test]
fn compiled_module_cached_on_disk() {
    let dir = std::env::temp_dir().join(format!("portcullis-cache-test-{}", std::process::id()));
    std::env::set_var("PORTCULLIS_CACHE_DIR", &dir);
    let source = format!(
        "(module {BASE} (func (export \"cache_marker_{}\")))",
        std::process::id()
    );
    let engine = module::engine().expect("engine");
    let first = Plugin::from_bytes(&engine, source.as_bytes()).expect("compiles");
    let second = Plugin::from_bytes(&engine, source.as_bytes()).expect("loads from cache");
    std::env::remove_var("PORTCULLIS_CACHE_DIR");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!first.from_cache);
    assert!(second.from_cache);
}
