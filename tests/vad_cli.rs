//! `scribe transcribe` with WhisperX's default VAD path (`--vad_method pyannote`): the flags,
//! WhisperX workers' checkpoint locations, and refusals.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{model_dir, root, speech};

fn scribe(extra: &[&str], audio: &Path, env: &[(&str, &str)]) -> Output {
    let dir = root().join("models/tiny.en");
    Command::new(env!("CARGO_BIN_EXE_scribe"))
        .current_dir(root())
        .envs(common::OFFLINE_ALIGNMENT)
        .envs(env.iter().copied())
        .args(["transcribe", "--model"])
        .arg(dir)
        .args(extra)
        .arg(audio)
        .output()
        .expect("run scribe")
}

fn failed(o: &Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!o.status.success(), "accepted: {err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

fn segments(out: &Path, stem: &str) -> Vec<(f64, f64, String)> {
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join(format!("{stem}.json"))).unwrap()).unwrap();
    doc["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["start"].as_f64().unwrap(), s["end"].as_f64().unwrap(), s["text"].as_str().unwrap().to_string()))
        .collect()
}

/// `--segmentation_compute_type` (SEGMENTATION_COMPUTE_TYPE): the default runs the VAD's LSTMs
/// in bf16 where the CPU has AVX-512 BF16 (CI's do) and says so; float32 keeps them in f32; both
/// find the same speech in jfk.flac; an unknown value is refused.
#[test]
fn segmentation_compute_type_chooses_the_vads_precision_and_says_so() {
    if model_dir("tiny.en").is_none() || model_dir("vad").is_none() {
        return;
    }
    let bf16 = common::bf16_products();
    let mut found = Vec::new();
    for (flag, env, want) in [
        (None, None, if bf16 { "bfloat16" } else { "float32" }),
        (Some("float32"), None, "float32"),
        (None, Some("float32"), "float32"),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let mut args = vec!["--output_format", "json", "--output_dir", tmp.path().to_str().unwrap()];
        args.extend(flag.map(|f| ["--segmentation_compute_type", f]).into_iter().flatten());
        let vars: Vec<(&str, &str)> = env.map(|v| ("SEGMENTATION_COMPUTE_TYPE", v)).into_iter().collect();
        let o = scribe(&args, &speech("jfk.flac"), &vars);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{err}");
        assert!(err.contains(&format!("(compute_type={want})")), "{flag:?} {env:?}: {err}");
        let line = err.lines().find(|l| l.contains("chunks,")).expect("the VAD's summary").to_string();
        found.push(line.split_once(": ").map(|(_, s)| s.to_string()).unwrap_or(line));
    }
    assert!(found.windows(2).all(|p| p[0] == p[1]), "{found:?}");
    let err = failed(&scribe(&["--segmentation_compute_type", "int8"], &speech("jfk.flac"), &[]));
    assert!(err.contains("segmentation_compute_type") && err.contains("bfloat16"), "{err}");
}

