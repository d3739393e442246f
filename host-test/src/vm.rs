//! One plugin VM: a wasmtime instance with its host state, driven through the ABI's
//! lifecycle the way Envoy drives a VM on one worker thread.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::{Instance, Linker, Store, TypedFunc};

use crate::hostcalls;
use crate::module::Plugin;
use crate::shared::HostShared;
use crate::state::{
    CallResponse, Callback, FailurePolicy, HostState, IdMap, LogLevel, LogRecord, OutgoingCall,
    VmOptions,
};
use crate::stream::StreamDriver;

/// Why a VM could not be started.
#[derive(Debug)]
pub enum StartError {
    /// Instantiation failed: a missing import, a bad module.
    Instantiate(String),
    /// A start-up callback trapped.
    Trap {
        callback: &'static str,
        message: String,
        logs: Vec<LogRecord>,
    },
    /// `proxy_on_vm_start` returned false.
    VmStartRejected { logs: Vec<LogRecord> },
    /// `proxy_on_configure` returned false: the plugin configuration was rejected.
    ConfigRejected { logs: Vec<LogRecord> },
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (summary, logs) = match self {
            StartError::Instantiate(message) => {
                return write!(f, "failed to instantiate the module: {message}")
            }
            StartError::Trap {
                callback,
                message,
                logs,
            } => (format!("{callback} trapped: {message}"), logs),
            StartError::VmStartRejected { logs } => {
                ("proxy_on_vm_start returned false".to_string(), logs)
            }
            StartError::ConfigRejected { logs } => (
                "the plugin rejected its configuration (proxy_on_configure returned false)"
                    .to_string(),
                logs,
            ),
        };
        write!(f, "{summary}")?;
        for line in logs {
            write!(f, "\n  plugin log [{:?}] {}", line.level, line.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for StartError {}

type Cb1 = TypedFunc<i32, ()>;
type Cb2 = TypedFunc<(i32, i32), ()>;
type Cb2R = TypedFunc<(i32, i32), i32>;
type Cb3R = TypedFunc<(i32, i32, i32), i32>;
type Cb5 = TypedFunc<(i32, i32, i32, i32, i32), ()>;

/// The guest's callbacks; a missing one is skipped, as proxy-wasm-cpp-host does. Each
/// sits behind an `Arc` because a call clones it out of the VM first, and cloning a
/// `TypedFunc` itself updates wasmtime's type registry.
#[derive(Default)]
pub(crate) struct Exports {
    pub context_create: Option<Arc<Cb2>>,
    pub vm_start: Option<Arc<Cb2R>>,
    pub configure: Option<Arc<Cb2R>>,
    pub tick: Option<Arc<Cb1>>,
    pub request_headers: Option<Arc<Cb3R>>,
    pub request_body: Option<Arc<Cb3R>>,
    pub request_trailers: Option<Arc<Cb2R>>,
    pub response_headers: Option<Arc<Cb3R>>,
    pub response_body: Option<Arc<Cb3R>>,
    pub response_trailers: Option<Arc<Cb2R>>,
    pub log: Option<Arc<Cb1>>,
    pub done: Option<Arc<TypedFunc<i32, i32>>>,
    pub delete: Option<Arc<Cb1>>,
    pub http_call_response: Option<Arc<Cb5>>,
    pub queue_ready: Option<Arc<Cb2>>,
}

impl Exports {
    fn find(store: &mut Store<HostState>, instance: &Instance) -> Exports {
        macro_rules! typed {
            ($name:literal) => {
                instance
                    .get_typed_func(&mut *store, $name)
                    .ok()
                    .map(Arc::new)
            };
        }
        Exports {
            context_create: typed!("proxy_on_context_create"),
            vm_start: typed!("proxy_on_vm_start"),
            configure: typed!("proxy_on_configure"),
            tick: typed!("proxy_on_tick"),
            request_headers: typed!("proxy_on_request_headers"),
            request_body: typed!("proxy_on_request_body"),
            request_trailers: typed!("proxy_on_request_trailers"),
            response_headers: typed!("proxy_on_response_headers"),
            response_body: typed!("proxy_on_response_body"),
            response_trailers: typed!("proxy_on_response_trailers"),
            log: typed!("proxy_on_log"),
            done: typed!("proxy_on_done"),
            delete: typed!("proxy_on_delete"),
            http_call_response: typed!("proxy_on_http_call_response"),
            queue_ready: typed!("proxy_on_queue_ready"),
        }
    }
}

/// A running plugin VM.
pub struct Vm {
    pub(crate) store: Store<HostState>,
    pub(crate) exports: Exports,
    plugin: Plugin,
    options: Arc<VmOptions>,
    shared: HostShared,
    vm_index: usize,
    /// Set when a callback trapped: the callback and the trap message.
    pub(crate) failed: Option<String>,
    next_context_id: u32,
    pub(crate) streams: IdMap<StreamDriver>,
    /// Monotonic time of the next tick, when a tick period is set.
    next_tick_nanos: Option<u64>,
    tick_period_ms: u32,
    /// Calls made by the plugin that the caller has not taken yet.
    outgoing: Vec<OutgoingCall>,
    /// Stream callbacks that ran after the stream's local response, which a host must
    /// never do.
    late_callbacks: Vec<String>,
    /// How long [`Vm::start`] took in each of its parts.
    pub start_times: StartTimes,
}

/// Wall-clock durations of a VM's start.
#[derive(Debug, Clone, Copy, Default)]
pub struct StartTimes {
    /// Linking the host functions and instantiating the compiled module.
    pub instantiate: Duration,
    /// `_initialize`, the root context, `proxy_on_vm_start` and `proxy_on_configure`.
    pub configure: Duration,
}

impl Vm {
    /// Instantiates the plugin and runs its start-up: `_initialize`, the root context,
    /// `proxy_on_vm_start` and `proxy_on_configure`.
    pub fn start(
        plugin: &Plugin,
        options: Arc<VmOptions>,
        shared: HostShared,
        vm_index: usize,
    ) -> Result<Vm, StartError> {
        let started = Instant::now();
        let mut linker = Linker::new(&plugin.engine);
        hostcalls::add_to_linker(&mut linker)
            .map_err(|e| StartError::Instantiate(format!("{e:#}")))?;
        hostcalls::fail_imports(&mut linker, &plugin.module, &options.failing_calls)
            .map_err(|e| StartError::Instantiate(format!("{e:#}")))?;
        let mut store = Store::new(
            &plugin.engine,
            HostState::new(options.clone(), shared.clone(), vm_index),
        );
        let instance = linker
            .instantiate(&mut store, &plugin.module)
            .map_err(|e| StartError::Instantiate(format!("{e:#}")))?;
        let memory = instance.get_memory(&mut store, "memory");
        let allocate = instance
            .get_typed_func::<i32, i32>(&mut store, "proxy_on_memory_allocate")
            .or_else(|_| instance.get_typed_func::<i32, i32>(&mut store, "malloc"))
            .ok();
        store.data_mut().memory = memory;
        store.data_mut().allocate = allocate;
        let exports = Exports::find(&mut store, &instance);
        let mut vm = Vm {
            store,
            exports,
            plugin: plugin.clone(),
            options,
            shared,
            vm_index,
            failed: None,
            next_context_id: 1,
            streams: IdMap::default(),
            next_tick_nanos: None,
            tick_period_ms: 0,
            outgoing: Vec::new(),
            late_callbacks: Vec::new(),
            start_times: StartTimes::default(),
        };
        let instantiated = Instant::now();
        vm.run_start(&instance)?;
        vm.start_times = StartTimes {
            instantiate: instantiated - started,
            configure: instantiated.elapsed(),
        };
        Ok(vm)
    }

    fn start_trap(&mut self, callback: &'static str) -> StartError {
        StartError::Trap {
            callback,
            message: self.failed.clone().unwrap_or_default(),
            logs: self.store.data().logs.clone(),
        }
    }

    fn run_start(&mut self, instance: &Instance) -> Result<(), StartError> {
        for name in ["_initialize", "_start"] {
            if let Ok(entry) = instance.get_typed_func::<(), ()>(&mut self.store, name) {
                if self
                    .invoke(name, 0, Callback::Other, |s| entry.call(s, ()))
                    .is_none()
                {
                    return Err(self.start_trap(if name == "_initialize" {
                        "_initialize"
                    } else {
                        "_start"
                    }));
                }
                break;
            }
        }
        let root = self.new_context_id();
        self.store.data_mut().root_context_id = root;
        if let Some(create) = self.exports.context_create.clone() {
            if self
                .invoke("proxy_on_context_create", root, Callback::Other, |s| {
                    create.call(s, (root as i32, 0))
                })
                .is_none()
            {
                return Err(self.start_trap("proxy_on_context_create"));
            }
        }
        if let Some(vm_start) = self.exports.vm_start.clone() {
            let size = self.options.vm_configuration.len() as i32;
            match self.invoke("proxy_on_vm_start", root, Callback::VmStart, |s| {
                vm_start.call(s, (root as i32, size))
            }) {
                None => return Err(self.start_trap("proxy_on_vm_start")),
                Some(0) => {
                    return Err(StartError::VmStartRejected {
                        logs: self.store.data().logs.clone(),
                    })
                }
                Some(_) => {}
            }
        }
        if let Some(configure) = self.exports.configure.clone() {
            let size = self.options.plugin_configuration.len() as i32;
            match self.invoke("proxy_on_configure", root, Callback::Configure, |s| {
                configure.call(s, (root as i32, size))
            }) {
                None => return Err(self.start_trap("proxy_on_configure")),
                Some(0) => {
                    return Err(StartError::ConfigRejected {
                        logs: self.store.data().logs.clone(),
                    })
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    pub(crate) fn new_context_id(&mut self) -> u32 {
        let id = self.next_context_id;
        self.next_context_id += 1;
        id
    }

    /// Runs one guest callback with `context` as the effective context. A trap marks the VM
    /// failed, is logged with the callback's name, and returns `None`; a failed VM runs
    /// nothing more.
    pub(crate) fn invoke<R>(
        &mut self,
        name: &'static str,
        context: u32,
        callback: Callback,
        call: impl FnOnce(&mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> Option<R> {
        if self.failed.is_some() {
            return None;
        }
        {
            let state = self.store.data_mut();
            state.effective_context = context;
            state.callback = callback;
            let stream_callback =
                name.starts_with("proxy_on_request_") || name.starts_with("proxy_on_response_");
            if stream_callback
                && state
                    .streams
                    .get(&context)
                    .is_some_and(|s| s.local_response.is_some())
            {
                self.late_callbacks.push(format!(
                    "{name} ran for stream {context} after its local response"
                ));
            }
        }
        let result = call(&mut self.store);
        let state = self.store.data_mut();
        state.callback = Callback::None;
        self.outgoing.append(&mut state.outgoing_calls);
        if state.tick_period_ms != self.tick_period_ms {
            self.tick_period_ms = state.tick_period_ms;
            self.next_tick_nanos = match self.tick_period_ms {
                0 => None,
                ms => Some(self.shared.clock.monotonic_nanos() + u64::from(ms) * 1_000_000),
            };
        }
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                let message = format!("{name} trapped: {}", trap_message(&error));
                state.log(
                    LogLevel::Critical,
                    format!("host-test: VM failed: {message}"),
                );
                self.failed = Some(message);
                None
            }
        }
    }

    /// The trap that failed this VM, if one did.
    pub fn failure(&self) -> Option<&str> {
        self.failed.as_deref()
    }

    /// Returns the first stream callback that ran after a local response, if any did.
    pub fn callback_after_local_response(&self) -> Option<String> {
        self.late_callbacks.first().cloned()
    }

    /// The failure policy this VM applies.
    pub fn failure_policy(&self) -> FailurePolicy {
        self.options.failure_policy
    }

    /// Replaces a failed VM by a new one with the same plugin and options, for
    /// `FAIL_RELOAD`. Streams in flight on the old VM are dropped.
    pub fn reload(&mut self) -> Result<(), StartError> {
        let mut fresh = Vm::start(
            &self.plugin,
            self.options.clone(),
            self.shared.clone(),
            self.vm_index,
        )?;
        let mut logs = std::mem::take(&mut self.store.data_mut().logs);
        logs.append(&mut fresh.store.data_mut().logs);
        fresh.store.data_mut().logs = logs;
        *self = fresh;
        Ok(())
    }

    /// The lines logged so far.
    pub fn logs(&self) -> &[LogRecord] {
        &self.store.data().logs
    }

    /// Removes and returns the lines logged so far.
    pub fn take_logs(&mut self) -> Vec<LogRecord> {
        std::mem::take(&mut self.store.data_mut().logs)
    }

    /// The options this VM was started with.
    pub fn options(&self) -> &Arc<VmOptions> {
        &self.options
    }

    /// The state shared with the other VMs of this host.
    pub fn shared(&self) -> &HostShared {
        &self.shared
    }

    /// Size of the VM's linear memory in bytes.
    pub fn memory_bytes(&self) -> usize {
        self.store
            .data()
            .memory
            .map(|m| m.data_size(&self.store))
            .unwrap_or(0)
    }

    /// Takes the http calls the plugin made since the last call of this method.
    pub fn take_outgoing_calls(&mut self) -> Vec<OutgoingCall> {
        std::mem::take(&mut self.outgoing)
    }

    /// Delivers the answer to an http call; `None` is a failure (reset or timeout), which
    /// Envoy reports as a callback with no headers.
    pub fn deliver_call_response(&mut self, call: &OutgoingCall, response: Option<CallResponse>) {
        let Some(callback) = self.exports.http_call_response.clone() else {
            return;
        };
        let (headers, body, trailers) = match &response {
            Some(r) => (r.headers.len(), r.body.len(), r.trailers.len()),
            None => (0, 0, 0),
        };
        // proxy-wasm-cpp-host makes every call on the root context, so the response goes to
        // the root context whichever stream made the call; the SDK then switches context.
        let context = self.store.data().root_context_id;
        let mut response = response;
        if let Some(answer) = response.as_mut().filter(|_| self.options.ngx()) {
            // NOTE: ngx_wasm_module adds this pseudo-header; "ok" is an assumed value.
            answer
                .headers
                .push((b":dispatch_status".to_vec(), b"ok".to_vec()));
        }
        self.store.data_mut().call_response = response;
        let token = call.token as i32;
        self.invoke(
            "proxy_on_http_call_response",
            context,
            Callback::Other,
            |s| {
                callback.call(
                    s,
                    (
                        context as i32,
                        token,
                        headers as i32,
                        body as i32,
                        trailers as i32,
                    ),
                )
            },
        );
        self.store.data_mut().call_response = None;
    }

    /// Monotonic time in nanoseconds at which the next tick is due.
    pub fn next_tick_nanos(&self) -> Option<u64> {
        self.next_tick_nanos.filter(|_| self.failed.is_none())
    }

    /// Runs `proxy_on_tick` and schedules the next tick one period after now.
    pub fn fire_tick(&mut self) {
        let root = self.store.data().root_context_id;
        if let Some(tick) = self.exports.tick.clone() {
            self.invoke("proxy_on_tick", root, Callback::Other, |s| {
                tick.call(s, root as i32)
            });
        }
        if self.tick_period_ms > 0 {
            self.next_tick_nanos = Some(
                self.shared.clock.monotonic_nanos() + u64::from(self.tick_period_ms) * 1_000_000,
            );
        }
    }

    /// Delivers pending `proxy_on_queue_ready` notifications for queues this VM registered.
    pub fn deliver_queue_ready(&mut self) {
        let ready = self.shared.queues.take_ready(self.vm_index);
        // ngx_wasm_module never calls proxy_on_queue_ready.
        if self.options.ngx() {
            return;
        }
        let Some(callback) = self.exports.queue_ready.clone() else {
            return;
        };
        for (context, queue) in ready {
            self.invoke("proxy_on_queue_ready", context, Callback::Other, |s| {
                callback.call(s, (context as i32, queue as i32))
            });
        }
    }

    /// The tick period the plugin set, if any.
    pub fn tick_period(&self) -> Option<Duration> {
        (self.tick_period_ms > 0).then(|| Duration::from_millis(self.tick_period_ms.into()))
    }
}

/// Renders a wasmtime error with its trap code and the guest backtrace, if any.
fn trap_message(error: &wasmtime::Error) -> String {
    let mut message = String::new();
    if let Some(trap) = error.downcast_ref::<wasmtime::Trap>() {
        message.push_str(&trap.to_string());
    }
    for cause in error.chain() {
        let text = cause.to_string();
        if !message.contains(&text) {
            if !message.is_empty() {
                message.push_str(": ");
            }
            message.push_str(&text);
        }
    }
    message.lines().next().unwrap_or_default().to_string()
}
