//! Language detection of the multilingual base model against openai-whisper's
//! `detect_language` on the same weights (tests/reference/data/transcribe_base.json).

mod common;

use common::{model_dir, root, speech};
use scribe::audio::{load_audio, log_mel_window};
use scribe::backend::Device;
use scribe::models::whisper::decoding::detect_language;
use scribe::models::whisper::Whisper;

/// Absolute tolerance on each of the top-5 language probabilities.
const PROB_ATOL: f32 = 2e-3;

#[test]
fn base_detects_languages_like_openai() {
    let Some(dir) = model_dir("base") else { return };
    let reference: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("tests/reference/data/transcribe_base.json")).unwrap(),
    )
    .unwrap();
    let model = Whisper::load(&dir, Device::cpu()).unwrap();
    let mut checked = 0;
    for rec in reference["recordings"].as_array().unwrap() {
        let file = rec["file"].as_str().unwrap();
        if rec["resampled"].as_bool().unwrap_or(false) || file == "long_native16k" {
            continue;
        }
        let audio = load_audio(&speech(file)).unwrap();
        let mel = log_mel_window(&audio[..audio.len().min(480_000)], model.config.num_mel_bins).unwrap();
        let features = model.encode(&mel.data, 1).unwrap();
        let got = detect_language(&model, &features).unwrap();
        let want = rec["detect_language"]["pad_or_trim_audio_mel"].as_array().unwrap();
        assert_eq!(got[0].0, want[0]["language"].as_str().unwrap(), "{file}");
        for w in want {
            let code = w["language"].as_str().unwrap();
            let p = got.iter().find(|(c, _)| c == code).map(|(_, p)| *p).unwrap();
            let e = (p - w["probability"].as_f64().unwrap() as f32).abs();
            assert!(e <= PROB_ATOL, "{file}: p({code}) = {p}, openai {}", w["probability"]);
        }
        checked += 1;
    }
    assert!(checked >= 13, "only {checked} recordings checked");
}

#[test]
fn english_only_models_refuse_detection() {
    let Some(dir) = model_dir("tiny.en") else { return };
    let model = Whisper::load(&dir, Device::cpu()).unwrap();
    let features = model.encode(&vec![0.0; 80 * 3000], 1).unwrap();
    let e = detect_language(&model, &features).unwrap_err().to_string();
    assert!(e.contains("English-only"), "{e}");
}
