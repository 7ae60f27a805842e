//! The job loop of the `scribe-worker` binary against a fake RunPod job server on 127.0.0.1
//! (routes as runpod-protocol.md lists them): results and errors posted with the SDK's headers
//! and shapes, progress before results, pings while a job runs, malformed jobs answered without
//! losing the worker, posts retried after 5xx and dropped connections, the batch take, the
//! job-stop channel, SIGTERM draining, and an unhealthy start-up reported on the ping URL.

mod common;

use std::collections::{HashMap, VecDeque};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use common::http_server::{Request, Response, Server};
use common::{model_dir, root, sentences_wav, speech, worker_env};

const API_KEY: &str = "rp-test-key";
const POD: &str = "pod-1";

/// The fake platform: a queue of jobs, scripted answers to result posts, and jobs to stop.
#[derive(Default)]
struct Platform {
    queue: VecDeque<Value>,
    /// Per job: answers to its first result posts (503, or 0 to hang up), then 200.
    post_failures: HashMap<String, VecDeque<u16>>,
    /// Jobs the stop route names once they have been taken.
    stop: Vec<String>,
    /// Jobs the stop route names at once, taken or not (a stop that overtakes its job's take).
    stop_early: Vec<String>,
    taken: Vec<String>,
}

struct Harness {
    server: Server,
    platform: Arc<Mutex<Platform>>,
    jobs_dir: tempfile::TempDir,
}

impl Harness {
    async fn start(jobs: Vec<Value>) -> Harness {
        let platform = Arc::new(Mutex::new(Platform { queue: jobs.into(), ..Default::default() }));
        let p = platform.clone();
        let speech_wav = std::fs::read(speech("spk1_snt3.wav")).unwrap();
        // About 100 s of the shared sentences with pauses.
        let long = sentences_wav(3, &[1, 2], 1.0);
        let server = Server::start(Arc::new(move |r: &Request| {
            let mut p = p.lock().unwrap();
            let path = r.path().to_string();
            if path == "/audio/speech.wav" {
                return Response::new(200, speech_wav.clone());
            }
            if path == "/audio/long.wav" {
                return Response::new(200, long.clone());
            }
            if path == "/audio/hang-up.wav" {
                return Response::hang_up();
            }
            if path.starts_with("/v2/ep/job-take/") || path.starts_with("/v2/ep/job-take-batch/") {
                let batch = path.contains("batch");
                let n = if batch { query(r, "batch_size").and_then(|b| b.parse().ok()).unwrap_or(1) } else { 1 };
                let mut out = Vec::new();
                while out.len() < n {
                    let Some(job) = p.queue.pop_front() else { break };
                    if let Some(id) = job.get("id").and_then(Value::as_str) {
                        p.taken.push(id.to_string());
                    }
                    out.push(job);
                }
                return match (out.len(), batch) {
                    (0, _) => Response::new(204, ""),
                    (_, true) => {
                        Response::new(200, Value::Array(out).to_string()).header("Content-Type", "application/json")
                    }
                    (_, false) => {
                        Response::new(200, out.pop().unwrap().to_string()).header("Content-Type", "application/json")
                    }
                };
            }
            if path.starts_with("/v2/ep/job-done/") {
                let job = path.rsplit('/').next().unwrap().to_string();
                let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
                if body.get("status").is_none() {
                    if let Some(code) = p.post_failures.get_mut(&job).and_then(VecDeque::pop_front) {
                        return if code == 0 { Response::hang_up() } else { Response::new(code, "busy") };
                    }
                }
                return Response::new(200, "{}");
            }
            if path.starts_with("/v2/ep/job-stop/") {
                let mut stop: Vec<String> = p.stop.iter().filter(|s| p.taken.contains(s)).cloned().collect();
                p.stop.retain(|s| !stop.contains(s));
                stop.append(&mut p.stop_early);
                return if stop.is_empty() {
                    let mut r = Response::new(204, "");
                    r.delay = Duration::from_millis(100);
                    r
                } else {
                    Response::new(200, json!({"jobsToStop": stop}).to_string())
                        .header("Content-Type", "application/json")
                };
            }
            if path.starts_with("/v2/ep/ping/") {
                return Response::new(200, "");
            }
            Response::new(404, "")
        }))
        .await;
        Harness { server, platform, jobs_dir: tempfile::tempdir().unwrap() }
    }

