//! The host functions of ABI 0.2.1 and the WASI preview 1 subset that Envoy provides, with
//! Envoy's status codes. A host function traps only where Envoy's would; bad pointers and
//! bad arguments come back as statuses.

use wasmtime::{Caller, Linker};

use crate::abi::{self, decode_pairs, encode_pairs, errno, Pairs, Status};
use crate::props;
use crate::shared::{MetricKind, QueueOwner};
use crate::state::{Callback, HostState, LocalResponse, LogLevel, OutgoingCall};

type Ctx<'a> = Caller<'a, HostState>;
type HostResult = wasmtime::Result<i32>;

/// Every import the host can satisfy, by module and name.
pub fn provided_imports() -> &'static [(&'static str, &'static str)] {
    &[
        ("env", "proxy_log"),
        ("env", "proxy_get_log_level"),
        ("env", "proxy_get_current_time_nanoseconds"),
        ("env", "proxy_set_tick_period_milliseconds"),
        ("env", "proxy_get_buffer_bytes"),
        ("env", "proxy_get_buffer_status"),
        ("env", "proxy_set_buffer_bytes"),
        ("env", "proxy_get_header_map_size"),
        ("env", "proxy_get_header_map_pairs"),
        ("env", "proxy_set_header_map_pairs"),
        ("env", "proxy_get_header_map_value"),
        ("env", "proxy_add_header_map_value"),
        ("env", "proxy_replace_header_map_value"),
        ("env", "proxy_remove_header_map_value"),
        ("env", "proxy_get_property"),
        ("env", "proxy_set_property"),
        ("env", "proxy_get_shared_data"),
        ("env", "proxy_set_shared_data"),
        ("env", "proxy_register_shared_queue"),
        ("env", "proxy_resolve_shared_queue"),
        ("env", "proxy_enqueue_shared_queue"),
        ("env", "proxy_dequeue_shared_queue"),
        ("env", "proxy_continue_stream"),
        ("env", "proxy_close_stream"),
        ("env", "proxy_send_local_response"),
        ("env", "proxy_http_call"),
        ("env", "proxy_grpc_call"),
        ("env", "proxy_grpc_stream"),
        ("env", "proxy_grpc_send"),
        ("env", "proxy_grpc_cancel"),
        ("env", "proxy_grpc_close"),
        ("env", "proxy_get_status"),
        ("env", "proxy_set_effective_context"),
        ("env", "proxy_done"),
        ("env", "proxy_call_foreign_function"),
        ("env", "proxy_define_metric"),
        ("env", "proxy_increment_metric"),
        ("env", "proxy_record_metric"),
        ("env", "proxy_get_metric"),
        ("wasi_snapshot_preview1", "fd_write"),
        ("wasi_snapshot_preview1", "fd_read"),
        ("wasi_snapshot_preview1", "fd_seek"),
        ("wasi_snapshot_preview1", "fd_close"),
        ("wasi_snapshot_preview1", "fd_fdstat_get"),
        ("wasi_snapshot_preview1", "fd_fdstat_set_flags"),
        ("wasi_snapshot_preview1", "fd_prestat_get"),
        ("wasi_snapshot_preview1", "fd_prestat_dir_name"),
        ("wasi_snapshot_preview1", "environ_get"),
        ("wasi_snapshot_preview1", "environ_sizes_get"),
        ("wasi_snapshot_preview1", "args_get"),
        ("wasi_snapshot_preview1", "args_sizes_get"),
        ("wasi_snapshot_preview1", "clock_time_get"),
        ("wasi_snapshot_preview1", "random_get"),
        ("wasi_snapshot_preview1", "sched_yield"),
        ("wasi_snapshot_preview1", "poll_oneoff"),
        ("wasi_snapshot_preview1", "proc_exit"),
    ]
}

// ---- guest memory -------------------------------------------------------------------------

fn read(caller: &mut Ctx<'_>, ptr: i32, len: i32) -> Result<Vec<u8>, Status> {
    let memory = caller.data().memory.ok_or(Status::InvalidMemoryAccess)?;
    let start = ptr as u32 as usize;
    let end = start
        .checked_add(len as u32 as usize)
        .ok_or(Status::InvalidMemoryAccess)?;
    memory
        .data(&*caller)
        .get(start..end)
        .map(<[u8]>::to_vec)
        .ok_or(Status::InvalidMemoryAccess)
}

fn write(caller: &mut Ctx<'_>, ptr: i32, bytes: &[u8]) -> Result<(), Status> {
    let memory = caller.data().memory.ok_or(Status::InvalidMemoryAccess)?;
    let start = ptr as u32 as usize;
    let end = start
        .checked_add(bytes.len())
        .ok_or(Status::InvalidMemoryAccess)?;
    let target = memory
        .data_mut(&mut *caller)
        .get_mut(start..end)
        .ok_or(Status::InvalidMemoryAccess)?;
    target.copy_from_slice(bytes);
    Ok(())
}

fn write_u32(caller: &mut Ctx<'_>, ptr: i32, value: u32) -> Result<(), Status> {
    write(caller, ptr, &value.to_le_bytes())
}

/// Copies `data` into memory the guest allocates and stores its address and size at
/// `ptr_ptr` and `size_ptr`. Empty data is returned as address 0, size 0. A trap inside the
/// guest's allocator is a trap of the host call.
fn return_bytes(
    caller: &mut Ctx<'_>,
    data: &[u8],
    ptr_ptr: i32,
    size_ptr: i32,
) -> wasmtime::Result<Status> {
    if data.is_empty() {
        return Ok(status_of(
            write_u32(caller, ptr_ptr, 0).and_then(|()| write_u32(caller, size_ptr, 0)),
        ));
    }
    let Some(allocate) = caller.data().allocate.clone() else {
        return Ok(Status::InvalidMemoryAccess);
    };
    let Ok(len) = i32::try_from(data.len()) else {
        return Ok(Status::InvalidMemoryAccess);
    };
    let addr = allocate.call(&mut *caller, len)?;
    if addr == 0 {
        return Ok(Status::InvalidMemoryAccess);
    }
    let result = write(caller, addr, data)
        .and_then(|()| write_u32(caller, ptr_ptr, addr as u32))
        .and_then(|()| write_u32(caller, size_ptr, data.len() as u32));
    Ok(status_of(result))
}

