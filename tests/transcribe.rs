//! End to end on real speech: the library and the `scribe` binary transcribe recordings.

mod common;

use std::process::Command;

use common::{model_dir, reference_text, speech, wer};
use scribe::audio::{decode::load_audio, mel::log_mel_window};
use scribe::backend::Device;
use scribe::models::whisper::{Task, Whisper};

fn transcribe_first_window(model: &Whisper, file: &str) -> String {
    let audio = load_audio(&speech(file)).expect("decode");
    let mel = log_mel_window(&audio[..audio.len().min(480_000)], model.config.num_mel_bins).expect("mel");
    let features = model.encode(&mel.data, 1).expect("encode");
    let tokens = model.greedy(&features, Some("en"), Task::Transcribe).expect("greedy");
    model.tokenizer.decode(&tokens).expect("detokenize")
}

#[test]
fn jfk_transcript_matches_reference_with_both_models() {
    for name in ["tiny.en", "base"] {
        let Some(dir) = model_dir(name) else { continue };
        let model = Whisper::load(&dir, Device::cpu()).expect("load");
        let text = transcribe_first_window(&model, "jfk.flac");
        let reference = reference_text("jfk.flac").expect("manifest");
        let w = wer(&reference, &text);
        eprintln!("{name}: {text:?} WER {:.1}%", w * 100.0);
        assert!(w <= 0.10, "{name}: WER {w} for {text:?}");
    }
}

#[test]
fn every_shared_recording_is_transcribed_closely_by_tiny_en() {
    let Some(dir) = model_dir("tiny.en") else { return };
    let model = Whisper::load(&dir, Device::cpu()).expect("load");
    let (mut errors, mut words) = (0.0, 0usize);
    for file in ["LJ050-0131.wav", "spk1_snt1.wav", "spk1_snt4.wav", "spk2_snt2.wav", "spk2_snt5.wav"] {
        let reference = reference_text(file).expect("manifest");
        let text = transcribe_first_window(&model, file);
        let n = common::normalize(&reference).len();
        errors += wer(&reference, &text) * n as f64;
        words += n;
        eprintln!("{file}: {text:?}");
    }
    let w = errors / words as f64;
    assert!(w <= 0.25, "pooled WER {w}");
}

#[test]
fn cli_prints_the_jfk_transcript() {
    let Some(dir) = model_dir("tiny.en") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_scribe"))
        .envs(common::OFFLINE_ALIGNMENT)
        .args(["transcribe", "--output_format", "txt", "--output_dir"])
        .arg(tmp.path())
        .arg("--model")
        .arg(&dir)
        .arg(speech("jfk.flac"))
        .output()
        .expect("run scribe");
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(tmp.path().join("jfk.txt")).unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("ask not what your country"));
    assert!(wer(&reference_text("jfk.flac").unwrap(), &text) <= 0.10, "{text}");
}

#[test]
fn cli_reports_unreadable_audio_by_name() {
    let Some(dir) = model_dir("tiny.en") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("noise.flac");
    std::fs::write(&bad, b"this is not audio at all").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_scribe"))
        .args(["transcribe", "--model"])
        .arg(&dir)
        .arg(&bad)
        .output()
        .expect("run scribe");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("noise.flac"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn cli_rejects_a_missing_model_directory_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_scribe"))
        .env("HF_HUB_OFFLINE", "1")
        .env("HF_HOME", tmp.path())
        .args(["transcribe", "--model", "no-such-model-xyz"])
        .arg(speech("jfk.flac"))
        .output()
        .expect("run scribe");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no-such-model-xyz"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn wer_counts_substitutions_insertions_deletions() {
    assert_eq!(common::wer("a b c d", "a b c d"), 0.0);
    assert_eq!(common::wer("a b c d", "a x c d"), 0.25);
    assert_eq!(common::wer("a b c d", "a b c"), 0.25);
    assert_eq!(common::wer("a b", "a b c d"), 1.0);
    assert_eq!(common::wer("Ask not, what!", "ask NOT what"), 0.0);
}