    fn audio(&self, name: &str) -> String {
        self.server.url(&format!("/audio/{name}"))
    }

    fn worker(&self, extra: &[(&str, &str)]) -> Child {
        self.spawn(Command::new(env!("CARGO_BIN_EXE_scribe-worker")), extra)
    }

    /// `cmd` with the platform's environment pointing at this server.
    fn spawn(&self, mut cmd: Command, extra: &[(&str, &str)]) -> Child {
        let base = format!("http://127.0.0.1:{}/v2/ep", self.server.port);
        worker_env(&mut cmd, self.jobs_dir.path(), self.server.port);
        cmd.env("RUNPOD_WEBHOOK_GET_JOB", format!("{base}/job-take/$ID?gpu=test"))
            .env("RUNPOD_WEBHOOK_POST_OUTPUT", format!("{base}/job-done/$RUNPOD_POD_ID/$ID?gpu=test"))
            .env("RUNPOD_WEBHOOK_PING", format!("{base}/ping/$RUNPOD_POD_ID?gpu=test"))
            .env("RUNPOD_AI_API_KEY", API_KEY)
            .env("RUNPOD_POD_ID", POD)
            .env("RUNPOD_PING_INTERVAL", "1000")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in extra {
            cmd.env(k, v);
        }
        cmd.spawn().unwrap()
    }

    /// Final result posts (not progress), by job id.
    fn results(&self) -> HashMap<String, Value> {
        self.server
            .requests()
            .into_iter()
            .filter(|r| r.path().starts_with("/v2/ep/job-done/"))
            .filter_map(|r| {
                let body: Value = serde_json::from_slice(&r.body).ok()?;
                body.get("status").is_none().then(|| (r.path().rsplit('/').next().unwrap().to_string(), body))
            })
            .collect()
    }

