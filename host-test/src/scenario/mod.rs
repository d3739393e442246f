//! Scenario files: a plugin, its configuration, and steps of requests and clock moves with
//! the expected outcome of each, run against real VMs of the plugin.

pub mod component;
pub mod file;
mod report;
mod run;

pub use report::{BytesJson, StepResult};
pub use run::{load, run_file, run_scenario, ScenarioOutcome};
