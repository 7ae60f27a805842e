//! The job loop (in-process, short timings) against a platform that misbehaves: result and
//! progress posts that never answer, takes that answer 200 with nothing in them, and a take that
//! hands over more jobs than the worker has slots. Nothing stalls the loop, nothing spins, and
//! the concurrency holds.

mod common;

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use common::http_server::{Handler, Request, Response, Server};
use common::{sentences_wav, speech, LoopbackOnly, TableResolver};
use scribe_worker::job::JobRunner;
use scribe_worker::job_loop::{pending_path, JobLoop, LoopTiming};
use scribe_worker::runpod::Endpoints;

/// A post that would hang far longer than any test waits.
const STALL: Duration = Duration::from_secs(600);

/// Short timings: posts give up after half a second.
fn timing() -> LoopTiming {
    LoopTiming {
        ping_interval: Duration::from_millis(200),
        retry_base: Duration::from_millis(200),
        retry_max: Duration::from_secs(2),
        post_attempts: 2,
        idle_pause: Duration::from_millis(50),
        pending_retry: Duration::from_secs(600),
        post_timeout: Duration::from_millis(500),
        drain_timeout: Duration::from_secs(120),
    }
}

fn endpoints(port: u16) -> Endpoints {
    let base = format!("http://127.0.0.1:{port}/v2/ep");
    let vars = [
        ("RUNPOD_WEBHOOK_GET_JOB", format!("{base}/job-take/$ID?gpu=test")),
        ("RUNPOD_WEBHOOK_POST_OUTPUT", format!("{base}/job-done/$RUNPOD_POD_ID/$ID?gpu=test")),
        ("RUNPOD_WEBHOOK_PING", format!("{base}/ping/$RUNPOD_POD_ID?gpu=test")),
        ("RUNPOD_POD_ID", "p".to_string()),
    ];
    Endpoints::from_vars(&|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())).unwrap().unwrap()
}

/// A running job loop; `stop` is its SIGTERM.
struct Running {
    stop: Arc<tokio::sync::Notify>,
    task: tokio::task::JoinHandle<()>,
    jobs_dir: tempfile::TempDir,
}

impl Running {
    /// SIGTERM, and how long the loop took to drain and return.
    async fn stop(self) -> (Duration, tempfile::TempDir) {
        let asked = Instant::now();
        self.stop.notify_one();
        tokio::time::timeout(Duration::from_secs(120), self.task).await.expect("the loop never returned").unwrap();
        (asked.elapsed(), self.jobs_dir)
    }
}

fn start(server: &Server, runner: JobRunner, jobs_dir: tempfile::TempDir, concurrency: usize) -> Running {
    let job_loop = JobLoop {
        endpoints: Arc::new(endpoints(server.port)),
        runner: Arc::new(runner),
        concurrency,
        timing: timing(),
        jobs_dir: jobs_dir.path().to_path_buf(),
    };
    let stop = Arc::new(tokio::sync::Notify::new());
    let stopped = stop.clone();
    let task = tokio::spawn(job_loop.run(async move { stopped.notified().await }));
    Running { stop, task, jobs_dir }
}

fn runner(port: u16, jobs: &Path) -> Option<JobRunner> {
    common::runner(port, jobs, Arc::new(LoopbackOnly::default()), TableResolver::new(&[]), &[])
}

/// A platform serving `/audio/short.wav` and `/audio/long.wav`, jobs from `queue` (one per take,
/// or `batch` at once), and answering everything else with `other`.
struct Platform {
    queue: Mutex<VecDeque<Value>>,
    batch: bool,
    short: Vec<u8>,
    long: Vec<u8>,
}

impl Platform {
    fn new(jobs: Vec<Value>, batch: bool) -> Arc<Platform> {
        Arc::new(Platform {
            queue: Mutex::new(jobs.into()),
            batch,
            short: std::fs::read(speech("spk1_snt3.wav")).unwrap(),
            long: sentences_wav(1, &[1, 2], 0.5),
        })
    }