fn status_of(result: Result<(), Status>) -> Status {
    match result {
        Ok(()) => Status::Ok,
        Err(status) => status,
    }
}

fn done(status: Status) -> HostResult {
    Ok(status.code())
}

macro_rules! try_status {
    ($e:expr) => {
        match $e {
            Ok(value) => value,
            Err(status) => return Ok(status.code()),
        }
    };
}

// ---- header maps ---------------------------------------------------------------------------

/// Which map a map type names in the current context: `Err` for a type that does not exist,
/// `Ok(None)` for one that exists but is not available now.
fn map_ref(state: &mut HostState, map_type: i32) -> Result<Option<&mut Pairs>, Status> {
    let map_type = map_type as u32;
    match map_type {
        abi::map::HTTP_REQUEST_HEADERS..=abi::map::HTTP_RESPONSE_TRAILERS => {
            let Some(stream) = state.stream() else {
                return Ok(None);
            };
            Ok(match map_type {
                abi::map::HTTP_REQUEST_HEADERS => stream.request_headers.as_mut(),
                abi::map::HTTP_REQUEST_TRAILERS => stream.request_trailers.as_mut(),
                abi::map::HTTP_RESPONSE_HEADERS => stream.response_headers.as_mut(),
                _ => stream.response_trailers.as_mut(),
            })
        }
        abi::map::GRPC_RECEIVE_INITIAL_METADATA | abi::map::GRPC_RECEIVE_TRAILING_METADATA => {
            Ok(None)
        }
        abi::map::HTTP_CALL_RESPONSE_HEADERS => {
            Ok(state.call_response.as_mut().map(|r| &mut r.headers))
        }
        abi::map::HTTP_CALL_RESPONSE_TRAILERS => {
            Ok(state.call_response.as_mut().map(|r| &mut r.trailers))
        }
        _ => Err(Status::BadArgument),
    }
}

fn is_read_only(map_type: i32) -> bool {
    map_type as u32 >= abi::map::GRPC_RECEIVE_INITIAL_METADATA
}

/// Header names are lower-cased by Envoy (`LowerCaseString`); ngx_wasm_module keeps them as
/// given.
fn header_name(state: &HostState, key: &[u8]) -> Vec<u8> {
    if state.options.ngx() {
        key.to_vec()
    } else {
        key.to_ascii_lowercase()
    }
}

/// Envoy's names are lower-case, so it compares bytes; nginx compares names ignoring case.
fn same_name(ngx: bool, stored: &[u8], key: &[u8]) -> bool {
    if ngx {
        stored.eq_ignore_ascii_case(key)
    } else {
        stored == key
    }
}

/// Fails the call as ngx_wasm_module does for host functions it does not implement: the
/// call traps and the client gets a 500.
fn ngx_unimplemented(caller: &Ctx<'_>, name: &str) -> wasmtime::Result<()> {
    if caller.data().options.ngx() {
        return Err(wasmtime::Error::msg(format!(
            "{name} is not implemented by ngx_wasm_module"
        )));
    }
    Ok(())
}

/// Envoy rejects header values that would break the HTTP framing.
fn valid_value(value: &[u8]) -> bool {
    !value.iter().any(|b| matches!(b, 0 | b'\r' | b'\n'))
}

fn valid_key(key: &[u8]) -> bool {
    !key.is_empty() && valid_value(key)
}

fn get_header_map_pairs(
    mut caller: Ctx<'_>,
    map_type: i32,
    ptr_ptr: i32,
    size_ptr: i32,
) -> HostResult {
    let encoded = match try_status!(map_ref(caller.data_mut(), map_type)) {
        Some(pairs) if !pairs.is_empty() => encode_pairs(pairs),
        _ => Vec::new(),
    };
    done(return_bytes(&mut caller, &encoded, ptr_ptr, size_ptr)?)
}

fn get_header_map_size(mut caller: Ctx<'_>, map_type: i32, size_ptr: i32) -> HostResult {
    // Envoy reports a map that is not available as a bad argument here.
    let size = match try_status!(map_ref(caller.data_mut(), map_type)) {
        Some(pairs) => encode_pairs(pairs).len(),
        None => return done(Status::BadArgument),
    };
    done(status_of(write_u32(&mut caller, size_ptr, size as u32)))
}

fn set_header_map_pairs(mut caller: Ctx<'_>, map_type: i32, ptr: i32, len: i32) -> HostResult {
    let data = try_status!(read(&mut caller, ptr, len));
    let pairs = try_status!(decode_pairs(&data));
    if pairs.iter().any(|(k, v)| !valid_key(k) || !valid_value(v)) {
        return done(Status::BadArgument);
    }
    if is_read_only(map_type) {
        return done(Status::BadArgument);
    }
    let state = caller.data_mut();
    let pairs: Pairs = pairs
        .into_iter()
        .map(|(k, v)| (header_name(state, &k), v))
        .collect();
    match try_status!(map_ref(state, map_type)) {
        Some(map) => {
            *map = pairs;
            done(Status::Ok)
        }
        None => done(Status::BadArgument),
    }
}

