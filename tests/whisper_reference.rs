//! Whisper against the committed PyTorch references (tests/reference/README.md): log-mel,
//! encoder output, decoder logits and greedy tokens, for tiny.en and base, on the shared
//! recordings. The references were checked against CTranslate2 on the original model.bin
//! when they were made, so a converter bug on either side cannot hide.

mod common;

use std::path::Path;

use sha2::{Digest, Sha256};

use common::{model_dir, root, speech};
use scribe::audio::{load_audio, log_mel_window};
use scribe::backend::Device;
use scribe::models::whisper::decoder::LogitPositions;
use scribe::models::whisper::{Task, Whisper};
use scribe::weights::safetensors_store::SafetensorsStore;
use scribe::weights::{DType, WeightStore};

/// Log-mel: max abs error against openai's torch computation.
const MEL_ATOL: f32 = 1e-4;
/// Logits: |a − r| ≤ ATOL + RTOL·|r| (f32 against f32 with other summation orders).
const ATOL: f32 = 1e-3;
const RTOL: f32 = 1e-3;
/// Encoder output: on the 30 s two-speaker recording the f32 reference itself is 3.7e-3
/// (transformers) and 2.4e-3 (CTranslate2) away from an f64 evaluation of the same weights
/// (tests/reference/README.md), so agreement tighter than that is not meaningful there.
const ENCODER_ATOL: f32 = 5e-3;

fn sha256_file(p: &Path) -> String {
    let mut h = Sha256::new();
    let mut f = std::fs::File::open(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    std::io::copy(&mut f, &mut h).unwrap();
    format!("{:x}", h.finalize())
}

fn ints(store: &SafetensorsStore, name: &str) -> Vec<usize> {
    let v = store.view(name).unwrap_or_else(|| panic!("reference tensor {name} missing"));
    assert_eq!(v.dtype, DType::I64, "{name}");
    v.bytes.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap()) as usize).collect()
}

fn floats(store: &SafetensorsStore, name: &str) -> (Vec<f32>, Vec<usize>) {
    let v = store.view(name).unwrap_or_else(|| panic!("reference tensor {name} missing"));
    (v.to_f32().unwrap(), v.shape.clone())
}

/// Largest violation ratio |a − r| / (ATOL + RTOL·|r|) (≤ 1 passes) and the max abs error.
fn closeness(got: impl Iterator<Item = (f32, f32)>) -> (f32, f32) {
    closeness_with(ATOL, got)
}

fn closeness_with(atol: f32, got: impl Iterator<Item = (f32, f32)>) -> (f32, f32) {
    got.fold((0.0f32, 0.0f32), |(ratio, abs), (a, r)| {
        let e = (a - r).abs();
        (ratio.max(e / (atol + RTOL * r.abs())), abs.max(e))
    })
}

