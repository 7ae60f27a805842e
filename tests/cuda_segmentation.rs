//! pyannote's segmentation-3.0 on the GPU against the CPU backend: the real checkpoint
//! (`models/fetch segmentation-3.0`) on 10 s windows of the pack's recordings (a batch of three:
//! jfk.flac's two windows and hello.wav zero-padded), log-probabilities over the 7 powerset
//! classes and the local speakers of whole recordings. Needs a GPU: ignored in `make test`, run
//! by gpu-pack/run.sh (`--include-ignored`), whose pack carries the model and the recordings
//! under its `SCRIBE_TEST_ROOT` / `SCRIBE_SPEECH_DIR`; tests/segmentation_reference.rs holds the
//! CPU to pyannote.
#![cfg(feature = "cuda-backend")]

mod common;

use scribe::audio::decode::load_audio;
use scribe::backend::Device;
use scribe::models::pyannote::local_speakers::{local_speakers, SEGMENTATION_BATCH_SIZE};
use scribe::models::pyannote::{checkpoint, PyanNet};

/// GPU against CPU log-probabilities, `|gpu − cpu| ≤ ATOL + RTOL·|cpu|`: both f32 (the
/// checkpoint is f32), the LSTM's and the GEMMs' sums in other orders; the CPU and pyannote agree
/// within 5e-5 (tests/segmentation_reference.rs). Twenty times that: a wrong kernel moves
/// log-probs by whole units.
const ATOL: f32 = 1e-3;
const RTOL: f32 = 1e-4;

fn load(dev: &Device) -> Option<PyanNet> {
    let dir = common::model_dir("segmentation-3.0")?;
    let (store, config) = checkpoint::open(&dir).unwrap();
    Some(PyanNet::load(dev, store.as_ref(), &config).unwrap())
}

#[test]
#[ignore = "needs a CUDA GPU (gpu-pack/run.sh)"]
fn segmentation_3_0_on_the_gpu_agrees_with_the_cpu() {
    let Some(gpu) = common::cuda_device() else { return };
    let cpu = Device::cpu();
    let (Some(on_gpu), Some(on_cpu)) = (load(&gpu), load(&cpu)) else { return };
    eprintln!("{}", gpu.describe());
    let window = on_cpu.config.window_samples();
    let jfk = load_audio(&common::speech("jfk.flac")).unwrap();
    let hello = load_audio(&common::speech("hello.wav")).unwrap();
    let mut batch = Vec::with_capacity(3 * window);
    for (audio, start) in [(&jfk, 0usize), (&jfk, 16_000), (&hello, 0)] {
        let mut w = vec![0.0f32; window];
        let end = (start + window).min(audio.len());
        w[..end - start].copy_from_slice(&audio[start..end]);
        batch.extend(w);
    }
    let run = |dev: &Device, model: &PyanNet| {
        let x = dev.upload(&batch, &[3, 1, window]).unwrap();
        dev.download(&model.forward(dev, &x).unwrap()).unwrap()
    };
    let (g, c) = (run(&gpu, &on_gpu), run(&cpu, &on_cpu));
    assert_eq!(g.len(), c.len());
    let mut worst = (0.0f32, 0usize);
    for (i, (a, b)) in g.iter().zip(&c).enumerate() {
        let excess = (a - b).abs() - (ATOL + RTOL * b.abs());
        assert!(excess <= 0.0, "log-prob {i}: gpu {a} cpu {b}");
        if (a - b).abs() > worst.0 {
            worst = ((a - b).abs(), i);
        }
    }
    eprintln!(
        "forward, 3 windows × 589 frames × 7: gpu vs cpu max |Δ| {:.2e} at {} (cpu {})",
        worst.0, worst.1, c[worst.1]
    );

    // Local speakers of a whole recording: the same flags, but for near ties of the CPU's
    // log-probs (whose two best classes lie within the tolerance).
    for (name, audio) in [("jfk", &jfk), ("hello", &hello)] {
        let g = local_speakers(&on_gpu, &gpu, &mut audio.as_slice(), SEGMENTATION_BATCH_SIZE).unwrap();
        let c = local_speakers(&on_cpu, &cpu, &mut audio.as_slice(), SEGMENTATION_BATCH_SIZE).unwrap();
        assert_eq!((g.chunks, g.frames_per_chunk, g.speakers), (c.chunks, c.frames_per_chunk, c.speakers));
        let differing = g.binarized.iter().zip(&c.binarized).filter(|(a, b)| a != b).count();
        eprintln!(
            "{name}: {} windows, {differing} of {} speaker flags differ; counts equal: {}",
            c.chunks,
            c.binarized.len(),
            g.speaker_count() == c.speaker_count()
        );
        assert!(differing <= 3, "{name}: {differing} flags differ");
    }
}
