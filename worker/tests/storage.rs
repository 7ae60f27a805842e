//! Artifacts in a real S3-compatible server (s3s-fs, which checks SigV4 signatures, built into
//! .cache/s3s by scripts/install-test-deps): a job's JSON, srt, vtt and txt are uploaded under
//! PREFIX_TRANSCRIPTS/{job_id}/, their presigned URLs fetched with a plain GET match the stored
//! bytes, a tampered signature is refused, and with the storage down the job still returns its
//! transcript as a preview with a warning.

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use common::http_server::{Response, Server};
use common::{free_port, root, speech, LoopbackOnly, TableResolver};

const AK: &str = "scribe-test-access";
const SK: &str = "scribe-test-secret-0123456789";

struct S3 {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for S3 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_s3() -> Option<S3> {
    let bin = root().join(".cache/s3s/bin/s3s-fs");
    if !bin.is_file() {
        common::cannot_run("no .cache/s3s/bin/s3s-fs (scripts/install-test-deps builds it)");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = Command::new(bin)
        .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--access-key", AK, "--secret-key", SK])
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(30), "s3s-fs never listened");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Some(S3 { child, port, dir })
}

fn storage_vars(port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("STORAGE_ENDPOINT", format!("http://127.0.0.1:{port}")),
        ("STORAGE_BUCKET", "transcripts-bucket".into()),
        ("STORAGE_ACCESS_KEY", AK.into()),
        ("STORAGE_SECRET_KEY", SK.into()),
        ("STORAGE_REGION", "us-east-1".into()),
        ("PREFIX_TRANSCRIPTS", "jobs/out".into()),
        ("PRESIGN_TTL", "600".into()),
    ]
}

async fn audio_server() -> Server {
    let wav = std::fs::read(speech("spk2_snt5.wav")).unwrap();
    Server::start(Arc::new(move |r| match r.path() {
        "/a.wav" => Response::new(200, wav.clone()),
        _ => Response::new(404, ""),
    }))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artifacts_are_uploaded_and_their_presigned_urls_serve_the_same_bytes() {
    let Some(s3) = start_s3().await else { return };
    let audio = audio_server().await;
    let jobs = tempfile::tempdir().unwrap();
    let vars = storage_vars(s3.port);
    let extra: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let Some(runner) =
        common::runner(audio.port, jobs.path(), Arc::new(LoopbackOnly::default()), TableResolver::new(&[]), &extra)
    else {
        return;
    };
    let storage = runner.storage.clone().expect("STORAGE_* configure storage");
    storage.client().create_bucket().bucket("transcripts-bucket").send().await.unwrap();

    let out = runner
        .run(
            "job/42",
            &json!({"audio_file": audio.url("/a.wav"), "debug": true}),
            Arc::new(|_| {}),
            &scribe::Cancel::new(),
        )
        .await
        .unwrap();
    common::schema::check(&root().join("worker/schema/job-result.schema.json"), &out);
    assert!(out.get("preview").is_none(), "with storage the transcript is not inline: {out:#}");
    let artifacts = out["artifacts"].as_object().unwrap();
    assert_eq!(artifacts.keys().collect::<Vec<_>>(), ["json", "srt", "txt", "vtt"]);
    let http = reqwest::Client::new();
    for (ext, a) in artifacts {
        let key = a["key"].as_str().unwrap();
        assert_eq!(key, format!("jobs/out/job_42/result.{ext}"));
        let url = a["url"].as_str().unwrap();
        assert!(url.contains("X-Amz-Signature="), "{url}");
        assert!(a["expires_at"].as_str().unwrap().ends_with('Z'));
        let got = http.get(url).send().await.unwrap();
        assert_eq!(got.status(), 200, "{ext}");
        let bytes = got.bytes().await.unwrap();
        let stored = std::fs::read(s3.dir.path().join("transcripts-bucket").join(key)).unwrap();
        assert_eq!(bytes.as_ref(), &stored[..], "{ext}: presigned GET differs from the stored object");
        // A tampered signature is refused.
        let bad = url.replace("X-Amz-Signature=", "X-Amz-Signature=0");
        assert!(!http.get(bad).send().await.unwrap().status().is_success(), "{ext}");
    }
    let json_url = artifacts["json"]["url"].as_str().unwrap();
    let full: Value = http.get(json_url).send().await.unwrap().json().await.unwrap();
    let text = full["segments"][0]["text"].as_str().unwrap().to_lowercase();
    assert!(!text.trim().is_empty() && full["language"] == "en", "{full}");
    assert_eq!(full["segments"].as_array().unwrap().len() as u64, out["segments_count"].as_u64().unwrap());
    let srt_url = artifacts["srt"]["url"].as_str().unwrap();
    assert!(http.get(srt_url).send().await.unwrap().text().await.unwrap().contains(" --> "));
    assert!(out["timings"]["upload_s"].as_f64().unwrap() > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_storage_down_the_transcript_comes_back_inline_with_a_warning() {
    let audio = audio_server().await;
    let jobs = tempfile::tempdir().unwrap();
    // Nothing listens there.
    let vars = storage_vars(free_port());
    let extra: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let Some(runner) =
        common::runner(audio.port, jobs.path(), Arc::new(LoopbackOnly::default()), TableResolver::new(&[]), &extra)
    else {
        return;
    };
    let out = runner
        .run("j1", &json!({"audio_file": audio.url("/a.wav")}), Arc::new(|_| {}), &scribe::Cancel::new())
        .await
        .unwrap();
    common::schema::check(&root().join("worker/schema/job-result.schema.json"), &out);
    assert!(out.get("artifacts").is_none());
    assert!(!out["preview"]["segments"].as_array().unwrap().is_empty(), "{out:#}");
    let warning =
        out["warnings"].as_array().unwrap().iter().filter_map(Value::as_str).find(|w| w.starts_with("storage:"));
    let warning = warning.unwrap_or_else(|| panic!("no storage warning: {out:#}"));
    assert!(warning.contains("inline preview"), "{warning}");
    assert!(!warning.contains(SK) && !warning.contains(AK), "{warning}");
}