fn get_header_map_value(
    mut caller: Ctx<'_>,
    map_type: i32,
    key_ptr: i32,
    key_len: i32,
    ptr_ptr: i32,
    size_ptr: i32,
) -> HostResult {
    let key = try_status!(read(&mut caller, key_ptr, key_len));
    let state = caller.data_mut();
    let ngx = state.options.ngx();
    let key = header_name(state, &key);
    let value = match try_status!(map_ref(state, map_type)) {
        Some(map) => map
            .iter()
            .find(|(k, _)| same_name(ngx, k, &key))
            .map(|(_, v)| v.clone()),
        None => return done(Status::BadArgument),
    };
    match value {
        Some(value) => done(return_bytes(&mut caller, &value, ptr_ptr, size_ptr)?),
        None => done(Status::NotFound),
    }
}

enum Edit {
    Add,
    Replace,
}

fn edit_header(
    mut caller: Ctx<'_>,
    edit: Edit,
    map_type: i32,
    key_ptr: i32,
    key_len: i32,
    value_ptr: i32,
    value_len: i32,
) -> HostResult {
    let key = try_status!(read(&mut caller, key_ptr, key_len));
    let value = try_status!(read(&mut caller, value_ptr, value_len));
    if !valid_key(&key) || !valid_value(&value) || is_read_only(map_type) {
        return done(Status::BadArgument);
    }
    let state = caller.data_mut();
    let ngx = state.options.ngx();
    let key = header_name(state, &key);
    let Some(map) = try_status!(map_ref(state, map_type)) else {
        return done(Status::BadArgument);
    };
    if map.len() >= abi::MAX_MAP_PAIRS && !map.iter().any(|(k, _)| same_name(ngx, k, &key)) {
        return done(Status::BadArgument);
    }
    match edit {
        Edit::Add => map.push((key, value)),
        Edit::Replace => match map.iter().position(|(k, _)| same_name(ngx, k, &key)) {
            Some(first) => {
                map[first].1 = value;
                let mut index = 0;
                map.retain(|(k, _)| {
                    let keep = index <= first || !same_name(ngx, k, &key);
                    index += 1;
                    keep
                });
            }
            None => map.push((key, value)),
        },
    }
    done(Status::Ok)
}

fn remove_header_map_value(
    mut caller: Ctx<'_>,
    map_type: i32,
    key_ptr: i32,
    key_len: i32,
) -> HostResult {
    let key = try_status!(read(&mut caller, key_ptr, key_len));
    if is_read_only(map_type) {
        return done(Status::BadArgument);
    }
    let ngx = caller.data().options.ngx();
    match try_status!(map_ref(caller.data_mut(), map_type)) {
        Some(map) => {
            map.retain(|(k, _)| !same_name(ngx, k, &key));
            done(Status::Ok)
        }
        None => done(Status::BadArgument),
    }
}

// ---- buffers -------------------------------------------------------------------------------

/// The buffer a buffer type names now: `Err(NotFound)` when it does not exist in this
/// callback, `Err(BadArgument)` for an unknown type.
fn buffer_ref(state: &mut HostState, buffer_type: i32) -> Result<&mut Vec<u8>, Status> {
    match buffer_type as u32 {
        abi::buffer::HTTP_REQUEST_BODY => {
            let stream = state.stream().ok_or(Status::NotFound)?;
            Ok(stream.request_body.get_or_insert_with(Vec::new))
        }
        abi::buffer::HTTP_RESPONSE_BODY => {
            let stream = state.stream().ok_or(Status::NotFound)?;
            Ok(stream.response_body.get_or_insert_with(Vec::new))
        }
        abi::buffer::DOWNSTREAM_DATA | abi::buffer::UPSTREAM_DATA => Err(Status::NotFound),
        abi::buffer::HTTP_CALL_RESPONSE_BODY => state
            .call_response
            .as_mut()
            .map(|r| &mut r.body)
            .ok_or(Status::NotFound),
        abi::buffer::GRPC_RECEIVE_BUFFER | abi::buffer::CALL_DATA => Err(Status::NotFound),
        abi::buffer::VM_CONFIGURATION | abi::buffer::PLUGIN_CONFIGURATION => Err(Status::NotFound),
        _ => Err(Status::BadArgument),
    }
}

/// The configuration buffers are read-only and exist only in their own callback.
fn configuration(state: &HostState, buffer_type: i32) -> Option<Result<&[u8], Status>> {
    match buffer_type as u32 {
        // Envoy keeps the VM configuration readable for the VM's life.
        abi::buffer::VM_CONFIGURATION => Some(Ok(&state.options.vm_configuration)),
        abi::buffer::PLUGIN_CONFIGURATION => Some(if state.callback == Callback::Configure {
            Ok(&state.options.plugin_configuration)
        } else {
            Err(Status::NotFound)
        }),
        _ => None,
    }
}

fn get_buffer_bytes(
    mut caller: Ctx<'_>,
    buffer_type: i32,
    start: i32,
    max_size: i32,
    ptr_ptr: i32,
    size_ptr: i32,
) -> HostResult {
    let data = {
        let state = caller.data_mut();
        let buffer: &[u8] = match configuration(state, buffer_type) {
            Some(config) => try_status!(config),
            None => try_status!(buffer_ref(state, buffer_type)),
        };
        // Start and length are clamped to the buffer, as Envoy does; nothing past the end.
        let start = (start as u32 as usize).min(buffer.len());
        let end = start
            .saturating_add(max_size as u32 as usize)
            .min(buffer.len());
        buffer[start..end].to_vec()
    };
    if data.is_empty() {
        return done(Status::Ok);
    }
    done(return_bytes(&mut caller, &data, ptr_ptr, size_ptr)?)
}

fn get_buffer_status(
    mut caller: Ctx<'_>,
    buffer_type: i32,
    size_ptr: i32,
    flags_ptr: i32,
) -> HostResult {
    let size = {
        let state = caller.data_mut();
        match configuration(state, buffer_type) {
            Some(config) => try_status!(config).len(),
            None => try_status!(buffer_ref(state, buffer_type)).len(),
        }
    };
    try_status!(write_u32(&mut caller, size_ptr, size as u32));
    done(status_of(write_u32(&mut caller, flags_ptr, 0)))
}

