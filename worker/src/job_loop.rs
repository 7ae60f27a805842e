//! The platform's job loop: take jobs from RUNPOD_WEBHOOK_GET_JOB (the batch route when several
//! slots are free), run up to SCRIBE_CONCURRENCY at once, post progress and results, ping on
//! a timer of its own, stop jobs the stop channel names, and on SIGTERM stop taking, finish the
//! jobs in flight and post their results. Failures back off with jitter; a result that cannot be
//! posted is written under JOBS_DIR/pending-results and posted again later, never dropped.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::{mpsc, Notify};
use tokio::task::{AbortHandle, JoinSet};

use crate::backoff::Backoff;
use crate::job::{outcome_body, safe_id, JobRunner};
use crate::runpod::Endpoints;

/// The SDK's pause after a 429 from the take route.
pub const TOO_MANY_REQUESTS_PAUSE: Duration = Duration::from_secs(5);
/// The platform long-polls a take for up to 90 s; a little more before giving up on it.
pub const TAKE_TIMEOUT: Duration = Duration::from_secs(95);
/// How often results left on disk are posted again.
pub const PENDING_RETRY_EVERY: Duration = Duration::from_secs(30);

/// Timings of the loop (shortened by tests).
#[derive(Clone, Debug)]
pub struct LoopTiming {
    pub ping_interval: Duration,
    /// First retry pause for posts and takes; doubled per failure.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// Attempts per result post before it goes to disk.
    pub post_attempts: usize,
    /// Pause after "no job" (the platform normally holds the take open instead).
    pub idle_pause: Duration,
    /// How often results kept on disk are posted again.
    pub pending_retry: Duration,
}

impl Default for LoopTiming {
    fn default() -> Self {
        LoopTiming {
            ping_interval: Duration::from_secs(10),
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(30),
            post_attempts: 5,
            idle_pause: Duration::from_millis(500),
            pending_retry: PENDING_RETRY_EVERY,
        }
    }
}

pub struct JobLoop {
    pub endpoints: Arc<Endpoints>,
    pub runner: Arc<JobRunner>,
    pub concurrency: usize,
    pub timing: LoopTiming,
    pub jobs_dir: PathBuf,
}

/// Jobs in flight: ids for the heartbeat, abort handles for the stop channel.
#[derive(Default)]
struct InFlight {
    ids: HashSet<String>,
    aborts: HashMap<String, AbortHandle>,
}

/// Posts JSON to the platform with the worker's headers.
#[derive(Clone)]
struct Poster {
    http: reqwest::Client,
    api_key: Option<String>,
}

enum PostError {
    /// Worth another try: network errors and 5xx.
    Transient(String),
    Final(String),
}

impl Poster {
    async fn post(&self, url: &str, job_id: &str, body: &Value) -> Result<(), PostError> {
        let mut req = self.http.post(url).header("Content-Type", "application/json").header("X-Request-ID", job_id);
        if let Some(k) = &self.api_key {
            req = req.header("Authorization", k);
        }
        match req.body(body.to_string()).send().await {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) if r.status().is_server_error() => Err(PostError::Transient(format!("HTTP {}", r.status().as_u16()))),
            Ok(r) => Err(PostError::Final(format!("HTTP {}", r.status().as_u16()))),
            Err(e) => Err(PostError::Transient(e.to_string())),
        }
    }

    async fn get(&self, url: &str, timeout: Duration) -> reqwest::Result<reqwest::Response> {
        let mut req = self.http.get(url).timeout(timeout);
        if let Some(k) = &self.api_key {
            req = req.header("Authorization", k);
        }
        req.send().await
    }
}

/// A result that could not be posted, kept until it can be.
#[derive(serde::Serialize, serde::Deserialize)]
struct PendingResult {
    job_id: String,
    url: String,
    body: Value,
}

fn pending_dir(jobs_dir: &Path) -> PathBuf {
    jobs_dir.join("pending-results")
}

