//! Long-form decoding against openai-whisper's own `transcribe()` on the same weights
//! (tests/reference/data/transcribe_*.json, made by tests/reference/make_transcribe_reference.py):
//! greedy and beam 5, with and without timestamps, and word timestamps, on every native 16 kHz
//! recording and on a ≥ 3-minute file rebuilt here from them. Tokens must be identical; word
//! times within 20 ms.

mod common;

use serde_json::Value;

use common::{model_dir, root, speech};
use scribe::audio::load_audio;
use scribe::backend::Device;
use scribe::models::whisper::decoding::DecodingOptions;
use scribe::models::whisper::transcribe::{transcribe, TranscribeOptions};
use scribe::models::whisper::Whisper;
use scribe::output::Transcript;

/// Word start/end tolerance against openai's DTW times.
const WORD_TIME_TOLERANCE_S: f64 = 0.020;

fn reference(name: &str) -> Value {
    let p = root().join(format!("tests/reference/data/transcribe_{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// The long file exactly as the recipe says: pieces joined by `gap_samples` zeros.
fn long_file(recipe: &Value) -> Vec<f32> {
    let gap = recipe["gap_samples"].as_u64().unwrap() as usize;
    let mut out = Vec::new();
    for (i, piece) in recipe["pieces"].as_array().unwrap().iter().enumerate() {
        if i > 0 {
            out.extend(std::iter::repeat_n(0.0f32, gap));
        }
        out.extend(load_audio(&speech(piece.as_str().unwrap())).unwrap());
    }
    out
}

fn options(config: &str) -> TranscribeOptions {
    let mut o = TranscribeOptions {
        temperatures: vec![0.0],
        decode: DecodingOptions { language: Some("en".into()), ..Default::default() },
        ..Default::default()
    };
    match config {
        "greedy_timestamps" => {}
        "beam5_timestamps" => o.decode.beam_size = Some(5),
        "greedy_no_timestamps" => o.decode.without_timestamps = true,
        "greedy_word_timestamps" => o.word_timestamps = true,
        other => panic!("unknown configuration {other}"),
    }
    o
}

fn compare(label: &str, got: &Transcript, want: &Value) -> f64 {
    let want_segments = want["segments"].as_array().unwrap();
    let got_tokens: Vec<Vec<u32>> = got.segments.iter().map(|s| s.tokens.clone()).collect();
    let want_tokens: Vec<Vec<u32>> = want_segments
        .iter()
        .map(|s| s["tokens"].as_array().unwrap().iter().map(|t| t.as_u64().unwrap() as u32).collect())
        .collect();
    assert_eq!(
        got_tokens,
        want_tokens,
        "{label}: tokens differ\n scribe: {:?}\n openai: {:?}",
        got.text(),
        want["text"].as_str().unwrap_or("")
    );
    let mut worst = 0.0f64;
    for (g, w) in got.segments.iter().zip(want_segments) {
        assert!(
            (g.start - w["start"].as_f64().unwrap()).abs() < 1e-6,
            "{label}: segment start {} vs {}",
            g.start,
            w["start"]
        );
        assert!((g.end - w["end"].as_f64().unwrap()).abs() < 1e-6, "{label}: segment end {} vs {}", g.end, w["end"]);
        if let Some(words) = w["words"].as_array() {
            assert_eq!(g.words.len(), words.len(), "{label}: word count in segment {:?}", g.text);
            for (gw, ww) in g.words.iter().zip(words) {
                assert_eq!(gw.word, ww["word"].as_str().unwrap(), "{label}");
                for (a, b) in [(gw.start, &ww["start"]), (gw.end, &ww["end"])] {
                    let e = (a.unwrap() - b.as_f64().unwrap()).abs();
                    worst = worst.max(e);
                    assert!(e <= WORD_TIME_TOLERANCE_S, "{label}: word {:?} time {a:?} vs {b}", gw.word);
                }
            }
        }
    }
    worst
}

fn check(model_name: &str, reference_name: &str, configs: &[&str], include_long: bool) {
    let Some(dir) = model_dir(model_name) else { return };
    let reference = reference(reference_name);
    let model = Whisper::load(&dir, Device::cpu()).unwrap();
    let mut worst_word = 0.0f64;
    for rec in reference["recordings"].as_array().unwrap() {
        let file = rec["file"].as_str().unwrap();
        if rec["resampled"].as_bool().unwrap_or(false) {
            continue; // another resampler made the reference's input
        }
        let audio = if file == "long_native16k" {
            if !include_long {
                continue;
            }
            long_file(&reference["long_file_recipe"])
        } else {
            load_audio(&speech(file)).unwrap()
        };
        for config in configs {
            let got = transcribe(&model, &audio, &options(config), &mut |_, _| {}).unwrap();
            worst_word =
                worst_word.max(compare(&format!("{model_name} {file} {config}"), &got, &rec["results"][config]));
        }
    }
    eprintln!("{model_name}: every configuration matched; worst word-time error {worst_word:.3} s");
}

#[test]
fn tiny_en_greedy_matches_openai_transcribe() {
    check("tiny.en", "tiny_en", &["greedy_timestamps", "greedy_no_timestamps"], true);
}

#[test]
fn tiny_en_beam_search_matches_openai_transcribe() {
    check("tiny.en", "tiny_en", &["beam5_timestamps"], true);
}

#[test]
fn tiny_en_word_timestamps_match_openai_transcribe() {
    check("tiny.en", "tiny_en", &["greedy_word_timestamps"], true);
}

#[test]
fn base_matches_openai_transcribe_on_the_clips() {
    check("base", "base", &["greedy_timestamps", "beam5_timestamps", "greedy_word_timestamps"], false);
}

/// Only the long file here (the clips are above); greedy with timestamps, the configuration the
/// long-form seek logic depends on most.
#[test]
fn base_matches_openai_transcribe_on_the_long_file() {
    let Some(dir) = model_dir("base") else { return };
    let reference = reference("base");
    let model = Whisper::load(&dir, Device::cpu()).unwrap();
    let rec = reference["recordings"].as_array().unwrap().iter().find(|r| r["file"] == "long_native16k").unwrap();
    let audio = long_file(&reference["long_file_recipe"]);
    for config in ["greedy_timestamps", "beam5_timestamps"] {
        let got = transcribe(&model, &audio, &options(config), &mut |_, _| {}).unwrap();
        compare(&format!("base long_native16k {config}"), &got, &rec["results"][config]);
    }
}