fn set_buffer_bytes(
    mut caller: Ctx<'_>,
    buffer_type: i32,
    start: i32,
    length: i32,
    ptr: i32,
    len: i32,
) -> HostResult {
    let data = try_status!(read(&mut caller, ptr, len));
    let state = caller.data_mut();
    if let Some(config) = configuration(state, buffer_type) {
        try_status!(config);
        return done(Status::BadArgument);
    }
    if buffer_type as u32 == abi::buffer::HTTP_CALL_RESPONSE_BODY {
        try_status!(buffer_ref(state, buffer_type));
        return done(Status::BadArgument);
    }
    let ngx = state.options.ngx();
    let buffer = try_status!(buffer_ref(state, buffer_type));
    let (start, length) = (start as u32 as usize, length as u32 as usize);
    // Envoy's `Buffer::copyFrom` edits only at the ends: at start 0 it drops `length` bytes
    // (all of them when `length` is the size or more) and prepends the data; at or past the
    // end it appends. Anything in the middle is a bad argument.
    if start == 0 {
        let dropped = length.min(buffer.len());
        let mut data = data;
        // ngx_wasm_module cuts a replacement to the length of the range it replaces.
        if ngx && dropped > 0 && data.len() > dropped {
            data.truncate(dropped);
        }
        buffer.splice(0..dropped, data);
    } else if start >= buffer.len() {
        buffer.extend_from_slice(&data);
    } else {
        return done(Status::BadArgument);
    }
    done(Status::Ok)
}

// ---- registration --------------------------------------------------------------------------

/// Replaces each named host function with one that returns the given status and does
/// nothing else, so that a scenario shows how the module handles a failing host.
pub fn fail_imports(
    linker: &mut Linker<HostState>,
    module: &wasmtime::Module,
    failing: &[(String, u32)],
) -> wasmtime::Result<()> {
    if failing.is_empty() {
        return Ok(());
    }
    linker.allow_shadowing(true);
    for (name, status) in failing {
        let Some(ty) = module
            .imports()
            .find(|import| import.module() == "env" && import.name() == name)
            .and_then(|import| import.ty().func().cloned())
        else {
            wasmtime::bail!("failing host call {name}: the module does not import env.{name}");
        };
        let returns_status =
            ty.results().len() == 1 && matches!(ty.results().next(), Some(wasmtime::ValType::I32));
        if !returns_status {
            wasmtime::bail!("failing host call {name}: env.{name} does not return a status");
        }
        let status = *status as i32;
        linker.func_new("env", name, ty, move |_caller, _params, results| {
            results[0] = wasmtime::Val::I32(status);
            Ok(())
        })?;
    }
    linker.allow_shadowing(false);
    Ok(())
}

/// Adds every host function to `linker`.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    add_proxy_functions(linker)?;
    add_wasi_functions(linker)?;
    Ok(())
}

