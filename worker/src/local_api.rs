//! `--rp_serve_api`: a local HTTP API. It serves the platform's routes under
//! `/v2/{endpoint_id}/` (run, runsync, status, stream, cancel, health, purge-queue), so the
//! official `runpod.Endpoint` client works against it (`runpod.endpoint_url_base =
//! "http://HOST:PORT/v2"`), and the SDK dev server's routes (`/run`, `/runsync`,
//! `/status/{id}`, `/stream/{id}`). Jobs queue and run asynchronously, SCRIBE_CONCURRENCY at a
//! time; statuses IN_QUEUE, IN_PROGRESS, COMPLETED, FAILED, CANCELLED.
//!
//! Memory stays bounded as the platform's does: a job's input is dropped once it starts,
//! finished jobs expire after [`RUN_RESULT_TTL`] (/run) or [`RUNSYNC_RESULT_TTL`] (/runsync), at
//! most [`MAX_FINISHED_JOBS`] are kept and at most [`MAX_QUEUED_JOBS`] wait. On SIGTERM the API
//! drains: new jobs are refused (503), queued ones fail with a message saying why, the running
//! ones finish, and `/status` keeps answering until their results were fetched or
//! [`DRAIN_PICKUP_WAIT`] passed.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::sync::Notify;

use scribe::Cancel;

use crate::job::JobRunner;
use crate::runpod::random_id;

/// The platform's payload limits: /run 10 MB, /runsync 20 MB.
pub const RUN_BODY_LIMIT: usize = 10 << 20;
pub const RUNSYNC_BODY_LIMIT: usize = 20 << 20;
/// How long /runsync waits for the result by default (`?wait=` in ms overrides).
pub const RUNSYNC_WAIT: Duration = Duration::from_secs(90);
/// How long the platform keeps a finished job's result: 30 min for /run, 1 min for /runsync.
pub const RUN_RESULT_TTL: Duration = Duration::from_secs(30 * 60);
pub const RUNSYNC_RESULT_TTL: Duration = Duration::from_secs(60);
/// Finished jobs kept at most (the oldest go first), and jobs waiting at most (then 429).
pub const MAX_FINISHED_JOBS: usize = 1000;
pub const MAX_QUEUED_JOBS: usize = 1000;
/// Progress updates kept per job for /stream (the latest).
pub const MAX_STREAM_ITEMS: usize = 200;
/// How often expired jobs are swept out.
pub const SWEEP_EVERY: Duration = Duration::from_secs(5);
/// During a drain, how long finished results wait to be fetched before the API stops.
pub const DRAIN_PICKUP_WAIT: Duration = Duration::from_secs(10);
/// Why a queued job failed during a drain.
pub const DRAIN_MESSAGE: &str = "the worker is shutting down (SIGTERM); the job was not started: submit it again";
/// Why a running job failed when the drain timed out.
pub const DRAIN_CANCELLED: &str =
    "the worker was stopped (SIGTERM) and the job did not finish within the drain timeout; submit it again";

/// How long finished jobs are kept.
#[derive(Clone, Debug, PartialEq)]
pub struct Retention {
    pub run_ttl: Duration,
    pub runsync_ttl: Duration,
    pub max_finished: usize,
}

impl Default for Retention {
    fn default() -> Self {
        Retention { run_ttl: RUN_RESULT_TTL, runsync_ttl: RUNSYNC_RESULT_TTL, max_finished: MAX_FINISHED_JOBS }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    InQueue,
    InProgress,
    Completed,
    Failed,
    Cancelled,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::InQueue => "IN_QUEUE",
            Status::InProgress => "IN_PROGRESS",
            Status::Completed => "COMPLETED",
            Status::Failed => "FAILED",
            Status::Cancelled => "CANCELLED",
        }
    }

    fn finished(self) -> bool {
        matches!(self, Status::Completed | Status::Failed | Status::Cancelled)
    }
}

