//! Whisper's log-mel front end: one 30 s window at 80 bins (the per-chunk cost before the encoder).

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use scribe::audio::mel::{log_mel_window, N_SAMPLES};

fn bench_mel(c: &mut Criterion) {
    // 30 s of a deterministic chirp-plus-noise signal: content does not change the cost, but avoid
    // an all-zero input anyway.
    let mut seed = 0x853c_49e6_748f_ea9bu64;
    let audio: Vec<f32> = (0..N_SAMPLES)
        .map(|i| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let t = i as f32 / 16_000.0;
            0.3 * (2.0 * std::f32::consts::PI * (200.0 + 100.0 * t) * t).sin()
                + 0.01 * ((seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5)
        })
        .collect();
    c.bench_function("log_mel_window 30 s, 80 mels", |b| b.iter(|| log_mel_window(black_box(&audio), 80).unwrap()));
    c.bench_function("log_mel_window 30 s, 128 mels", |b| b.iter(|| log_mel_window(black_box(&audio), 128).unwrap()));
}

criterion_group!(benches, bench_mel);
criterion_main!(benches);