fn add_proxy_functions(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_log",
        |mut caller: Ctx<'_>, level: i32, ptr: i32, len: i32| -> HostResult {
            let message = try_status!(read(&mut caller, ptr, len));
            let Some(level) = LogLevel::from_abi(level) else {
                return done(Status::BadArgument);
            };
            caller
                .data_mut()
                .log(level, String::from_utf8_lossy(&message).into_owned());
            done(Status::Ok)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_log_level",
        |mut caller: Ctx<'_>, ptr: i32| -> HostResult {
            ngx_unimplemented(&caller, "proxy_get_log_level")?;
            let level = caller.data().options.log_level as u32;
            done(status_of(write_u32(&mut caller, ptr, level)))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_current_time_nanoseconds",
        |mut caller: Ctx<'_>, ptr: i32| -> HostResult {
            let now = caller.data().shared.clock.now_nanos();
            done(status_of(write(&mut caller, ptr, &now.to_le_bytes())))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_tick_period_milliseconds",
        |mut caller: Ctx<'_>, period: i32| -> HostResult {
            caller.data_mut().tick_period_ms = period as u32;
            done(Status::Ok)
        },
    )?;
    linker.func_wrap("env", "proxy_get_buffer_bytes", get_buffer_bytes)?;
    linker.func_wrap("env", "proxy_get_buffer_status", get_buffer_status)?;
    linker.func_wrap("env", "proxy_set_buffer_bytes", set_buffer_bytes)?;
    linker.func_wrap("env", "proxy_get_header_map_size", get_header_map_size)?;
    linker.func_wrap("env", "proxy_get_header_map_pairs", get_header_map_pairs)?;
    linker.func_wrap("env", "proxy_set_header_map_pairs", set_header_map_pairs)?;
    linker.func_wrap("env", "proxy_get_header_map_value", get_header_map_value)?;
    linker.func_wrap(
        "env",
        "proxy_add_header_map_value",
        |caller: Ctx<'_>, map: i32, kp: i32, kl: i32, vp: i32, vl: i32| {
            edit_header(caller, Edit::Add, map, kp, kl, vp, vl)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_replace_header_map_value",
        |caller: Ctx<'_>, map: i32, kp: i32, kl: i32, vp: i32, vl: i32| {
            edit_header(caller, Edit::Replace, map, kp, kl, vp, vl)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_remove_header_map_value",
        remove_header_map_value,
    )?;
    linker.func_wrap("env", "proxy_get_property", get_property)?;
    linker.func_wrap("env", "proxy_set_property", set_property)?;
    linker.func_wrap("env", "proxy_get_shared_data", get_shared_data)?;
    linker.func_wrap("env", "proxy_set_shared_data", set_shared_data)?;
    linker.func_wrap("env", "proxy_register_shared_queue", register_shared_queue)?;
    linker.func_wrap("env", "proxy_resolve_shared_queue", resolve_shared_queue)?;
    linker.func_wrap(
        "env",
        "proxy_enqueue_shared_queue",
        |mut caller: Ctx<'_>, id: i32, ptr: i32, len: i32| -> HostResult {
            let value = try_status!(read(&mut caller, ptr, len));
            done(caller.data().shared.queues.enqueue(id as u32, &value))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_dequeue_shared_queue",
        |mut caller: Ctx<'_>, id: i32, ptr_ptr: i32, size_ptr: i32| -> HostResult {
            let value = try_status!(caller.data().shared.queues.dequeue(id as u32));
            done(return_bytes(&mut caller, &value, ptr_ptr, size_ptr)?)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_continue_stream",
        |mut caller: Ctx<'_>, stream_type: i32| -> HostResult {
            let Some(stream) = caller.data_mut().stream() else {
                return done(Status::NotFound);
            };
            match stream_type as u32 {
                abi::stream::HTTP_REQUEST => stream.continue_request = true,
                abi::stream::HTTP_RESPONSE => stream.continue_response = true,
                _ => return done(Status::BadArgument),
            }
            done(Status::Ok)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_close_stream",
        |mut caller: Ctx<'_>, stream_type: i32| -> HostResult {
            ngx_unimplemented(&caller, "proxy_close_stream")?;
            let Some(stream) = caller.data_mut().stream() else {
                return done(Status::NotFound);
            };
            match stream_type as u32 {
                abi::stream::HTTP_REQUEST | abi::stream::HTTP_RESPONSE => stream.reset = true,
                _ => return done(Status::BadArgument),
            }
            done(Status::Ok)
        },
    )?;
    linker.func_wrap("env", "proxy_send_local_response", send_local_response)?;
    linker.func_wrap("env", "proxy_http_call", http_call)?;
    linker.func_wrap(
        "env",
        "proxy_grpc_call",
        |caller: Ctx<'_>,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32|
         -> HostResult {
            ngx_unimplemented(&caller, "proxy_grpc_call")?;
            // No gRPC cluster exists in this host, which Envoy reports as a bad argument.
            done(Status::BadArgument)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_grpc_stream",
        |caller: Ctx<'_>,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32|
         -> HostResult {
            ngx_unimplemented(&caller, "proxy_grpc_stream")?;
            done(Status::BadArgument)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_grpc_send",
        |caller: Ctx<'_>, _: i32, _: i32, _: i32, _: i32| -> HostResult {
            ngx_unimplemented(&caller, "proxy_grpc_send")?;
            done(Status::NotFound)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_grpc_cancel",
        |caller: Ctx<'_>, _: i32| -> HostResult {
            ngx_unimplemented(&caller, "proxy_grpc_cancel")?;
            done(Status::NotFound)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_grpc_close",
        |caller: Ctx<'_>, _: i32| -> HostResult {
            ngx_unimplemented(&caller, "proxy_grpc_close")?;
            done(Status::NotFound)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_status",
        |mut caller: Ctx<'_>, code_ptr: i32, ptr_ptr: i32, size_ptr: i32| -> HostResult {
            ngx_unimplemented(&caller, "proxy_get_status")?;
            try_status!(write_u32(&mut caller, code_ptr, 0));
            done(return_bytes(&mut caller, &[], ptr_ptr, size_ptr)?)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_effective_context",
        |mut caller: Ctx<'_>, context_id: i32| -> HostResult {
            let state = caller.data_mut();
            let id = context_id as u32;
            if id != state.root_context_id && !state.streams.contains_key(&id) {
                return done(Status::BadArgument);
            }
            state.effective_context = id;
            done(Status::Ok)
        },
    )?;
    linker.func_wrap("env", "proxy_done", |mut caller: Ctx<'_>| -> HostResult {
        ngx_unimplemented(&caller, "proxy_done")?;
        let state = caller.data_mut();
        let id = state.effective_context;
        match state.pending_done.iter().position(|c| *c == id) {
            Some(at) => {
                state.pending_done.remove(at);
                done(Status::Ok)
            }
            None => done(Status::NotFound),
        }
    })?;
    linker.func_wrap(
        "env",
        "proxy_call_foreign_function",
        |_: Ctx<'_>, _: i32, _: i32, _: i32, _: i32, _: i32, _: i32| -> HostResult {
            // NOTE: Envoy registers a few foreign functions (compression, filter state);
            // this host registers none, so every name is unknown.
            done(Status::NotFound)
        },
    )?;
    linker.func_wrap("env", "proxy_define_metric", define_metric)?;
    linker.func_wrap("env", "proxy_increment_metric", increment_metric)?;
    linker.func_wrap("env", "proxy_record_metric", record_metric)?;
    linker.func_wrap("env", "proxy_get_metric", get_metric)?;
    Ok(())
}

// ---- properties ----------------------------------------------------------------------------

fn get_property(
    mut caller: Ctx<'_>,
    path_ptr: i32,
    path_len: i32,
    ptr_ptr: i32,
    size_ptr: i32,
) -> HostResult {
    let path = try_status!(read(&mut caller, path_ptr, path_len));
    let segments = abi::split_property_path(&path);
    match props::get(caller.data(), &segments) {
        Some(value) => done(return_bytes(&mut caller, &value, ptr_ptr, size_ptr)?),
        None => done(Status::NotFound),
    }
}

fn set_property(
    mut caller: Ctx<'_>,
    path_ptr: i32,
    path_len: i32,
    value_ptr: i32,
    value_len: i32,
) -> HostResult {
    let path = try_status!(read(&mut caller, path_ptr, path_len));
    let value = try_status!(read(&mut caller, value_ptr, value_len));
    if path.is_empty() {
        return done(Status::BadArgument);
    }
    let state = caller.data_mut();
    let context = state.effective_context;
    // Envoy stores properties in the stream's filter state; a root context has none.
    match state.streams.get_mut(&context) {
        Some(stream) => {
            stream.filter_state.insert(path, value);
            done(Status::Ok)
        }
        None => done(Status::NotFound),
    }
}

