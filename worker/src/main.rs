//! `scribe-worker`: Scribe as a RunPod serverless worker.
//!
//! Modes (as the RunPod SDK chooses them): `--test_input JSON` or a `./test_input.json` runs
//! one job and prints the result. The job loop (RUNPOD_WEBHOOK_GET_JOB) and the local API
//! (`--rp_serve_api`) are being built; until then the worker says so and exits non-zero.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;

use scribe_worker::download::Downloader;
use scribe_worker::job::{clean_stale_jobs, JobRunner};
use scribe_worker::models::Models;
use scribe_worker::settings::Settings;
use scribe_worker::test_input::{outcome_body, parse_test_input};
use scribe_worker::url_guard::{OpenGate, SystemResolver};

#[derive(Parser)]
#[command(name = "scribe-worker", version, about = "Scribe as a RunPod serverless worker")]
struct Args {
    /// Run one job, `{"input": {...}}`, print its result and exit (non-zero on error).
    #[arg(long = "test_input")]
    test_input: Option<String>,
    /// Serve the local API (not in this build yet).
    #[arg(long = "rp_serve_api")]
    rp_serve_api: bool,
    #[arg(long = "rp_api_host", default_value = "localhost")]
    rp_api_host: String,
    #[arg(long = "rp_api_port", default_value_t = 8000)]
    rp_api_port: u16,
}

fn init_logging(settings_debug: bool) {
    let level = std::env::var("CONSOLE_LOG_LEVEL")
        .or_else(|_| std::env::var("LOG_LEVEL"))
        .ok()
        .map(|l| l.to_ascii_lowercase())
        .unwrap_or_else(|| if settings_debug { "debug".into() } else { "info".into() });
    let filter =
        tracing_subscriber::EnvFilter::try_new(&level).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let json = std::env::var_os("RUNPOD_ENDPOINT_ID").is_some();
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("scribe-worker: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(settings.debug);
    let test_input = match (&args.test_input, Path::new("test_input.json")) {
        (Some(t), _) => Some(t.clone()),
        (None, p) if p.is_file() && !args.rp_serve_api => match std::fs::read_to_string(p) {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::error!("cannot read test_input.json: {e}");
                return ExitCode::FAILURE;
            }
        },
        _ => None,
    };
    let Some(test_input) = test_input else {
        tracing::error!(
            "only --test_input (or ./test_input.json) is in this build; the job loop and --rp_serve_api come next"
        );
        return ExitCode::from(2);
    };
    let (id, input) = match parse_test_input(&test_input) {
        Ok(j) => j,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let models = match Models::load(&settings) {
        Ok(m) => Arc::new(m),
        Err(e) => {
            tracing::error!("start-up failed: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = std::fs::create_dir_all(&settings.jobs_dir) {
        tracing::error!("cannot create JOBS_DIR {}: {e}", settings.jobs_dir.display());
        return ExitCode::FAILURE;
    }
    clean_stale_jobs(&settings.jobs_dir);
    let settings = Arc::new(settings);
    let runner = JobRunner {
        models,
        downloader: Arc::new(Downloader {
            resolver: Arc::new(SystemResolver),
            gate: Arc::new(OpenGate),
            policy: settings.policy.clone(),
            limits: settings.limits.clone(),
        }),
        settings,
    };
    let outcome = runtime.block_on(runner.run(&id, &input, Arc::new(|p| tracing::info!("progress: {p}"))));
    println!("{}", outcome_body(&outcome));
    if outcome.is_err() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
