//! CAM++ (the real checkpoint, `models/fetch campplus`) on the GPU against the CPU backend:
//! embeddings of a batch of two fbank-like feature sequences of 300 frames and of one of 37
//! (deterministic, the comparison needs no speech). Needs a GPU: ignored in `make test`, run by
//! gpu-pack/run.sh (`--include-ignored`); tests/campplus_reference.rs holds the CPU to 3D-Speaker's
//! model.
#![cfg(feature = "cuda-backend")]

mod common;

use scribe::backend::Device;
use scribe::models::campplus::{checkpoint, CamPlusPlus};

/// GPU against CPU, `|gpu − cpu| ≤ ATOL + RTOL·|cpu|`: both f32 (the checkpoint is f32), sums in
/// other orders through 52 dense layers; the CPU and PyTorch agree within 2.7e-6.
const ATOL: f32 = 1e-3;
const RTOL: f32 = 1e-3;
const MELS: usize = 80;

/// Mean-free log-mel-like values, deterministic.
fn features(batch: usize, frames: usize, seed: u64) -> Vec<f32> {
    let mut s = seed;
    (0..batch * frames * MELS)
        .map(|i| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let noise = (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
            ((i % MELS) as f32 * 0.07 + (i / MELS) as f32 * 0.013).sin() * 2.0 + noise
        })
        .collect()
}

#[test]
#[ignore = "needs a CUDA GPU (gpu-pack/run.sh)"]
fn campplus_on_the_gpu_agrees_with_the_cpu() {
    let Some(gpu) = common::cuda_device() else { return };
    let Some(dir) = common::model_dir("campplus") else { return };
    let cpu = Device::cpu();
    let store = checkpoint::open(&dir).unwrap();
    let (on_gpu, on_cpu) =
        (CamPlusPlus::load(&gpu, store.as_ref()).unwrap(), CamPlusPlus::load(&cpu, store.as_ref()).unwrap());
    eprintln!("{}", gpu.describe());
    for (batch, frames, seed) in [(2usize, 300usize, 1u64), (1, 37, 2)] {
        let x = features(batch, frames, seed);
        let run = |dev: &Device, m: &CamPlusPlus| {
            let t = dev.upload(&x, &[batch, frames, MELS]).unwrap();
            dev.download(&m.embed(dev, &t).unwrap()).unwrap()
        };
        let (g, c) = (run(&gpu, &on_gpu), run(&cpu, &on_cpu));
        assert_eq!(g.len(), c.len());
        let worst = g.iter().zip(&c).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        for (i, (a, b)) in g.iter().zip(&c).enumerate() {
            assert!((a - b).abs() <= ATOL + RTOL * b.abs(), "batch {batch}×{frames}: value {i}: gpu {a} cpu {b}");
        }
        eprintln!("batch {batch} × {frames} frames: gpu vs cpu max |Δ| {worst:.2e} over {} values", c.len());
    }
}