// ---- shared data and queues ----------------------------------------------------------------

fn get_shared_data(
    mut caller: Ctx<'_>,
    key_ptr: i32,
    key_len: i32,
    ptr_ptr: i32,
    size_ptr: i32,
    cas_ptr: i32,
) -> HostResult {
    let key = try_status!(read(&mut caller, key_ptr, key_len));
    let state = caller.data();
    let (value, cas) = try_status!(state.shared.data.get(&state.options.vm_id, &key));
    try_status!(write_u32(&mut caller, cas_ptr, cas));
    done(return_bytes(&mut caller, &value, ptr_ptr, size_ptr)?)
}

fn set_shared_data(
    mut caller: Ctx<'_>,
    key_ptr: i32,
    key_len: i32,
    value_ptr: i32,
    value_len: i32,
    cas: i32,
) -> HostResult {
    let key = try_status!(read(&mut caller, key_ptr, key_len));
    let value = try_status!(read(&mut caller, value_ptr, value_len));
    let state = caller.data();
    let ngx = state.options.ngx();
    done(
        state
            .shared
            .data
            .set_checked(&state.options.vm_id, &key, &value, cas as u32, ngx),
    )
}

fn register_shared_queue(
    mut caller: Ctx<'_>,
    name_ptr: i32,
    name_len: i32,
    id_ptr: i32,
) -> HostResult {
    let name = try_status!(read(&mut caller, name_ptr, name_len));
    let state = caller.data();
    let owner = QueueOwner {
        vm_index: state.vm_index,
        context_id: state.root_context_id,
    };
    let id = state
        .shared
        .queues
        .register(&state.options.vm_id, &name, owner);
    done(status_of(write_u32(&mut caller, id_ptr, id)))
}

fn resolve_shared_queue(
    mut caller: Ctx<'_>,
    vm_ptr: i32,
    vm_len: i32,
    name_ptr: i32,
    name_len: i32,
    id_ptr: i32,
) -> HostResult {
    ngx_unimplemented(&caller, "proxy_resolve_shared_queue")?;
    let vm_id = try_status!(read(&mut caller, vm_ptr, vm_len));
    let name = try_status!(read(&mut caller, name_ptr, name_len));
    let vm_id = String::from_utf8_lossy(&vm_id).into_owned();
    match caller.data().shared.queues.resolve(&vm_id, &name) {
        Some(id) => done(status_of(write_u32(&mut caller, id_ptr, id))),
        None => done(Status::NotFound),
    }
}

// ---- local responses and calls -------------------------------------------------------------

#[allow(clippy::too_many_arguments)]
fn send_local_response(
    mut caller: Ctx<'_>,
    status: i32,
    details_ptr: i32,
    details_len: i32,
    body_ptr: i32,
    body_len: i32,
    headers_ptr: i32,
    headers_len: i32,
    _grpc_status: i32,
) -> HostResult {
    let details = try_status!(read(&mut caller, details_ptr, details_len));
    let body = try_status!(read(&mut caller, body_ptr, body_len));
    let headers = try_status!(decode_pairs(&try_status!(read(
        &mut caller,
        headers_ptr,
        headers_len
    ))));
    if headers
        .iter()
        .any(|(k, v)| !valid_key(k) || !valid_value(v))
    {
        return done(Status::BadArgument);
    }
    let Some(stream) = caller.data_mut().stream() else {
        return done(Status::NotFound);
    };
    if stream.local_response.is_some() {
        return done(Status::BadArgument);
    }
    stream.local_response = Some(LocalResponse {
        status: status as u32,
        details: String::from_utf8_lossy(&details).into_owned(),
        headers: headers
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect(),
        body,
    });
    done(Status::Ok)
}

#[allow(clippy::too_many_arguments)]
fn http_call(
    mut caller: Ctx<'_>,
    cluster_ptr: i32,
    cluster_len: i32,
    headers_ptr: i32,
    headers_len: i32,
    body_ptr: i32,
    body_len: i32,
    trailers_ptr: i32,
    trailers_len: i32,
    timeout_ms: i32,
    token_ptr: i32,
) -> HostResult {
    let cluster = try_status!(read(&mut caller, cluster_ptr, cluster_len));
    let headers = try_status!(decode_pairs(&try_status!(read(
        &mut caller,
        headers_ptr,
        headers_len
    ))));
    let body = try_status!(read(&mut caller, body_ptr, body_len));
    let trailers = try_status!(decode_pairs(&try_status!(read(
        &mut caller,
        trailers_ptr,
        trailers_len
    ))));
    let cluster = String::from_utf8_lossy(&cluster).into_owned();
    // Envoy checks that the pseudo-headers are present, not that they are non-empty.
    let has = |name: &[u8]| headers.iter().any(|(k, _)| k == name);
    // Envoy takes the timeout as a signed int: values of 2^31 ms and more are negative.
    if timeout_ms < 0 || !has(b":method") || !has(b":path") || !has(b":authority") {
        return done(Status::BadArgument);
    }
    let state = caller.data_mut();
    // ngx_wasm_module takes an `ip:port` or a host name where Envoy takes a cluster name.
    let known = state.options.clusters.contains(&cluster)
        || (state.options.ngx() && looks_like_host(&cluster));
    if !known {
        return done(Status::BadArgument);
    }
    let token = state.next_call_token;
    state.next_call_token = state.next_call_token.wrapping_add(1).max(1);
    let context_id = state.effective_context;
    state.outgoing_calls.push(OutgoingCall {
        token,
        context_id,
        cluster,
        headers,
        body,
        trailers,
        timeout_ms: timeout_ms as u32,
    });
    done(status_of(write_u32(&mut caller, token_ptr, token)))
}

