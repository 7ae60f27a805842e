//! WhisperX's VAD in Rust against WhisperX's own code (tests/reference/make_vad_reference.py:
//! whisperx 3.8.6, pyannote.audio 4.0.7, torch 2.8, CPU float32) on the shared recordings:
//! PyanNet's raw forward for a batch of windows, the per-frame speech scores of whole recordings
//! (within 2e-4), and the speech chunks `merge_chunks` makes of them (within a frame).

mod common;

use common::{model_dir, root, speech};
use scribe::audio::decode::load_audio;
use scribe::backend::Device;
use scribe::models::pyannote::sincnet::WindowSpan;
use scribe::models::pyannote::sliding_window::{speech_scores, SpeechScorer, BATCH_SIZE, STEP_RATIO};
use scribe::models::pyannote::{checkpoint, PyanNet};
use scribe::pipeline::speech_chunks::{binarize, speech_chunks, VAD_OFFSET, VAD_ONSET};
use scribe::pipeline::vad_refine::{self, Thresholds};
use serde_json::Value;

/// Per-frame scores of whole recordings. The VAD issue's bound was 1e-4, met while SincNet
/// filtered each window alone in f32 in the reference's order (4.1e-5 on two_speakers.wav). With
/// one filter bank pass shared by overlapping windows (`SincNet::forward_windows`) the same frame
/// differs by 1.07e-4; a filter bank computed exactly (f64, tried while making that change)
/// differs there by 1.02e-4: that frame's score is as sensitive as the reference's own f32
/// rounding, which is what the bound then measured. The raw forward keeps 1e-4.
const SCORE_TOLERANCE: f32 = 2e-4;
/// Per-frame scores with the LSTMs' products in bf16 (measured 2026-12-05: at most 1.8e-2, on
/// two_speakers.wav; 0.9e-3 to 4.9e-3 on the others).
const BF16_SCORE_TOLERANCE: f32 = 0.03;
/// Coarse-to-fine frames with all their windows against the full VAD's (measured 2026-12-06:
/// at most 5.0e-5 in f32 and 9.1e-4 with bf16 LSTMs, on two_speakers.wav).
const EXACT_FRAME_TOLERANCE: f32 = 2e-4;
const BF16_EXACT_FRAME_TOLERANCE: f32 = 3e-3;
/// A batch of windows through `PyanNet::forward`, each window filtered alone.
const FORWARD_TOLERANCE: f32 = 1e-4;

