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
    let jobs = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_scribe-worker"));
    worker_env(&mut cmd, jobs.path(), audio_port);
    let child = cmd
        .args(["--rp_serve_api", "--rp_api_host", "127.0.0.1", "--rp_api_port", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
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
        eprintln!("skipped: no .cache/runpod-venv (scripts/install-test-deps makes it)");
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