fn looks_like_host(target: &str) -> bool {
    let host = match target.rsplit_once(':') {
        Some((host, port)) if port.parse::<u16>().is_ok() => host,
        _ => target,
    };
    !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':'))
}

// ---- metrics -------------------------------------------------------------------------------

/// Envoy puts the kind in the low two bits of a metric id, with the ABI's numbering:
/// 0 counter, 1 gauge, 2 histogram.
fn metric_tag(kind: MetricKind) -> u32 {
    match kind {
        MetricKind::Counter => abi::metric::COUNTER,
        MetricKind::Gauge => abi::metric::GAUGE,
        MetricKind::Histogram => abi::metric::HISTOGRAM,
    }
}

fn kind_of_id(id: u32) -> Option<MetricKind> {
    match id & 3 {
        abi::metric::COUNTER => Some(MetricKind::Counter),
        abi::metric::GAUGE => Some(MetricKind::Gauge),
        abi::metric::HISTOGRAM => Some(MetricKind::Histogram),
        _ => None,
    }
}

fn define_metric(
    mut caller: Ctx<'_>,
    metric_type: i32,
    name_ptr: i32,
    name_len: i32,
    id_ptr: i32,
) -> HostResult {
    let name = try_status!(read(&mut caller, name_ptr, name_len));
    let kind = match metric_type as u32 {
        abi::metric::COUNTER => MetricKind::Counter,
        abi::metric::GAUGE => MetricKind::Gauge,
        abi::metric::HISTOGRAM => MetricKind::Histogram,
        _ => return done(Status::BadArgument),
    };
    let name = String::from_utf8_lossy(&name).into_owned();
    let state = caller.data_mut();
    state.shared.metrics.define(&name, kind);
    let id = (state.next_metric_serial << 2) | metric_tag(kind);
    state.next_metric_serial += 1;
    state.metric_ids.insert(id, (kind, name));
    done(status_of(write_u32(&mut caller, id_ptr, id)))
}

/// Envoy decides by the kind bits of the id first: a histogram id is a bad argument for
/// increments and reads whether or not it was defined; other unknown ids are not found.
fn increment_metric(caller: Ctx<'_>, id: i32, delta: i64) -> HostResult {
    let state = caller.data();
    let id = id as u32;
    let status = match kind_of_id(id) {
        Some(MetricKind::Histogram) | None => Status::BadArgument,
        Some(MetricKind::Counter) if delta <= 0 => match state.metric_ids.get(&id) {
            Some(_) => Status::BadArgument,
            None => Status::NotFound,
        },
        Some(_) => match state.metric_ids.get(&id) {
            Some((_, name)) => {
                state
                    .shared
                    .metrics
                    .update(name, |m| m.value = m.value.saturating_add(delta));
                Status::Ok
            }
            None => Status::NotFound,
        },
    };
    done(status)
}

fn record_metric(caller: Ctx<'_>, id: i32, value: i64) -> HostResult {
    let state = caller.data();
    let Some((kind, name)) = state.metric_ids.get(&(id as u32)) else {
        return done(Status::NotFound);
    };
    let kind = *kind;
    state.shared.metrics.update(name, |m| match kind {
        MetricKind::Counter => m.value = m.value.saturating_add(value),
        MetricKind::Gauge => m.value = value,
        MetricKind::Histogram => m.samples.push(value as u64),
    });
    done(Status::Ok)
}

fn get_metric(mut caller: Ctx<'_>, id: i32, value_ptr: i32) -> HostResult {
    let state = caller.data();
    let id = id as u32;
    if matches!(kind_of_id(id), Some(MetricKind::Histogram) | None) {
        return done(Status::BadArgument);
    }
    let Some((_, name)) = state.metric_ids.get(&id) else {
        return done(Status::NotFound);
    };
    let value = state.shared.metrics.update(name, |m| m.value).unwrap_or(0);
    done(status_of(write(
        &mut caller,
        value_ptr,
        &(value as u64).to_le_bytes(),
    )))
}

// ---- WASI ----------------------------------------------------------------------------------

fn wasi(result: Result<(), Status>) -> HostResult {
    Ok(match result {
        Ok(()) => errno::SUCCESS,
        Err(_) => errno::INVAL,
    })
}

/// Writes strings and the pointer array for `environ_get` and `args_get`.
fn write_string_array(
    caller: &mut Ctx<'_>,
    items: &[Vec<u8>],
    array_ptr: i32,
    buf_ptr: i32,
) -> Result<(), Status> {
    let mut at = buf_ptr as u32;
    for (i, item) in items.iter().enumerate() {
        write_u32(caller, array_ptr + 4 * i as i32, at)?;
        let mut bytes = item.clone();
        bytes.push(0);
        write(caller, at as i32, &bytes)?;
        at += bytes.len() as u32;
    }
    Ok(())
}

fn environment(state: &HostState) -> Vec<Vec<u8>> {
    if state.options.ngx() {
        return Vec::new();
    }
    state
        .options
        .environment
        .iter()
        .map(|(k, v)| format!("{k}={v}").into_bytes())
        .collect()
}

