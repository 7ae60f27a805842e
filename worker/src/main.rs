//! `scribe-worker`: Scribe as a RunPod serverless worker.
//!
//! Modes, chosen as the RunPod SDK chooses them: `--test_input JSON` (or a `./test_input.json`)
//! runs one job and prints the result; with RUNPOD_WEBHOOK_GET_JOB set, the platform's job
//! loop; `--rp_serve_api` (or RUNPOD_REALTIME_PORT) serves the local API.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;

use scribe::Cancel;
use scribe_worker::download::Downloader;
use scribe_worker::job::{clean_stale_jobs, outcome_body, JobError, JobRunner, STALE_JOB_AGE};
use scribe_worker::job_loop::{JobLoop, LoopTiming};
use scribe_worker::local_api::{LocalApi, Retention};
use scribe_worker::models::Models;
use scribe_worker::runpod::Endpoints;
use scribe_worker::settings::Settings;
use scribe_worker::startup::{check_disk, log_mounts, DEFAULT_MIN_FREE_DISK_MB};
use scribe_worker::storage::Storage;
use scribe_worker::test_input::parse_test_input;
use scribe_worker::url_guard::{OpenGate, SystemResolver};

#[derive(Parser)]
#[command(name = "scribe-worker", version, about = "Scribe as a RunPod serverless worker")]
struct Args {
    /// Run one job, `{"input": {...}}`, print its result and exit (non-zero on error).
    #[arg(long = "test_input")]
    test_input: Option<String>,
    /// Serve the local API: the platform's /v2/{endpoint}/ routes and the SDK dev server's.
    #[arg(long = "rp_serve_api")]
    rp_serve_api: bool,
    /// Address the local API listens on (default localhost; with RUNPOD_REALTIME_PORT,
    /// RUNPOD_REALTIME_HOST or else 127.0.0.1).
    #[arg(long = "rp_api_host")]
    rp_api_host: Option<String>,
    #[arg(long = "rp_api_port", default_value_t = 8000)]
    rp_api_port: u16,
}

fn init_logging(debug: bool) {
    let level = std::env::var("CONSOLE_LOG_LEVEL")
        .or_else(|_| std::env::var("LOG_LEVEL"))
        .ok()
        .map(|l| l.to_ascii_lowercase())
        .unwrap_or_else(|| if debug { "debug".into() } else { "info".into() });
    let filter =
        tracing_subscriber::EnvFilter::try_new(&level).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if std::env::var_os("RUNPOD_ENDPOINT_ID").is_some() {
        builder.json().init();
    } else {
        builder.init();
    }
}

enum Mode {
    TestInput(String),
    JobLoop(Endpoints),
    LocalApi { host: String, port: u16 },
}

fn mode(args: &Args) -> Result<Mode, String> {
    if args.rp_serve_api {
        let host = args.rp_api_host.clone().unwrap_or_else(|| "localhost".into());
        return Ok(Mode::LocalApi { host, port: args.rp_api_port });
    }
    if let Ok(port) = std::env::var("RUNPOD_REALTIME_PORT") {
        let port = port.parse().map_err(|_| format!("RUNPOD_REALTIME_PORT={port:?} is not a port"))?;
        // Loopback unless a host is given: the API has no authentication of its own.
        let host = args
            .rp_api_host
            .clone()
            .or_else(|| std::env::var("RUNPOD_REALTIME_HOST").ok().filter(|h| !h.trim().is_empty()))
            .unwrap_or_else(|| "127.0.0.1".into());
        return Ok(Mode::LocalApi { host, port });
    }
    if let Some(t) = &args.test_input {
        return Ok(Mode::TestInput(t.clone()));
    }
    if let Some(endpoints) = Endpoints::from_vars(&|k| std::env::var(k).ok()) {
        return endpoints.map(Mode::JobLoop);
    }
    let file = Path::new("test_input.json");
    if file.is_file() {
        return std::fs::read_to_string(file).map(Mode::TestInput).map_err(|e| format!("test_input.json: {e}"));
    }
    Err("nothing to do: pass --test_input JSON, put a test_input.json here, or run on RunPod \
         (RUNPOD_WEBHOOK_GET_JOB)"
        .into())
}

