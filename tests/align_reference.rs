//! Scribe's `whisperx-compat` alignment against WhisperX 3.8.6's own `align()`
//! (tests/reference/make_align_reference.py): the exact emission matrices WhisperX fed its
//! trellis are fed through `scribe::align::align` (an [`EmissionSource`] that returns them), with
//! the real punkt splitter, and every run's result (interpolate nearest / linear / ignore, with and
//! without char alignments) must equal WhisperX's: the same segments, sentences, words and
//! characters, times and scores equal as floats (not within a tolerance). Also checked: the tokens
//! and the wildcard column WhisperX built, the dictionary's blank, and that the default mode gives
//! every word of the same inputs a time.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use scribe::align::compat::with_wildcard_column;
use scribe::align::punkt::{punkt_language, Punkt};
use scribe::align::text::prepare_compat;
use scribe::align::{
    align, AlignConfig, Aligned, Dictionary, EmissionSource, Emissions, Interpolate, Mode, OwnedEmissions, SampleSpan,
};
use scribe::output::Segment;
use scribe::{Cancel, Result};
use serde_json::Value;

/// A number of the reference JSON, kept as its text so that it is read exactly (serde_json's
/// default float parsing may be off by an ulp; Rust's `str::parse` is correctly rounded).
const NUM: &str = "#num:";

fn dir() -> PathBuf {
    common::root().join("tests/reference/data/align")
}

/// The JSON text with every number outside a string turned into the string `"#num:<text>"`.
fn numbers_as_strings(json: &str) -> String {
    let mut out = String::with_capacity(json.len() * 2);
    let mut chars = json.chars().peekable();
    let (mut in_string, mut escaped) = (false, false);
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if c == '-' || c.is_ascii_digit() {
            out.push('"');
            out.push_str(NUM);
            out.push(c);
            while let Some(&d) = chars.peek() {
                if !(d.is_ascii_digit() || "+-.eE".contains(d)) {
                    break;
                }
                out.push(d);
                chars.next();
            }
            out.push('"');
        } else {
            out.push(c);
        }
    }
    out
}

fn num(v: &Value) -> f64 {
    let s = v.as_str().and_then(|s| s.strip_prefix(NUM)).unwrap_or_else(|| panic!("not a number: {v}"));
    s.parse().unwrap()
}

struct Reference {
    doc: Value,
    tensors: Vec<u8>,
}

/// The reference files, or None (a failure under CI) when they are missing.
fn reference() -> Option<Reference> {
    let (json, st) = (dir().join("align_reference.json"), dir().join("emissions.safetensors"));
    match (std::fs::read_to_string(&json), std::fs::read(&st)) {
        (Ok(text), Ok(tensors)) => {
            Some(Reference { doc: serde_json::from_str(&numbers_as_strings(&text)).unwrap(), tensors })
        }
        _ => {
            common::cannot_run(&format!(
                "{} or {} is missing (tests/reference/make_align_reference.py writes them)",
                json.display(),
                st.display()
            ));
            None
        }
    }
}

fn punkt(lang: &str) -> Option<Punkt> {
    let dir = common::model_dir("punkt")?;
    Some(Punkt::load(&dir.join(punkt_language(lang))).unwrap())
}

/// A stored tensor as f32 values and its shape.
fn tensor_f32(r: &Reference, key: &str) -> (Vec<f32>, Vec<usize>) {
    let st = safetensors::SafeTensors::deserialize(&r.tensors).unwrap();
    let t = st.tensor(key).unwrap_or_else(|e| panic!("{key}: {e}"));
    assert_eq!(t.dtype(), safetensors::Dtype::F32, "{key}");
    (t.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(), t.shape().to_vec())
}

fn dictionary(r: &Reference, model: &str) -> Dictionary {
    let map = r.doc["models"][model]["align_model_metadata"]["dictionary"].as_object().unwrap();
    Dictionary::from_vocab(map.iter().map(|(k, v)| (k.clone(), num(v) as usize)))
}

fn segments(case: &Value) -> Vec<Segment> {
    case["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| Segment {
            start: num(&s["start"]),
            end: num(&s["end"]),
            text: s["text"].as_str().unwrap().to_string(),
            avg_logprob: s.get("avg_logprob").map(num),
            ..Default::default()
        })
        .collect()
}

