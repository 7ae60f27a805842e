//! `scribe-worker --rp_serve_api`: the local API over plain HTTP (every route, the queue,
//! cancel, bad bodies) and driven by the official RunPod Python client (`runpod` in
//! .cache/runpod-venv, made by scripts/install-test-deps).

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use common::http_server::{Response, Server};
use common::{free_port, model_dir, root, sentences_wav, speech, worker_env};

struct Api {
    child: Child,
    port: u16,
    _jobs: tempfile::TempDir,
}

impl Drop for Api {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start(audio_port: u16) -> Api {
    start_with(audio_port, &[], Stdio::null()).await
}

/// The local API with `extra` environment variables, its log to `stderr`.
async fn start_with(audio_port: u16, extra: &[(&str, &str)], stderr: Stdio) -> Api {
    let jobs = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_scribe-worker"));
    worker_env(&mut cmd, jobs.path(), audio_port);
    cmd.envs(extra.iter().copied());
    let child = cmd
        .args(["--rp_serve_api", "--rp_api_host", "127.0.0.1", "--rp_api_port", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let api = Api { child, port, _jobs: jobs };
    let client = reqwest::Client::new();
    let start = Instant::now();
    while client.get(api.url("/v2/ep/health")).send().await.is_err() {
        assert!(start.elapsed() < Duration::from_secs(60), "the local API never came up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    api
}

impl Api {
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

/// An audio server with a short and a long recording.
async fn audio_server() -> Server {
    let short = std::fs::read(speech("spk2_snt1.wav")).unwrap();
    let long = sentences_wav(4, &[1], 0.5);
    Server::start(Arc::new(move |r| match r.path() {
        "/short.wav" => Response::new(200, short.clone()),
        "/long.wav" => Response::new(200, long.clone()),
        _ => Response::new(404, ""),
    }))
    .await
}

async fn poll_until_done(client: &reqwest::Client, url: &str) -> Value {
    let start = Instant::now();
    loop {
        let v: Value = client.get(url).send().await.unwrap().json().await.unwrap();
        if !matches!(v["status"].as_str(), Some("IN_QUEUE" | "IN_PROGRESS")) {
            return v;
        }
        assert!(start.elapsed() < Duration::from_secs(300), "{v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_as_the_platform_does() {
    if model_dir("tiny.en").is_none() || model_dir("vad").is_none() {
        return;
    }
    let audio = audio_server().await;
    let api = start(audio.port).await;
    let c = reqwest::Client::new();
    let short = json!({"input": {"audio_file": audio.url("/short.wav"), "beam_size": 1}});

    // runsync returns the finished job.
    let done: Value = c.post(api.url("/v2/ep/runsync")).json(&short).send().await.unwrap().json().await.unwrap();
    assert_eq!(done["status"], "COMPLETED", "{done}");
    assert!(done["output"]["segments_count"].as_u64().unwrap() >= 1);
    assert!(done["executionTime"].as_u64().is_some() && done["delayTime"].as_u64().is_some(), "{done}");

    // run, then status until done; the stream holds the progress updates.
    let queued: Value = c.post(api.url("/v2/ep/run")).json(&short).send().await.unwrap().json().await.unwrap();
    assert_eq!(queued["status"], "IN_QUEUE");
    let id = queued["id"].as_str().unwrap();
    let finished = poll_until_done(&c, &api.url(&format!("/v2/ep/status/{id}"))).await;
    assert_eq!(finished["status"], "COMPLETED", "{finished}");
    let stream: Value = c.get(api.url(&format!("/v2/ep/stream/{id}"))).send().await.unwrap().json().await.unwrap();
    assert!(stream["stream"][0]["output"]["percent"].is_number(), "{stream}");

    // The SDK dev server's routes.
    let dev: Value = c.post(api.url("/run")).json(&short).send().await.unwrap().json().await.unwrap();
    let dev_id = dev["id"].as_str().unwrap();
    let dev_done = poll_until_done(&c, &api.url(&format!("/status/{dev_id}"))).await;
    assert_eq!(dev_done["status"], "COMPLETED");

    // A failing job is FAILED with its error; bad bodies and unknown ids are HTTP errors.
    let bad: Value = c
        .post(api.url("/v2/ep/runsync"))
        .json(&json!({"input": {"audio_file": 7}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(bad["status"], "FAILED");
    assert!(bad["error"].as_str().unwrap().contains("audio_file should be str type"), "{bad}");
    let r = c.post(api.url("/v2/ep/run")).body("not json").send().await.unwrap();
    assert_eq!(r.status(), 400);
    let r = c.post(api.url("/v2/ep/run")).json(&json!({"audio_file": "x"})).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("no `input`"));
    assert_eq!(c.get(api.url("/v2/ep/status/nope")).send().await.unwrap().status(), 404);

    // Queue and cancel: a long job runs, two wait; one is cancelled, the other purged.
    let long = json!({"input": {"audio_file": audio.url("/long.wav")}});
    let running: Value = c.post(api.url("/v2/ep/run")).json(&long).send().await.unwrap().json().await.unwrap();
    let running_url = api.url(&format!("/v2/ep/status/{}", running["id"].as_str().unwrap()));
    let start = Instant::now();
    while c.get(&running_url).send().await.unwrap().json::<Value>().await.unwrap()["status"] == "IN_QUEUE" {
        assert!(start.elapsed() < Duration::from_secs(30));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let waiting: Value = c.post(api.url("/v2/ep/run")).json(&short).send().await.unwrap().json().await.unwrap();
    let purged: Value = c.post(api.url("/v2/ep/run")).json(&short).send().await.unwrap().json().await.unwrap();
    let cancel_url = api.url(&format!("/v2/ep/cancel/{}", waiting["id"].as_str().unwrap()));
    let cancelled: Value = c.post(cancel_url).send().await.unwrap().json().await.unwrap();
    assert_eq!(cancelled["status"], "CANCELLED");
    let health: Value = c.get(api.url("/v2/ep/health")).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["jobs"]["inQueue"], 1, "{health}");
    assert_eq!(health["jobs"]["completed"], 3, "{health}");
    assert_eq!(health["jobs"]["failed"], 1, "{health}");
    let purge: Value = c.post(api.url("/v2/ep/purge-queue")).send().await.unwrap().json().await.unwrap();
    assert_eq!(purge, json!({"removed": 1, "status": "completed"}));
    let p = api.url(&format!("/v2/ep/status/{}", purged["id"].as_str().unwrap()));
    assert_eq!(c.get(p).send().await.unwrap().json::<Value>().await.unwrap()["status"], "CANCELLED");
    let long_done = poll_until_done(&c, &running_url).await;
    assert_eq!(long_done["status"], "COMPLETED", "the running job was not disturbed");
    let w = api.url(&format!("/v2/ep/status/{}", waiting["id"].as_str().unwrap()));
    let w: Value = c.get(w).send().await.unwrap().json().await.unwrap();
    assert!(w["status"] == "CANCELLED" && w.get("output").is_none(), "a cancelled job never runs: {w}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_runpod_client_works_against_the_local_api() {
    if model_dir("tiny.en").is_none() || model_dir("vad").is_none() {
        return;
    }
    let python = root().join(".cache/runpod-venv/bin/python");
    if !python.is_file() {
        common::cannot_run("no .cache/runpod-venv (scripts/install-test-deps makes it)");
        return;
    }
    let audio = audio_server().await;
    let api = start(audio.port).await;
    let (port, short, long) = (api.port.to_string(), audio.url("/short.wav"), audio.url("/long.wav"));
    let script = root().join("worker/tests/runpod_client.py");
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python).arg(script).args([&port, &short, &long]).env("NO_PROXY", "127.0.0.1").output().unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert!(v["run_sync"]["segments_count"].as_u64().unwrap() >= 1, "{v:#}");
    assert!(matches!(v["run_first_status"].as_str(), Some("IN_QUEUE" | "IN_PROGRESS" | "COMPLETED")), "{v:#}");
    assert!(v["run_output"]["segments_count"].as_u64().unwrap() >= 1, "{v:#}");
    assert_eq!(v["run_final_status"], "COMPLETED");
    assert_eq!(v["bad_status"], "FAILED");
    assert!(v["bad_error"].as_str().unwrap().contains("ftp"), "{v:#}");
    assert_eq!(v["cancel_queued"]["status"], "CANCELLED");
    assert_eq!(v["cancel_long"]["status"], "CANCELLED");
    assert_eq!(v["cancelled_status"], "CANCELLED");
    assert_eq!(v["health"]["jobs"]["completed"], 2, "{v:#}");
    assert!(v["health"]["workers"]["idle"].is_number());
    assert_eq!(v["purge"]["status"], "completed");
}

/// Resident memory of process `pid`, MiB.
fn rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 =
        status.lines().find(|l| l.starts_with("VmRSS:")).unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
    kb / 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_jobs_expire_and_memory_returns_to_its_baseline() {
    if model_dir("tiny.en").is_none() || model_dir("vad").is_none() {
        return;
    }
    let audio = audio_server().await;
    let api = start_with(audio.port, &[("LOCAL_API_RESULT_TTL_S", "3")], Stdio::null()).await;
    let c = reqwest::Client::new();
    let pid = api.child.id();
    // A job that fails at once (its URL is refused), carrying a large prompt: the platform's
    // /run limit is 10 MiB a body.
    let job = |pad: usize| {
        json!({"input": {"audio_file": "http://10.0.0.1/a.wav", "initial_prompt": "x".repeat(pad)}}).to_string()
    };
    let run = |body: String| {
        let (c, url) = (c.clone(), api.url("/v2/ep/run"));
        async move {
            let v: Value = c
                .post(url)
                .header("Content-Type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["id"].as_str().unwrap().to_string()
        }
    };
    let warm = run(job(1000)).await;
    assert_eq!(poll_until_done(&c, &api.url(&format!("/v2/ep/status/{warm}"))).await["status"], "FAILED");
    let baseline = rss_mib(pid);
    let mut ids = Vec::new();
    for _ in 0..8 {
        ids.push(run(job((10 << 20) - 200)).await);
    }
    for id in &ids {
        let done = poll_until_done(&c, &api.url(&format!("/v2/ep/status/{id}"))).await;
        assert_eq!(done["status"], "FAILED", "{done}");
        assert!(done.to_string().len() < 4000, "the error is bounded");
    }
    // Expired (3 s, swept within 1.5 s after): unknown ids, and the memory is back.
    tokio::time::sleep(Duration::from_secs(6)).await;
    for id in &ids {
        assert_eq!(c.get(api.url(&format!("/v2/ep/status/{id}"))).send().await.unwrap().status(), 404, "{id}");
    }
    let after = rss_mib(pid);
    eprintln!("RSS: {baseline} MiB before 8 bodies of 10 MiB, {after} MiB after they expired");
    // Before, 8 bodies took RSS from 143 to 1428 MB, for good.
    assert!(after <= baseline + 48, "RSS {baseline} MiB before the jobs, {after} MiB after they expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_failing_queued_jobs_and_serving_results_until_fetched() {
    if model_dir("tiny.en").is_none() || model_dir("vad").is_none() {
        return;
    }
    let audio = audio_server().await;
    let mut api = start(audio.port).await;
    let c = reqwest::Client::new();
    let long = json!({"input": {"audio_file": audio.url("/long.wav"), "beam_size": 1}});
    let short = json!({"input": {"audio_file": audio.url("/short.wav"), "beam_size": 1}});
    let post = |body: &Value| {
        let (c, url, body) = (c.clone(), api.url("/v2/ep/run"), body.clone());
        async move {
            c.post(url).json(&body).send().await.unwrap().json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    let running = post(&long).await;
    let status = |id: &str| {
        let (c, url) = (c.clone(), api.url(&format!("/v2/ep/status/{id}")));
        async move { c.get(url).send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let start = Instant::now();
    while status(&running).await["status"] == "IN_QUEUE" {
        assert!(start.elapsed() < Duration::from_secs(30));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let queued = [post(&short).await, post(&short).await];
    // SAFETY: signalling our own child.
    unsafe { libc::kill(api.child.id() as i32, libc::SIGTERM) };
    tokio::time::sleep(Duration::from_millis(300)).await;
    // No new jobs; the queued ones failed, saying why; the API still answers.
    let refused = c.post(api.url("/v2/ep/run")).json(&short).send().await.unwrap();
    assert_eq!(refused.status(), 503);
    for id in &queued {
        let v = status(id).await;
        assert_eq!(v["status"], "FAILED", "{v}");
        assert!(v["error"].as_str().unwrap().contains("shutting down"), "{v}");
    }
    // The running job finishes, and its result can be fetched before the worker exits.
    let done = poll_until_done(&c, &api.url(&format!("/v2/ep/status/{running}"))).await;
    assert_eq!(done["status"], "COMPLETED", "{done}");
    assert!(done["output"]["segments_count"].as_u64().unwrap() >= 1);
    let exited = Instant::now();
    let status = loop {
        if let Some(s) = api.child.try_wait().unwrap() {
            break s;
        }
        assert!(exited.elapsed() < Duration::from_secs(30), "the worker did not exit after the drain");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_realtime_port_binds_loopback_unless_a_host_is_given() {
    if model_dir("tiny.en").is_none() || model_dir("vad").is_none() {
        return;
    }
    let jobs = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_scribe-worker"));
    worker_env(&mut cmd, jobs.path(), 9);
    let mut child =
        cmd.env("RUNPOD_REALTIME_PORT", port.to_string()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let found = loop {
        let mut line = String::new();
        if std::io::BufRead::read_line(&mut stderr, &mut line).unwrap() == 0 {
            break None;
        }
        seen.push_str(&line);
        if line.contains("local API on http://") {
            break Some(line);
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    let line = found.unwrap_or_else(|| panic!("no listening line: {seen}"));
    assert!(line.contains(&format!("http://127.0.0.1:{port}")), "{line}");
}

/// CPU time (user + system) of process `pid`, clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_job_stops_computing_before_the_next_one_starts() {
    if model_dir("tiny.en").is_none() || model_dir("vad").is_none() {
        return;
    }
    let long = sentences_wav(6, &[1, 2], 1.0);
    let short = std::fs::read(speech("spk2_snt1.wav")).unwrap();
    let audio = Server::start(Arc::new(move |r| match r.path() {
        "/long.wav" => Response::new(200, long.clone()),
        "/short.wav" => Response::new(200, short.clone()),
        _ => Response::new(404, ""),
    }))
    .await;
    let log = tempfile::NamedTempFile::new().unwrap();
    let log_path = log.path().to_path_buf();
    let api = start_with(audio.port, &[], Stdio::from(log.reopen().unwrap())).await;
    let c = reqwest::Client::new();
    let post = |body: Value| {
        let (c, url) = (c.clone(), api.url("/v2/ep/run"));
        async move {
            c.post(url).json(&body).send().await.unwrap().json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    let a = post(json!({"input": {"audio_file": audio.url("/long.wav")}})).await;
    // Wait until its engine is at work (voice activity scored past the first batch).
    let start = Instant::now();
    loop {
        let s: Value = c.get(api.url(&format!("/v2/ep/stream/{a}"))).send().await.unwrap().json().await.unwrap();
        if s["stream"].as_array().is_some_and(|items| items.iter().any(|i| i["output"]["stage"] == "voice_activity")) {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(120), "{s}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let b = post(json!({"input": {"audio_file": audio.url("/short.wav"), "beam_size": 1}})).await;
    let cancelled: Value = c.post(api.url(&format!("/v2/ep/cancel/{a}"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(cancelled["status"], "CANCELLED");
    let done = poll_until_done(&c, &api.url(&format!("/v2/ep/status/{b}"))).await;
    assert_eq!(done["status"], "COMPLETED", "{done}");
    // The next job started only after the cancelled one's engine had returned.
    let log = std::fs::read_to_string(&log_path).unwrap();
    let line =
        |what: &str| log.lines().position(|l| l.contains(what)).unwrap_or_else(|| panic!("no `{what}` in\n{log}"));
    assert!(line(&format!("job {a}: engine returned (cancelled)")) < line(&format!("job {b}: started")), "{log}");
    let a_status: Value = c.get(api.url(&format!("/v2/ep/status/{a}"))).send().await.unwrap().json().await.unwrap();
    assert!(a_status["status"] == "CANCELLED" && a_status.get("output").is_none(), "{a_status}");
    // Nothing computes any more: the idle worker's CPU time holds still (before, the cancelled
    // job's engine went on through its 3 minutes of audio on both cores).
    let pid = api.child.id();
    let before = cpu_ticks(pid);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = cpu_ticks(pid);
    assert!(after - before <= 20, "{} ticks of CPU in 2 s while idle", after - before);
}