/// Report a failed start-up check on the ping URL (when on the platform), then fail.
async fn unhealthy(endpoints: Option<&Endpoints>, check: &str, reason: &str) -> ExitCode {
    tracing::error!("start-up check {check} failed: {reason}");
    if let Some(url) = endpoints.and_then(|e| e.unhealthy_url(check, reason)) {
        let client = reqwest::Client::builder().no_proxy().build().unwrap_or_default();
        let mut req = client.get(&url).timeout(Duration::from_secs(10));
        if let Some(k) = endpoints.and_then(|e| e.api_key.as_ref()) {
            req = req.header("Authorization", k);
        }
        if let Err(e) = req.send().await {
            tracing::error!("could not report unhealthy: {e}");
        }
    }
    ExitCode::FAILURE
}

/// Resolves on SIGTERM or SIGINT. The handlers are installed when this is called, not when the
/// future is first polled, so a signal that arrives while a job's first poll is still running is
/// caught instead of killing the process with nothing printed.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    async move {
        let wait = |s: std::io::Result<tokio::signal::unix::Signal>| async move {
            match s {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = wait(term) => tracing::info!("SIGTERM: stopping"),
            _ = wait(int) => tracing::info!("interrupted: stopping"),
        }
    }
}

async fn serve(mode: Mode, settings: Settings) -> ExitCode {
    let endpoints = match &mode {
        Mode::JobLoop(e) => Some(e.clone()),
        _ => None,
    };
    if std::env::var("PRINT_MOUNTS").is_ok_and(|v| v == "1") {
        log_mounts();
    }
    if let Err(e) = std::fs::create_dir_all(&settings.jobs_dir) {
        let reason = format!("cannot create JOBS_DIR {}: {e}", settings.jobs_dir.display());
        return unhealthy(endpoints.as_ref(), "disk", &reason).await;
    }
    let min_mb = match std::env::var("MIN_FREE_DISK_MB").ok().map(|v| v.parse::<u64>()) {
        None => DEFAULT_MIN_FREE_DISK_MB,
        Some(Ok(v)) => v,
        Some(Err(_)) => return unhealthy(endpoints.as_ref(), "disk", "MIN_FREE_DISK_MB is not a whole number").await,
    };
    if let Err(reason) = check_disk(&settings.jobs_dir, min_mb) {
        return unhealthy(endpoints.as_ref(), "disk", &reason).await;
    }
    clean_stale_jobs(&settings.jobs_dir, STALE_JOB_AGE);
    let loaded = {
        let s = settings.clone();
        tokio::task::spawn_blocking(move || Models::load(&s)).await
    };
    let models = match loaded {
        Ok(Ok(m)) => Arc::new(m),
        Ok(Err(e)) => return unhealthy(endpoints.as_ref(), "models", &format!("{e:#}")).await,
        Err(e) => return unhealthy(endpoints.as_ref(), "models", &format!("model loading crashed: {e}")).await,
    };
    let settings = Arc::new(settings);
    let runner = Arc::new(JobRunner {
        models,
        downloader: Arc::new(Downloader {
            resolver: Arc::new(SystemResolver),
            gate: Arc::new(OpenGate),
            policy: settings.policy.clone(),
            limits: settings.limits.clone(),
        }),
        storage: settings.storage.clone().map(|c| Arc::new(Storage::new(c))),
        settings: settings.clone(),
    });
    match mode {
        Mode::TestInput(text) => {
            let (id, input) = match parse_test_input(&text) {
                Ok(j) => j,
                Err(e) => {
                    tracing::error!("{e}");
                    return ExitCode::FAILURE;
                }
            };
            // SIGTERM cancels the job; its engine stops at its next check, then its files go.
            let cancel = Cancel::new();
            let stop = shutdown_signal();
            let run = runner.run(&id, &input, Arc::new(|p| tracing::info!("progress: {p}")), &cancel);
            tokio::pin!(run);
            let outcome = tokio::select! {
                outcome = &mut run => outcome,
                _ = stop => {
                    cancel.cancel();
                    run.await.map_err(|e| if e.cancelled {
                        JobError::from("interrupted: the worker was stopped (SIGTERM) before the job finished".to_string())
                    } else {
                        e
                    })
                }
            };
            println!("{}", outcome_body(&outcome));
            if outcome.is_err() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Mode::JobLoop(endpoints) => {
            tracing::info!(
                "job loop: pod {}, {} job(s) at once, ping every {:?}",
                endpoints.pod_id,
                settings.concurrency,
                settings.ping_interval
            );
            let job_loop = JobLoop {
                endpoints: Arc::new(endpoints),
                runner,
                concurrency: settings.concurrency,
                timing: LoopTiming {
                    ping_interval: settings.ping_interval,
                    post_timeout: settings.platform_timeout,
                    drain_timeout: settings.drain_timeout,
                    ..LoopTiming::default()
                },
                jobs_dir: settings.jobs_dir.clone(),
            };
            job_loop.run(shutdown_signal()).await;
            ExitCode::SUCCESS
        }
        Mode::LocalApi { host, port } => {
            let listener = match tokio::net::TcpListener::bind((host.as_str(), port)).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::error!("--rp_serve_api: cannot listen on {host}:{port}: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let at = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
            tracing::info!(
                "local API on http://{at} (routes /v2/{{endpoint_id}}/... and /run, /runsync, /status/{{id}})"
            );
            let retention = match settings.local_api_ttl {
                Some(ttl) => Retention { run_ttl: ttl, runsync_ttl: ttl, ..Retention::default() },
                None => Retention::default(),
            };
            let api = LocalApi::new(runner, settings.concurrency, retention);
            match LocalApi::serve(api, listener, shutdown_signal(), settings.drain_timeout).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("local API: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// Compute threads for each of `concurrency` jobs at once on `cores`: an equal share, at least one.
fn threads_per_job(cores: usize, concurrency: usize) -> usize {
    (cores / concurrency.max(1)).max(1)
}

fn main() -> ExitCode {
    scribe::allocator::keep_large_blocks();
    let args = Args::parse();
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("scribe-worker: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(settings.debug);
    for note in &settings.notes {
        tracing::warn!("{note}");
    }
    if settings.concurrency > 1 && std::env::var_os("RAYON_NUM_THREADS").is_none() {
        // Each job computes on a pool of the global pool's size (Pipeline::run_stages): split
        // the cores between the jobs that run at once rather than run jobs × cores threads.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = threads_per_job(cores, settings.concurrency);
        match rayon::ThreadPoolBuilder::new().num_threads(threads).build_global() {
            Ok(()) => tracing::info!("{} jobs at once on {cores} cores: {threads} threads each", settings.concurrency),
            Err(e) => tracing::warn!("could not size the compute threads ({e}): each job uses every core"),
        }
    }
    let mode = match mode(&args) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::from(2);
        }
    };
    match tokio::runtime::Runtime::new() {
        Ok(rt) => {
            let code = rt.block_on(serve(mode, settings));
            // An engine thread of a job that was stopped may still run; it ends with the process.
            rt.shutdown_background();
            code
        }
        Err(e) => {
            eprintln!("scribe-worker: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::threads_per_job;

    #[test]
    fn concurrent_jobs_share_the_cores_with_at_least_one_thread_each() {
        assert_eq!(threads_per_job(16, 1), 16);
        assert_eq!(threads_per_job(16, 4), 4);
        assert_eq!(threads_per_job(16, 3), 5);
        assert_eq!(threads_per_job(2, 4), 1);
        assert_eq!(threads_per_job(8, 0), 8);
    }
}
