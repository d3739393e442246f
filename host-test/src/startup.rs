//! `host-test startup`: what a module costs before and between requests. Compile time
//! without the on-disk cache, instantiate and configure time per VM, and the VM's linear
//! memory at rest and after a mixed load.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use wasmtime::Module;

use crate::module::{self, Plugin};
use crate::shared::{Clock, HostShared};
use crate::state::{LogLevel, VmOptions};
use crate::stream::{ClientRequest, StreamPoll};
use crate::vm::Vm;

/// Arguments of `host-test startup`.
#[derive(clap::Args, Debug)]
pub struct StartupArgs {
    /// Module to measure.
    #[arg(long)]
    pub plugin: PathBuf,
    /// Plugin configuration file.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Compilations to time (each without the cache).
    #[arg(long, default_value_t = 3)]
    pub compiles: usize,
    /// VM starts to time.
    #[arg(long, default_value_t = 50)]
    pub starts: usize,
    /// Requests of the mixed load after which memory is read again.
    #[arg(long, default_value_t = 20000)]
    pub requests: usize,
}

/// Mean and largest of a set of durations, in milliseconds.
fn summary(samples: &[Duration]) -> (f64, f64) {
    let ms = |d: &Duration| d.as_secs_f64() * 1000.0;
    let mean = samples.iter().map(ms).sum::<f64>() / samples.len().max(1) as f64;
    let max = samples.iter().map(ms).fold(0.0, f64::max);
    (mean, max)
}

/// Builds request `index` of the mixed load. The load cycles through an ordinary GET, a
/// JSON API write, a form login, a request the filter blocks, and a GET with a new path
/// and client address each time, so that per-key state keeps growing.
fn load_request(index: usize) -> ClientRequest {
    let mut request = crate::serve::profile_request(index as u64);
    match index % 5 {
        0 => {}
        1 => {
            request.method = b"PUT".to_vec();
            request.path = format!("/api/items/{index}").into_bytes();
            request
                .headers
                .push((b"content-type".to_vec(), b"application/json".to_vec()));
            let body = format!(
                "{{\"name\":\"item {index}\",\"notes\":\"{}\",\"tags\":[\"a\",\"b\"]}}",
                "plain text ".repeat(400)
            );
            request.body_chunks = body.into_bytes().chunks(1024).map(<[u8]>::to_vec).collect();
        }
        2 => {
            request.method = b"POST".to_vec();
            request.path = b"/login".to_vec();
            request.headers.push((
                b"content-type".to_vec(),
                b"application/x-www-form-urlencoded".to_vec(),
            ));
            request.body_chunks =
                vec![format!("username=user{index}&password=secret").into_bytes()];
        }
        3 => {
            request.path = b"/search?q=1%27%20UNION%20SELECT%20password%20FROM%20users--".to_vec();
        }
        _ => {
            request.path = format!("/items/{index}?ref={index}").into_bytes();
            let [a, b] = ((index / 5) as u16).to_be_bytes();
            request.source = SocketAddr::from(([10, 1, a, b], 40000));
        }
    }
    request
}

/// Drives one request to its end. The upstream returns a small JSON response.
fn drive(vm: &mut Vm, request: ClientRequest) -> anyhow::Result<()> {
    let upstream = crate::serve::profile_response();
    let id = vm.start_stream(request);
    loop {
        match vm.poll_stream(id) {
            StreamPoll::NeedUpstream(_) => vm.set_upstream_response(id, upstream.clone()),
            StreamPoll::Done(_) => return Ok(()),
            StreamPoll::Waiting => bail!("the module paused a request of the load"),
        }
    }
}

/// Prints the start-up and memory figures of one module and configuration as Markdown.
pub fn run(args: StartupArgs) -> anyhow::Result<()> {
    let wasm = std::fs::read(&args.plugin)
        .with_context(|| format!("failed to read {}", args.plugin.display()))?;
    let configuration = match &args.config {
        Some(path) => {
            std::fs::read(path).with_context(|| format!("failed to read {}", path.display()))?
        }
        None => Vec::new(),
    };
    let engine = module::engine()?;

    let mut compiles = Vec::new();
    for _ in 0..args.compiles.max(1) {
        let started = Instant::now();
        Module::new(&engine, &wasm)
            .map_err(|e| anyhow::anyhow!("failed to compile the module: {e:#}"))?;
        compiles.push(started.elapsed());
    }
    let plugin = Plugin::from_bytes(&engine, &wasm)?;

    let options = Arc::new(VmOptions {
        plugin_configuration: configuration,
        log_level: LogLevel::Error,
        ..VmOptions::default()
    });
    let (mut instantiates, mut configures) = (Vec::new(), Vec::new());
    for _ in 0..args.starts.max(1) {
        let vm = Vm::start(
            &plugin,
            options.clone(),
            HostShared::new(Clock::system()),
            0,
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        instantiates.push(vm.start_times.instantiate);
        configures.push(vm.start_times.configure);
    }

    let mut vm = Vm::start(&plugin, options, HostShared::new(Clock::system()), 0)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let at_rest = vm.memory_bytes();
    let half = args.requests / 2;
    let mut after_half = at_rest;
    for index in 0..args.requests {
        drive(&mut vm, load_request(index))?;
        vm.take_logs();
        if index % 1000 == 999 {
            vm.fire_tick();
        }
        if index + 1 == half {
            after_half = vm.memory_bytes();
        }
    }
    if let Some(failure) = vm.failure() {
        bail!("the module failed during the load: {failure}");
    }
    let after_load = vm.memory_bytes();

    let row = |name: &str, samples: &[Duration]| {
        let (mean, max) = summary(samples);
        println!("| {name} | {} | {mean:.2} | {max:.2} |", samples.len());
    };
    println!("| step | runs | mean ms | max ms |");
    println!("|---|---|---|---|");
    row("compile (cranelift, no cache)", &compiles);
    row("instantiate", &instantiates);
    row(
        "configure (`_initialize` to `proxy_on_configure`)",
        &configures,
    );
    let sums: Vec<Duration> = instantiates
        .iter()
        .zip(&configures)
        .map(|(i, c)| *i + *c)
        .collect();
    row("instantiate plus configure", &sums);
    println!();
    let kib = |bytes: usize| bytes / 1024;
    println!("| linear memory of one VM | KiB |");
    println!("|---|---|");
    println!("| at rest, after configure | {} |", kib(at_rest));
    println!(
        "| after {half} requests of the mixed load | {} |",
        kib(after_half)
    );
    println!(
        "| after {} requests of the mixed load | {} |",
        args.requests,
        kib(after_load)
    );
    Ok(())
}