impl JobLoop {
    /// Run until `shutdown` completes (SIGTERM), then drain the jobs in flight.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let poster = Poster {
            http: reqwest::Client::builder().no_proxy().build().unwrap_or_default(),
            api_key: self.endpoints.api_key.clone(),
        };
        let in_flight = Arc::new(Mutex::new(InFlight::default()));
        let slot_freed = Arc::new(Notify::new());
        let background = [
            tokio::spawn(heartbeat(
                self.endpoints.clone(),
                poster.clone(),
                in_flight.clone(),
                self.timing.ping_interval,
            )),
            tokio::spawn(stop_channel(self.endpoints.clone(), poster.clone(), in_flight.clone(), self.timing.clone())),
            tokio::spawn(retry_pending(poster.clone(), self.jobs_dir.clone(), self.timing.pending_retry)),
        ];
        let mut jobs: JoinSet<()> = JoinSet::new();
        let mut backoff = Backoff::new(self.timing.retry_base, self.timing.retry_max);
        tokio::pin!(shutdown);
        loop {
            while jobs.try_join_next().is_some() {}
            let running = jobs.len();
            if running >= self.concurrency {
                tokio::select! {
                    _ = &mut shutdown => break,
                    _ = slot_freed.notified() => continue,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
            let url = self.endpoints.take_url(running > 0, self.concurrency - running);
            let taken = tokio::select! {
                _ = &mut shutdown => break,
                r = poster.get(&url, TAKE_TIMEOUT) => r,
            };
            let pause = match taken {
                Ok(r) if r.status() == reqwest::StatusCode::OK => match r.json::<Value>().await {
                    Ok(body) => {
                        backoff.reset();
                        for job in jobs_of(body) {
                            self.start(job, &mut jobs, &poster, &in_flight, &slot_freed).await;
                        }
                        None
                    }
                    Err(e) => {
                        tracing::error!("job take: the body is not JSON: {e}");
                        Some(backoff.next_delay())
                    }
                },
                Ok(r) if matches!(r.status().as_u16(), 204 | 400) => {
                    backoff.reset();
                    Some(self.timing.idle_pause)
                }
                Ok(r) if r.status().as_u16() == 429 => Some(TOO_MANY_REQUESTS_PAUSE),
                Ok(r) => {
                    tracing::warn!("job take: HTTP {}", r.status().as_u16());
                    Some(backoff.next_delay())
                }
                Err(e) => {
                    tracing::warn!("job take failed: {e}");
                    Some(backoff.next_delay())
                }
            };
            if let Some(p) = pause {
                tokio::select! {
                    _ = &mut shutdown => break,
                    _ = tokio::time::sleep(p) => {}
                }
            }
        }
        let left = jobs.len();
        if left > 0 {
            tracing::info!("stopping: finishing {left} job(s) in flight");
        }
        while jobs.join_next().await.is_some() {}
        for b in background {
            b.abort();
        }
        tracing::info!("stopped");
    }

    /// Start one taken job (or answer a malformed one).
    async fn start(
        &self,
        job: Value,
        jobs: &mut JoinSet<()>,
        poster: &Poster,
        in_flight: &Arc<Mutex<InFlight>>,
        slot_freed: &Arc<Notify>,
    ) {
        let Some(id) = job.get("id").and_then(Value::as_str).map(str::to_string) else {
            let shown: String = job.to_string().chars().take(200).collect();
            tracing::error!("job take: a job without an id was dropped: {shown}");
            return;
        };
        let Some(input) = job.get("input").cloned() else {
            tracing::error!("job {id}: no input");
            let body = json!({"error": "the job has no input"});
            post_result(poster, &self.endpoints.result_url(&id), &id, &body, &self.timing, &self.jobs_dir).await;
            return;
        };
        tracing::info!("job {id}: started");
        in_flight.lock().unwrap().ids.insert(id.clone());
        let (progress_tx, mut progress_rx) = mpsc::unbounded_channel::<Value>();
        let runner = self.runner.clone();
        let endpoints = self.endpoints.clone();
        let poster = poster.clone();
        let timing = self.timing.clone();
        let jobs_dir = self.jobs_dir.clone();
        let in_flight_task = in_flight.clone();
        let slot_freed = slot_freed.clone();
        let task_id = id.clone();
        let handle = jobs.spawn(async move {
            let id = task_id;
            let url = endpoints.result_url(&id);
            // Progress goes out in order, and before the result.
            let progress_poster = {
                let (poster, url, id) = (poster.clone(), url.clone(), id.clone());
                tokio::spawn(async move {
                    while let Some(p) = progress_rx.recv().await {
                        let body = json!({"status": "IN_PROGRESS", "output": p});
                        if let Err(PostError::Transient(e) | PostError::Final(e)) = poster.post(&url, &id, &body).await
                        {
                            tracing::debug!("job {id}: progress update not posted: {e}");
                        }
                    }
                })
            };
            let outcome = runner.run(&id, &input, Arc::new(move |p| drop(progress_tx.send(p)))).await;
            let _ = progress_poster.await;
            match &outcome {
                Ok(_) => tracing::info!("job {id}: done"),
                Err(e) => tracing::warn!("job {id}: failed: {e}"),
            }
            post_result(&poster, &url, &id, &outcome_body(&outcome), &timing, &jobs_dir).await;
            let mut f = in_flight_task.lock().unwrap();
            f.ids.remove(&id);
            f.aborts.remove(&id);
            drop(f);
            slot_freed.notify_one();
        });
        let mut f = in_flight.lock().unwrap();
        // A job that already ended has left `ids`; it needs no stop handle.
        if f.ids.contains(&id) {
            f.aborts.insert(id, handle);
        }
    }
}