    fn answer(&self, r: &Request, other: &dyn Fn(&Request) -> Response) -> Response {
        match r.path() {
            "/audio/short.wav" => Response::new(200, self.short.clone()),
            "/audio/long.wav" => Response::new(200, self.long.clone()),
            p if p.starts_with("/v2/ep/job-take/") => {
                let mut q = self.queue.lock().unwrap();
                if q.is_empty() {
                    return Response::new(204, "");
                }
                let body = if self.batch { Value::Array(q.drain(..).collect()) } else { q.pop_front().unwrap() };
                Response::new(200, body.to_string()).header("Content-Type", "application/json")
            }
            _ => other(r),
        }
    }
}

fn audio(port: u16, name: &str) -> String {
    format!("http://127.0.0.1:{port}/audio/{name}")
}

fn is_result(r: &Request, job: &str) -> bool {
    r.path() == format!("/v2/ep/job-done/p/{job}")
        && serde_json::from_slice::<Value>(&r.body).is_ok_and(|b| b.get("status").is_none())
}

fn is_progress(r: &Request, job: &str) -> bool {
    r.path() == format!("/v2/ep/job-done/p/{job}")
        && serde_json::from_slice::<Value>(&r.body).is_ok_and(|b| b.get("status").is_some())
}

async fn wait_for(server: &Server, what: &str, done: impl Fn(&[Request]) -> bool) {
    let start = Instant::now();
    while !done(&server.requests()) {
        assert!(start.elapsed() < Duration::from_secs(300), "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A server whose handler is set once the port (needed for the jobs' URLs) is known.
async fn server_with(make: impl FnOnce(u16) -> Handler) -> Server {
    let slot: Arc<Mutex<Option<Handler>>> = Arc::new(Mutex::new(None));
    let s = slot.clone();
    let server = Server::start(Arc::new(move |r| (s.lock().unwrap().as_ref().unwrap())(r))).await;
    *slot.lock().unwrap() = Some(make(server.port));
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_post_that_never_answers_holds_neither_the_next_job_nor_the_shutdown() {
    let jobs = tempfile::tempdir().unwrap();
    let server = server_with(|port| {
        let platform = Platform::new(
            vec![
                json!({"id": "stalled", "input": {"audio_file": audio(port, "short.wav"), "beam_size": 1}}),
                json!({"id": "next", "input": {"audio_file": audio(port, "short.wav"), "beam_size": 1}}),
            ],
            false,
        );
        Arc::new(move |r: &Request| {
            platform.answer(r, &|r| {
                let mut answer = Response::new(200, "{}");
                if is_result(r, "stalled") {
                    answer.delay = STALL;
                }
                answer
            })
        })
    })
    .await;
    let Some(runner) = runner(server.port, jobs.path()) else { return };
    let running = start(&server, runner, jobs, 1);
    // The next job runs and posts while the first one's result post hangs.
    wait_for(&server, "the stalled result post", |rs| rs.iter().any(|r| is_result(r, "stalled"))).await;
    wait_for(&server, "the next job's result", |rs| rs.iter().any(|r| is_result(r, "next"))).await;
    let (drain, jobs_dir) = running.stop().await;
    // Each hung post gave up after post_timeout; the result went to disk, not nowhere.
    assert!(drain < Duration::from_secs(60), "the drain took {drain:?}");
    let kept = pending_path(jobs_dir.path(), "stalled");
    let kept: Value = serde_json::from_slice(&std::fs::read(&kept).unwrap()).unwrap();
    assert!(kept["body"]["output"]["segments_count"].as_u64().unwrap() >= 1, "{kept}");
    let attempts = server.requests().iter().filter(|r| is_result(r, "stalled")).count();
    assert_eq!(attempts, timing().post_attempts, "each attempt timed out and was retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_progress_post_that_never_answers_does_not_hold_back_the_result() {
    let jobs = tempfile::tempdir().unwrap();
    let server = server_with(|port| {
        let platform = Platform::new(
            vec![json!({"id": "long", "input": {"audio_file": audio(port, "long.wav"), "batch_size": 1}})],
            false,
        );
        Arc::new(move |r: &Request| {
            platform.answer(r, &|r| {
                let mut answer = Response::new(200, "{}");
                if is_progress(r, "long") {
                    answer.delay = STALL;
                }
                answer
            })
        })
    })
    .await;
    let Some(runner) = runner(server.port, jobs.path()) else { return };
    let running = start(&server, runner, jobs, 1);
    wait_for(&server, "the result", |rs| rs.iter().any(|r| is_result(r, "long"))).await;
    let requests = server.requests();
    let progress: Vec<&Request> = requests.iter().filter(|r| is_progress(r, "long")).collect();
    assert!(!progress.is_empty(), "the job posted progress");
    let result = requests.iter().find(|r| is_result(r, "long")).unwrap();
    // Progress stays before the result, and the result did not wait for the hung posts.
    assert!(progress.iter().all(|p| p.at <= result.at));
    let (drain, _) = running.stop().await;
    assert!(drain < Duration::from_secs(30), "{drain:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn takes_that_answer_200_with_nothing_back_off_instead_of_spinning() {
    let jobs = tempfile::tempdir().unwrap();
    let answers = ["[]", "null", "{}"];
    let n = Arc::new(Mutex::new(0usize));
    let count = n.clone();
    let server = Server::start(Arc::new(move |r| {
        if r.path().starts_with("/v2/ep/job-take") {
            let mut n = count.lock().unwrap();
            *n += 1;
            Response::new(200, answers[*n % 3]).header("Content-Type", "application/json")
        } else {
            Response::new(200, "{}")
        }
    }))
    .await;
    let Some(runner) = runner(server.port, jobs.path()) else { return };
    let running = start(&server, runner, jobs, 1);
    tokio::time::sleep(Duration::from_secs(4)).await;
    running.stop().await;
    // Back-off from 200 ms doubling to 2 s: about 5 takes in 4 s (it was 1000 a second).
    let takes = *n.lock().unwrap();
    assert!((2..=10).contains(&takes), "{takes} takes in 4 s");
    assert!(server.requests().iter().all(|r| !r.path().starts_with("/v2/ep/job-done/")), "nothing to answer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_take_with_more_jobs_than_slots_runs_them_one_after_the_other() {
    let jobs = tempfile::tempdir().unwrap();
    let server = server_with(|port| {
        let platform = Platform::new(
            vec![
                json!({"id": "first", "input": {"audio_file": audio(port, "long.wav")}}),
                json!({"id": "second", "input": {"audio_file": audio(port, "short.wav"), "beam_size": 1}}),
            ],
            true,
        );
        Arc::new(move |r: &Request| platform.answer(r, &|_| Response::new(200, "{}")))
    })
    .await;
    let Some(runner) = runner(server.port, jobs.path()) else { return };
    let running = start(&server, runner, jobs, 1);
    wait_for(&server, "both results", |rs| {
        rs.iter().any(|r| is_result(r, "first")) && rs.iter().any(|r| is_result(r, "second"))
    })
    .await;
    running.stop().await;
    let requests = server.requests();
    let at = |pred: &dyn Fn(&Request) -> bool| requests.iter().find(|r| pred(r)).unwrap().at;
    // The short job, run beside the long one, would have finished first; at concurrency 1 it
    // starts (downloads its audio) only after the long one's engine returned.
    let first_done = at(&|r| is_result(r, "first"));
    let second_download = at(&|r| r.path() == "/audio/short.wav");
    assert!(second_download >= at(&|r| r.path() == "/audio/long.wav"));
    assert!(at(&|r| is_result(r, "second")) > first_done, "the second job finished before the first");
    // While it waited, the heartbeat named it (the platform must not time it out).
    let pings: Vec<&Request> = requests.iter().filter(|r| r.path() == "/v2/ep/ping/p").collect();
    assert!(
        pings.iter().any(|p| p.target.contains("second") && p.at < second_download),
        "no ping named the waiting job"
    );
}
