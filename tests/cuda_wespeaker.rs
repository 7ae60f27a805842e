//! WeSpeaker ResNet34 (the small random model of tests/reference/data/wespeaker/) on the GPU
//! against the CPU backend: a batch of three 10 s windows with 589-frame masks (partial, all zero,
//! random — the diarization stage's shape), the split `frame_features` + `pool` path, and one
//! unweighted 1.37 s item (deterministic, the comparison needs no speech). Needs a GPU: ignored in
//! `make test`, run by gpu-pack/run.sh (`--include-ignored`); tests/wespeaker_reference.rs holds the
//! CPU to pyannote's model.
#![cfg(feature = "cuda-backend")]

mod common;

use scribe::backend::Device;
use scribe::models::wespeaker::{checkpoint, WeSpeakerResNet34};

/// GPU against CPU, `|gpu − cpu| ≤ ATOL + RTOL·|cpu|`: both f32, sums in other orders through 33
/// conv layers; the CPU and PyTorch agree within 1e-4 on values up to ~0.45.
const ATOL: f32 = 1e-4;
const RTOL: f32 = 1e-3;
const SAMPLE_RATE: usize = 16000;
/// pyannote's segmentation frames over a 10 s window.
const MASK_FRAMES: usize = 589;

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

fn masks(seed: u64) -> Vec<f32> {
    let mut s = seed;
    let partial = (0..MASK_FRAMES).map(|i| if (100..350).contains(&i) { 1.0 } else { 0.0 });
    let zero = std::iter::repeat_n(0.0, MASK_FRAMES);
    let random = (0..MASK_FRAMES).map(move |_| {
        s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        if (s >> 33) % 5 < 2 {
            1.0
        } else {
            0.0
        }
    });
    partial.chain(zero).chain(random).collect()
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
fn wespeaker_on_the_gpu_agrees_with_the_cpu() {
    let Some(gpu) = common::cuda_device() else { return };
    let cpu = Device::cpu();
    let path = common::root().join("tests/reference/data/wespeaker").join(checkpoint::SAFETENSORS_FILE);
    let store = checkpoint::open(&path).unwrap();
    let (on_gpu, on_cpu) = (
        WeSpeakerResNet34::load(&gpu, store.as_ref()).unwrap(),
        WeSpeakerResNet34::load(&cpu, store.as_ref()).unwrap(),
    );
    eprintln!("{}", gpu.describe());

    let window = waveform(10 * SAMPLE_RATE, 1);
    let w = masks(2);
    let rows: [&[f32]; 3] = [&window, &window, &window];
    let run = |dev: &Device, m: &WeSpeakerResNet34| dev.download(&m.embed(dev, &rows, Some(&w)).unwrap()).unwrap();
    compare("3 × 10 s, 589-frame masks", &run(&gpu, &on_gpu), &run(&cpu, &on_cpu));

    let split = |dev: &Device, m: &WeSpeakerResNet34| {
        let features = m.frame_features(dev, &m.fbank(dev, &[&window]).unwrap()).unwrap();
        let repeated = dev.index_select(&features, &[0, 0, 0]).unwrap();
        (dev.download(&features).unwrap(), dev.download(&m.pool(dev, &repeated, Some(&w)).unwrap()).unwrap())
    };
    let ((gf, ge), (cf, ce)) = (split(&gpu, &on_gpu), split(&cpu, &on_cpu));
    compare("frame features of 10 s", &gf, &cf);
    compare("frame_features + pool", &ge, &ce);

    let short = waveform(21920, 3);
    let run = |dev: &Device, m: &WeSpeakerResNet34| dev.download(&m.embed(dev, &[&short], None).unwrap()).unwrap();
    compare("1 × 1.37 s, no weights", &run(&gpu, &on_gpu), &run(&cpu, &on_cpu));
}
