//! The wav2vec2 CTC models on the GPU against the CPU backend: the reference models of
//! tests/reference/data/wav2vec2 (base_group: group-norm feature encoder, post-LN encoder;
//! large_layer: layer norms everywhere, pre-LN), on inputs of the recorded inputs' lengths, each
//! alone and all in one padded batch (`log_probs_batch`: per-input feature encoder, attention with
//! key lengths). Needs a GPU: ignored in `make test`, run by gpu-pack/run.sh
//! (`--include-ignored`), whose pack carries the two model directories under its
//! `SCRIBE_TEST_ROOT`.
//!
//! The pack has no ../shared recordings, so the inputs are generated here (a deterministic voiced
//! signal of each recorded input's length, zero-padded where the recording was): the comparison
//! is GPU against CPU on the same samples, which needs no speech; tests/wav2vec2_reference.rs
//! holds the CPU to transformers on the recordings.
#![cfg(feature = "cuda-backend")]

mod common;

use std::path::PathBuf;

use scribe::backend::Device;
use scribe::models::wav2vec2::checkpoint;
use scribe::models::wav2vec2::{LogProbs, Wav2Vec2ForCtc};
use serde_json::Value;

/// GPU against CPU log-probabilities, `|gpu − cpu| ≤ ATOL + RTOL·|cpu|`. Both are f32 throughout
/// (f32 checkpoints take cuBLAS's f32 path, no TF32), summed in other orders: the CPU and
/// transformers, two such orders, agree within 1e-4 + 2e-6·|ref| (tests/wav2vec2_reference.rs;
/// the reference heads are scaled ×37 and ×181 to make them peaky, which carries the hidden
/// state's rounding into the log-probs, down to −90). Ten times that bound: a kernel that is
/// wrong (a padded key seen, a row of the wrong input) moves log-probs by whole units.
const ATOL: f32 = 1e-3;
const RTOL: f32 = 2e-5;

/// The recorded inputs of tests/wav2vec2_reference.rs (2 s, 1.9 s, 400 samples, 300 samples
/// zero-padded to 400, 1.25 s).
const INPUTS: [&str; 5] = [
    "spk1_snt1_first2s",
    "spk2_snt3_full",
    "spk1_snt1_first400",
    "spk1_snt1_first300_padded400",
    "batch_zero_padded_no_mask_B_alone",
];

const SAMPLE_RATE: f32 = 16_000.0;

fn data(variant: &str) -> PathBuf {
    common::root().join("tests/reference/data/wav2vec2").join(variant)
}

/// A voiced sound of `n` samples: five harmonics of a pitch between 100 and 200 Hz under a
/// 4 Hz syllable envelope, plus a little noise (xorshift64*, seeded), peak about 0.3 as speech
/// read as int16 / 32768 is.
fn voiced(n: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut noise = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        ((state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    };
    let f0 = 100.0 + (seed % 100) as f32;
    (0..n)
        .map(|i| {
            let t = i as f32 / SAMPLE_RATE;
            let tone: f32 = (1..=5).map(|h| (std::f32::consts::TAU * f0 * h as f32 * t).sin() / h as f32).sum();
            let envelope = 0.5 - 0.5 * (std::f32::consts::TAU * 4.0 * t).cos();
            0.12 * envelope * tone + 0.01 * noise()
        })
        .collect()
}

/// Each recorded input's length and zero padding (the variant's manifest), filled by [`voiced`].
fn inputs(variant: &str) -> Vec<Vec<f32>> {
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(data(variant).join("manifest.json")).unwrap()).unwrap();
    INPUTS
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let spec = &manifest["inputs"][name];
            let range = |j: usize| spec["samples"][j].as_u64().unwrap_or_else(|| panic!("{name}: samples")) as usize;
            let mut x = voiced(range(1) - range(0), i as u64 + 1);
            if let Some(to) = spec["zero_padded_to"].as_u64() {
                x.resize(to as usize, 0.0);
            }
            x
        })
        .collect()
}

/// `gpu` against `cpu` within the tolerance; the largest |Δ|.
fn compare(what: &str, gpu: &LogProbs, cpu: &LogProbs) -> f32 {
    assert_eq!((gpu.frames, gpu.classes), (cpu.frames, cpu.classes), "{what}: shape");
    let mut worst = 0f32;
    for (i, (&g, &c)) in gpu.data.iter().zip(&cpu.data).enumerate() {
        let err = (g - c).abs();
        assert!(
            err <= ATOL + RTOL * c.abs(),
            "{what}: frame {} class {}: gpu {g} cpu {c} (atol {ATOL}, rtol {RTOL})",
            i / cpu.classes,
            i % cpu.classes
        );
        worst = worst.max(err);
    }
    worst
}

#[test]
#[ignore = "needs a CUDA GPU: gpu-pack/run.sh runs it"]
fn wav2vec2_on_the_gpu_agrees_with_the_cpu_alone_and_batched() {
    let Some(gpu) = common::cuda_device() else { return };
    eprintln!("{}", gpu.describe());
    let cpu = Device::cpu();
    for variant in ["base_group", "large_layer"] {
        let dir = data(variant);
        if !dir.join("manifest.json").is_file() {
            common::cannot_run(&format!("{} is missing (the GPU pack copies it)", dir.display()));
            return;
        }
        let ckpt = checkpoint::open(&dir).unwrap();
        let on_cpu = Wav2Vec2ForCtc::load(&cpu, &ckpt).unwrap();
        let on_gpu = Wav2Vec2ForCtc::load(&gpu, &ckpt).unwrap();
        let xs = inputs(variant);
        let batch: Vec<&[f32]> = xs.iter().map(Vec::as_slice).collect();
        let gpu_batch = on_gpu.log_probs_batch(&gpu, &batch).unwrap();
        let cpu_batch = on_cpu.log_probs_batch(&cpu, &batch).unwrap();
        assert_eq!(gpu_batch.len(), xs.len());
        for (((name, x), gb), cb) in INPUTS.iter().zip(&xs).zip(&gpu_batch).zip(&cpu_batch) {
            let cpu_alone = on_cpu.log_probs(&cpu, x).unwrap();
            let gpu_alone = on_gpu.log_probs(&gpu, x).unwrap();
            let alone = compare(&format!("{variant} {name} alone"), &gpu_alone, &cpu_alone);
            let batched = compare(&format!("{variant} {name} batched vs the cpu alone"), gb, &cpu_alone);
            let both_batched = compare(&format!("{variant} {name} batched on both"), gb, cb);
            eprintln!(
                "{variant} {name}: {} frames, gpu vs cpu max |Δ| alone {alone:.2e}, batched vs alone \
                 {batched:.2e}, both batched {both_batched:.2e}",
                gpu_alone.frames
            );
        }
    }
}
