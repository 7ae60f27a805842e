//! The platform's job loop: take jobs from RUNPOD_WEBHOOK_GET_JOB (the batch route when several
//! slots are free), run up to SCRIBE_CONCURRENCY at once, post progress and results, ping on
//! a timer of its own, stop jobs the stop channel names, and on SIGTERM stop taking, finish the
//! jobs in flight and post their results. Failures back off with jitter; a result that cannot be
//! posted is written under JOBS_DIR/pending-results and posted again later, never dropped.
//!
//! Every request to the platform has a timeout ([`LoopTiming::post_timeout`], the take its
//! long-poll limit), so a stalled server holds nothing: a job's slot is freed when its engine
//! returns, not when its result is posted; progress updates are dropped once the result is
//! ready; a hung result post is retried and then kept on disk. Empty or malformed takes back off
//! like errors, and a take that hands over more jobs than there are free slots queues the extra
//! ones here instead of running them beside the others.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinSet;

use scribe::Cancel;

use crate::backoff::Backoff;
use crate::job::{outcome_body, safe_id, JobRunner};
use crate::redact::safe_message;
use crate::runpod::Endpoints;

/// The SDK's pause after a 429 from the take route.
pub const TOO_MANY_REQUESTS_PAUSE: Duration = Duration::from_secs(5);
/// The platform long-polls a take for up to 90 s; a little more before giving up on it.
pub const TAKE_TIMEOUT: Duration = Duration::from_secs(95);
/// How often results left on disk are posted again.
pub const PENDING_RETRY_EVERY: Duration = Duration::from_secs(30);
/// Default limit on one result, progress or ping request (SCRIBE_PLATFORM_TIMEOUT_S).
pub const POST_TIMEOUT: Duration = Duration::from_secs(30);
/// Default time jobs in flight get after SIGTERM before they are cancelled (SCRIBE_DRAIN_TIMEOUT_S).
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(300);

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
    /// Limit on each post (result, progress) and ping.
    pub post_timeout: Duration,
    /// After SIGTERM, how long jobs in flight may take before they are cancelled.
    pub drain_timeout: Duration,
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
            post_timeout: POST_TIMEOUT,
            drain_timeout: DRAIN_TIMEOUT,
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

/// Jobs in flight: ids for the heartbeat (from the take until the result is posted), the
/// cancel tokens of the running ones, and those the platform stopped (they post nothing).
#[derive(Default)]
struct InFlight {
    ids: HashSet<String>,
    cancels: HashMap<String, Cancel>,
    stopped: HashSet<String>,
    /// Stops for jobs this worker did not know yet: one taken while the stop arrived (its take
    /// answered, its id not yet recorded) is dropped when it is recorded.
    stop_before_take: HashSet<String>,
    /// SIGTERM's drain deadline passed: jobs cancelled now post why.
    draining: bool,
}

/// The error a job cancelled at the drain deadline posts.
pub const DRAIN_CANCELLED: &str =
    "the worker was stopped (SIGTERM) and the job did not finish within the drain timeout; submit it again";

/// Posts JSON to the platform with the worker's headers, each request within `timeout`.
#[derive(Clone)]
struct Poster {
    http: reqwest::Client,
    api_key: Option<String>,
    timeout: Duration,
}

enum PostError {
    /// Worth another try: network errors and 5xx.
    Transient(String),
    Final(String),
}