struct LocalJob {
    /// Until the job starts.
    input: Option<Value>,
    /// Submitted through /runsync (kept for [`Retention::runsync_ttl`]).
    sync: bool,
    /// A client has seen the finished job.
    fetched: bool,
    status: Status,
    output: Option<Value>,
    error: Option<String>,
    /// Progress updates, for /stream.
    stream: Vec<Value>,
    submitted: Instant,
    started: Option<Instant>,
    finished: Option<Instant>,
    /// Stops the running job's engine.
    cancel: Option<Cancel>,
}

impl LocalJob {
    fn view(&self, id: &str) -> Value {
        let ms = |d: Duration| d.as_millis() as u64;
        let delay = self.started.map_or_else(|| self.submitted.elapsed(), |s| s - self.submitted);
        let mut v = json!({"id": id, "status": self.status.as_str(), "delayTime": ms(delay)});
        if let Some(s) = self.started {
            v["executionTime"] = json!(ms(self.finished.unwrap_or_else(Instant::now) - s));
        }
        if let Some(o) = &self.output {
            v["output"] = o.clone();
        }
        if let Some(e) = &self.error {
            v["error"] = json!(e);
        }
        v
    }
}

#[derive(Default)]
struct Counters {
    completed: u64,
    failed: u64,
}

/// The API's state: jobs by id, the queue, and the runner.
pub struct LocalApi {
    runner: Arc<JobRunner>,
    jobs: Mutex<HashMap<String, LocalJob>>,
    queue: Mutex<VecDeque<String>>,
    queued: Notify,
    /// Woken whenever a job finishes (for /runsync) or is fetched (for the drain).
    finished: Notify,
    counters: Mutex<Counters>,
    concurrency: usize,
    retention: Retention,
    /// SIGTERM: no new jobs.
    draining: AtomicBool,
}

/// Why a job was not queued.
#[derive(Debug, PartialEq)]
pub enum Refused {
    BadBody(&'static str),
    QueueFull,
    Draining,
}

impl Refused {
    fn response(&self) -> Response {
        match self {
            Refused::BadBody(why) => error(StatusCode::BAD_REQUEST, *why),
            Refused::QueueFull => error(
                StatusCode::TOO_MANY_REQUESTS,
                format!("{MAX_QUEUED_JOBS} jobs are already waiting; try again later"),
            ),
            Refused::Draining => error(StatusCode::SERVICE_UNAVAILABLE, "the worker is shutting down"),
        }
    }
}

type Shared = Arc<LocalApi>;

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

impl LocalApi {
    pub fn new(runner: Arc<JobRunner>, concurrency: usize, retention: Retention) -> Shared {
        Arc::new(LocalApi {
            runner,
            jobs: Mutex::new(HashMap::new()),
            queue: Mutex::new(VecDeque::new()),
            queued: Notify::new(),
            finished: Notify::new(),
            counters: Mutex::new(Counters::default()),
            concurrency: concurrency.max(1),
            retention,
            draining: AtomicBool::new(false),
        })
    }

    /// Drop finished jobs past their time, then the oldest beyond the cap; true if any went.
    fn sweep(&self) -> bool {
        let r = &self.retention;
        let mut jobs = self.jobs.lock().unwrap();
        let before = jobs.len();
        jobs.retain(|_, j| {
            let ttl = if j.sync { r.runsync_ttl } else { r.run_ttl };
            j.finished.is_none_or(|f| f.elapsed() < ttl)
        });
        let mut finished: Vec<(Instant, String)> =
            jobs.iter().filter_map(|(id, j)| Some((j.finished?, id.clone()))).collect();
        if finished.len() > r.max_finished {
            finished.sort();
            for (_, id) in &finished[..finished.len() - r.max_finished] {
                jobs.remove(id);
            }
        }
        let swept = jobs.len() < before;
        if swept {
            jobs.shrink_to_fit();
        }
        swept
    }