fn add_wasi_functions(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    const WASI: &str = "wasi_snapshot_preview1";
    linker.func_wrap(
        WASI,
        "fd_write",
        |mut caller: Ctx<'_>, fd: i32, iovs: i32, iovs_len: i32, written_ptr: i32| -> HostResult {
            if fd != 1 && fd != 2 {
                return Ok(errno::BADF);
            }
            let mut text = Vec::new();
            for i in 0..iovs_len.max(0) {
                let Ok(iov) = read(&mut caller, iovs + 8 * i, 8) else {
                    return Ok(errno::INVAL);
                };
                let ptr = i32::from_le_bytes([iov[0], iov[1], iov[2], iov[3]]);
                let len = i32::from_le_bytes([iov[4], iov[5], iov[6], iov[7]]);
                match read(&mut caller, ptr, len) {
                    Ok(bytes) => text.extend_from_slice(&bytes),
                    Err(_) => return Ok(errno::INVAL),
                }
            }
            let written = text.len() as u32;
            let message =
                String::from_utf8_lossy(text.strip_suffix(b"\n").unwrap_or(&text)).into_owned();
            let level = if fd == 1 {
                LogLevel::Info
            } else {
                LogLevel::Error
            };
            caller.data_mut().log(level, message);
            wasi(write_u32(&mut caller, written_ptr, written))
        },
    )?;
    linker.func_wrap(
        WASI,
        "fd_read",
        |_: Ctx<'_>, _: i32, _: i32, _: i32, _: i32| -> HostResult { Ok(errno::NOSYS) },
    )?;
    linker.func_wrap(
        WASI,
        "fd_seek",
        |mut caller: Ctx<'_>, _: i32, _: i64, _: i32, _: i32| -> HostResult {
            // proxy-wasm-cpp-host logs the call as an error and returns success.
            caller
                .data_mut()
                .log(LogLevel::Error, "wasi fd_seek is not supported".to_string());
            Ok(errno::SUCCESS)
        },
    )?;
    linker.func_wrap(
        WASI,
        "fd_close",
        |mut caller: Ctx<'_>, _: i32| -> HostResult {
            caller.data_mut().log(
                LogLevel::Error,
                "wasi fd_close is not supported".to_string(),
            );
            Ok(errno::SUCCESS)
        },
    )?;
    linker.func_wrap(
        WASI,
        "fd_fdstat_get",
        |mut caller: Ctx<'_>, fd: i32, stat_ptr: i32| -> HostResult {
            if fd != 1 && fd != 2 {
                return Ok(errno::BADF);
            }
            let mut stat = [0u8; 24];
            // proxy-wasm-cpp-host leaves the file type 0 (unknown) and sets write rights.
            stat[8..16].copy_from_slice(&(1u64 << 6).to_le_bytes());
            wasi(write(&mut caller, stat_ptr, &stat))
        },
    )?;
    linker.func_wrap(
        WASI,
        "fd_fdstat_set_flags",
        |_: Ctx<'_>, _: i32, _: i32| -> HostResult { Ok(errno::NOSYS) },
    )?;
    linker.func_wrap(
        WASI,
        "fd_prestat_get",
        |_: Ctx<'_>, _: i32, _: i32| -> HostResult { Ok(errno::BADF) },
    )?;
    linker.func_wrap(
        WASI,
        "fd_prestat_dir_name",
        |_: Ctx<'_>, _: i32, _: i32, _: i32| -> HostResult { Ok(errno::NOSYS) },
    )?;
    linker.func_wrap(
        WASI,
        "environ_sizes_get",
        |mut caller: Ctx<'_>, count_ptr: i32, size_ptr: i32| -> HostResult {
            let env = environment(caller.data());
            let size: usize = env.iter().map(|e| e.len() + 1).sum();
            wasi(
                write_u32(&mut caller, count_ptr, env.len() as u32)
                    .and_then(|()| write_u32(&mut caller, size_ptr, size as u32)),
            )
        },
    )?;
    linker.func_wrap(
        WASI,
        "environ_get",
        |mut caller: Ctx<'_>, array_ptr: i32, buf_ptr: i32| -> HostResult {
            let env = environment(caller.data());
            wasi(write_string_array(&mut caller, &env, array_ptr, buf_ptr))
        },
    )?;
    linker.func_wrap(
        WASI,
        "args_sizes_get",
        |mut caller: Ctx<'_>, count_ptr: i32, size_ptr: i32| -> HostResult {
            wasi(
                write_u32(&mut caller, count_ptr, 0)
                    .and_then(|()| write_u32(&mut caller, size_ptr, 0)),
            )
        },
    )?;
    linker.func_wrap(
        WASI,
        "args_get",
        |_: Ctx<'_>, _: i32, _: i32| -> HostResult { Ok(errno::SUCCESS) },
    )?;
    linker.func_wrap(
        WASI,
        "clock_time_get",
        |mut caller: Ctx<'_>, clock_id: i32, _precision: i64, time_ptr: i32| -> HostResult {
            let clock = &caller.data().shared.clock;
            let nanos = match clock_id {
                0 => clock.now_nanos(),
                1 => clock.monotonic_nanos(),
                _ => return Ok(errno::INVAL),
            };
            wasi(write(&mut caller, time_ptr, &nanos.to_le_bytes()))
        },
    )?;
    linker.func_wrap(
        WASI,
        "random_get",
        |mut caller: Ctx<'_>, buf_ptr: i32, len: i32| -> HostResult {
            use rand::RngCore;
            let len = len as u32 as usize;
            if len > abi::MAX_RANDOM_BYTES {
                return Ok(errno::INVAL);
            }
            let mut bytes = vec![0u8; len];
            caller.data_mut().random.fill_bytes(&mut bytes);
            wasi(write(&mut caller, buf_ptr, &bytes))
        },
    )?;
    linker.func_wrap(WASI, "sched_yield", |_: Ctx<'_>| -> HostResult {
        Ok(errno::SUCCESS)
    })?;
    linker.func_wrap(
        WASI,
        "poll_oneoff",
        |_: Ctx<'_>, _: i32, _: i32, _: i32, _: i32| -> HostResult { Ok(errno::NOSYS) },
    )?;
    linker.func_wrap(
        WASI,
        "proc_exit",
        |mut caller: Ctx<'_>, code: i32| -> wasmtime::Result<()> {
            caller
                .data_mut()
                .log(LogLevel::Critical, format!("wasi proc_exit({code}) called"));
            Err(wasmtime::Error::msg(format!(
                "the module called proc_exit({code})"
            )))
        },
    )?;
    Ok(())
}
