//! `--rp_serve_api`: a local HTTP API. It serves the platform's routes under
//! `/v2/{endpoint_id}/` (run, runsync, status, stream, cancel, health, purge-queue), so the
//! official `runpod.Endpoint` client works against it (`runpod.endpoint_url_base =
//! "http://HOST:PORT/v2"`), and the SDK dev server's routes (`/run`, `/runsync`,
//! `/status/{id}`, `/stream/{id}`). Jobs queue and run asynchronously, SCRIBE_CONCURRENCY at a
//! time; statuses IN_QUEUE, IN_PROGRESS, COMPLETED, FAILED, CANCELLED.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::sync::Notify;
use tokio::task::AbortHandle;

use crate::job::JobRunner;
use crate::runpod::random_id;

/// The platform's payload limits: /run 10 MB, /runsync 20 MB.
pub const RUN_BODY_LIMIT: usize = 10 << 20;
pub const RUNSYNC_BODY_LIMIT: usize = 20 << 20;
/// How long /runsync waits for the result by default (`?wait=` in ms overrides).
pub const RUNSYNC_WAIT: Duration = Duration::from_secs(90);

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
    input: Value,
    status: Status,
    output: Option<Value>,
    error: Option<String>,
    /// Progress updates, for /stream.
    stream: Vec<Value>,
    submitted: Instant,
    started: Option<Instant>,
    finished: Option<Instant>,
    abort: Option<AbortHandle>,
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
    /// Woken whenever a job finishes (for /runsync).
    finished: Notify,
    counters: Mutex<Counters>,
    concurrency: usize,
}

type Shared = Arc<LocalApi>;

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

impl LocalApi {
    pub fn new(runner: Arc<JobRunner>, concurrency: usize) -> Shared {
        Arc::new(LocalApi {
            runner,
            jobs: Mutex::new(HashMap::new()),
            queue: Mutex::new(VecDeque::new()),
            queued: Notify::new(),
            finished: Notify::new(),
            counters: Mutex::new(Counters::default()),
            concurrency: concurrency.max(1),
        })
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

    /// Serve on `listener` until `shutdown` completes; jobs in flight are finished first.
    pub async fn serve(
        api: Shared,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        for _ in 0..api.concurrency {
            tokio::spawn(dispatch(api.clone()));
        }
        axum::serve(listener, LocalApi::router(api.clone())).with_graceful_shutdown(shutdown).await?;
        // Let the jobs already running finish. (A `Notified` made before the check receives
        // `notify_waiters` even before it is polled, so no finish slips between the two.)
        loop {
            let finished = api.finished.notified();
            if !api.jobs.lock().unwrap().values().any(|j| j.status == Status::InProgress) {
                break;
            }
            finished.await;
        }
        Ok(())
    }

    /// Queue a job; Err says what is wrong with the body.
    fn submit(&self, body: Value) -> Result<String, &'static str> {
        let Value::Object(mut map) = body else {
            return Err("the body should be a JSON object with an `input`");
        };
        let Some(input) = map.remove("input") else {
            return Err("the body has no `input`");
        };
        let id = random_id();
        let job = LocalJob {
            input,
            status: Status::InQueue,
            output: None,
            error: None,
            stream: Vec::new(),
            submitted: Instant::now(),
            started: None,
            finished: None,
            abort: None,
        };
        self.jobs.lock().unwrap().insert(id.clone(), job);
        self.queue.lock().unwrap().push_back(id.clone());
        self.queued.notify_one();
        Ok(id)
    }

    fn view(&self, id: &str) -> Option<Value> {
        self.jobs.lock().unwrap().get(id).map(|j| j.view(id))
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
        let input = {
            let mut jobs = api.jobs.lock().unwrap();
            let Some(job) = jobs.get_mut(&id).filter(|j| j.status == Status::InQueue) else { continue };
            job.status = Status::InProgress;
            job.started = Some(Instant::now());
            job.input.clone()
        };
        let (runner, progress_api, task_id) = (api.runner.clone(), api.clone(), id.clone());
        let task = tokio::spawn(async move {
            let pid = task_id.clone();
            let progress = Arc::new(move |p: Value| {
                if let Some(j) = progress_api.jobs.lock().unwrap().get_mut(&pid) {
                    j.stream.push(p);
                }
            });
            runner.run(&task_id, &input, progress).await
        });
        if let Some(j) = api.jobs.lock().unwrap().get_mut(&id) {
            j.abort = Some(task.abort_handle());
        }
        let outcome = task.await;
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
                        j.error = Some(e.message);
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
    match api.submit(body) {
        Ok(id) => Json(json!({"id": id, "status": "IN_QUEUE"})).into_response(),
        Err(why) => error(StatusCode::BAD_REQUEST, why),
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
    let id = match api.submit(body) {
        Ok(id) => id,
        Err(why) => return error(StatusCode::BAD_REQUEST, why),
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
        if let Some(h) = job.abort.take() {
            h.abort();
        }
        job.status = Status::Cancelled;
        job.finished = Some(Instant::now());
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
        }
    }
    Json(json!({"removed": removed.len(), "status": "completed"})).into_response()
}