/// The emissions WhisperX computed, by the sample span it cut (the model's columns only: the
/// aligner appends its own wildcard column).
struct Stored {
    by_span: HashMap<SampleSpan, OwnedEmissions>,
    asked: Vec<SampleSpan>,
}

impl Stored {
    fn new(r: &Reference, name: &str, case: &Value) -> Stored {
        let mut by_span = HashMap::new();
        for t in case["trace"].as_array().unwrap() {
            if t["reached_trellis"] != Value::Bool(true) {
                continue;
            }
            let (data, shape) = tensor_f32(r, t["emission_key"].as_str().unwrap());
            let classes = num(&t["model_vocab_size"]) as usize;
            let frames = shape[0];
            let model: Vec<f32> = data.chunks_exact(shape[1]).flat_map(|row| row[..classes].iter().copied()).collect();
            let span = SampleSpan { start: num(&t["f1"]) as usize, end: num(&t["f2"]) as usize };
            assert!(by_span.insert(span, OwnedEmissions { data: model, frames, classes }).is_none(), "{name}");
        }
        Stored { by_span, asked: Vec::new() }
    }
}

impl EmissionSource for Stored {
    fn emissions(&mut self, spans: &[SampleSpan]) -> Result<Vec<OwnedEmissions>> {
        self.asked.extend_from_slice(spans);
        Ok(spans
            .iter()
            .map(|s| self.by_span.get(s).cloned().unwrap_or_else(|| panic!("no stored emissions for {s:?}")))
            .collect())
    }
}

fn run_config(r: &Reference, run: &str, case: &Value, mode: Mode) -> AlignConfig {
    let how = &r.doc["runs"][run];
    AlignConfig {
        mode,
        interpolate: how["interpolate_method"].as_str().unwrap().parse::<Interpolate>().unwrap(),
        return_char_alignments: how["return_char_alignments"].as_bool().unwrap(),
        language: case["language"].as_str().unwrap().to_string(),
        audio_seconds: num(&case["audio"]["num_samples"]) / 16000.0,
        speech: None,
    }
}

/// Differences between Scribe's value and WhisperX's, by path; floats must be equal.
/// WhisperX writes `"chars": null` for a segment it could not align without char alignments;
/// Scribe leaves the key out.
fn compare(path: &str, ours: &Value, theirs: &Value, diffs: &mut Vec<String>) {
    match (ours, theirs) {
        (Value::Object(a), Value::Object(b)) => {
            let keys_a: Vec<&String> = a.keys().collect();
            let keys_b: Vec<&String> =
                b.iter().filter(|(k, v)| !(k.as_str() == "chars" && v.is_null())).map(|(k, _)| k).collect();
            if keys_a != keys_b {
                diffs.push(format!("{path}: keys {keys_a:?} vs WhisperX {keys_b:?}"));
                return;
            }
            for k in keys_a {
                compare(&format!("{path}/{k}"), &a[k], &b[k], diffs);
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            if a.len() != b.len() {
                diffs.push(format!("{path}: {} items vs WhisperX {}", a.len(), b.len()));
            }
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                compare(&format!("{path}/{i}"), x, y, diffs);
            }
        }
        (Value::Number(n), Value::String(s)) if s.starts_with(NUM) => {
            let (x, y) = (n.as_f64().unwrap(), num(theirs));
            if x != y {
                diffs.push(format!("{path}: {x:?} vs WhisperX {y:?}"));
            }
        }
        _ if ours != theirs => diffs.push(format!("{path}: {ours} vs WhisperX {theirs}")),
        _ => {}
    }
}

fn to_value(a: &Aligned) -> Value {
    serde_json::json!({ "segments": a.segments, "word_segments": a.word_segments })
}

