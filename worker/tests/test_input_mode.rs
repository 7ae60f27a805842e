//! `scribe-worker --test_input`: one job run by the binary, its result printed, the exit status
//! telling success from failure.

mod common;

use std::process::Command;
use std::sync::Arc;

use serde_json::Value;

use common::http_server::{Response, Server};
use common::{model_dir, speech, worker_env};

/// Run the worker with `--test_input input`, or (None) with the job in ./test_input.json.
fn worker(port: u16, jobs: &std::path::Path, input: Option<&str>) -> (bool, Value, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_scribe-worker"));
    if let Some(input) = input {
        cmd.arg("--test_input").arg(input);
    }
    worker_env(&mut cmd, jobs, port);
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let body: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
    (out.status.success(), body, stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_job_is_run_and_printed_and_failure_is_a_non_zero_exit() {
    if model_dir("tiny.en").is_none() || model_dir("vad").is_none() {
        return;
    }
    let wav = std::fs::read(speech("spk2_snt2.wav")).unwrap();
    let server = Server::start(Arc::new(move |r| match r.path() {
        "/a.wav" => Response::new(200, wav.clone()),
        _ => Response::new(404, ""),
    }))
    .await;
    let jobs = tempfile::tempdir().unwrap();
    let port = server.port;
    let dir = jobs.path().to_path_buf();
    let good = format!(r#"{{"input": {{"audio_file": "{}"}}}}"#, server.url("/a.wav"));
    let (ok, body, stderr) = tokio::task::spawn_blocking(move || worker(port, &dir, Some(&good))).await.unwrap();
    assert!(ok, "{body}\n{stderr}");
    assert!(body["output"]["segments_count"].as_u64().unwrap() >= 1, "{body}");
    assert!(stderr.contains("[Predict] whisper_arch=") && stderr.contains("tiny.en (path)"), "{stderr}");
    assert!(stderr.contains("[Predict] device=cpu compute_type="), "{stderr}");

    let dir = jobs.path().to_path_buf();
    let bad = format!(r#"{{"input": {{"audio_file": "{}"}}}}"#, server.url("/gone.wav"));
    let (ok, body, _) = tokio::task::spawn_blocking(move || worker(port, &dir, Some(&bad))).await.unwrap();
    assert!(!ok);
    assert!(body["error"].as_str().unwrap().contains("HTTP 404"), "{body}");
    assert!(body.get("output").is_none());

    // Without --test_input, ./test_input.json is the job (the SDK's local test convention).
    let dir = jobs.path().to_path_buf();
    let job = format!(r#"{{"input": {{"audio_file": "{}", "beam_size": 1}}}}"#, server.url("/a.wav"));
    std::fs::write(dir.join("test_input.json"), job).unwrap();
    let (ok, body, stderr) = tokio::task::spawn_blocking(move || worker(port, &dir, None)).await.unwrap();
    assert!(ok, "{body}\n{stderr}");
    assert!(body["output"]["segments_count"].as_u64().unwrap() >= 1, "{body}");
}