    /// SIGTERM: refuse new jobs and fail the queued ones, saying why.
    fn begin_drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
        let queued: Vec<String> = self.queue.lock().unwrap().drain(..).collect();
        let mut jobs = self.jobs.lock().unwrap();
        for id in &queued {
            if let Some(j) = jobs.get_mut(id).filter(|j| j.status == Status::InQueue) {
                j.status = Status::Failed;
                j.error = Some(DRAIN_MESSAGE.into());
                j.finished = Some(Instant::now());
                j.input = None;
                self.counters.lock().unwrap().failed += 1;
            }
        }
        drop(jobs);
        if !queued.is_empty() {
            tracing::info!("draining: {} queued job(s) failed unstarted", queued.len());
        }
        self.finished.notify_waiters();
    }

    /// Wait until no job runs (cancelling those still running after `drain_timeout`), then
    /// until every finished result was fetched, giving clients at most [`DRAIN_PICKUP_WAIT`]
    /// from the moment the last job ended.
    async fn drained(&self, drain_timeout: Duration) {
        let mut pickup_deadline = None;
        let drain_deadline = tokio::time::Instant::now() + drain_timeout;
        loop {
            // A `Notified` made before the check receives `notify_waiters` even before it is
            // polled, so no finish or fetch slips between the two.
            let changed = self.finished.notified();
            let (running, unfetched) = {
                let jobs = self.jobs.lock().unwrap();
                (
                    jobs.values().any(|j| j.status == Status::InProgress),
                    jobs.values().any(|j| j.status.finished() && !j.fetched),
                )
            };
            if !running && !unfetched {
                return;
            }
            if running {
                if tokio::time::timeout_at(drain_deadline, changed).await.is_err() {
                    let jobs = self.jobs.lock().unwrap();
                    let running: Vec<&Cancel> = jobs.values().filter_map(|j| j.cancel.as_ref()).collect();
                    tracing::warn!("drain timeout: cancelling {} running job(s)", running.len());
                    for c in running {
                        c.cancel();
                    }
                }
                continue;
            }
            let deadline = *pickup_deadline.get_or_insert_with(|| tokio::time::Instant::now() + DRAIN_PICKUP_WAIT);
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return;
            }
        }
    }

    /// The routes, both the platform's and the SDK dev server's.
    pub fn router(api: Shared) -> Router {
        let platform = Router::new()
            .route("/run", post(run).layer(DefaultBodyLimit::max(RUN_BODY_LIMIT)))
            .route("/runsync", post(runsync).layer(DefaultBodyLimit::max(RUNSYNC_BODY_LIMIT)))
            .route("/status/{id}", get(status).post(status))
            .route("/stream/{id}", get(stream).post(stream))
            .route("/cancel/{id}", post(cancel))
            .route("/health", get(health))
            .route("/purge-queue", post(purge_queue));
        let dev = Router::new()
            .route("/run", post(run).layer(DefaultBodyLimit::max(RUN_BODY_LIMIT)))
            .route("/runsync", post(runsync).layer(DefaultBodyLimit::max(RUNSYNC_BODY_LIMIT)))
            .route("/status/{id}", get(status).post(status))
            .route("/stream/{id}", get(stream).post(stream));
        Router::new().nest("/v2/{endpoint}", platform).merge(dev).with_state(api)
    }

    /// Serve on `listener` until `shutdown` completes, then drain: queued jobs fail, running
    /// ones finish, and the API answers until their results were fetched.
    pub async fn serve(
        api: Shared,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
        drain_timeout: Duration,
    ) -> std::io::Result<()> {
        for _ in 0..api.concurrency {
            tokio::spawn(dispatch(api.clone()));
        }
        let sweeper = {
            let api = api.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(SWEEP_EVERY.min(api.retention.runsync_ttl / 2)).await;
                    if api.sweep() {
                        scribe::allocator::release_free_memory();
                    }
                }
            })
        };
        let draining = {
            let api = api.clone();
            async move {
                shutdown.await;
                api.begin_drain();
                api.drained(drain_timeout).await;
            }
        };
        axum::serve(listener, LocalApi::router(api.clone())).with_graceful_shutdown(draining).await?;
        sweeper.abort();
        Ok(())
    }

    /// Queue a job; Err says why not.
    fn submit(&self, body: Value, sync: bool) -> Result<String, Refused> {
        if self.draining.load(Ordering::SeqCst) {
            return Err(Refused::Draining);
        }
        let Value::Object(mut map) = body else {
            return Err(Refused::BadBody("the body should be a JSON object with an `input`"));
        };
        let Some(input) = map.remove("input") else {
            return Err(Refused::BadBody("the body has no `input`"));
        };
        if self.queue.lock().unwrap().len() >= MAX_QUEUED_JOBS {
            return Err(Refused::QueueFull);
        }
        let id = random_id();
        let job = LocalJob {
            input: Some(input),
            sync,
            fetched: false,
            status: Status::InQueue,
            output: None,
            error: None,
            stream: Vec::new(),
            submitted: Instant::now(),
            started: None,
            finished: None,
            cancel: None,
        };
        self.jobs.lock().unwrap().insert(id.clone(), job);
        self.queue.lock().unwrap().push_back(id.clone());
        self.queued.notify_one();
        Ok(id)
    }

    /// A job as /status shows it; a finished job shown counts as fetched.
    fn view(&self, id: &str) -> Option<Value> {
        let mut jobs = self.jobs.lock().unwrap();
        let job = jobs.get_mut(id)?;
        let view = job.view(id);
        if job.status.finished() && !job.fetched {
            job.fetched = true;
            drop(jobs);
            self.finished.notify_waiters();
        }
        Some(view)
    }
}

