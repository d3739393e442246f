//! `host-test`: run scenario files against the Portcullis module, or serve it on loopback.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use host_test::module;
use host_test::scenario::component::{run_component_file, ComponentHost, ComponentOutcome};
use host_test::scenario::{self, ScenarioOutcome};
use host_test::state::HostProfile;

/// Default module path, the output of `make build`.
const DEFAULT_PLUGIN: &str = "dist/portcullis.wasm";

/// Default component path, the output of `make component`.
const DEFAULT_COMPONENT: &str = "dist/portcullis-component.wasm";

#[derive(Parser)]
#[command(
    name = "host-test",
    version,
    about = "A proxy-wasm host on wasmtime that behaves like Envoy's"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run scenario files and report each step; exits 0 only when every step passes.
    Run {
        /// Module for scenarios that name none (default: $PORTCULLIS_WASM or dist/portcullis.wasm).
        #[arg(long)]
        plugin: Option<PathBuf>,
        /// Print each step's full result as JSON instead of a line per step.
        #[arg(long)]
        json: bool,
        /// Host to reproduce for scenarios that name none.
        #[arg(long, value_enum, default_value = "envoy")]
        host: HostProfile,
        /// Scenario files (YAML or JSON).
        #[arg(required = true)]
        scenarios: Vec<PathBuf>,
    },
    /// Run scenario files through the Portcullis component instead of the module; steps the
    /// component world cannot express are reported as skipped.
    Component {
        /// The component (default: dist/portcullis-component.wasm, the output of `make component`).
        #[arg(long, default_value = DEFAULT_COMPONENT)]
        component: PathBuf,
        /// Print each step's full result as JSON instead of a line per step.
        #[arg(long)]
        json: bool,
        /// Scenario files (YAML or JSON).
        #[arg(required = true)]
        scenarios: Vec<PathBuf>,
    },
    /// Serve a reverse proxy on loopback that runs every exchange through the module.
    Serve(host_test::serve::ServeArgs),
    /// Measure the harness's own cost per request with a module that only continues.
    Bench(host_test::serve::BenchArgs),
    /// Send GET requests to a loopback URL and print the throughput.
    Load(host_test::serve::LoadArgs),
    /// Feed generated hostile exchanges to the module; fails on a trap or memory growth.
    Fuzz(host_test::fuzz::FuzzArgs),
    /// Pack the module as OCI image layouts (compat and oci formats).
    Oci(host_test::oci::OciArgs),
    /// Time compiling, instantiating and configuring the module, and read its memory.
    Startup(host_test::startup::StartupArgs),
    /// Send a labelled request corpus through the module and report the share blocked
    /// per category.
    Replay(host_test::replay::ReplayArgs),
}

fn default_plugin(plugin: Option<PathBuf>) -> PathBuf {
    plugin
        .or_else(|| std::env::var_os("PORTCULLIS_WASM").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_PLUGIN))
}

fn print_outcome(outcome: &ScenarioOutcome) -> (usize, usize) {
    if let Some(error) = &outcome.error {
        println!("FAIL {}: {error}", outcome.file);
        return (0, 1);
    }
    let (mut passed, mut failed) = (0, 0);
    for step in &outcome.steps {
        if step.passed() {
            passed += 1;
            println!("PASS {}: {}", outcome.file, step.name);
        } else {
            failed += 1;
            println!(
                "FAIL {}: {}: {}",
                outcome.file,
                step.name,
                step.failures.join("; ")
            );
            for line in &step.logs {
                println!("    log [{:?}] {}", line.level, line.message);
            }
        }
    }
    (passed, failed)
}

fn run(
    plugin: Option<PathBuf>,
    json: bool,
    host: HostProfile,
    files: Vec<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let engine = module::engine()?;
    let plugin = default_plugin(plugin);
    let outcomes: Vec<ScenarioOutcome> = files
        .iter()
        .map(|file| scenario::run_file(&engine, file, &plugin, host))
        .collect();
    let all_passed = outcomes.iter().all(ScenarioOutcome::passed);
    if json {
        println!("{}", serde_json::to_string_pretty(&outcomes)?);
    } else {
        let (mut passed, mut failed) = (0, 0);
        for outcome in &outcomes {
            let (p, f) = print_outcome(outcome);
            passed += p;
            failed += f;
        }
        println!("{passed} passed, {failed} failed");
    }
    Ok(if all_passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Prints one line per step of a component run; returns the passed, failed and skipped
/// counts.
fn print_component_outcome(outcome: &ComponentOutcome) -> (usize, usize, usize) {
    if let Some(error) = &outcome.error {
        println!("FAIL {}: {error}", outcome.file);
        return (0, 1, 0);
    }
    if let Some(reason) = &outcome.skipped {
        println!("SKIP {}: every step: {reason}", outcome.file);
        return (0, 0, outcome.steps.len().max(1));
    }
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for step in &outcome.steps {
        let name = &step.result.name;
        if let Some(reason) = &step.skipped {
            skipped += 1;
            println!("SKIP {}: {name}: {reason}", outcome.file);
        } else if step.result.passed() {
            passed += 1;
            if step.unchecked.is_empty() {
                println!("PASS {}: {name}", outcome.file);
            } else {
                println!(
                    "PASS {}: {name} (not checked: {})",
                    outcome.file,
                    step.unchecked.join(", ")
                );
            }
        } else {
            failed += 1;
            println!(
                "FAIL {}: {name}: {}",
                outcome.file,
                step.result.failures.join("; ")
            );
            for line in &step.result.logs {
                println!("    log [{:?}] {}", line.level, line.message);
            }
        }
    }
    (passed, failed, skipped)
}

fn run_component(component: PathBuf, json: bool, files: Vec<PathBuf>) -> anyhow::Result<ExitCode> {
    let engine = module::engine()?;
    let host = ComponentHost::load(&engine, &component)?;
    let outcomes: Vec<ComponentOutcome> = files
        .iter()
        .map(|file| run_component_file(&host, file))
        .collect();
    let all_passed = outcomes.iter().all(ComponentOutcome::passed);
    if json {
        println!("{}", serde_json::to_string_pretty(&outcomes)?);
    } else {
        let (mut passed, mut failed, mut skipped) = (0, 0, 0);
        for outcome in &outcomes {
            let (p, f, s) = print_component_outcome(outcome);
            passed += p;
            failed += f;
            skipped += s;
        }
        println!("{passed} passed, {failed} failed, {skipped} skipped");
    }
    Ok(if all_passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run {
            plugin,
            json,
            host,
            scenarios,
        } => run(plugin, json, host, scenarios),
        Command::Component {
            component,
            json,
            scenarios,
        } => run_component(component, json, scenarios),
        Command::Serve(args) => host_test::serve::serve(args).map(|()| ExitCode::SUCCESS),
        Command::Bench(args) => host_test::serve::bench(args).map(|()| ExitCode::SUCCESS),
        Command::Load(args) => host_test::serve::load(args).map(|()| ExitCode::SUCCESS),
        Command::Fuzz(args) => host_test::fuzz::run(args).map(|()| ExitCode::SUCCESS),
        Command::Oci(args) => host_test::oci::run(args).map(|()| ExitCode::SUCCESS),
        Command::Startup(args) => host_test::startup::run(args).map(|()| ExitCode::SUCCESS),
        Command::Replay(args) => host_test::replay::run(args).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("host-test: {error:#}");
            ExitCode::from(2)
        }
    }
}