fn reference() -> Value {
    let path = root().join("tests/reference/data/vad_reference.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

fn model(dev: &Device) -> Option<PyanNet> {
    let dir = model_dir("vad")?;
    let (store, config) = checkpoint::open(&dir).unwrap();
    Some(PyanNet::load(dev, store.as_ref(), &config).unwrap())
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> (f32, usize) {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .enumerate()
        .map(|(i, (x, y))| ((x - y).abs(), i))
        .fold((0.0, 0), |m, d| if d.0 > m.0 { d } else { m })
}

/// The recording a reference entry describes (the concatenation is rebuilt the same way).
fn audio_of(entry: &Value) -> Vec<f32> {
    if entry["name"] == "concat" {
        let gap = vec![0.0f32; (entry["gap_seconds"].as_f64().unwrap() * 16000.0) as usize];
        let mut out = Vec::new();
        for (i, part) in entry["parts"].as_array().unwrap().iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(&gap);
            }
            out.extend(load_audio(&speech(part.as_str().unwrap())).unwrap());
        }
        out
    } else {
        load_audio(&speech(entry["name"].as_str().unwrap())).unwrap()
    }
}

#[test]
fn pyannet_forward_matches_pytorch_on_a_batch_of_windows() {
    let dev = Device::cpu();
    let Some(model) = model(&dev) else { return };
    let r = reference();
    let f = &r["forward"];
    let audio = load_audio(&speech(f["recording"].as_str().unwrap())).unwrap();
    let starts: Vec<usize> =
        f["window_starts"].as_array().unwrap().iter().map(|s| s.as_u64().unwrap() as usize).collect();
    let window = model.config.window_samples();
    let batch: Vec<f32> = starts.iter().flat_map(|&s| audio[s..s + window].iter().copied()).collect();
    let x = dev.upload(&batch, &[starts.len(), 1, window]).unwrap();
    let out = model.forward(&dev, &x).unwrap();
    let shape: Vec<usize> = f["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
    assert_eq!(out.shape(), &shape[..]);
    assert_eq!(shape[1], model.num_frames(window));
    let (diff, at) = max_abs_diff(&dev.download(&out).unwrap(), &floats(&f["scores"]));
    eprintln!("forward: max |Δ| {diff:.2e} at {at}");
    assert!(diff < FORWARD_TOLERANCE, "forward differs by {diff} at flat index {at}");
}

/// `PyanNet::forward_windows` against `forward` of the same windows stacked: with the shared
/// filter bank (a hop of whole filter strides) within the forward's bound, and window by window
/// (a hop that is not, or one window) the same values; the stretch ends inside its last window,
/// which is zero-padded.
#[test]
fn forward_windows_matches_forward_of_the_stacked_windows() {
    let dev = Device::cpu();
    let Some(model) = model(&dev) else { return };
    let audio = load_audio(&speech("two_speakers.wav")).unwrap();
    let window = model.config.window_samples();
    for (count, hop, shared) in [(6, 8_000, true), (3, 8_005, false), (1, 8_000, false)] {
        let stretch = &audio[16_000..16_000 + (count - 1) * hop + window - 12_345];
        let mut batch = vec![0.0f32; count * window];
        for (w, out) in batch.chunks_exact_mut(window).enumerate() {
            let part = &stretch[(w * hop).min(stretch.len())..(w * hop + window).min(stretch.len())];
            out[..part.len()].copy_from_slice(part);
        }
        let want =
            dev.download(&model.forward(&dev, &dev.upload(&batch, &[count, 1, window]).unwrap()).unwrap()).unwrap();
        let got = dev.download(&model.forward_windows(&dev, stretch, count, hop).unwrap()).unwrap();
        let (diff, at) = max_abs_diff(&got, &want);
        eprintln!("{count} windows every {hop}: max |Δ| {diff:.2e} at {at}");
        if shared {
            assert!(diff < FORWARD_TOLERANCE, "{count} windows every {hop}: differs by {diff} at {at}");
            assert!(diff > 0.0, "{count} windows every {hop}: the shared filter bank did not run");
        } else {
            assert_eq!(got, want, "{count} windows every {hop}");
        }
    }
}

/// `PyanNet::forward_window_spans`: the wanted windows of several spans in one batch give
/// each span's `forward_windows` rows, in order: a span of which every window is wanted, one
/// with windows skipped inside it, a lone window, and a span that ends past its stretch
/// (zero-padded).
#[test]
fn forward_window_spans_match_forward_windows_span_by_span() {
    let dev = Device::cpu();
    let Some(model) = model(&dev) else { return };
    let audio = load_audio(&speech("two_speakers.wav")).unwrap();
    let (window, hop) = (model.config.window_samples(), 8_000);
    let spans = vec![
        WindowSpan { stretch: &audio[0..3 * hop + window], count: 4, keep: vec![0, 1, 2, 3] },
        WindowSpan { stretch: &audio[40_000..40_000 + 6 * hop + window], count: 7, keep: vec![0, 2, 3, 6] },
        WindowSpan { stretch: &audio[100_000..100_000 + window], count: 1, keep: vec![0] },
        WindowSpan { stretch: &audio[200_000..200_000 + hop + window - 5_000], count: 2, keep: vec![0, 1] },
    ];
    let got = dev.download(&model.forward_window_spans(&dev, &spans, hop).unwrap()).unwrap();
    let mut want = Vec::new();
    for span in &spans {
        let all = dev.download(&model.forward_windows(&dev, span.stretch, span.count, hop).unwrap()).unwrap();
        let per_window = all.len() / span.count;
        for &k in &span.keep {
            want.extend_from_slice(&all[k * per_window..(k + 1) * per_window]);
        }
    }
    assert_eq!(got.len(), want.len());
    let (diff, at) = max_abs_diff(&got, &want);
    eprintln!("spans of 4, 4 of 7, 1 and 2 windows: max |Δ| {diff:.2e} at {at}");
    assert!(diff < FORWARD_TOLERANCE, "spans differ by {diff} at {at}");
}

/// The coarse-to-fine VAD (`pipeline::vad_refine`, the default) finds the full VAD's regions,
/// for every chunk size the reference has, on every recording, in f32 and with bf16 LSTMs; its
/// exact frames carry the full VAD's scores up to rounding.
#[test]
fn coarse_to_fine_finds_the_full_vads_regions_on_every_recording() {
    let dev = Device::cpu();
    let Some(mut model) = model(&dev) else { return };
    let r = reference();
    for compute_type in ["float32", "default"] {
        model.apply_compute_type(&dev, compute_type).unwrap();
        for entry in r["recordings"].as_array().unwrap() {
            let name = entry["name"].as_str().unwrap();
            let samples = audio_of(entry);
            let full = speech_scores(&model, &dev, &samples, BATCH_SIZE, |_, _| {}).unwrap();
            let times = full.times();
            let audio = scribe::audio::Audio::from_samples(name, samples);
            for size in entry["chunks"].as_object().unwrap().keys() {
                let size: f64 = size.parse().unwrap();
                let thresholds = Thresholds { onset: VAD_ONSET, offset: VAD_OFFSET, max_duration: size };
                let cancel = scribe::Cancel::default();
                // The pipeline's batch on this backend (8 windows on the CPU), against the full
                // VAD's pyannote batch of 32.
                let refined = vad_refine::speech_regions(
                    &model,
                    &dev,
                    &audio,
                    None,
                    dev.sequences_per_pass(BATCH_SIZE),
                    &thresholds,
                    &cancel,
                    &mut |_| {},
                )
                .unwrap();
                let want = binarize(&full.scores, &times, VAD_ONSET, VAD_OFFSET, size);
                assert_eq!(refined.regions, want, "{name} ({compute_type}), chunk_size {size}");
                assert_eq!(refined.scores.len(), full.scores.len(), "{name}: frames");
                let exact: Vec<usize> = (0..full.scores.len()).filter(|&i| refined.exact[i]).collect();
                let worst = exact.iter().map(|&i| (refined.scores[i] - full.scores[i]).abs()).fold(0.0f32, f32::max);
                eprintln!(
                    "{name} ({compute_type}), chunk_size {size}: {} windows in {} rounds, {} of {} frames exact \
                     (max |Δ| {worst:.1e})",
                    refined.windows_scored,
                    refined.rounds,
                    exact.len(),
                    full.scores.len()
                );
                // A window's filter bank runs over another stretch here than in the full VAD's
                // batches (other sum orders): f32 rounding, which bf16 LSTMs amplify.
                let bound = if compute_type == "float32" { EXACT_FRAME_TOLERANCE } else { BF16_EXACT_FRAME_TOLERANCE };
                assert!(worst < bound, "{name} ({compute_type}): an exact frame differs by {worst}");
            }
        }
    }
    // Another window step (`--vad_step 1`): the first pass every second window (2 s apart),
    // still the regions of every window at that step; a step beyond the window is refused.
    let cancel = scribe::Cancel::default();
    let thresholds = Thresholds { onset: VAD_ONSET, offset: VAD_OFFSET, max_duration: 30.0 };
    for entry in r["recordings"].as_array().unwrap() {
        let name = entry["name"].as_str().unwrap();
        let samples = audio_of(entry);
        let full = scribe::models::pyannote::sliding_window::speech_scores_every(
            &model,
            &dev,
            &samples,
            BATCH_SIZE,
            Some(1.0),
            |_, _| {},
        )
        .unwrap();
        let want = binarize(&full.scores, &full.times(), VAD_ONSET, VAD_OFFSET, 30.0);
        let audio = scribe::audio::Audio::from_samples(name, samples);
        let refined =
            vad_refine::speech_regions(&model, &dev, &audio, Some(1.0), BATCH_SIZE, &thresholds, &cancel, &mut |_| {})
                .unwrap();
        assert_eq!(refined.regions, want, "{name}, step 1 s");
        for step in [0.0, 5.5] {
            let e = vad_refine::speech_regions(&model, &dev, &audio, Some(step), 4, &thresholds, &cancel, &mut |_| {});
            assert!(e.is_err(), "step {step}");
        }
    }
}

#[test]
fn speech_scores_and_chunks_match_whisperx_on_every_recording() {
    let dev = Device::cpu();
    let Some(model) = model(&dev) else { return };
    let r = reference();
    for entry in r["recordings"].as_array().unwrap() {
        let name = entry["name"].as_str().unwrap();
        let audio = audio_of(entry);
        assert_eq!(audio.len() as u64, entry["samples"].as_u64().unwrap(), "{name}: samples");
        let mut calls = Vec::new();
        let scores = speech_scores(&model, &dev, &audio, BATCH_SIZE, |done, total| calls.push((done, total))).unwrap();
        let frames = floats(&entry["frames"]);
        assert!((scores.frames.start as f32 - frames[0]).abs() < 1e-9, "{name}: frame start");
        assert!((scores.frames.duration as f32 - frames[1]).abs() < 1e-9, "{name}: frame duration");
        assert!((scores.frames.step as f32 - frames[2]).abs() < 1e-9, "{name}: frame step");
        let want = floats(&entry["scores"]);
        assert_eq!(scores.scores.len(), want.len(), "{name}: frames");
        let (diff, at) = max_abs_diff(&scores.scores, &want);
        eprintln!("{name}: {} frames, max |Δ| {diff:.2e} at frame {at}", want.len());
        assert!(diff < SCORE_TOLERANCE, "{name}: score of frame {at} differs by {diff}");
        assert_eq!(calls.last().map(|c| c.0 == c.1), Some(true), "{name}: progress reaches the total");

        let times = scores.times();
        for (size, want) in entry["chunks"].as_object().unwrap() {
            let size: f64 = size.parse().unwrap();
            let got = speech_chunks(&scores.scores, &times, VAD_ONSET, VAD_OFFSET, size);
            let want: Vec<(f64, f64)> =
                want.as_array().unwrap().iter().map(|c| (c[0].as_f64().unwrap(), c[1].as_f64().unwrap())).collect();
            assert_eq!(got.len(), want.len(), "{name}, chunk_size {size}: {got:?} vs {want:?}");
            for (g, w) in got.iter().zip(&want) {
                // A score within 1e-4 of a threshold may cross it a frame earlier or later.
                let tol = scores.frames.step + 1e-6;
                assert!(
                    (g.start - w.0).abs() <= tol && (g.end - w.1).abs() <= tol,
                    "{name}, chunk_size {size}: {g:?} vs {w:?}"
                );
            }
        }
    }
}

/// The default `segmentation_compute_type` on a CPU with AVX-512 BF16: both products of every
/// LSTM step in bf16. The scores move by at most [`BF16_SCORE_TOLERANCE`] and every chunk
/// `merge_chunks` makes stays within one frame of WhisperX's.
#[test]
fn bfloat16_lstms_keep_every_chunk_within_a_frame_of_whisperx() {
    let dev = Device::cpu();
    let Some(mut model) = model(&dev) else { return };
    if !common::bf16_products() {
        eprintln!("no bf16 products on this CPU: the default is float32, checked by the other tests");
        return;
    }
    model.apply_compute_type(&dev, "default").unwrap();
    assert_eq!(model.compute_type(&dev), "bfloat16");
    let r = reference();
    for entry in r["recordings"].as_array().unwrap() {
        let name = entry["name"].as_str().unwrap();
        // pyannote's batch of 32 and the pipeline's on this backend (8 windows on the CPU).
        let pipeline_batch = dev.sequences_per_pass(BATCH_SIZE);
        let ours = speech_scores(&model, &dev, &audio_of(entry), pipeline_batch, |_, _| {}).unwrap();
        let (diff, at) = max_abs_diff(&ours.scores, &floats(&entry["scores"]));
        assert!(diff < BF16_SCORE_TOLERANCE, "{name}, batch {pipeline_batch}: frame {at} differs by {diff}");
        let scores = speech_scores(&model, &dev, &audio_of(entry), BATCH_SIZE, |_, _| {}).unwrap();
        let (diff, at) = max_abs_diff(&scores.scores, &floats(&entry["scores"]));
        eprintln!("{name}: bf16 LSTMs, max |Δ| {diff:.2e} at frame {at}");
        assert!(diff < BF16_SCORE_TOLERANCE, "{name}: score of frame {at} differs by {diff}");
        let times = scores.times();
        for (size, want) in entry["chunks"].as_object().unwrap() {
            let got = speech_chunks(&scores.scores, &times, VAD_ONSET, VAD_OFFSET, size.parse().unwrap());
            let want = want.as_array().unwrap();
            assert_eq!(got.len(), want.len(), "{name}, chunk_size {size}: {got:?} vs {want:?}");
            for (g, w) in got.iter().zip(want) {
                let (ws, we) = (w[0].as_f64().unwrap(), w[1].as_f64().unwrap());
                let tol = scores.frames.step + 1e-6;
                assert!(
                    (g.start - ws).abs() <= tol && (g.end - we).abs() <= tol,
                    "{name}, chunk_size {size}: {g:?} vs {w}"
                );
            }
        }
    }
}

#[test]
fn a_coarser_window_step_keeps_the_chunks_close_to_whisperx() {
    let dev = Device::cpu();
    let Some(model) = model(&dev) else { return };
    let r = reference();
    for entry in r["recordings"].as_array().unwrap() {
        let name = entry["name"].as_str().unwrap();
        let audio = audio_of(entry);
        let scores = scribe::models::pyannote::sliding_window::speech_scores_every(
            &model,
            &dev,
            &audio,
            BATCH_SIZE,
            Some(2.5),
            |_, _| {},
        )
        .unwrap();
        let got = speech_chunks(&scores.scores, &scores.times(), VAD_ONSET, VAD_OFFSET, 30.0);
        let want = entry["chunks"]["30"].as_array().unwrap();
        assert_eq!(got.len(), want.len(), "{name}: {got:?} vs {want:?}");
        for (g, w) in got.iter().zip(want) {
            let (ws, we) = (w[0].as_f64().unwrap(), w[1].as_f64().unwrap());
            assert!((g.start - ws).abs() < 0.3 && (g.end - we).abs() < 0.3, "{name}: {g:?} vs {w}");
        }
    }
    // A step of 0 or beyond the window is an error, not a hang.
    let audio = vec![0.0f32; 16_000];
    for step in [0.0, 5.5] {
        let e = scribe::models::pyannote::sliding_window::speech_scores_every(
            &model,
            &dev,
            &audio,
            4,
            Some(step),
            |_, _| {},
        );
        assert!(e.is_err(), "step {step}");
    }
}

#[test]
fn scores_of_a_recording_pushed_in_uneven_pieces_are_the_same_and_only_a_batch_of_windows_is_held() {
    let dev = Device::cpu();
    let Some(model) = model(&dev) else { return };
    let r = reference();
    let entry = &r["recordings"][0];
    let audio = audio_of(entry);
    let batch = 8;
    let whole = speech_scores(&model, &dev, &audio, batch, |_, _| {}).unwrap();
    let window = model.config.window_samples();
    let step = (STEP_RATIO * model.config.duration * 16_000.0) as usize;
    for piece in [777, 16_001, 250_000] {
        let mut scorer = SpeechScorer::new(&model, &dev, batch, None).unwrap();
        let mut held = 0;
        for part in audio.chunks(piece) {
            scorer.push(part).unwrap();
            held = held.max(scorer.held_samples());
        }
        // A batch of windows and the piece that completed it.
        assert!(held <= window + batch * step + piece, "piece {piece}: held {held} samples");
        assert_eq!(scorer.samples(), audio.len());
        let scores = scorer.finish().unwrap();
        assert_eq!(scores.scores, whole.scores, "piece {piece}");
    }
}
