//! Whole jobs through the runner with tiny.en and the VAD: a good job's result (checked against
//! the committed schema), a silent file, and the bad-input matrix — each bad job gets an error
//! naming what was wrong, and the next good job still succeeds.

mod common;

use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use common::http_server::{Response, Server};
use common::{model_dir, root, speech, wav_i16, LoopbackOnly, TableResolver};
use scribe::Cancel;
use scribe_worker::job::JobRunner;

struct World {
    server: Server,
    runner: JobRunner,
    gate: Arc<LoopbackOnly>,
    _jobs: tempfile::TempDir,
}

async fn world() -> Option<World> {
    world_with(&[]).await
}

/// The world with more settings (`SCRIBE_MODELS_DIR`, …).
async fn world_with(extra: &[(&str, &str)]) -> Option<World> {
    model_dir("tiny.en")?;
    model_dir("vad")?;
    let speech_wav = std::fs::read(speech("spk1_snt1.wav")).unwrap();
    let mp3 = std::fs::read(root().join("tests/data/formats/hello.mp3")).unwrap();
    let flac = std::fs::read(speech("jfk.flac")).unwrap();
    // 20 KB of samples under headers no recording has: 999 999 937 Hz aborted the worker, 1 Hz
    // ran 93 s and 1 GB before MAX_AUDIO_SECONDS stopped it.
    let absurd_rate = with_rate(&wav_i16(&vec![100i16; 10_000]), 999_999_937);
    let one_hz = with_rate(&wav_i16(&vec![100i16; 15_000]), 1);
    // A header declaring 10 hours over 1 s of samples: refused before decoding.
    let mut ten_hours = wav_i16(&vec![100i16; 16_000]);
    let declared = 36_000u32 * 32_000;
    ten_hours[4..8].copy_from_slice(&(36 + declared).to_le_bytes());
    ten_hours[40..44].copy_from_slice(&declared.to_le_bytes());
    let silent = wav_i16(&vec![0i16; 16_000 * 4]);
    // 70 s of a quiet tone: longer than the 60 s MAX_AUDIO_SECONDS below.
    let long = wav_i16(&(0..16_000 * 70).map(|i| ((i as f32 * 0.05).sin() * 300.0) as i16).collect::<Vec<_>>());
    let server = Server::start(Arc::new(move |r| match r.path() {
        "/speech.wav" => Response::new(200, speech_wav.clone()),
        "/silent.wav" => Response::new(200, silent.clone()),
        "/long.wav" => Response::new(200, long.clone()),
        "/truncated.mp3" => Response::new(200, mp3[..200].to_vec()),
        "/half.flac" => Response::new(200, flac[..flac.len() / 2].to_vec()),
        "/absurd-rate.wav" => Response::new(200, absurd_rate.clone()),
        "/one-hz.wav" => Response::new(200, one_hz.clone()),
        "/ten-hours.wav" => Response::new(200, ten_hours.clone()),
        "/noise.bin" => {
            Response::new(200, (0..5000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect::<Vec<_>>())
        }
        "/page.wav" => Response::new(200, "<html><body>Access denied</body></html>"),
        "/empty.wav" => Response::new(200, Vec::new()),
        "/huge.wav" => Response::new(200, vec![0u8; 5 << 20]),
        "/to-private" => Response::new(302, "").header("Location", "http://10.0.0.7/a.wav"),
        _ => Response::new(404, "not found"),
    }))
    .await;
    let jobs = tempfile::tempdir().unwrap();
    let gate = Arc::new(LoopbackOnly::default());
    let resolver = TableResolver::new(&[("evil.example", "10.0.0.5:0")]);
    let mut settings = vec![("MAX_AUDIO_SECONDS", "60"), ("MAX_DOWNLOAD_BYTES", "4194304")];
    settings.extend_from_slice(extra);
    let runner = common::runner(server.port, jobs.path(), gate.clone(), resolver, &settings)?;
    Some(World { server, runner, gate, _jobs: jobs })
}

/// `wav` with its header's sample rate (and byte rate) replaced.
fn with_rate(wav: &[u8], rate: u32) -> Vec<u8> {
    let mut out = wav.to_vec();
    out[24..28].copy_from_slice(&rate.to_le_bytes());
    out[28..32].copy_from_slice(&rate.wrapping_mul(2).to_le_bytes());
    out
}

impl World {
    async fn run(&self, input: Value) -> (Result<Value, String>, Vec<Value>) {
        let updates = Arc::new(Mutex::new(Vec::new()));
        let sink = updates.clone();
        let out =
            self.runner.run("job-1", &input, Arc::new(move |p| sink.lock().unwrap().push(p)), &Cancel::new()).await;
        let out = out.map_err(|e| {
            assert!(!e.stop_pod, "{e}: only a CUDA error asks for a restart");
            e.message
        });
        let updates = updates.lock().unwrap().clone();
        (out, updates)
    }

    fn url(&self, path: &str) -> String {
        self.server.url(path)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_job_transcribes_and_its_result_follows_the_schema() {
    let Some(w) = world().await else { return };
    let (out, updates) = w
        .run(json!({"audio_file": w.url("/speech.wav"), "language": null, "align_output": true,
                    "diarization": true, "debug": true, "speaker_verification": true,
                    "speaker_samples": [{"url": "https://voices.example/a.wav", "name": "Ann\nLee"},
                                        {"url": "https://voices.example/bob_k.wav?sig=s"}]}))
        .await;
    let out = out.unwrap();
    common::schema::check(&root().join("worker/schema/job-result.schema.json"), &out);
    assert_eq!(out["language"], "en");
    assert!(out["segments_count"].as_u64().unwrap() >= 1, "{out:#}");
    // No alignment model can be had offline (the English default is a torchaudio download):
    // DTW word times and a warning, not a failed job.
    assert!(out["words_count"].as_u64().unwrap() >= 3, "align_output falls back to DTW word times: {out:#}");
    let text = out["preview"]["segments"][0]["text"].as_str().unwrap().to_lowercase();
    assert!(text.contains("child") && text.contains("dog"), "{text}");
    let warnings = out["warnings"].as_array().unwrap();
    assert!(warnings.iter().any(|w| w.as_str().unwrap().starts_with("align_output")), "{warnings:?}");
    // The diarization models are fetched (make test): segments carry speakers, no warning.
    assert!(!warnings.iter().any(|w| w.as_str().unwrap().starts_with("diarization")), "{warnings:?}");
    assert!(out["preview"]["segments"][0]["speaker"].as_str().unwrap().starts_with("SPEAKER_"), "{out:#}");
    assert!(out["timings"]["diarization_s"].as_f64().is_some(), "{out:#}");
    // The samples' host does not resolve: each is a warning naming it (never its query), and
    // the speakers keep their labels.
    for (name, url) in [("Ann_Lee", "https://voices.example/a.wav"), ("bob_k", "https://voices.example/bob_k.wav")] {
        let w = warnings.iter().filter_map(Value::as_str).find(|w| w.starts_with(&format!("speaker_samples: {name} ")));
        let w = w.unwrap_or_else(|| panic!("no warning for {name}: {warnings:?}"));
        assert!(w.contains(url) && w.contains("not enrolled") && !w.contains("sig="), "{w}");
    }
    assert!(
        warnings.iter().filter_map(Value::as_str).any(|w| w.starts_with("speaker_verification: no speaker sample")),
        "{warnings:?}"
    );
    assert!(out["timings"]["total_s"].as_f64().unwrap() > 0.0);
    assert_eq!(updates.last().unwrap()["percent"], 100, "{updates:?}");
    // The job's files are gone.
    assert_eq!(std::fs::read_dir(w._jobs.path()).unwrap().count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn align_output_aligns_with_a_model_named_by_the_job() {
    // SCRIBE_MODELS_DIR holding the VAD, the punkt models and a small wav2vec2 model (the
    // reference's random-initialised one: its times show the mechanics, not accuracy).
    if model_dir("punkt").is_none() {
        return;
    }
    let models = tempfile::tempdir().unwrap();
    for (name, target) in [
        ("vad", root().join("models/vad")),
        ("punkt", root().join("models/punkt")),
        ("align-test", root().join("tests/reference/data/wav2vec2/base_group")),
    ] {
        std::os::unix::fs::symlink(target, models.path().join(name)).unwrap();
    }
    let dir = models.path().display().to_string();
    let Some(w) = world_with(&[("SCRIBE_MODELS_DIR", dir.as_str())]).await else { return };
    let (out, updates) = w
        .run(json!({"audio_file": w.url("/speech.wav"), "align_output": true, "align_model": "align-test",
                    "interpolate_method": "linear", "return_char_alignments": true, "debug": true}))
        .await;
    let out = out.unwrap();
    common::schema::check(&root().join("worker/schema/job-result.schema.json"), &out);
    let warnings = out["warnings"].as_array().unwrap();
    assert!(!warnings.iter().any(|w| w.as_str().unwrap().starts_with("align_output")), "{warnings:?}");
    assert!(out["words_count"].as_u64().unwrap() >= 5, "{out:#}");
    assert!(out["timings"]["word_times_s"].as_f64().unwrap() > 0.0, "{out:#}");
    assert!(updates.iter().any(|u| u["stage"] == "word_times" && u["unit"] == "segments"), "{updates:?}");
    // A path is not a model name.
    let (bad, _) = w.run(json!({"audio_file": w.url("/speech.wav"), "align_model": "../../etc"})).await;
    let e = bad.unwrap_err();
    assert!(e.contains("align_model"), "{e}");
    let (bad, _) = w.run(json!({"audio_file": w.url("/speech.wav"), "interpolate_method": "cubic"})).await;
    assert!(bad.unwrap_err().contains("interpolate_method"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_file_is_an_empty_transcript_not_an_error() {
    let Some(w) = world().await else { return };
    let out = w.run(json!({"audio_file": w.url("/silent.wav")})).await.0.unwrap();
    assert_eq!(out["segments_count"], 0, "{out:#}");
    assert_eq!(out["duration"], 4.0);
    assert!(out.get("timings").is_none(), "timings only with debug");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_input_gets_a_clear_error_and_the_next_good_job_succeeds() {
    let Some(w) = world().await else { return };
    let good = json!({"audio_file": w.url("/speech.wav"), "beam_size": 1});
    let other_port = if w.server.port == 65535 { 65534 } else { w.server.port + 1 };
    let cases: Vec<(Value, &str)> = vec![
        (json!({}), "audio_file is a required input"),
        (json!({"audio_file": "ftp://files.example/a.wav"}), "ftp"),
        (json!({"audio_file": "file:///etc/passwd"}), "file"),
        (json!({"audio_file": format!("http://127.0.0.1:{other_port}/a.wav")}), "loopback"),
        (json!({"audio_file": "http://169.254.169.254/latest/meta-data/"}), "link-local"),
        (json!({"audio_file": "http://evil.example/a.wav"}), "10.0.0.5"),
        (json!({"audio_file": w.url("/to-private")}), "10.0.0.7"),
        (json!({"audio_file": w.url("/missing.wav")}), "HTTP 404"),
        (json!({"audio_file": w.url("/page.wav")}), "HTML"),
        (json!({"audio_file": w.url("/empty.wav")}), "empty"),
        (json!({"audio_file": w.url("/truncated.mp3")}), "truncated.mp3: file ends inside its header"),
        (json!({"audio_file": w.url("/noise.bin")}), "noise.bin: not a recognised audio file"),
        (json!({"audio_file": w.url("/huge.wav")}), "MAX_DOWNLOAD_BYTES"),
        (json!({"audio_file": w.url("/long.wav")}), "long.wav: audio of 70 s is longer than the 60 s allowed"),
        (json!({"audio_file": w.url("/ten-hours.wav")}), "ten-hours.wav: audio of 36000 s is longer than the 60 s"),
        (json!({"audio_file": w.url("/absurd-rate.wav")}), "absurd-rate.wav: sample rate 999999937 Hz is outside"),
        (json!({"audio_file": w.url("/one-hz.wav")}), "one-hz.wav: sample rate 1 Hz is outside"),
        (json!({"audio_file": w.url("/speech.wav"), "chunk_size": 1e-9}), "chunk_size does not meet the constraints"),
        (json!({"audio_file": 42}), "audio_file should be str type, not int type"),
        (json!({"audio_file": w.url("/speech.wav"), "language": 5}), "language should be str type"),
        (json!({"audio_file": w.url("/speech.wav"), "language": "klingon"}), "language does not meet"),
        (json!({"audio_file": w.url("/speech.wav"), "batch_size": "8"}), "batch_size should be int type"),
        (json!({"audio_file": w.url("/speech.wav"), "beam_size": 0}), "beam_size does not meet"),
        (json!({"audio_file": w.url("/speech.wav"), "vad_onset": "high"}), "vad_onset should be float type"),
        (json!({"audio_file": w.url("/speech.wav"), "diarization": "yes"}), "diarization should be bool type"),
        (
            json!({"audio_file": w.url("/speech.wav"), "speaker_samples": {"url": "x"}}),
            "speaker_samples should be list",
        ),
        (json!({"audio_file": w.url("/speech.wav"), "output_formats": "srt"}), "output_formats should be list"),
        (json!({"audio_file": w.url("/speech.wav"), "temperature": 2}), "temperature does not meet"),
        (json!({"audio_file": w.url("/speech.wav"), "wat": 1}), "Unexpected input. wat is not a valid input option"),
        (json!("https://x/y.wav"), "input should be dict type"),
    ];
    for (i, (input, want)) in cases.iter().enumerate() {
        let e = w.run(input.clone()).await.0.expect_err(&format!("{input} should fail"));
        eprintln!("case {i}: {e}");
        assert!(e.contains(want), "case {i} {input}: {e}");
        if i % 9 == 8 {
            let out = w.run(good.clone()).await.0.unwrap_or_else(|e| panic!("good job after case {i}: {e}"));
            assert!(out["segments_count"].as_u64().unwrap() >= 1);
        }
    }
    let out = w.run(good).await.0.unwrap();
    assert!(out["segments_count"].as_u64().unwrap() >= 1);
    // Nothing but the test server was ever connected to, and no job left files behind.
    for (host, addrs) in w.gate.attempts.lock().unwrap().iter() {
        assert!(addrs.iter().all(|a| a.ip().is_loopback()), "{host} {addrs:?}");
    }
    assert_eq!(std::fs::read_dir(w._jobs.path()).unwrap().count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_file_is_transcribed_and_the_result_says_it_was_truncated() {
    let Some(w) = world().await else { return };
    let out = w.run(json!({"audio_file": w.url("/half.flac"), "beam_size": 1})).await.0.unwrap();
    assert!(out["segments_count"].as_u64().unwrap() >= 1, "{out:#}");
    let warnings: Vec<&str> = out["warnings"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(warnings.iter().any(|w| w.starts_with("audio: truncated") && w.contains("11.0 s")), "{warnings:?}");
    // A whole file has no such warning.
    let out = w.run(json!({"audio_file": w.url("/speech.wav"), "beam_size": 1})).await.0.unwrap();
    assert!(out["warnings"].as_array().unwrap().is_empty(), "{out:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_whose_ids_read_the_same_as_file_names_run_at_once_without_touching_each_other() {
    let Some(w) = world().await else { return };
    let w = Arc::new(w);
    let input = json!({"audio_file": w.url("/speech.wav"), "beam_size": 1});
    // Before, "x.1" and "x_1" shared job-x_1: one job's audio replaced or removed the other's.
    let runs: Vec<_> = ["x.1", "x_1", "x_1"]
        .into_iter()
        .map(|id| {
            let (w, input) = (w.clone(), input.clone());
            tokio::spawn(async move { w.runner.run(id, &input, Arc::new(|_| {}), &Cancel::new()).await })
        })
        .collect();
    for run in runs {
        let out = run.await.unwrap().unwrap_or_else(|e| panic!("{e}"));
        let text = out["preview"]["segments"][0]["text"].as_str().unwrap().to_lowercase();
        assert!(text.contains("child") && text.contains("dog"), "{out:#}");
    }
    assert_eq!(std::fs::read_dir(w._jobs.path()).unwrap().count(), 0);
}

/// Speaker samples name the diarized speakers of a two-speaker job (each reference speaker
/// enrolled with one of its own turns, cut from the recording), the result's `speakers` table
/// says why, and a sample that cannot be had is a warning. A second job with the same samples
/// under other presigned queries takes them from the cache: each is downloaded once; the
/// second job only probes them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speaker_samples_name_the_speakers_and_are_downloaded_once() {
    let (Some(_), Some(_)) = (model_dir("segmentation-3.0"), model_dir("campplus")) else { return };
    let dialogue = std::fs::read(speech("two_speakers.wav")).unwrap();
    let audio =
        scribe::audio::Audio::decode(&speech("two_speakers.wav"), &Default::default(), &Cancel::new(), &mut |_| {})
            .unwrap();
    let cut = |start: f64, end: f64| {
        let s = audio.span((start * 16_000.0) as usize, (end * 16_000.0) as usize);
        wav_i16(&s.iter().map(|x| (x * 32767.0).round() as i16).collect::<Vec<_>>())
    };
    let (anna, ben) = (cut(10.57, 14.70), cut(21.78, 28.50));
    let server = Server::start(Arc::new(move |r| {
        let (body, etag) = match r.path() {
            "/dialogue.wav" => return Response::new(200, dialogue.clone()),
            "/anna.wav" => (anna.clone(), "\"anna-1\""),
            "/ben.wav" => (ben.clone(), "\"ben-1\""),
            _ => return Response::new(404, "not found"),
        };
        match r.header("Range") {
            Some("bytes=0-0") => Response::new(206, body[..1].to_vec())
                .header("Content-Range", &format!("bytes 0-0/{}", body.len()))
                .header("ETag", etag),
            _ => Response::new(200, body).header("ETag", etag),
        }
    }))
    .await;
    let jobs = tempfile::tempdir().unwrap();
    let Some(runner) =
        common::runner(server.port, jobs.path(), Arc::new(LoopbackOnly::default()), TableResolver::new(&[]), &[])
    else {
        return;
    };
    let job = |sig: &str| {
        json!({"audio_file": server.url("/dialogue.wav"), "diarization": true,
               "speaker_verification": true,
               "speaker_samples": [{"url": server.url(&format!("/anna.wav?sig={sig}")), "name": "anna"},
                                   {"url": server.url(&format!("/ben.wav?sig={sig}")), "name": "ben"},
                                   {"url": server.url("/gone.wav"), "name": "carol"}]})
    };
    let mut results = Vec::new();
    for sig in ["a", "b"] {
        let out =
            runner.run("job-1", &job(sig), Arc::new(|_| {}), &Cancel::new()).await.map_err(|e| e.message).unwrap();
        common::schema::check(&root().join("worker/schema/job-result.schema.json"), &out);
        results.push(out);
    }
    for out in &results {
        let table = out["speakers"].as_array().unwrap_or_else(|| panic!("no speakers table: {out:#}"));
        let mut names: Vec<&str> = table.iter().filter_map(|s| s["name"].as_str()).collect();
        names.sort();
        assert_eq!(names, ["anna", "ben"], "{table:#?}");
        let speakers: std::collections::BTreeSet<&str> =
            out["preview"]["segments"].as_array().unwrap().iter().filter_map(|s| s["speaker"].as_str()).collect();
        assert!(speakers.contains("anna") && speakers.contains("ben"), "{out:#}");
        let warnings = out["warnings"].as_array().unwrap();
        let carol = warnings.iter().filter_map(Value::as_str).find(|w| w.starts_with("speaker_samples: carol"));
        assert!(carol.is_some_and(|w| w.contains("/gone.wav") && w.contains("404")), "{warnings:?}");
    }
    let requests = server.requests();
    for sample in ["/anna.wav", "/ben.wav"] {
        let of = |ranged: bool| {
            requests.iter().filter(|r| r.path() == sample && r.header("Range").is_some() == ranged).count()
        };
        assert_eq!((of(false), of(true)), (1, 2), "{sample}: downloads once, probed by each job");
    }
}
