//! A result the platform will not take is kept under JOBS_DIR/pending-results and posted once
//! the platform answers again; nothing is lost (the job loop in-process, with short timings).

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use common::http_server::{Response, Server};
use common::{speech, LoopbackOnly, TableResolver};
use scribe_worker::job_loop::{JobLoop, LoopTiming};
use scribe_worker::runpod::Endpoints;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_that_cannot_be_posted_is_kept_on_disk_and_posted_later() {
    let wav = std::fs::read(speech("spk2_snt4.wav")).unwrap();
    let accepting = Arc::new(AtomicBool::new(false));
    let taken = Arc::new(AtomicBool::new(false));
    let (a, t) = (accepting.clone(), taken.clone());
    let server = Server::start(Arc::new(move |r| {
        let path = r.path();
        if path == "/a.wav" {
            Response::new(200, wav.clone())
        } else if path.starts_with("/v2/ep/job-take/") && !t.swap(true, Ordering::SeqCst) {
            Response::new(
                200,
                json!({"id": "kept", "input": {"audio_file": "AUDIO", "beam_size": 1}}).to_string().replace(
                    "AUDIO",
                    &format!("http://127.0.0.1:{}/a.wav", r.header("Host").unwrap().rsplit(':').next().unwrap()),
                ),
            )
        } else if path.starts_with("/v2/ep/job-done/") && !a.load(Ordering::SeqCst) {
            Response::new(503, "down")
        } else if path.starts_with("/v2/ep/job-done/") || path.starts_with("/v2/ep/ping/") {
            Response::new(200, "{}")
        } else {
            Response::new(204, "")
        }
    }))
    .await;
    let jobs = tempfile::tempdir().unwrap();
    let Some(runner) =
        common::runner(server.port, jobs.path(), Arc::new(LoopbackOnly::default()), TableResolver::new(&[]), &[])
    else {
        return;
    };
    let base = format!("http://127.0.0.1:{}/v2/ep", server.port);
    let vars = [
        ("RUNPOD_WEBHOOK_GET_JOB", format!("{base}/job-take/$ID?gpu=test")),
        ("RUNPOD_WEBHOOK_POST_OUTPUT", format!("{base}/job-done/$RUNPOD_POD_ID/$ID?gpu=test")),
        ("RUNPOD_POD_ID", "p".to_string()),
    ];
    let endpoints =
        Endpoints::from_vars(&|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())).unwrap().unwrap();
    let timing = LoopTiming {
        ping_interval: Duration::from_millis(200),
        retry_base: Duration::from_millis(20),
        retry_max: Duration::from_millis(100),
        post_attempts: 3,
        idle_pause: Duration::from_millis(50),
        pending_retry: Duration::from_millis(200),
        post_timeout: Duration::from_secs(5),
        drain_timeout: Duration::from_secs(60),
    };
    let job_loop = JobLoop {
        endpoints: Arc::new(endpoints),
        runner: Arc::new(runner),
        concurrency: 1,
        timing,
        jobs_dir: jobs.path().to_path_buf(),
    };
    let stop = Arc::new(tokio::sync::Notify::new());
    let stopped = stop.clone();
    let running = tokio::spawn(job_loop.run(async move { stopped.notified().await }));

    let kept = scribe_worker::job_loop::pending_path(jobs.path(), "kept");
    let start = Instant::now();
    while !kept.is_file() {
        assert!(start.elapsed() < Duration::from_secs(60), "the result was never kept on disk");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let on_disk: Value = serde_json::from_slice(&std::fs::read(&kept).unwrap()).unwrap();
    assert!(on_disk["body"]["output"]["segments_count"].as_u64().unwrap() >= 1, "{on_disk}");
    let refused = server.requests().iter().filter(|r| r.path() == "/v2/ep/job-done/p/kept").count();
    assert!(refused >= 3, "{refused} posts before keeping it");

    accepting.store(true, Ordering::SeqCst);
    while kept.is_file() {
        assert!(start.elapsed() < Duration::from_secs(60), "the kept result was never posted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.notify_one();
    running.await.unwrap();
    let last = server.requests().into_iter().rfind(|r| r.path() == "/v2/ep/job-done/p/kept").unwrap();
    let body: Value = serde_json::from_slice(&last.body).unwrap();
    assert_eq!(body, on_disk["body"], "the kept body is what was posted");
}