impl Poster {
    async fn post(&self, url: &str, job_id: &str, body: &Value) -> Result<(), PostError> {
        let mut req = self
            .http
            .post(url)
            .timeout(self.timeout)
            .header("Content-Type", "application/json")
            .header("X-Request-ID", job_id);
        if let Some(k) = &self.api_key {
            req = req.header("Authorization", k);
        }
        match req.body(body.to_string()).send().await {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) if r.status().is_server_error() => Err(PostError::Transient(format!("HTTP {}", r.status().as_u16()))),
            Ok(r) => Err(PostError::Final(format!("HTTP {}", r.status().as_u16()))),
            Err(e) if e.is_timeout() => {
                Err(PostError::Transient(format!("no answer within {} s", self.timeout.as_secs_f64())))
            }
            Err(e) => Err(PostError::Transient(safe_message(&e.without_url().to_string()))),
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

/// Where job `id`'s result is kept until it can be posted.
pub fn pending_path(jobs_dir: &Path, id: &str) -> PathBuf {
    pending_dir(jobs_dir).join(pending_name(id))
}

/// A kept result's file name: the id as a file name plus a hash of the id itself, so ids that
/// read the same as file names (`x.1`, `x_1`) never share a file.
fn pending_name(id: &str) -> String {
    // FNV-1a, 64 bits.
    let hash = id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3));
    format!("{}-{hash:016x}.json", safe_id(id))
}

/// What a take handed over.
#[derive(Debug, PartialEq)]
enum Take {
    Jobs(Vec<Value>),
    /// An empty list, `null` or `{}`: nothing to run, and the platform should not answer 200 so.
    Empty,
}

/// A take's body: one job or a list of them.
fn jobs_of(body: Value) -> Take {
    let jobs = match body {
        Value::Array(items) => items,
        Value::Object(m) if m.is_empty() => Vec::new(),
        Value::Null => Vec::new(),
        other => vec![other],
    };
    if jobs.is_empty() {
        Take::Empty
    } else {
        Take::Jobs(jobs)
    }
}

/// What the loop shares with its jobs.
struct Shared {
    poster: Poster,
    in_flight: Arc<Mutex<InFlight>>,
    /// Jobs whose engine has not returned.
    running: Arc<AtomicUsize>,
    slot_freed: Arc<Notify>,
}

/// Frees a job's slot when its engine has returned (or its task was stopped).
struct Slot {
    running: Arc<AtomicUsize>,
    freed: Arc<Notify>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.running.fetch_sub(1, Ordering::SeqCst);
        self.freed.notify_one();
    }
}

