//! tiny.en end to end on the GPU against the CPU backend: encoder output, first-step logits, and
//! the greedy transcript of jfk.flac (identical). Needs a GPU: ignored in `make test`, run by
//! gpu-pack/run.sh (`--include-ignored`).
#![cfg(feature = "cuda-backend")]

mod common;

use std::sync::Arc;

use common::{model_dir, speech};
use scribe::audio::{load_audio, log_mel_window};
use scribe::backend::cuda::CudaBackend;
use scribe::backend::Device;
use scribe::models::whisper::decoder::LogitPositions;
use scribe::models::whisper::{Task, Whisper};

/// f16 GEMM operands on the GPU against f32 on the CPU: the encoder output of tiny.en agrees to
/// about 1e-2 (values of order 1–10); the logits to a few hundredths.
const ENCODER_ATOL: f32 = 5e-2;
const LOGIT_ATOL: f32 = 1e-1;

fn max_abs(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
#[ignore = "needs a CUDA GPU: gpu-pack/run.sh runs it"]
fn tiny_en_on_the_gpu_agrees_with_the_cpu() {
    let backend = match CudaBackend::new(0) {
        Ok(b) => Arc::new(b),
        Err(reason) => {
            common::cannot_run(&format!("no CUDA device ({reason})"));
            return;
        }
    };
    let Some(dir) = model_dir("tiny.en") else { return };
    let jfk = speech("jfk.flac");
    let audio = load_audio(&jfk).unwrap_or_else(|e| panic!("{}: {e}", jfk.display()));
    let cpu = Whisper::load(&dir, Device::cpu()).unwrap();
    let gpu = Whisper::load(&dir, Device::new(backend.clone())).unwrap();
    let mel = log_mel_window(&audio[..audio.len().min(480_000)], cpu.config.num_mel_bins).unwrap();

    let (enc_cpu, enc_gpu) = (cpu.encode(&mel.data, 1).unwrap(), gpu.encode(&mel.data, 1).unwrap());
    let e = max_abs(&gpu.device.download(&enc_gpu).unwrap(), &cpu.device.download(&enc_cpu).unwrap());
    eprintln!("encoder output max abs error {e:.3e}");
    assert!(e <= ENCODER_ATOL, "encoder output max abs error {e}");

    let prefix = vec![cpu.tokenizer.special.sot, cpu.tokenizer.special.no_timestamps];
    let logits = |m: &Whisper, enc| {
        let mut state = m.decoder.start(&m.device, enc, 1).unwrap();
        let l = m.decoder.forward(&m.device, std::slice::from_ref(&prefix), &mut state, LogitPositions::Last).unwrap();
        m.device.download(&l).unwrap()
    };
    let e = max_abs(&logits(&gpu, &enc_gpu), &logits(&cpu, &enc_cpu));
    eprintln!("logits max abs error {e:.3e}");
    assert!(e <= LOGIT_ATOL, "logits max abs error {e}");

    let started = backend.traffic();
    let tokens_gpu = gpu.greedy(&enc_gpu, Some("en"), Task::Transcribe).unwrap();
    let traffic = backend.traffic();
    let tokens_cpu = cpu.greedy(&enc_cpu, Some("en"), Task::Transcribe).unwrap();
    let text = |m: &Whisper, t: &[u32]| m.tokenizer.decode(t).unwrap();
    eprintln!("gpu: {:?}", text(&gpu, &tokens_gpu));
    assert_eq!(text(&gpu, &tokens_gpu), text(&cpu, &tokens_cpu), "greedy transcripts differ");
    let to_host = traffic.to_host - started.to_host;
    eprintln!(
        "greedy decode of {} tokens: {to_host} bytes to the host, {} to the device",
        tokens_gpu.len(),
        traffic.to_device - started.to_device
    );
    // Per step (one row, k = 0): the argmax and its log-prob, with the unused sample slot, is 16
    // bytes; the first step adds the no-speech log-prob. A logits row would be 4·V bytes.
    let steps = tokens_gpu.len() + 1;
    assert!(to_host as usize <= 16 * steps + 4, "{to_host} bytes to the host for {steps} steps");
}