#[test]
fn the_default_finds_speech_and_transcribes_it_in_chunks() {
    if model_dir("tiny.en").is_none() || model_dir("vad").is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let o = scribe(
        &["--output_format", "json", "--output_dir", tmp.path().to_str().unwrap()],
        &speech("two_speakers.wav"),
        &[("LOG_LEVEL", "debug")],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    // The recording's first 6.7 s hold no speech (WhisperX's VAD, tests/vad_reference.rs).
    assert!(err.contains("chunks,") && err.contains("encoder calls"), "{err}");
    let segs = segments(tmp.path(), "two_speakers");
    assert!(!segs.is_empty());
    assert!(segs[0].0 >= 6.5, "speech starts after 6.7 s: {segs:?}");
    assert!(segs.iter().all(|s| s.1 <= 30.0 && s.0 <= s.1), "{segs:?}");
    let words: usize = segs.iter().map(|s| s.2.split_whitespace().count()).sum();
    assert!(words > 30, "{segs:?}");
}

/// `--vad_coarse_to_fine` (default True, `pipeline::vad_refine`): the same chunks as scoring
/// every window, from fewer windows (two_speakers.wav opens with 6.7 s without speech and has
/// 51 windows).
#[test]
fn coarse_to_fine_is_the_default_and_finds_the_chunks_every_window_finds() {
    if model_dir("tiny.en").is_none() || model_dir("vad").is_none() {
        return;
    }
    let chunk_lines = |flags: &[&str]| {
        let tmp = tempfile::tempdir().unwrap();
        let mut args = vec!["--output_format", "json", "--output_dir", tmp.path().to_str().unwrap()];
        args.extend_from_slice(flags);
        let o = scribe(&args, &speech("two_speakers.wav"), &[("LOG_LEVEL", "debug")]);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(o.status.success(), "{err}");
        let chunks: Vec<String> = err.lines().filter_map(|l| l.find("chunk ").map(|at| l[at..].to_string())).collect();
        assert!(!chunks.is_empty(), "{err}");
        (chunks, err)
    };
    let (default, log) = chunk_lines(&[]);
    let windows: usize = log
        .lines()
        .find_map(|l| l.split("voice activity: ").nth(1)?.split(" windows scored coarse to fine").next()?.parse().ok())
        .unwrap_or_else(|| panic!("no coarse-to-fine line: {log}"));
    assert!(windows < 51, "{windows} windows");
    let (every, log) = chunk_lines(&["--vad_coarse_to_fine", "False"]);
    assert!(!log.contains("coarse to fine"), "{log}");
    assert_eq!(default, every);
}

#[test]
fn chunk_size_and_batch_size_shape_the_batches() {
    if model_dir("tiny.en").is_none() || model_dir("vad").is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let o = scribe(
        &[
            "--chunk_size",
            "5",
            "--batch_size",
            "2",
            "--output_format",
            "json",
            "--output_dir",
            tmp.path().to_str().unwrap(),
        ],
        &speech("two_speakers.wav"),
        &[("LOG_LEVEL", "debug")],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    let chunks: usize = err
        .lines()
        .find_map(|l| l.split(": ").last()?.split(" chunks, ").next()?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{err}"));
    // 23 s of speech in chunks of at most 5 s: at least 5 of them, encoded 2 at a time.
    assert!(chunks >= 5, "{err}");
    let encoder_calls: usize = err
        .lines()
        .find_map(|l| l.split("batched: ").nth(1)?.split(" encoder calls").next()?.parse().ok())
        .unwrap_or_else(|| panic!("{err}"));
    assert!(encoder_calls >= chunks.div_ceil(2), "{err}");
    assert!(!segments(tmp.path(), "two_speakers").is_empty());
}

#[test]
fn whisperx_checkpoint_locations_are_honoured() {
    if model_dir("tiny.en").is_none() || model_dir("vad").is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let bin = root().join("models/vad/whisperx-vad-segmentation.bin");
    // VAD_MODEL_PATH naming WhisperX's own .bin: read directly.
    let o = scribe(
        &["--output_format", "txt", "--output_dir", tmp.path().to_str().unwrap()],
        &speech("spk1_snt1.wav"),
        &[("VAD_MODEL_PATH", bin.to_str().unwrap())],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(tmp.path().join("spk1_snt1.txt")).unwrap().to_lowercase();
    assert!(text.contains("small dog"), "{text}");
    // A VAD_MODEL_PATH that does not exist is named.
    let o = scribe(
        &["--output_dir", tmp.path().to_str().unwrap()],
        &speech("spk1_snt1.wav"),
        &[("VAD_MODEL_PATH", "/nonexistent/vad.bin")],
    );
    assert!(failed(&o).contains("/nonexistent/vad.bin"));
    // A model directory without any VAD model: the error says how to get one, or to go without.
    let empty = tempfile::tempdir().unwrap();
    let o = scribe(
        &["--model_dir", empty.path().to_str().unwrap(), "--output_dir", tmp.path().to_str().unwrap()],
        &speech("spk1_snt1.wav"),
        &[],
    );
    let err = failed(&o);
    assert!(err.contains("models/fetch vad") && err.contains("--vad_method none"), "{err}");
    // A truncated checkpoint is an error naming it, not a panic.
    let cut = tmp.path().join("cut.bin");
    let bytes = std::fs::read(&bin).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let o = scribe(
        &["--output_dir", tmp.path().to_str().unwrap()],
        &speech("spk1_snt1.wav"),
        &[("VAD_MODEL_PATH", cut.to_str().unwrap())],
    );
    assert!(failed(&o).contains("cut.bin"));
}

#[test]
fn vad_flags_are_checked_and_silero_is_refused_by_name() {
    let audio = speech("spk1_snt1.wav");
    for (flags, want) in [
        (&["--vad_method", "silero"][..], "silero is not supported"),
        (&["--vad_method", "webrtc"][..], "expected pyannote or none"),
        (&["--chunk_size", "40"][..], "--chunk_size 40"),
        (&["--chunk_size", "0"][..], "--chunk_size 0"),
        (&["--chunk_size", "1e-9"][..], "--chunk_size 0.000000001"),
        (&["--chunk_size", "0.5"][..], "--chunk_size 0.5"),
        (&["--batch_size", "0"][..], "--batch_size 0"),
        (&["--vad_onset", "1.5"][..], "--vad_onset"),
        (&["--clip_timestamps", "1,2"][..], "--vad_method none"),
        (&["--vad_step", "0"][..], "--vad_step 0"),
        (&["--vad_step", "6"][..], "--vad_step 6"),
        (&["--vad_coarse_to_fine", "maybe"][..], "--vad_coarse_to_fine"),
    ] {
        let err = failed(&scribe(flags, &audio, &[]));
        assert!(err.contains(want), "{flags:?}: {err}");
    }
}

#[test]
fn word_timestamps_time_every_word_and_split_chunks_at_sentence_ends() {
    if model_dir("tiny.en").is_none() || model_dir("vad").is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let o = scribe(
        &["--word_timestamps", "True", "--output_format", "json", "--output_dir", tmp.path().to_str().unwrap()],
        &speech("two_speakers.wav"),
        &[],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("two_speakers.json")).unwrap()).unwrap();
    let segments = doc["segments"].as_array().unwrap();
    assert!(segments.len() >= 3, "{doc}");
    let mut words = 0;
    for s in segments {
        let (start, end) = (s["start"].as_f64().unwrap(), s["end"].as_f64().unwrap());
        let ws = s["words"].as_array().unwrap();
        assert!(!ws.is_empty(), "{s}");
        for w in ws {
            let (ws, we) = (w["start"].as_f64().unwrap(), w["end"].as_f64().unwrap());
            assert!(start - 1e-6 <= ws && ws <= we && we <= end + 1e-6, "{w} outside {start}-{end}");
            words += 1;
        }
        // A sentence end only ever closes a segment.
        let text = s["text"].as_str().unwrap().trim();
        for w in &ws[..ws.len() - 1] {
            let t = w["word"].as_str().unwrap().trim_end();
            assert!(!t.ends_with(['.', '?', '!']), "segment not split after {t:?}: {text}");
        }
    }
    assert_eq!(words, doc["word_segments"].as_array().unwrap().len());
}