/// One of `concurrency` loops taking queued jobs and running them.
async fn dispatch(api: Shared) {
    loop {
        let next = api.queue.lock().unwrap().pop_front();
        let Some(id) = next else {
            api.queued.notified().await;
            continue;
        };
        let cancel = Cancel::new();
        let input = {
            let mut jobs = api.jobs.lock().unwrap();
            let Some(job) = jobs.get_mut(&id).filter(|j| j.status == Status::InQueue) else { continue };
            job.status = Status::InProgress;
            job.started = Some(Instant::now());
            job.cancel = Some(cancel.clone());
            // The input is the runner's from here on; the table keeps only the status.
            job.input.take().unwrap_or(Value::Null)
        };
        tracing::info!("job {id}: started");
        let (runner, progress_api, task_id) = (api.runner.clone(), api.clone(), id.clone());
        // Awaited to the end, also when cancelled: the next job starts only once this one's
        // engine has returned.
        let task = tokio::spawn(async move {
            let pid = task_id.clone();
            let progress = Arc::new(move |p: Value| {
                if let Some(j) = progress_api.jobs.lock().unwrap().get_mut(&pid) {
                    if j.stream.len() >= MAX_STREAM_ITEMS {
                        j.stream.remove(0);
                    }
                    j.stream.push(p);
                }
            });
            runner.run(&task_id, &input, progress, &cancel).await
        });
        let outcome = task.await;
        tracing::info!(
            "job {id}: engine returned ({})",
            match &outcome {
                Ok(Ok(_)) => "done",
                Ok(Err(e)) if e.cancelled => "cancelled",
                _ => "failed",
            }
        );
        let mut jobs = api.jobs.lock().unwrap();
        if let Some(j) = jobs.get_mut(&id) {
            if j.status == Status::InProgress {
                j.finished = Some(Instant::now());
                let mut c = api.counters.lock().unwrap();
                match outcome {
                    Ok(Ok(output)) => {
                        j.status = Status::Completed;
                        j.output = Some(output);
                        c.completed += 1;
                    }
                    Ok(Err(e)) => {
                        j.status = Status::Failed;
                        let drained = e.cancelled && api.draining.load(Ordering::SeqCst);
                        j.error = Some(if drained { DRAIN_CANCELLED.to_string() } else { e.message });
                        c.failed += 1;
                    }
                    Err(e) => {
                        j.status = Status::Failed;
                        j.error = Some(format!("the job crashed: {e}"));
                        c.failed += 1;
                    }
                }
            }
        }
        drop(jobs);
        api.finished.notify_waiters();
    }
}