fn check_model(model_name: &str, reference: &str) {
    let Some(dir) = model_dir(model_name) else { return };
    let data = root().join("tests/reference/data");
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data.join(format!("{reference}.json"))).unwrap()).unwrap();
    let store = SafetensorsStore::open(&data.join(format!("{reference}.safetensors"))).unwrap();
    assert_eq!(
        sha256_file(&dir.join("model.bin")),
        meta["model_bin_sha256"].as_str().unwrap(),
        "models/{model_name}/model.bin is not the file the references were made from; re-run models/fetch {model_name}"
    );
    let model = Whisper::load(&dir, Device::cpu()).unwrap();
    let dev = &model.device;
    let vocab_ids = ints(&store, "logit_vocab_ids");
    let (mut worst_mel, mut worst_enc, mut worst_logit) = (0.0f32, (0.0f32, 0.0f32), (0.0f32, 0.0f32));
    for rec in meta["recordings"].as_array().unwrap() {
        let file = rec["file"].as_str().unwrap();
        let path = speech(file);
        assert_eq!(sha256_file(&path), rec["sha256"].as_str().unwrap(), "{file} differs from the reference's input");
        let audio = load_audio(&path).unwrap();
        let mel = log_mel_window(&audio[..audio.len().min(480_000)], model.config.num_mel_bins).unwrap();
        let features = model.encode(&mel.data, 1).unwrap();

        let want: Vec<u32> = rec["tokens"].as_array().unwrap().iter().map(|t| t.as_u64().unwrap() as u32).collect();
        let got = model.greedy(&features, Some("en"), Task::Transcribe).unwrap();
        assert_eq!(
            got,
            want,
            "{model_name} {file}: greedy tokens differ ({:?} vs {:?})",
            model.tokenizer.decode(&got).unwrap(),
            rec["text"]
        );

        if rec["resampled"].as_bool().unwrap() {
            continue; // the reference resampled with another filter: only tokens are comparable
        }
        let stem = rec["stem"].as_str().unwrap();
        // Log-mel at the stored frames.
        let frames = ints(&store, &format!("{stem}/mel_frames"));
        let (ref_mel, _) = floats(&store, &format!("{stem}/mel"));
        let n_frames = mel.n_frames;
        let e = (0..model.config.num_mel_bins)
            .flat_map(|m| frames.iter().enumerate().map(move |(j, &f)| (m, j, f)))
            .map(|(m, j, f)| (mel.data[m * n_frames + f] - ref_mel[m * frames.len() + j]).abs())
            .fold(0.0f32, f32::max);
        assert!(e <= MEL_ATOL, "{model_name} {file}: log-mel max abs error {e}");
        worst_mel = worst_mel.max(e);

        // Encoder rows.
        let rows = ints(&store, &format!("{stem}/encoder_frames"));
        let (ref_enc, _) = floats(&store, &format!("{stem}/encoder"));
        let enc = dev.download(&features).unwrap();
        let d = model.config.d_model;
        let c = closeness_with(
            ENCODER_ATOL,
            rows.iter()
                .enumerate()
                .flat_map(|(j, &r)| (0..d).map(move |k| (j, r, k)))
                .map(|(j, r, k)| (enc[r * d + k], ref_enc[j * d + k])),
        );
        assert!(c.0 <= 1.0, "{model_name} {file}: encoder max abs error {} ({}x the tolerance)", c.1, c.0);
        worst_enc = (worst_enc.0.max(c.0), worst_enc.1.max(c.1));

        // Decoder logits over the prefix, all positions at once.
        let prefix: Vec<u32> = ints(&store, &format!("{stem}/prefix")).iter().map(|&t| t as u32).collect();
        let mut state = model.decoder.start(dev, &features, 1).unwrap();
        let logits = dev
            .download(
                &model.decoder.forward(dev, std::slice::from_ref(&prefix), &mut state, LogitPositions::All).unwrap(),
            )
            .unwrap();
        let v = model.config.vocab_size;
        let positions = ints(&store, &format!("{stem}/logits_positions"));
        let (ref_logits, _) = floats(&store, &format!("{stem}/logits"));
        let c = closeness(
            positions
                .iter()
                .enumerate()
                .flat_map(|(pi, &p)| vocab_ids.iter().enumerate().map(move |(vi, &t)| (pi, p, vi, t)))
                .map(|(pi, p, vi, t)| (logits[p * v + t], ref_logits[pi * vocab_ids.len() + vi])),
        );
        assert!(c.0 <= 1.0, "{model_name} {file}: logits max abs error {} ({}x the tolerance)", c.1, c.0);
        worst_logit = (worst_logit.0.max(c.0), worst_logit.1.max(c.1));
        if let Some(full) = store.view(&format!("{stem}/logits_last_full")) {
            let full = full.to_f32().unwrap();
            let last = prefix.len() - 1;
            let c = closeness(full.iter().enumerate().map(|(t, &r)| (logits[last * v + t], r)));
            assert!(c.0 <= 1.0, "{model_name} {file}: full last-position logits max abs error {}", c.1);
        }
    }
    eprintln!(
        "{model_name}: log-mel max abs {worst_mel:.2e}; encoder max abs {:.2e} ({:.2} of tolerance); logits max abs {:.2e} ({:.2} of tolerance)",
        worst_enc.1, worst_enc.0, worst_logit.1, worst_logit.0
    );
}

#[test]
fn tiny_en_matches_the_pytorch_reference() {
    check_model("tiny.en", "whisper_tiny_en");
}

#[test]
fn base_matches_the_pytorch_reference() {
    check_model("base", "whisper_base");
}
