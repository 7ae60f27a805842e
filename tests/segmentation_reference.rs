//! pyannote's segmentation-3.0 in Rust against pyannote.audio's own code on the real checkpoint
//! (tests/reference/make_segmentation_reference.py: pyannote.audio 4.0.7, torch 2.8, CPU float32):
//! the raw forward of a batch of 10 s windows (log-softmax over the 7 powerset classes, within
//! 1e-4) and the hard powerset → speakers conversion of it.

mod common;

use common::{model_dir, root, speech};
use scribe::audio::decode::load_audio;
use scribe::backend::{Device, Tensor};
use scribe::models::pyannote::{checkpoint, PyanNet};
use scribe::weights::safetensors_store::SafetensorsStore;
use scribe::weights::WeightStore;
use serde_json::Value;

/// Per-frame log-probabilities: the bound.
const LOG_PROB_TOLERANCE: f32 = 1e-4;

/// Log-probabilities with the LSTMs' products in bf16 (measured 2026-12-05: at most 3.8e-2).
const BF16_LOG_PROB_TOLERANCE: f32 = 0.06;
/// The share of a recording's speaker flags its bf16 segmentation may flip at near ties
/// (measured: 8 of 37,107 on two_speakers, 2 of 7,068 and 0 of 1,767 on the others).
const BF16_MAX_FLIP_SHARE: f64 = 5e-4;

fn data() -> std::path::PathBuf {
    root().join("tests/reference/data/segmentation")
}

fn manifest() -> Value {
    serde_json::from_str(&std::fs::read_to_string(data().join("manifest.json")).unwrap()).unwrap()
}

fn reference() -> SafetensorsStore {
    SafetensorsStore::open(&data().join("reference.safetensors")).unwrap()
}

fn tensor(store: &SafetensorsStore, name: &str) -> (Vec<f32>, Vec<usize>) {
    let view = store.view(name).unwrap_or_else(|| panic!("reference has no {name}"));
    let shape = view.shape.to_vec();
    if view.dtype == scribe::weights::DType::U8 {
        return (view.bytes.iter().map(|&b| b as f32).collect(), shape);
    }
    (store.f32(name, &shape).unwrap(), shape)
}

pub fn model(dev: &Device) -> Option<PyanNet> {
    let dir = model_dir("segmentation-3.0")?;
    let (store, config) = checkpoint::open(&dir).unwrap();
    Some(PyanNet::load(dev, store.as_ref(), &config).unwrap())
}

#[test]
fn segmentation_3_0_reads_its_powerset_head_from_the_checkpoint() {
    let dev = Device::cpu();
    let Some(model) = model(&dev) else { return };
    assert_eq!(model.config.classes.len(), 3);
    assert_eq!(model.config.powerset_max_classes, Some(2));
    assert_eq!(model.config.outputs(), 7);
    assert_eq!(model.config.lstm_layers, 4);
    assert_eq!(model.config.duration, 10.0);
    assert_eq!(model.num_frames(model.config.window_samples()), 589);
}

/// `model.forward` of the reference's batch of windows (`forward` in the manifest).
fn forward_of_reference_windows(dev: &Device, model: &PyanNet) -> Tensor {
    let m = manifest();
    let f = &m["forward"];
    let audio = load_audio(&speech(f["recording"].as_str().unwrap())).unwrap();
    let window = f["samples"].as_u64().unwrap() as usize;
    let starts: Vec<usize> =
        f["start_samples"].as_array().unwrap().iter().map(|s| s.as_u64().unwrap() as usize).collect();
    let batch: Vec<f32> = starts.iter().flat_map(|&s| audio[s..s + window].iter().copied()).collect();
    model.forward(dev, &dev.upload(&batch, &[starts.len(), 1, window]).unwrap()).unwrap()
}

#[test]
fn forward_matches_pyannote_on_a_batch_of_windows_and_so_do_the_speakers() {
    let dev = Device::cpu();
    let Some(model) = model(&dev) else { return };
    let out = forward_of_reference_windows(&dev, &model);
    let r = reference();
    let (want, shape) = tensor(&r, "forward.log_probs");
    assert_eq!(out.shape(), &shape[..]);
    let got = dev.download(&out).unwrap();
    let (diff, at) = got
        .iter()
        .zip(&want)
        .enumerate()
        .map(|(i, (a, b))| ((a - b).abs(), i))
        .fold((0.0f32, 0), |m, d| if d.0 > m.0 { d } else { m });
    eprintln!("forward: {} log-probs, max |Δ| {diff:.2e} at {at} (reference {})", got.len(), want[at]);
    assert!(diff < LOG_PROB_TOLERANCE, "forward differs by {diff} at flat index {at}");

    // Hard speakers: identical, except where the two best powerset classes are closer than the
    // tolerance (a tie the float error may break either way).
    let powerset = model.config.powerset().unwrap().expect("a powerset model");
    let speakers = powerset.to_multilabel_hard(&got).unwrap();
    let (want_speakers, _) = tensor(&r, "forward.multilabel");
    let k = powerset.len();
    let mut differing = 0;
    for (frame, row) in want.chunks_exact(k).enumerate() {
        let (ours, theirs) = (&speakers[frame * 3..frame * 3 + 3], &want_speakers[frame * 3..frame * 3 + 3]);
        if ours != theirs {
            let mut sorted = row.to_vec();
            sorted.sort_by(|a, b| b.total_cmp(a));
            assert!(sorted[0] - sorted[1] < 2.0 * LOG_PROB_TOLERANCE, "frame {frame}: {ours:?} vs {theirs:?}");
            differing += 1;
        }
    }
    eprintln!("speakers: {} frames, {differing} differ at near ties", want.len() / k);
    assert_eq!(differing, 0, "no near tie is expected on these windows");
}