/// A take's body: one job or a list of them.
fn jobs_of(body: Value) -> Vec<Value> {
    match body {
        Value::Array(items) => items,
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

/// Post a result, retrying network errors and 5xx; what still fails goes to disk.
async fn post_result(poster: &Poster, url: &str, id: &str, body: &Value, timing: &LoopTiming, jobs_dir: &Path) {
    let mut backoff = Backoff::new(timing.retry_base, timing.retry_max);
    for attempt in 1..=timing.post_attempts.max(1) {
        match poster.post(url, id, body).await {
            Ok(()) => return,
            Err(PostError::Final(e)) => {
                tracing::error!("job {id}: the platform refused the result ({e}); it is not retried");
                return;
            }
            Err(PostError::Transient(e)) => {
                tracing::warn!("job {id}: posting the result failed (attempt {attempt}): {e}");
                if attempt < timing.post_attempts {
                    tokio::time::sleep(backoff.next_delay()).await;
                }
            }
        }
    }
    let dir = pending_dir(jobs_dir);
    let path = dir.join(format!("{}.json", safe_id(id)));
    let pending = PendingResult { job_id: id.to_string(), url: url.to_string(), body: body.clone() };
    let written = std::fs::create_dir_all(&dir)
        .and_then(|_| std::fs::write(&path, serde_json::to_vec(&pending).unwrap_or_default()));
    match written {
        Ok(()) => tracing::error!("job {id}: result kept in {} until it can be posted", path.display()),
        Err(e) => tracing::error!("job {id}: result could not be posted nor kept ({e}): {body}"),
    }
}

/// Post the results kept on disk, now (results of an earlier run) and every `every`.
async fn retry_pending(poster: Poster, jobs_dir: PathBuf, every: Duration) {
    loop {
        post_pending_once(&poster, &jobs_dir).await;
        tokio::time::sleep(every).await;
    }
}

async fn post_pending_once(poster: &Poster, jobs_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(pending_dir(jobs_dir)) else { return };
    for path in entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "json")) {
        let Ok(pending) = std::fs::read(&path)
            .map_err(|_| ())
            .and_then(|b| serde_json::from_slice::<PendingResult>(&b).map_err(|_| ()))
        else {
            tracing::warn!("{}: not a kept result, left alone", path.display());
            continue;
        };
        match poster.post(&pending.url, &pending.job_id, &pending.body).await {
            Ok(()) | Err(PostError::Final(_)) => {
                tracing::info!("job {}: kept result posted", pending.job_id);
                let _ = std::fs::remove_file(&path);
            }
            Err(PostError::Transient(e)) => {
                tracing::debug!("job {}: kept result still not posted: {e}", pending.job_id)
            }
        }
    }
}

/// GET the ping URL every `interval`, with the jobs in flight; never waits on inference.
async fn heartbeat(endpoints: Arc<Endpoints>, poster: Poster, in_flight: Arc<Mutex<InFlight>>, interval: Duration) {
    loop {
        let ids: Vec<String> = {
            let mut v: Vec<String> = in_flight.lock().unwrap().ids.iter().cloned().collect();
            v.sort();
            v
        };
        if let Some(url) = endpoints.ping_url(&ids) {
            if let Err(e) = poster.get(&url, interval.max(Duration::from_secs(1))).await {
                tracing::debug!("ping failed: {e}");
            }
        }
        tokio::time::sleep(interval).await;
    }
}

/// Long-poll the job-stop route; a job it names is stopped and posts nothing.
async fn stop_channel(endpoints: Arc<Endpoints>, poster: Poster, in_flight: Arc<Mutex<InFlight>>, timing: LoopTiming) {
    let mut backoff = Backoff::new(timing.retry_base, timing.retry_max);
    loop {
        let pause = match poster.get(&endpoints.stop_url(), TAKE_TIMEOUT).await {
            Ok(r) if r.status() == reqwest::StatusCode::OK => {
                backoff.reset();
                let body: Value = r.json().await.unwrap_or(Value::Null);
                for id in
                    body.get("jobsToStop").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str)
                {
                    let mut f = in_flight.lock().unwrap();
                    if let Some(h) = f.aborts.remove(id) {
                        h.abort();
                        f.ids.remove(id);
                        tracing::info!("job {id}: stopped by the platform");
                    }
                }
                timing.idle_pause
            }
            Ok(r) if r.status().is_success() || matches!(r.status().as_u16(), 400 | 404) => {
                backoff.reset();
                timing.idle_pause
            }
            Ok(_) | Err(_) => backoff.next_delay(),
        };
        tokio::time::sleep(pause).await;
    }
}