    async fn wait_for(&self, what: &str, limit: Duration, done: impl Fn(&Harness) -> bool) {
        let start = Instant::now();
        while !done(self) {
            assert!(start.elapsed() < limit, "timed out waiting for {what}; requests: {:#?}", self.summary());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn summary(&self) -> Vec<String> {
        self.server.requests().iter().map(|r| format!("{} {}", r.method, r.target)).collect()
    }
}

fn query<'a>(r: &'a Request, key: &str) -> Option<&'a str> {
    r.query().split('&').find_map(|kv| kv.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
}

fn sigterm(child: &Child) {
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
}

fn wait_exit(mut child: Child, limit: Duration) -> (std::process::ExitStatus, String) {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            return (status, err);
        }
        if start.elapsed() > limit {
            child.kill().unwrap();
            panic!("the worker did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn models_present() -> bool {
    model_dir("tiny.en").is_some() && model_dir("vad").is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_errors_progress_and_pings_reach_the_platform_in_the_sdks_shapes() {
    if !models_present() {
        return;
    }
    let h = Harness::start(Vec::new()).await;
    {
        let mut p = h.platform.lock().unwrap();
        p.queue.extend([
            json!({"id": "good", "input": {"audio_file": h.audio("long.wav")}, "webhook": null}),
            json!({"id": "bad", "input": {"audio_file": h.audio("missing.wav")}}),
            json!({"id": "noinput"}),
            json!({"input": {"audio_file": h.audio("speech.wav")}}),
            json!({"id": "after", "input": {"audio_file": h.audio("speech.wav"), "beam_size": 1}}),
        ]);
    }
    let child = h.worker(&[("RUNPOD_ENDPOINT_ID", "ep")]);
    h.wait_for("four results", Duration::from_secs(300), |h| h.results().len() >= 4).await;
    sigterm(&child);
    let (status, stderr) = wait_exit(child, Duration::from_secs(30));
    assert!(status.success(), "{status:?}\n{stderr}");

    let results = h.results();
    let good = &results["good"];
    assert!(good["output"]["segments_count"].as_u64().unwrap() >= 10, "{good}");
    common::schema::check(&root().join("worker/schema/job-result.schema.json"), &good["output"]);
    assert!(results["bad"]["error"].as_str().unwrap().contains("HTTP 404"), "{}", results["bad"]);
    assert!(results["noinput"]["error"].as_str().unwrap().contains("no input"));
    assert!(results["after"]["output"]["segments_count"].as_u64().unwrap() >= 1, "the worker went on");
    assert!(stderr.contains("without an id"), "{stderr}");
    // On RunPod (RUNPOD_ENDPOINT_ID set) log lines are JSON, and a job's lines carry its id.
    let lines: Vec<Value> = stderr.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("{l}"))).collect();
    assert!(lines.iter().any(|l| l["span"]["request_id"] == "good"), "{stderr}");
    assert!(!stderr.contains(API_KEY), "the key never reaches the log");

    let requests = h.server.requests();
    // Every platform request carries the key as the SDK sends it (no Bearer).
    for r in requests.iter().filter(|r| r.path().starts_with("/v2/")) {
        assert_eq!(r.header("Authorization"), Some(API_KEY), "{}", r.target);
    }
    let takes: Vec<&Request> = requests.iter().filter(|r| r.path().starts_with("/v2/ep/job-take")).collect();
    assert!(takes.iter().all(|r| r.path() == format!("/v2/ep/job-take/{POD}") && r.query().starts_with("gpu=test&")));
    assert!(takes.iter().all(|r| matches!(query(r, "job_in_progress"), Some("0" | "1"))));
    // Posts: the SDK's URL form, X-Request-ID, and progress strictly before the result.
    let good_posts: Vec<&Request> =
        requests.iter().filter(|r| r.path() == format!("/v2/ep/job-done/{POD}/good")).collect();
    assert!(good_posts
        .iter()
        .all(|r| query(r, "isStream") == Some("false") && r.header("X-Request-ID") == Some("good")));
    let bodies: Vec<Value> = good_posts.iter().map(|r| serde_json::from_slice(&r.body).unwrap()).collect();
    let (last, progress) = bodies.split_last().unwrap();
    assert!(last.get("output").is_some() && last.get("status").is_none(), "the result comes last: {bodies:?}");
    assert!(!progress.is_empty(), "a long job posts progress");
    for p in progress {
        assert_eq!(p["status"], "IN_PROGRESS");
        assert!(p["output"]["percent"].as_u64().unwrap() <= 100, "{p}");
        assert!(["audio", "voice_activity", "transcription"].contains(&p["output"]["stage"].as_str().unwrap()), "{p}");
    }
    let of_stage = |stage: &str| progress.iter().filter(|p| p["output"]["stage"] == stage).collect::<Vec<_>>();
    let transcription = of_stage("transcription");
    assert!(transcription
        .iter()
        .all(|p| p["output"]["unit"] == "chunks" && p["output"]["total"].as_f64().unwrap() >= 1.0));
    // Each stage's updates arrive in order. The VAD's last one (100 %) is posted while the
    // transcription runs; the transcription's last one may not be: once the result is ready,
    // updates still queued or in flight are dropped rather than delay it (src/job_loop.rs), and
    // a batch of six chunks reports only its start and its end.
    let percents =
        |stage: &str| of_stage(stage).iter().map(|p| p["output"]["percent"].as_u64().unwrap()).collect::<Vec<_>>();
    for stage in ["voice_activity", "transcription"] {
        let seen = percents(stage);
        assert!(!seen.is_empty() && seen.windows(2).all(|w| w[0] <= w[1]), "{stage}: {seen:?}");
    }
    assert_eq!(percents("voice_activity").last(), Some(&100), "{progress:?}");
    // Pings on their own timer, naming the job while it ran.
    let pings: Vec<&Request> = requests.iter().filter(|r| r.path() == format!("/v2/ep/ping/{POD}")).collect();
    assert!(pings.len() >= 3, "{} pings", pings.len());
    assert!(pings.iter().all(|r| query(r, "runpod_version").is_some_and(|v| v.starts_with("scribe-worker-"))));
    assert!(pings.iter().any(|r| query(r, "job_id") == Some("good")), "no ping named the running job");
    // No job left files behind.
    let left: Vec<_> = std::fs::read_dir(h.jobs_dir.path()).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_survive_server_errors_and_dropped_connections_and_sigterm_drains() {
    if !models_present() {
        return;
    }
    let h = Harness::start(Vec::new()).await;
    {
        let mut p = h.platform.lock().unwrap();
        p.queue.extend([
            json!({"id": "flaky", "input": {"audio_file": h.audio("speech.wav"), "beam_size": 1}}),
            json!({"id": "dropped", "input": {"audio_file": h.audio("speech.wav"), "beam_size": 1}}),
            json!({"id": "drain", "input": {"audio_file": h.audio("long.wav")}}),
            json!({"id": "never", "input": {"audio_file": h.audio("speech.wav")}}),
        ]);
        p.post_failures.insert("flaky".into(), VecDeque::from([503, 502]));
        p.post_failures.insert("dropped".into(), VecDeque::from([0]));
    }
    let child = h.worker(&[]);
    h.wait_for("the long job to start", Duration::from_secs(300), |h| {
        h.platform.lock().unwrap().taken.contains(&"drain".to_string())
    })
    .await;
    sigterm(&child);
    let (status, stderr) = wait_exit(child, Duration::from_secs(300));
    assert!(status.success(), "{status:?}\n{stderr}");
    let results = h.results();
    assert!(results["flaky"]["output"].is_object(), "posted after two 5xx");
    assert!(results["dropped"]["output"].is_object(), "posted after a dropped connection");
    assert!(results["drain"]["output"]["segments_count"].as_u64().unwrap() >= 10, "the job in flight finished");
    assert!(!h.platform.lock().unwrap().taken.contains(&"never".to_string()), "no take after SIGTERM");
    let flaky_results = h
        .server
        .requests()
        .iter()
        .filter(|r| r.path().ends_with("/flaky"))
        .filter(|r| serde_json::from_slice::<Value>(&r.body).is_ok_and(|b| b.get("status").is_none()))
        .count();
    assert_eq!(flaky_results, 3, "two refused, the third posted");
}

/// A stop that reaches the worker before the job's take (the race a loaded worker can lose) is
/// kept until the job is taken: the job never starts and posts nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_that_overtakes_its_take_still_stops_the_job() {
    if !models_present() {
        return;
    }
    let h = Harness::start(Vec::new()).await;
    h.platform.lock().unwrap().stop_early.push("early".into());
    let child = h.worker(&[]);
    // The stop route answers first (the queue is empty); the job comes after it.
    h.wait_for("the stop to be sent", Duration::from_secs(60), |h| {
        h.server.requests().iter().any(|r| r.path().starts_with("/v2/ep/job-stop/"))
            && h.platform.lock().unwrap().stop_early.is_empty()
    })
    .await;
    {
        let mut p = h.platform.lock().unwrap();
        p.queue.push_back(json!({"id": "early", "input": {"audio_file": h.audio("speech.wav"), "beam_size": 1}}));
        p.queue.push_back(json!({"id": "after", "input": {"audio_file": h.audio("speech.wav"), "beam_size": 1}}));
    }
    h.wait_for("the second job's result", Duration::from_secs(300), |h| h.results().contains_key("after")).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    sigterm(&child);
    let (status, stderr) = wait_exit(child, Duration::from_secs(60));
    assert!(status.success(), "{status:?}\n{stderr}");
    assert!(h.platform.lock().unwrap().taken.contains(&"early".to_string()), "the job was taken");
    assert!(!h.results().contains_key("early"), "a stopped job posts nothing: {:?}", h.results());
    assert!(stderr.contains("job early: stopped by the platform before it started"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_job_posts_nothing_and_batches_are_taken_when_slots_are_free() {
    if !models_present() {
        return;
    }
    let h = Harness::start(Vec::new()).await;
    {
        let mut p = h.platform.lock().unwrap();
        p.queue.extend([
            json!({"id": "stopme", "input": {"audio_file": h.audio("long.wav")}}),
            json!({"id": "second", "input": {"audio_file": h.audio("speech.wav"), "beam_size": 1}}),
            json!({"id": "third", "input": {"audio_file": h.audio("speech.wav"), "beam_size": 1}}),
        ]);
        p.stop.push("stopme".into());
    }
    let child = h.worker(&[("SCRIBE_CONCURRENCY", "2")]);
    h.wait_for("two results", Duration::from_secs(300), |h| h.results().len() >= 2).await;
    // Give a stopped job time it would have needed to post.
    tokio::time::sleep(Duration::from_secs(2)).await;
    sigterm(&child);
    let (status, stderr) = wait_exit(child, Duration::from_secs(60));
    assert!(status.success(), "{status:?}\n{stderr}");
    let results = h.results();
    assert!(!results.contains_key("stopme"), "a stopped job posts nothing: {results:?}");
    assert!(results["second"]["output"].is_object() && results["third"]["output"].is_object());
    assert!(stderr.contains("stopped by the platform"), "{stderr}");
    let batch = h.server.requests().into_iter().find(|r| r.path().starts_with("/v2/ep/job-take-batch/"));
    let batch = batch.expect("two free slots take from the batch route");
    assert_eq!(query(&batch, "batch_size"), Some("2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_start_up_is_reported_unhealthy_on_the_ping_url() {
    let h = Harness::start(Vec::new()).await;
    let child = h.worker(&[("WHISPERX_MODEL", "/nonexistent/model")]);
    let (status, stderr) = wait_exit(child, Duration::from_secs(60));
    assert!(!status.success(), "{stderr}");
    let pings: Vec<Request> =
        h.server.requests().into_iter().filter(|r| r.path() == format!("/v2/ep/ping/{POD}")).collect();
    assert_eq!(pings.len(), 1, "{:?}", h.summary());
    assert_eq!(query(&pings[0], "status"), Some("unhealthy"));
    assert_eq!(query(&pings[0], "check"), Some("models"));
    assert!(query(&pings[0], "reason").unwrap().contains("nonexistent"), "{}", pings[0].target);
    assert!(h.server.requests().iter().all(|r| !r.path().contains("job-take")), "no job was taken");

    // WHISPERX_DEVICE=cuda with no usable GPU (these machines have none) fails the CUDA check.
    let h = Harness::start(Vec::new()).await;
    let (status, stderr) = wait_exit(h.worker(&[("WHISPERX_DEVICE", "cuda")]), Duration::from_secs(60));
    assert!(!status.success(), "{stderr}");
    let ping = h.server.requests().into_iter().find(|r| r.path() == format!("/v2/ep/ping/{POD}"));
    let ping = ping.unwrap_or_else(|| panic!("no unhealthy ping: {stderr}"));
    assert_eq!(query(&ping, "status"), Some("unhealthy"));
    assert!(query(&ping, "reason").unwrap().to_lowercase().contains("cuda"), "{}", ping.target);
}

/// What one platform request looks like, for comparing workers: route kind, path, query keys
/// (and values that are fixed), the headers that matter, and the top-level keys of the body.
fn shape(r: &Request) -> Option<(String, Value)> {
    let path = r.path();
    let kind = ["job-take", "job-done", "ping", "job-stop"].into_iter().find(|k| path.contains(&format!("/{k}/")))?;
    let mut query: Vec<String> = r
        .query()
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            match k {
                "runpod_version" | "job_id" => k.to_string(),
                _ => format!("{k}={v}"),
            }
        })
        .collect();
    query.sort();
    let body: Option<Value> = serde_json::from_slice(&r.body).ok();
    let keys: Vec<String> = match &body {
        Some(Value::Object(m)) => m.keys().cloned().collect(),
        _ => Vec::new(),
    };
    let progress = body.as_ref().is_some_and(|b| b.get("status").is_some());
    let kind = if progress { "progress".to_string() } else { kind.to_string() };
    Some((
        kind.clone(),
        json!({
            "kind": kind, "method": r.method, "path": path, "query": query, "body_keys": keys,
            "authorization": r.header("Authorization"),
        }),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_platform_sees_the_same_requests_from_scribe_worker_as_from_the_official_sdk() {
    if !models_present() {
        return;
    }
    let python = root().join(".cache/runpod-venv/bin/python");
    if !python.is_file() {
        common::cannot_run("no .cache/runpod-venv (scripts/install-test-deps makes it)");
        return;
    }
    // The same job for both; the SDK's handler echoes it, scribe-worker transcribes it.
    let mut logs = Vec::new();
    for sdk in [true, false] {
        let h = Harness::start(Vec::new()).await;
        let job = json!({"id": "job-a", "input": {"audio_file": h.audio("speech.wav"), "beam_size": 1}});
        h.platform.lock().unwrap().queue.push_back(job);
        let child = if sdk {
            let mut cmd = Command::new(&python);
            cmd.arg(root().join("worker/tests/sdk_worker.py"));
            h.spawn(
                cmd,
                &[
                    ("RUNPOD_SKIP_AUTO_SYSTEM_CHECKS", "true"),
                    ("RUNPOD_SKIP_GPU_CHECK", "true"),
                    // The SDK pings every RUNPOD_PING_INTERVAL // 1000 s with that as its timeout:
                    // below a second it never gets a ping through.
                    ("RUNPOD_PING_INTERVAL", "1000"),
                ],
            )
        } else {
            h.worker(&[("RUNPOD_PING_INTERVAL", "1000")])
        };
        h.wait_for("the result", Duration::from_secs(300), |h| h.results().contains_key("job-a")).await;
        // A few more pings and takes, then stop.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        sigterm(&child);
        let (_, stderr) = wait_exit(child, Duration::from_secs(30));
        let shapes: Vec<(String, Value)> = h.server.requests().iter().filter_map(shape).collect();
        assert!(!shapes.is_empty(), "{stderr}");
        logs.push(shapes);
    }
    let (sdk, ours) = (&logs[0], &logs[1]);
    // Field by field, per kind of request both workers sent.
    for kind in ["job-take", "job-done", "ping"] {
        // Pings compared while idle: the SDK's echo job is over before its first ping.
        let idle = |v: &Value| !v["query"].as_array().unwrap().contains(&json!("job_id"));
        let first = |log: &[(String, Value)]| {
            log.iter().find(|(k, v)| k == kind && (kind != "ping" || idle(v))).map(|(_, v)| v.clone())
        };
        let (Some(a), Some(b)) = (first(sdk), first(ours)) else {
            panic!("{kind}: sdk {:?} ours {:?}", first(sdk), first(ours));
        };
        for field in ["method", "path", "query", "body_keys", "authorization"] {
            assert_eq!(a[field], b[field], "{kind} {field}: sdk {a} vs scribe-worker {b}");
        }
    }
    // The SDK posts its result once; so do we (progress updates are extra posts of their own shape).
    let finals = |log: &[(String, Value)]| log.iter().filter(|(k, _)| k == "job-done").count();
    assert_eq!(finals(sdk), 1);
    assert_eq!(finals(ours), 1);
    for (_, p) in ours.iter().filter(|(k, _)| k == "progress") {
        assert_eq!(p["body_keys"], json!(["output", "status"]), "{p}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presigned_queries_never_reach_a_log_line_or_a_posted_result() {
    if !models_present() {
        return;
    }
    const SECRET: &str = "X-Amz-Signature=topsecret0123456789";
    let h = Harness::start(Vec::new()).await;
    let closed = common::free_port();
    let long_path = "p".repeat(100_000);
    let failing = [
        ("closed-port", format!("http://127.0.0.1:{closed}/a.wav?{SECRET}")),
        ("dropped", format!("{}?{SECRET}", h.audio("hang-up.wav"))),
        ("not-found", format!("{}?{SECRET}", h.audio("missing.wav"))),
        ("long-url", format!("{}?{SECRET}", h.audio(&long_path))),
        ("private", format!("http://user:{SECRET}@10.0.0.1/a.wav?{SECRET}")),
    ];
    {
        let mut p = h.platform.lock().unwrap();
        for (id, url) in &failing {
            p.queue.push_back(json!({"id": id, "input": {"audio_file": url}}));
        }
        p.queue.push_back(json!({"input": {"audio_file": format!("https://bucket.example/a.wav?{SECRET}")}}));
        p.queue.push_back(json!({"id": "last", "input": {"audio_file": h.audio("speech.wav"), "beam_size": 1}}));
    }
    let allowed = format!("127.0.0.1:{},127.0.0.1:{closed}", h.server.port);
    let child = h.worker(&[("ALLOW_PRIVATE_URLS", &allowed), ("LOG_LEVEL", "debug")]);
    h.wait_for("every result", Duration::from_secs(300), |h| h.results().len() > failing.len()).await;
    sigterm(&child);
    let (status, stderr) = wait_exit(child, Duration::from_secs(60));
    assert!(status.success(), "{status:?}");
    assert!(
        !stderr.contains("topsecret"),
        "the secret reached the log:\n{}",
        stderr.lines().filter(|l| l.contains("topsecret")).collect::<Vec<_>>().join("\n")
    );
    assert!(stderr.contains("without an id"), "{stderr}");
    let results = h.results();
    for (id, _) in &failing {
        let body = results[*id].to_string();
        let error = results[*id]["error"].as_str().unwrap_or_else(|| panic!("{id}: {body}"));
        assert!(!body.contains("topsecret"), "{id}: {body}");
        assert!(error.len() < 2000, "{id}: an error of {} characters", error.len());
    }
    assert!(results["closed-port"]["error"].as_str().unwrap().contains(&format!("127.0.0.1:{closed}/a.wav")));
    assert!(results["last"]["output"].is_object(), "the worker went on");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zero_ping_interval_is_floored_not_a_ping_storm() {
    if !models_present() {
        return;
    }
    let h = Harness::start(Vec::new()).await;
    let child = h.worker(&[("RUNPOD_PING_INTERVAL", "0")]);
    // Wait for the loop to start (its first take), then watch the pings for 3 s.
    h.wait_for("the first take", Duration::from_secs(120), |h| {
        h.server.requests().iter().any(|r| r.path().contains("/job-take"))
    })
    .await;
    let from = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    sigterm(&child);
    let (status, stderr) = wait_exit(child, Duration::from_secs(30));
    assert!(status.success(), "{stderr}");
    let pings = h.server.requests().iter().filter(|r| r.path() == format!("/v2/ep/ping/{POD}") && r.at >= from).count();
    // Once a second (it was 515 a second).
    assert!((1..=5).contains(&pings), "{pings} pings in 3 s");
    assert!(stderr.contains("RUNPOD_PING_INTERVAL=0 ms is below 1000 ms"), "{stderr}");
}