/// The default `segmentation_compute_type` on a CPU with AVX-512 BF16 (both products of every
/// LSTM step in bf16): the log-probabilities move by at most [`BF16_LOG_PROB_TOLERANCE`], and a
/// recording's local speaker flags differ from pyannote's only on frames whose two best classes
/// that close (twice the bound: both may move), on at most [`BF16_MAX_FLIP_SHARE`] of them.
#[test]
fn bfloat16_lstms_keep_the_local_speakers_of_pyannote() {
    use scribe::models::pyannote::local_speakers::{local_speakers, SEGMENTATION_BATCH_SIZE};
    let dev = Device::cpu();
    let Some(mut model) = model(&dev) else { return };
    if !common::bf16_products() {
        eprintln!("no bf16 products on this CPU: the default is float32, checked by the other tests");
        return;
    }
    model.apply_compute_type(&dev, "default").unwrap();
    assert_eq!(model.compute_type(&dev), "bfloat16");
    let (m, r) = (manifest(), reference());
    let got = dev.download(&forward_of_reference_windows(&dev, &model)).unwrap();
    let (want, _) = tensor(&r, "forward.log_probs");
    let diff = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    eprintln!("forward, bf16 LSTMs: max |Δ| {diff:.2e}");
    assert!(diff < BF16_LOG_PROB_TOLERANCE, "forward differs by {diff}");
    for (name, entry) in m["recordings"].as_object().unwrap() {
        let local = local_speakers(&model, &dev, &mut recording(entry).as_slice(), SEGMENTATION_BATCH_SIZE).unwrap();
        let (want, _) = tensor(&r, &format!("{name}.binarized"));
        let (margin, _) = tensor(&r, &format!("{name}.margin"));
        let mut differing = 0;
        for (i, (a, b)) in local.binarized.iter().zip(&want).enumerate() {
            if *a as f32 != *b {
                let frame = i / local.speakers;
                let near_tie = margin[frame] < 2.0 * BF16_LOG_PROB_TOLERANCE;
                assert!(near_tie, "{name}: frame {frame} flips at margin {}", margin[frame]);
                differing += 1;
            }
        }
        eprintln!("{name}: bf16 LSTMs, {differing} of {} speaker flags differ", want.len());
        assert!(differing as f64 <= BF16_MAX_FLIP_SHARE * want.len() as f64, "{name}: {differing} flips");
    }
}

#[test]
fn segmentation_3_0_is_refused_as_whisperx_vad() {
    let Some(dir) = model_dir("segmentation-3.0") else { return };
    let e = scribe::pipeline::Models::load_vad(&Device::cpu(), &root().join("models"), Some(&dir), "default")
        .err()
        .expect("a powerset model is no VAD")
        .to_string();
    assert!(e.contains("powerset") && e.contains("segmentation-3.0"), "{e}");
}

/// A reference recording: its files joined end to end.
fn recording(entry: &Value) -> Vec<f32> {
    entry["files"].as_array().unwrap().iter().flat_map(|f| load_audio(&speech(f.as_str().unwrap())).unwrap()).collect()
}

#[test]
fn local_speakers_and_speaker_count_match_pyannote_on_every_recording() {
    use scribe::models::pyannote::local_speakers::{local_speakers, SEGMENTATION_BATCH_SIZE};
    let dev = Device::cpu();
    let Some(model) = model(&dev) else { return };
    let (m, r) = (manifest(), reference());
    for (name, entry) in m["recordings"].as_object().unwrap() {
        let audio = recording(entry);
        assert_eq!(audio.len() as u64, entry["samples"].as_u64().unwrap(), "{name}");
        // A batch size that splits the windows unevenly: the result must not depend on it.
        for batch in [SEGMENTATION_BATCH_SIZE, 3] {
            let local = local_speakers(&model, &dev, &mut audio.as_slice(), batch).unwrap();
            let (want, shape) = tensor(&r, &format!("{name}.binarized"));
            assert_eq!(
                [local.chunks, local.frames_per_chunk, local.speakers],
                [shape[0], shape[1], shape[2]],
                "{name}"
            );
            let chunks = &entry["chunks"];
            assert_eq!(local.chunk_step, chunks["step"].as_f64().unwrap());
            assert_eq!(local.chunk_duration, chunks["duration"].as_f64().unwrap());
            // Flags may differ only on frames whose two best classes are near a tie.
            let (margin, _) = tensor(&r, &format!("{name}.margin"));
            let mut differing = 0;
            for (i, (a, b)) in local.binarized.iter().zip(&want).enumerate() {
                if *a as f32 != *b {
                    let frame = i / local.speakers;
                    assert!(
                        margin[frame] < 2.0 * LOG_PROB_TOLERANCE,
                        "{name}: frame {frame} flips at margin {}",
                        margin[frame]
                    );
                    differing += 1;
                }
            }
            let (count_want, _) = tensor(&r, &format!("{name}.count"));
            let count = local.speaker_count();
            let count_differing = count.iter().zip(&count_want).filter(|(a, b)| **a as f32 != **b).count();
            eprintln!(
                "{name} (batch {batch}): {} chunks, {differing} of {} speaker flags differ; count: {} frames, {count_differing} differ",
                local.chunks,
                want.len(),
                count.len()
            );
            assert!(differing <= 2, "{name}: {differing} near-tie flips");
            assert_eq!(count.len(), count_want.len(), "{name}");
            assert_eq!(count_differing, 0, "{name}");
        }
    }
}