async fn run(State(api): State<Shared>, body: Option<Json<Value>>) -> Response {
    let Some(Json(body)) = body else { return error(StatusCode::BAD_REQUEST, "the body is not JSON") };
    match api.submit(body, false) {
        Ok(id) => Json(json!({"id": id, "status": "IN_QUEUE"})).into_response(),
        Err(why) => why.response(),
    }
}

async fn runsync(
    State(api): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
    body: Option<Json<Value>>,
) -> Response {
    let Some(Json(body)) = body else { return error(StatusCode::BAD_REQUEST, "the body is not JSON") };
    let wait = match q.get("wait").map(|w| w.parse::<u64>()) {
        None => RUNSYNC_WAIT,
        Some(Ok(ms)) => Duration::from_millis(ms),
        Some(Err(_)) => return error(StatusCode::BAD_REQUEST, "wait should be milliseconds"),
    };
    let id = match api.submit(body, true) {
        Ok(id) => id,
        Err(why) => return why.response(),
    };
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let finished = api.finished.notified();
        let view = api.view(&id).unwrap_or(Value::Null);
        let done = view["status"].as_str().is_some_and(|s| !matches!(s, "IN_QUEUE" | "IN_PROGRESS"));
        if done || tokio::time::Instant::now() >= deadline {
            return Json(view).into_response();
        }
        let _ = tokio::time::timeout_at(deadline, finished).await;
    }
}

async fn status(State(api): State<Shared>, Path(params): Path<HashMap<String, String>>) -> Response {
    let id = params.get("id").cloned().unwrap_or_default();
    match api.view(&id) {
        Some(v) => Json(v).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no job {id}")),
    }
}

async fn stream(State(api): State<Shared>, Path(params): Path<HashMap<String, String>>) -> Response {
    let id = params.get("id").cloned().unwrap_or_default();
    let jobs = api.jobs.lock().unwrap();
    let Some(job) = jobs.get(&id) else { return error(StatusCode::NOT_FOUND, format!("no job {id}")) };
    let stream: Vec<Value> = job.stream.iter().map(|o| json!({"output": o})).collect();
    Json(json!({"id": id, "status": job.status.as_str(), "stream": stream})).into_response()
}

async fn cancel(State(api): State<Shared>, Path(params): Path<HashMap<String, String>>) -> Response {
    let id = params.get("id").cloned().unwrap_or_default();
    let mut jobs = api.jobs.lock().unwrap();
    let Some(job) = jobs.get_mut(&id) else { return error(StatusCode::NOT_FOUND, format!("no job {id}")) };
    if !job.status.finished() {
        // A running job's engine stops at its next check; the dispatcher waits for it before
        // starting the next job.
        if let Some(c) = job.cancel.take() {
            c.cancel();
        }
        job.status = Status::Cancelled;
        job.finished = Some(Instant::now());
        job.input = None;
        api.queue.lock().unwrap().retain(|q| q != &id);
    }
    let status = job.status.as_str();
    drop(jobs);
    api.finished.notify_waiters();
    Json(json!({"id": id, "status": status})).into_response()
}

async fn health(State(api): State<Shared>) -> Response {
    let jobs = api.jobs.lock().unwrap();
    let count = |s: Status| jobs.values().filter(|j| j.status == s).count();
    let (in_progress, in_queue) = (count(Status::InProgress), count(Status::InQueue));
    let c = api.counters.lock().unwrap();
    Json(json!({
        "jobs": {"completed": c.completed, "failed": c.failed, "inProgress": in_progress, "inQueue": in_queue, "retried": 0},
        "workers": {"idle": api.concurrency.saturating_sub(in_progress), "running": in_progress}
    }))
    .into_response()
}

async fn purge_queue(State(api): State<Shared>) -> Response {
    let removed: Vec<String> = api.queue.lock().unwrap().drain(..).collect();
    let mut jobs = api.jobs.lock().unwrap();
    for id in &removed {
        if let Some(j) = jobs.get_mut(id) {
            j.status = Status::Cancelled;
            j.finished = Some(Instant::now());
            j.input = None;
        }
    }
    Json(json!({"removed": removed.len(), "status": "completed"})).into_response()
}