#[test]
fn compat_mode_gives_whisperx_align_results_exactly() {
    let Some(r) = reference() else { return };
    let cases = r.doc["cases"].as_object().unwrap();
    let runs: Vec<&String> = r.doc["runs"].as_object().unwrap().keys().collect();
    assert_eq!(runs.len(), 6);
    let mut diffs = Vec::new();
    let mut compared = 0;
    let mut splitters: BTreeMap<String, Punkt> = BTreeMap::new();
    for (name, case) in cases {
        let lang = case["language"].as_str().unwrap();
        if !splitters.contains_key(lang) {
            let Some(p) = punkt(lang) else { return };
            splitters.insert(lang.to_string(), p);
        }
        let dict = dictionary(&r, case["model"].as_str().unwrap());
        let segs = segments(case);
        for run in &runs {
            let cfg = run_config(&r, run, case, Mode::WhisperxCompat);
            let mut source = Stored::new(&r, name, case);
            let out = align(&segs, &dict, &mut source, &splitters[lang], &cfg, &Cancel::new(), &mut |_, _| {}).unwrap();
            // The same segments were cut as WhisperX cut them, each once.
            assert_eq!(source.asked.len(), source.by_span.len(), "{name} {run}: {:?}", source.asked);
            compare(&format!("{name} {run}"), &to_value(&out), &case["runs"][run.as_str()], &mut diffs);
            compared += 1;
        }
    }
    eprintln!("compared {compared} runs, {} differences", diffs.len());
    assert!(compared >= 6 * 20, "{compared} runs");
    assert!(diffs.is_empty(), "{} differences from WhisperX:\n{}", diffs.len(), diffs.join("\n"));
}

#[test]
fn tokens_blank_and_wildcard_column_are_whisperx_s() {
    let Some(r) = reference() else { return };
    let mut checked = 0;
    for (name, case) in r.doc["cases"].as_object().unwrap() {
        let dict = dictionary(&r, case["model"].as_str().unwrap());
        let lang = case["language"].as_str().unwrap();
        for (i, (t, seg)) in case["trace"].as_array().unwrap().iter().zip(segments(case)).enumerate() {
            let text = prepare_compat(&seg.text, &dict, lang);
            if t["reached_trellis"] != Value::Bool(true) {
                // Not aligned for want of characters, or starting past the audio.
                assert!(
                    text.tokens.is_empty() || seg.start >= num(&case["audio"]["num_samples"]) / 16000.0,
                    "{name} {i}"
                );
                continue;
            }
            assert_eq!(dict.blank(), num(&t["blank_id"]) as usize, "{name} {i}");
            let classes = num(&t["model_vocab_size"]) as usize;
            let want: Vec<usize> = t["tokens"].as_array().unwrap().iter().map(|v| num(v) as usize).collect();
            assert_eq!(text.token_ids(classes), want, "{name} {i}: tokens");
            assert_eq!(text.has_wildcard(), t["has_wildcard"] == Value::Bool(true), "{name} {i}");
            let (data, shape) = tensor_f32(&r, t["emission_key"].as_str().unwrap());
            if text.has_wildcard() {
                let model: Vec<f32> =
                    data.chunks_exact(shape[1]).flat_map(|row| row[..classes].iter().copied()).collect();
                let em = Emissions::new(&model, shape[0], classes).unwrap();
                let ours = with_wildcard_column(&em, dict.blank());
                assert!(ours.iter().zip(&data).all(|(a, b)| a.to_bits() == b.to_bits()), "{name} {i}: wildcard column");
            }
            checked += 1;
        }
    }
    assert!(checked >= 20, "{checked} segments");
}

#[test]
fn default_mode_times_every_word_of_the_reference_inputs() {
    let Some(r) = reference() else { return };
    for (name, case) in r.doc["cases"].as_object().unwrap() {
        let lang = case["language"].as_str().unwrap();
        let Some(splitter) = punkt(lang) else { return };
        let dict = dictionary(&r, case["model"].as_str().unwrap());
        let segs = segments(case);
        let cfg = run_config(&r, "nearest/no_chars", case, Mode::CtcViterbi);
        let mut source = Stored::new(&r, name, case);
        let out = align(&segs, &dict, &mut source, &splitter, &cfg, &Cancel::new(), &mut |_, _| {}).unwrap();
        for seg in &out.segments {
            let mut last_start = f64::NEG_INFINITY;
            for w in &seg.words {
                let (Some(s), Some(e), Some(_)) = (w.start, w.end, w.score) else {
                    panic!("{name}: {w:?} lacks a time or score");
                };
                assert!(s <= e && s >= last_start, "{name}: {w:?} after {last_start}");
                last_start = s;
            }
        }
        // No word is lost: every space-separated piece of text with a non-space character.
        let words: usize =
            segs.iter().map(|s| s.text.split(' ').filter(|w| w.chars().any(|c| !c.is_whitespace())).count()).sum();
        assert_eq!(out.word_segments.len(), words, "{name}");
    }
}
