//! Loading a plugin: one wasmtime `Engine` and compiled `Module`, shared by every VM, with
//! the compiled code cached on disk between runs.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use sha2::{Digest, Sha256};
use wasmtime::{Config, Engine, ExternType, Module};

use crate::hostcalls;

/// ABI version exports the host accepts, newest first.
const ABI_VERSIONS: &[&str] = &["proxy_abi_version_0_2_1", "proxy_abi_version_0_2_0"];

/// A compiled plugin and the engine it was compiled for.
#[derive(Clone)]
pub struct Plugin {
    pub engine: Engine,
    pub module: Module,
    /// Size of the `.wasm` file in bytes.
    pub wasm_size: usize,
    /// Whether the compiled code came from the on-disk cache.
    pub from_cache: bool,
}

/// Creates the engine every plugin of this process is compiled with.
pub fn engine() -> anyhow::Result<Engine> {
    let mut config = Config::new();
    config.cranelift_opt_level(wasmtime::OptLevel::Speed);
    // `perf record` names the module's functions from the map file that this
    // writes to /tmp/perf-PID.map.
    if std::env::var_os("PORTCULLIS_PERF_MAP").is_some() {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    Engine::new(&config).map_err(|e| anyhow::anyhow!("failed to create the wasmtime engine: {e:#}"))
}

fn cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("PORTCULLIS_CACHE_DIR") {
        return Some(PathBuf::from(dir));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
    Some(base.join("portcullis-host-test"))
}

impl Plugin {
    /// Reads, checks and compiles the module at `path`, or loads its compiled code from the
    /// cache when the same bytes were compiled before by a compatible engine.
    pub fn load(engine: &Engine, path: &Path) -> anyhow::Result<Plugin> {
        let wasm = std::fs::read(path).with_context(|| {
            format!(
                "failed to read the plugin module {}; build it with `make build`",
                path.display()
            )
        })?;
        Plugin::from_bytes(engine, &wasm)
            .with_context(|| format!("failed to load {}", path.display()))
    }

    /// Compiles a module from bytes (binary or text format), with the on-disk cache.
    pub fn from_bytes(engine: &Engine, wasm: &[u8]) -> anyhow::Result<Plugin> {
        let mut hasher = Sha256::new();
        hasher.update(wasm);
        let mut compat = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut compat);
        hasher.update(compat.finish().to_le_bytes());
        let key = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>();
        let cached = cache_dir().map(|dir| dir.join(format!("{key}.cwasm")));

        if let Some(file) = cached.as_ref().filter(|f| f.exists()) {
            // SAFETY: the file was written by `Module::serialize` of this program into a
            // directory keyed by the module's hash and the engine's compatibility hash;
            // wasmtime checks the header and engine settings before using it.
            #[allow(unsafe_code)]
            let loaded = unsafe { Module::deserialize_file(engine, file) };
            if let Ok(module) = loaded {
                check_exports(&module)?;
                return Ok(Plugin {
                    engine: engine.clone(),
                    module,
                    wasm_size: wasm.len(),
                    from_cache: true,
                });
            }
        }
        let module = Module::new(engine, wasm)
            .map_err(|e| anyhow::anyhow!("failed to compile the module: {e:#}"))?;
        check_exports(&module)?;
        if let Some(file) = cached {
            store_in_cache(&module, &file);
        }
        Ok(Plugin {
            engine: engine.clone(),
            module,
            wasm_size: wasm.len(),
            from_cache: false,
        })
    }
}

/// Writes the compiled module beside its final name and renames it, so that parallel test
/// processes never read a half-written file. Failing to cache only costs time.
fn store_in_cache(module: &Module, file: &Path) {
    let Ok(bytes) = module.serialize() else {
        return;
    };
    let Some(dir) = file.parent() else { return };
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    let temporary = file.with_extension(format!("tmp{}", std::process::id()));
    if std::fs::write(&temporary, bytes).is_ok() && std::fs::rename(&temporary, file).is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
}

/// Rejects a module that imports what Envoy does not provide or exports no known ABI version.
fn check_exports(module: &Module) -> anyhow::Result<()> {
    let provided = hostcalls::provided_imports();
    for import in module.imports() {
        let known = provided
            .iter()
            .any(|(m, n)| *m == import.module() && *n == import.name());
        if !known {
            bail!(
                "the module imports {}.{}, which Envoy's proxy-wasm host does not provide",
                import.module(),
                import.name()
            );
        }
        if !matches!(import.ty(), ExternType::Func(_)) {
            bail!(
                "the module imports {}.{} as a non-function",
                import.module(),
                import.name()
            );
        }
    }
    let exports: Vec<&str> = module.exports().map(|e| e.name()).collect();
    if !ABI_VERSIONS.iter().any(|v| exports.contains(v)) {
        bail!(
            "the module exports no supported ABI version (expected one of {})",
            ABI_VERSIONS.join(", ")
        );
    }
    if !exports.contains(&"memory") {
        bail!("the module exports no memory");
    }
    if !exports.contains(&"proxy_on_memory_allocate") && !exports.contains(&"malloc") {
        bail!("the module exports neither proxy_on_memory_allocate nor malloc");
    }
    Ok(())
}
