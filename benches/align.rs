//! wav2vec2 alignment's cost on the CPU at the real size. No real wav2vec2 weights can be had
//! here, so this writes a base-size model with seeded random weights
//! (`support/random_wav2vec2.rs`) to `.cache/align-bench/wav2vec2-base-random/`, then times the
//! model on 30 s of audio (one full WhisperX segment) and on 5 s. `benches/whole_job.sh` writes
//! the same model (`-- --write-aligner DIR`) for the whole job's timing.
//! The trellis group times the aligner alone (both modes) on a 30 s segment's synthetic
//! emissions, to set against the model's time on the same 30 s.

use std::path::PathBuf;

use criterion::{criterion_group, Criterion};

use scribe::align::{align, AlignConfig, Dictionary, Mode};
use scribe::backend::Device;
use scribe::output::result::Segment;
use scribe::Cancel;

#[path = "support/random_wav2vec2.rs"]
mod random_wav2vec2;
#[path = "support/synthetic_emissions.rs"]
mod synthetic_emissions;
use scribe::models::wav2vec2::checkpoint;
use scribe::models::wav2vec2::Wav2Vec2ForCtc;
use synthetic_emissions::{spoken, transcript, Prepared, FRAMES_PER_SECOND};

fn model_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".cache/align-bench/wav2vec2-base-random")
}

/// A deterministic speech-like signal (the model's cost does not depend on the samples).
fn signal(samples: usize) -> Vec<f32> {
    (0..samples).map(|i| (i as f32 * 0.031).sin() * 0.3 + ((i * 7919) % 1000) as f32 / 10_000.0).collect()
}

fn model_forward(c: &mut Criterion) {
    let dir = model_dir();
    random_wav2vec2::ensure_base_model(&dir).unwrap();
    let dev = Device::cpu();
    let mut group = c.benchmark_group("wav2vec2 base (random weights), CPU");
    group.sample_size(10);
    // `--align_compute_type`: float32 (the default), and bfloat16 where the CPU has bf16 products.
    for compute_type in ["float32", "bfloat16"] {
        let mut model = Wav2Vec2ForCtc::load(&dev, &checkpoint::open(&dir).unwrap()).unwrap();
        model.apply_compute_type(&dev, compute_type).unwrap();
        if model.compute_type(&dev) != compute_type {
            continue;
        }
        for seconds in [5usize, 30] {
            let x = signal(seconds * 16_000);
            group.bench_function(format!("log-probs of {seconds} s, {compute_type}"), |b| {
                b.iter(|| model.log_probs(&dev, &x).unwrap())
            });
        }
    }
    group.finish();
}

/// The aligner alone on one 30 s segment (what WhisperX's batched transcription hands it): the
/// stage's time is the model's plus this.
fn trellis(c: &mut Criterion) {
    const SECONDS: usize = 30;
    let text = transcript(SECONDS as f64);
    let (em, _) = spoken(&text, SECONDS * FRAMES_PER_SECOND - 1);
    let dict = Dictionary::torchaudio_base_960h();
    let segment = Segment { start: 0.0, end: SECONDS as f64, text: text.clone(), ..Default::default() };
    let mut group = c.benchmark_group(format!("aligner on a {SECONDS} s segment ({} characters)", text.len()));
    for (name, mode) in [("ctc-viterbi", Mode::CtcViterbi), ("whisperx-compat", Mode::WhisperxCompat)] {
        let cfg = AlignConfig { mode, language: "en".into(), audio_seconds: SECONDS as f64, ..Default::default() };
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut source = Prepared(em.clone());
                let splitter = scribe::pipeline::align_models::WholeText;
                align(
                    std::slice::from_ref(&segment),
                    &dict,
                    &mut source,
                    &splitter,
                    &cfg,
                    &Cancel::new(),
                    &mut |_, _| {},
                )
                .unwrap()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, model_forward, trellis);

/// `cargo bench --bench align -- --write-aligner DIR` writes the random model and stops
/// (`benches/whole_job.sh`); anything else runs the benchmarks.
fn main() {
    if random_wav2vec2::write_if_asked() {
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