impl JobLoop {
    /// Run until `shutdown` completes (SIGTERM), then drain the jobs in flight.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let poster = Poster {
            http: reqwest::Client::builder().no_proxy().build().unwrap_or_default(),
            api_key: self.endpoints.api_key.clone(),
            timeout: self.timing.post_timeout,
        };
        let shared = Shared {
            poster: poster.clone(),
            in_flight: Arc::new(Mutex::new(InFlight::default())),
            running: Arc::new(AtomicUsize::new(0)),
            slot_freed: Arc::new(Notify::new()),
        };
        let (in_flight, running, slot_freed) = (&shared.in_flight, &shared.running, &shared.slot_freed);
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
        // Jobs a take handed over beyond the free slots, run as slots free up.
        let mut waiting: VecDeque<(String, Value)> = VecDeque::new();
        let mut backoff = Backoff::new(self.timing.retry_base, self.timing.retry_max);
        tokio::pin!(shutdown);
        loop {
            while jobs.try_join_next().is_some() {}
            if self.start_next(&mut waiting, &mut jobs, &shared).await {
                continue;
            }
            let busy = running.load(Ordering::SeqCst);
            if busy >= self.concurrency {
                tokio::select! {
                    _ = &mut shutdown => break,
                    _ = slot_freed.notified() => continue,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
            let free = self.concurrency - busy;
            let url = self.endpoints.take_url(busy > 0, free);
            let taken = tokio::select! {
                _ = &mut shutdown => break,
                r = poster.get(&url, TAKE_TIMEOUT) => r,
            };
            let pause = match taken {
                Ok(r) if r.status() == reqwest::StatusCode::OK => match r.json::<Value>().await.map(jobs_of) {
                    Ok(Take::Jobs(list)) => {
                        let mut malformed = false;
                        for job in list {
                            match job.get("id").and_then(Value::as_str) {
                                Some(id) => {
                                    let id = id.to_string();
                                    let mut f = in_flight.lock().unwrap();
                                    if f.stop_before_take.remove(&id) {
                                        tracing::info!("job {id}: stopped by the platform before it started");
                                        continue;
                                    }
                                    f.ids.insert(id.clone());
                                    drop(f);
                                    waiting.push_back((id, job));
                                }
                                None => {
                                    malformed = true;
                                    let shown = safe_message(&job.to_string());
                                    tracing::error!("job take: a job without an id was dropped: {shown}");
                                }
                            }
                        }
                        if malformed {
                            Some(backoff.next_delay())
                        } else {
                            backoff.reset();
                            None
                        }
                    }
                    Ok(Take::Empty) => {
                        tracing::debug!("job take: HTTP 200 with no job in it");
                        Some(backoff.next_delay())
                    }
                    Err(e) => {
                        tracing::error!(
                            "job take: the body is not JSON: {}",
                            safe_message(&e.without_url().to_string())
                        );
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
                    tracing::warn!("job take failed: {}", safe_message(&e.without_url().to_string()));
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
        // Jobs taken but not started run too (the platform handed them to this worker), until
        // the drain deadline: then the running ones are cancelled and post why, and those not
        // started are answered without running.
        let left = jobs.len() + waiting.len();
        if left > 0 {
            tracing::info!("stopping: finishing {left} job(s) taken, for at most {:?}", self.timing.drain_timeout);
        }
        let deadline = tokio::time::sleep(self.timing.drain_timeout);
        tokio::pin!(deadline);
        let mut past_deadline = false;
        while !waiting.is_empty() || !jobs.is_empty() {
            if !past_deadline && self.start_next(&mut waiting, &mut jobs, &shared).await {
                continue;
            }
            tokio::select! {
                _ = jobs.join_next() => {}
                _ = slot_freed.notified() => {}
                _ = &mut deadline, if !past_deadline => {
                    past_deadline = true;
                    {
                        let mut f = in_flight.lock().unwrap();
                        f.draining = true;
                        tracing::warn!("drain timeout: cancelling {} running job(s)", f.cancels.len());
                        for c in f.cancels.values() {
                            c.cancel();
                        }
                    }
                    for (id, _) in waiting.drain(..) {
                        let body = json!({"error": DRAIN_CANCELLED});
                        post_result(&poster, &self.endpoints.result_url(&id), &id, &body, &self.timing, &self.jobs_dir).await;
                        in_flight.lock().unwrap().ids.remove(&id);
                    }
                }
            }
        }
        for b in background {
            b.abort();
        }
        tracing::info!("stopped");
    }

    /// Start the first waiting job when a slot is free (a job the stop channel named is
    /// dropped instead); false when there was nothing to do.
    async fn start_next(
        &self,
        waiting: &mut VecDeque<(String, Value)>,
        jobs: &mut JoinSet<()>,
        shared: &Shared,
    ) -> bool {
        if shared.running.load(Ordering::SeqCst) >= self.concurrency {
            return false;
        }
        let Some((id, job)) = waiting.pop_front() else { return false };
        if shared.in_flight.lock().unwrap().ids.contains(&id) {
            self.start(id, job, jobs, shared).await;
        }
        true
    }

    /// Start one taken job (or answer a malformed one).
    async fn start(&self, id: String, job: Value, jobs: &mut JoinSet<()>, shared: &Shared) {
        let Shared { poster, in_flight, running, slot_freed } = shared;
        let Some(input) = job.get("input").cloned() else {
            tracing::error!("job {id}: no input");
            let body = json!({"error": "the job has no input"});
            post_result(poster, &self.endpoints.result_url(&id), &id, &body, &self.timing, &self.jobs_dir).await;
            in_flight.lock().unwrap().ids.remove(&id);
            return;
        };
        // Registered under the lock that the stop channel takes, so a stop lands either before
        // (the job never starts) or after (its engine is cancelled), never in between.
        let cancel = Cancel::new();
        {
            let mut f = in_flight.lock().unwrap();
            if !f.ids.contains(&id) {
                return;
            }
            f.cancels.insert(id.clone(), cancel.clone());
        }
        tracing::info!("job {id}: started");
        running.fetch_add(1, Ordering::SeqCst);
        let slot = Slot { running: running.clone(), freed: slot_freed.clone() };
        let (progress_tx, mut progress_rx) = mpsc::unbounded_channel::<Value>();
        let runner = self.runner.clone();
        let endpoints = self.endpoints.clone();
        let poster = poster.clone();
        let timing = self.timing.clone();
        let jobs_dir = self.jobs_dir.clone();
        let in_flight_task = in_flight.clone();
        let task_id = id.clone();
        jobs.spawn(async move {
            let id = task_id;
            let url = endpoints.result_url(&id);
            // Progress goes out in order, before the result; once the result is ready, updates
            // still queued or in flight are dropped rather than delay it.
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
            // Returns once the engine has stopped, also when cancelled: only then is the slot free.
            let mut outcome = runner.run(&id, &input, Arc::new(move |p| drop(progress_tx.send(p))), &cancel).await;
            drop(slot);
            progress_poster.abort();
            let (stopped, draining) = {
                let mut f = in_flight_task.lock().unwrap();
                f.cancels.remove(&id);
                (f.stopped.remove(&id), f.draining)
            };
            if stopped {
                // A job the platform stopped posts nothing.
                tracing::info!("job {id}: stopped by the platform; its engine has returned");
                in_flight_task.lock().unwrap().ids.remove(&id);
                return;
            }
            if let Err(e) = &mut outcome {
                if e.cancelled && draining {
                    e.message = DRAIN_CANCELLED.into();
                }
            }
            match &outcome {
                Ok(_) => tracing::info!("job {id}: done"),
                Err(e) => tracing::warn!("job {id}: failed: {e}"),
            }
            post_result(&poster, &url, &id, &outcome_body(&outcome), &timing, &jobs_dir).await;
            in_flight_task.lock().unwrap().ids.remove(&id);
        });
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
    let path = pending_path(jobs_dir, id);
    let pending = PendingResult { job_id: id.to_string(), url: url.to_string(), body: body.clone() };
    let written = std::fs::create_dir_all(&dir)
        .and_then(|_| std::fs::write(&path, serde_json::to_vec(&pending).unwrap_or_default()));
    match written {
        Ok(()) => tracing::error!("job {id}: result kept in {} until it can be posted", path.display()),
        Err(e) => {
            tracing::error!("job {id}: result could not be posted nor kept ({e}): {}", safe_message(&body.to_string()))
        }
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
            if let Err(e) = poster.get(&url, interval.max(Duration::from_secs(1)).min(poster.timeout)).await {
                tracing::debug!("ping failed: {}", e.without_url());
            }
        }
        tokio::time::sleep(interval).await;
    }
}

/// Stops for not-yet-known jobs kept at most (the set is cleared when it would grow past this).
const MAX_EARLY_STOPS: usize = 1024;

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
                    if let Some(c) = f.cancels.get(id).cloned() {
                        // Running: its engine stops at the next check; it posts nothing.
                        c.cancel();
                        f.stopped.insert(id.to_string());
                        tracing::info!("job {id}: stopped by the platform; stopping its engine");
                    } else if f.ids.remove(id) {
                        // Still waiting for a slot: never started.
                        tracing::info!("job {id}: stopped by the platform before it started");
                    } else {
                        // Not known yet: its take may be on its way; kept (a bounded few).
                        if f.stop_before_take.len() >= MAX_EARLY_STOPS {
                            f.stop_before_take.clear();
                        }
                        f.stop_before_take.insert(id.to_string());
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
