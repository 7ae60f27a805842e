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

/// Set `path`'s modification time an hour back.
fn age_an_hour(path: &std::path::Path) {
    let t = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    std::fs::File::open(path).unwrap().set_modified(t).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_sharing_a_jobs_dir_never_touch_each_others_files() {
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
    // Another worker's job in progress (old, but locked), and one a crashed worker left.
    let live = jobs.path().join("job-other-0001");
    std::fs::create_dir(&live).unwrap();
    let lock = std::fs::File::create(live.join(".lock")).unwrap();
    // SAFETY: flock on a descriptor this test owns.
    assert_eq!(unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX | libc::LOCK_NB) }, 0);
    let crashed = jobs.path().join("job-crashed-0002");
    std::fs::create_dir(&crashed).unwrap();
    std::fs::write(crashed.join(".lock"), "").unwrap();
    age_an_hour(&live);
    age_an_hour(&crashed);
    // Two runs at once, with ids that read the same as file names (both were `job-x_1`).
    let runs: Vec<_> = ["x.1", "x_1"]
        .into_iter()
        .map(|id| {
            let (port, dir) = (server.port, jobs.path().to_path_buf());
            let input =
                format!(r#"{{"id": "{id}", "input": {{"audio_file": "{}", "beam_size": 1}}}}"#, server.url("/a.wav"));
            tokio::task::spawn_blocking(move || worker(port, &dir, Some(&input)))
        })
        .collect();
    for run in runs {
        let (ok, body, stderr) = run.await.unwrap();
        assert!(ok, "{body}\n{stderr}");
        assert!(body["output"]["segments_count"].as_u64().unwrap() >= 1, "{body}");
    }
    assert!(live.is_dir(), "another worker's job directory was removed");
    assert!(!crashed.exists(), "a crashed worker's old job directory stayed");
    let left: Vec<String> =
        std::fs::read_dir(jobs.path()).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into()).collect();
    assert_eq!(left, vec!["job-other-0001".to_string()]);
    drop(lock);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_test_input_job_removes_its_files() {
    if model_dir("tiny.en").is_none() || model_dir("vad").is_none() {
        return;
    }
    let long = common::sentences_wav(3, &[1, 2], 1.0);
    let server = Server::start(Arc::new(move |r| match r.path() {
        "/long.wav" => Response::new(200, long.clone()),
        _ => Response::new(404, ""),
    }))
    .await;
    let jobs = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_scribe-worker"));
    worker_env(&mut cmd, jobs.path(), server.port);
    let input = format!(r#"{{"input": {{"audio_file": "{}"}}}}"#, server.url("/long.wav"));
    let child = cmd
        .arg("--test_input")
        .arg(input)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the audio is in the job's directory, then stop the worker.
    let start = std::time::Instant::now();
    let downloaded = || std::fs::read_dir(jobs.path()).unwrap().flatten().any(|e| e.path().join("audio.wav").is_file());
    while !downloaded() {
        assert!(start.elapsed() < std::time::Duration::from_secs(60), "the job never downloaded its audio");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    let body: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not a JSON body ({e}); status {:?}; stderr:\n{stderr}", out.status));
    assert!(body["error"].as_str().unwrap().contains("SIGTERM"), "{body}");
    let left: Vec<_> = std::fs::read_dir(jobs.path()).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(left.is_empty(), "{left:?}");
}
