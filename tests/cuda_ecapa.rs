//! SpeechBrain's ECAPA-TDNN (the small random models of tests/reference/data/ecapa/) on the GPU
//! against the CPU backend: one 30 s utterance (3001 frames through the attention softmax and the
//! masked means), a padded batch of three lengths (the −∞ attention mask, the SE and pooling
//! masks, the padding frames), the shortest input (640 samples: 5 frames, reflect padding of 4),
//! and the `nogc` model (grouped convs, no global context). The waveforms are deterministic
//! synthetic ones: the comparison needs no speech. Needs a GPU: ignored in `make test`, run by
//! gpu-pack/run.sh (`--include-ignored`); tests/ecapa_reference.rs holds the CPU to SpeechBrain.
#![cfg(feature = "cuda-backend")]

mod common;

use scribe::backend::Device;
use scribe::models::ecapa::EcapaTdnn;

/// GPU against CPU, `|gpu − cpu| ≤ ATOL + RTOL·|cpu|`: both f32, sums in other orders through
/// ~40 conv layers and two softmax poolings; the CPU and SpeechBrain agree within 1e-6 on values
/// up to ~2.5.
const ATOL: f32 = 1e-4;
const RTOL: f32 = 1e-3;
const SAMPLE_RATE: usize = 16000;

/// A speech-like deterministic waveform: two drifting tones and noise, in [-0.5, 0.5].
fn waveform(samples: usize, seed: u64) -> Vec<f32> {
    let mut s = seed;
    (0..samples)
        .map(|i| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let noise = (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
            let t = i as f32 / SAMPLE_RATE as f32;
            0.2 * (2.0 * std::f32::consts::PI * (180.0 + 40.0 * t) * t).sin()
                + 0.1 * (2.0 * std::f32::consts::PI * 950.0 * t).sin()
                + 0.05 * noise
        })
        .collect()
}

fn compare(what: &str, g: &[f32], c: &[f32]) {
    assert_eq!(g.len(), c.len(), "{what}");
    let worst = g.iter().zip(c).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    for (i, (a, b)) in g.iter().zip(c).enumerate() {
        assert!((a - b).abs() <= ATOL + RTOL * b.abs(), "{what}: value {i}: gpu {a} cpu {b}");
    }
    eprintln!("{what}: gpu vs cpu max |Δ| {worst:.2e} over {} values", c.len());
}

#[test]
#[ignore = "needs a CUDA GPU (gpu-pack/run.sh)"]
fn ecapa_on_the_gpu_agrees_with_the_cpu() {
    let Some(gpu) = common::cuda_device() else { return };
    let cpu = Device::cpu();
    eprintln!("{}", gpu.describe());
    let data = common::root().join("tests/reference/data/ecapa");
    for variant in ["small", "nogc"] {
        let dir = data.join(variant);
        let (on_gpu, on_cpu) = (EcapaTdnn::load(&gpu, &dir).unwrap(), EcapaTdnn::load(&cpu, &dir).unwrap());
        let run = |rows: &[&[f32]]| {
            let g = gpu.download(&on_gpu.embed(&gpu, rows).unwrap()).unwrap();
            let c = cpu.download(&on_cpu.embed(&cpu, rows).unwrap()).unwrap();
            (g, c)
        };
        let long = waveform(30 * SAMPLE_RATE, 1);
        let (g, c) = run(&[&long]);
        compare(&format!("{variant}: 1 × 30 s"), &g, &c);

        let (a, b, d) = (waveform(4 * SAMPLE_RATE, 2), waveform(27200, 3), waveform(14500, 4));
        let (g, c) = run(&[&b, &a, &d]);
        compare(&format!("{variant}: padded batch of 1.7 s, 4 s, 0.9 s"), &g, &c);

        let shortest = waveform(on_cpu.min_num_samples(), 5);
        let (g, c) = run(&[&shortest]);
        compare(&format!("{variant}: {} samples", shortest.len()), &g, &c);
    }
}
