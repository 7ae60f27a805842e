//! tiny.en on the CPU: one encoder forward (one 30 s window) and one decoder step with a warm
//! KV cache. Needs `models/fetch tiny.en`.

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion};

use scribe::backend::Device;
use scribe::models::whisper::decoder::LogitPositions;
use scribe::models::whisper::{Task, Whisper};

fn load() -> Option<Whisper> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/tiny.en");
    if !dir.join(".complete").is_file() {
        eprintln!("skipped: run models/fetch tiny.en");
        return None;
    }
    Some(Whisper::load(&dir, Device::cpu()).expect("load tiny.en"))
}

/// A deterministic pseudo-mel in Whisper's value range.
fn fake_mel(n_mels: usize, frames: usize) -> Vec<f32> {
    (0..n_mels * frames).map(|i| ((i * 2654435761usize) % 1000) as f32 / 1000.0 - 0.5).collect()
}

fn encoder(c: &mut Criterion) {
    let Some(model) = load() else { return };
    let mel = fake_mel(model.config.num_mel_bins, 3000);
    c.bench_function("tiny.en encoder forward (1 window)", |b| b.iter(|| model.encode(&mel, 1).unwrap()));
}

fn decoder_step(c: &mut Criterion) {
    let Some(model) = load() else { return };
    let features = model.encode(&fake_mel(model.config.num_mel_bins, 3000), 1).unwrap();
    let prompt = model.tokenizer.sot_sequence(None, Task::Transcribe).unwrap();
    let dev = &model.device;
    c.bench_function("tiny.en decoder step (KV cache at 32 tokens)", |b| {
        b.iter_batched(
            || {
                let mut state = model.decoder.start(dev, &features, 1).unwrap();
                let mut tokens = prompt.clone();
                tokens.resize(32, 440);
                model.decoder.forward(dev, &[tokens], &mut state, LogitPositions::Last).unwrap();
                state
            },
            |mut state| model.decoder.forward(dev, &[vec![440]], &mut state, LogitPositions::Last).unwrap(),
            criterion::BatchSize::LargeInput,
        )
    });
}

criterion_group!(benches, encoder, decoder_step);
criterion_main!(benches);
