//! The whole diarization stage (segmentation-3.0 + CAM++, `models/fetch segmentation-3.0` and
//! `models/fetch campplus`) on the GPU against the CPU backend, on the two-speaker recording: the
//! local speakers of all but a few frames identical, the pair embeddings close, and the same
//! speakers with turns that agree. Needs a GPU: ignored in `make test`, run by gpu-pack/run.sh
//! (`--include-ignored`).
#![cfg(feature = "cuda-backend")]

mod common;

use scribe::audio::{Audio, AudioOptions};
use scribe::backend::Device;
use scribe::diarize::diarizer::SpeakerBounds;
use scribe::pipeline::diarize_models::{load_with, ComputeTypes, CAMPPLUS_SHARED_TRUNK};
use scribe::Cancel;

/// Largest |gpu − cpu| on an embedding value (CAM++ alone agrees within 4.2e-6; the masked
/// pooling adds sums in other orders).
const MAX_EMBEDDING_DIFF: f32 = 1e-3;
/// The GPU's turns scored against the CPU's (pyannote.metrics' DER, no collar).
const MAX_DER_BETWEEN_BACKENDS: f64 = 0.01;

#[test]
#[ignore = "needs a CUDA GPU (gpu-pack/run.sh)"]
fn the_diarization_stage_on_the_gpu_agrees_with_the_cpu() {
    let Some(gpu) = common::cuda_device() else { return };
    let (Some(_), Some(_)) = (common::model_dir("segmentation-3.0"), common::model_dir("campplus")) else { return };
    let models = common::root().join("models");
    let cpu = Device::cpu();
    let audio =
        Audio::decode(&common::speech("two_speakers.wav"), &AudioOptions::default(), &Cancel::new(), &mut |_| {})
            .unwrap();
    let samples = audio.span(0, audio.len());
    let run = |dev: &Device| {
        // Both in f32 (the CPU's bf16 defaults are CPU paths; CUDA keeps f32 weights).
        let f32s = ComputeTypes { segmentation: "float32".into(), embedding: "float32".into() };
        let d = load_with(dev, &models, CAMPPLUS_SHARED_TRUNK, &f32s).unwrap();
        d.embed(dev, &mut samples.as_slice(), &Cancel::new(), &mut |_, _, _| {})
            .map(|e| (d.finish(e.clone(), SpeakerBounds::default()).unwrap(), e))
            .unwrap()
    };
    let ((g, ge), (c, ce)) = (run(&gpu), run(&cpu));
    // The powerset's argmax may flip where two classes are within the backends' rounding
    // (log-probs agree within 1.5e-5): a few frames may differ, never more.
    let local = &ce.local;
    let frames = local.chunks * local.frames_per_chunk;
    let per_frame = |b: &[u8]| b.chunks_exact(local.speakers).map(<[u8]>::to_vec).collect::<Vec<_>>();
    let (gf, cf) = (per_frame(&ge.local.binarized), per_frame(&ce.local.binarized));
    let differing = gf.iter().zip(&cf).filter(|(a, b)| a != b).count();
    eprintln!("{}: {differing} of {frames} segmentation frames differ", gpu.describe());
    assert!(differing * 1000 <= frames, "{differing} of {frames} frames differ");
    // Embeddings of the windows whose local speakers are identical.
    let dim = ge.embeddings.len() / (local.chunks * local.speakers);
    let mut worst = 0.0f32;
    for w in 0..local.chunks {
        let n = local.frames_per_chunk * local.speakers;
        if ge.local.binarized[w * n..(w + 1) * n] != ce.local.binarized[w * n..(w + 1) * n] {
            continue;
        }
        let span = w * local.speakers * dim..(w + 1) * local.speakers * dim;
        for (a, b) in ge.embeddings[span.clone()].iter().zip(&ce.embeddings[span]) {
            if a.is_finite() || b.is_finite() {
                worst = worst.max((a - b).abs());
            }
        }
    }
    eprintln!("largest embedding difference {worst:e}");
    assert!(worst <= MAX_EMBEDDING_DIFF, "{worst}");
    // The same speakers, and turns that agree: the CPU's diarization scores the GPU's.
    assert_eq!(g.speakers.len(), c.speakers.len());
    let der = scribe::diarize::der::diarization_error_rate(&c.turns, &g.turns, &Default::default());
    eprintln!("GPU against CPU turns: DER {:.3} %", 100.0 * der.components.der());
    assert!(der.components.der() <= MAX_DER_BETWEEN_BACKENDS, "{:?}", der.components);
}
