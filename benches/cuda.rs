//! GPU benchmarks (`cargo bench --features scribe/cuda --bench cuda`, or `gpu-pack/run.sh bench`):
//! encoder windows/s and decoder tokens/s (100 forced tokens per window) at batch 1/8/16/32 for
//! tiny.en and for large-v3-shaped random f16 weights, the cuBLAS f16 rate at the encoder's own
//! matrix shapes (the yardstick of the encoder target), and the real-time factor. Every timing
//! synchronises the stream before the clock stops. Without a GPU it prints
//! "skipped: no CUDA device". `--write-aligner DIR` writes the random base-size wav2vec2 model
//! the pack's whole-pipeline run aligns with, and stops.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use scribe::backend::cuda::CudaBackend;
use scribe::backend::{Device, Tensor};
use scribe::models::whisper::config::WhisperConfig;
use scribe::models::whisper::decoder::{Decoder, LogitPositions};
use scribe::models::whisper::encoder::Encoder;
use scribe::models::whisper::open_checkpoint;
use scribe::weights::{DType, TensorView, WeightStore};

#[path = "support/random_wav2vec2.rs"]
mod random_wav2vec2;

/// Seconds of audio in one encoder window.
const WINDOW_SECONDS: f64 = 30.0;
/// Tokens forced per window in the decoder benchmark.
const TOKENS_PER_WINDOW: usize = 100;
const BATCHES: [usize; 4] = [1, 8, 16, 32];

/// f16 weights of the shapes a config asks for, filled with small random values.
struct RandomStore {
    path: PathBuf,
    tensors: HashMap<String, (Vec<usize>, Vec<u8>)>,
}

impl WeightStore for RandomStore {
    fn path(&self) -> &Path {
        &self.path
    }
    fn names(&self) -> Vec<String> {
        self.tensors.keys().cloned().collect()
    }
    fn view(&self, name: &str) -> Option<TensorView<'_>> {
        self.tensors.get(name).map(|(shape, bytes)| TensorView { dtype: DType::F16, shape: shape.clone(), bytes })
    }
}

/// large-v3's shapes from tiny.en's tensor names: layer 0's tensors repeated for every layer,
/// each dimension mapped to large-v3's (d_model 384→1280, ffn 1536→5120, mels 80→128, vocab
/// 51864→51866).
fn large_v3_store(tiny: &dyn WeightStore) -> (RandomStore, WhisperConfig) {
    let config = WhisperConfig {
        d_model: 1280,
        encoder_layers: 32,
        encoder_attention_heads: 20,
        decoder_layers: 32,
        decoder_attention_heads: 20,
        encoder_ffn_dim: 5120,
        decoder_ffn_dim: 5120,
        num_mel_bins: 128,
        vocab_size: 51866,
        max_source_positions: 1500,
        max_target_positions: 448,
    };
    let dims: HashMap<usize, usize> = [(384, 1280), (1536, 5120), (80, 128), (51864, 51866)].into_iter().collect();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut tensors = HashMap::new();
    for name in tiny.names() {
        let Some(view) = tiny.view(&name) else { continue };
        let shape: Vec<usize> = view.shape.iter().map(|d| *dims.get(d).unwrap_or(d)).collect();
        let layers = if name.contains("encoder.layers.") { config.encoder_layers } else { config.decoder_layers };
        let names: Vec<String> = match name.split_once("layers.0.") {
            Some((head, tail)) => (0..layers).map(|i| format!("{head}layers.{i}.{tail}")).collect(),
            None if name.contains("layers.") => continue,
            None => vec![name.clone()],
        };
        for n in names {
            let count: usize = shape.iter().product();
            let mut bytes = Vec::with_capacity(count * 2);
            for _ in 0..count {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let v = ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.05;
                bytes.extend_from_slice(&half::f16::from_f32(v).to_le_bytes());
            }
            tensors.insert(n, (shape.clone(), bytes));
        }
    }
    (RandomStore { path: PathBuf::from("<large-v3-shaped random weights>"), tensors }, config)
}

fn timed(backend: &CudaBackend, runs: usize, mut f: impl FnMut()) -> f64 {
    f(); // warm-up (kernel JIT, cuBLAS heuristics, allocations)
    backend.synchronize().unwrap();
    let start = Instant::now();
    for _ in 0..runs {
        f();
    }
    backend.synchronize().unwrap();
    start.elapsed().as_secs_f64() / runs as f64
}

/// Encoder FLOPs of one window: the linear layers (2·rows·in·out) and attention (QKᵀ and PV).
fn encoder_flops(c: &WhisperConfig) -> f64 {
    let (t, d, f) = (c.max_source_positions as f64, c.d_model as f64, c.encoder_ffn_dim as f64);
    let linears = 2.0 * t * (4.0 * d * d + 2.0 * d * f);
    let attention = 2.0 * 2.0 * t * t * d;
    let convs = 2.0 * (2.0 * t) * (c.num_mel_bins as f64 * 3.0) * d + 2.0 * t * (d * 3.0) * d;
    c.encoder_layers as f64 * (linears + attention) + convs
}

/// The cuBLAS f16 rate (TFLOP/s) over the encoder's own GEMM shapes at `batch` windows.
fn gemm_rate(dev: &Device, backend: &CudaBackend, c: &WhisperConfig, batch: usize) -> f64 {
    let rows = batch * c.max_source_positions;
    let (d, f) = (c.d_model, c.encoder_ffn_dim);
    let mut total_flops = 0.0;
    let mut total_s = 0.0;
    for (k, n, count) in [(d, d, 4), (d, f, 1), (f, d, 1)] {
        let x = dev.upload(&vec![0.01; rows * k], &[rows, k]).unwrap();
        let w = dev.upload_f16(&vec![half::f16::from_f32(0.01); n * k], &[n, k]).unwrap();
        let s = timed(backend, 5, || {
            dev.linear(&x, &w, None).unwrap();
        });
        total_flops += count as f64 * 2.0 * rows as f64 * k as f64 * n as f64;
        total_s += count as f64 * s;
    }
    total_flops / total_s / 1e12
}

fn bench_model(name: &str, dev: &Device, backend: &CudaBackend, store: &dyn WeightStore, c: &WhisperConfig) {
    let encoder = Encoder::load(dev, store, c).unwrap();
    let decoder = Decoder::load(dev, store, c).unwrap();
    let frames = 2 * c.max_source_positions;
    println!("\n{name}: d_model {}, {} + {} layers", c.d_model, c.encoder_layers, c.decoder_layers);
    println!("batch | encoder ms/batch | windows/s | vs 0.6×cuBLAS bound | decoder tokens/s | RTF (enc + 100 tok)");
    for batch in BATCHES {
        let mel = dev.upload(&vec![-0.5; batch * c.num_mel_bins * frames], &[batch, c.num_mel_bins, frames]).unwrap();
        let mut features: Option<Tensor> = None;
        let enc_s = timed(backend, 3, || features = Some(encoder.forward(dev, &mel).unwrap()));
        let features = features.unwrap();
        let rate = gemm_rate(dev, backend, c, batch);
        let bound_s = batch as f64 * encoder_flops(c) / (0.6 * rate * 1e12);
        // 100 forced tokens per window, one step at a time with the KV cache.
        let tokens: Vec<Vec<u32>> = vec![vec![50257]; batch];
        let dec_s = timed(backend, 1, || {
            let mut state = decoder.start(dev, &features, 1).unwrap();
            for _ in 0..TOKENS_PER_WINDOW {
                decoder.forward(dev, &tokens, &mut state, LogitPositions::Last).unwrap();
            }
        });
        let tokens_per_s = (batch * TOKENS_PER_WINDOW) as f64 / dec_s;
        let rtf = batch as f64 * WINDOW_SECONDS / (enc_s + dec_s);
        println!(
            "{batch:>5} | {:>16.2} | {:>9.1} | {:>6.2} (bound {:.2} ms, cuBLAS {rate:.0} TFLOP/s) | {tokens_per_s:>16.0} | {rtf:>8.0}x real time",
            enc_s * 1e3,
            batch as f64 / enc_s,
            enc_s / bound_s,
            bound_s * 1e3
        );
    }
}

fn main() {
    // `gpu-pack/run.sh bench` has the whole pipeline's aligner written here (no GPU needed).
    if random_wav2vec2::write_if_asked() {
        return;
    }
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this file without it, where a
    // GPU host would otherwise spend minutes here.
    if !std::env::args().any(|a| a == "--bench") {
        println!("skipped: benchmarks run with --bench (cargo bench, gpu-pack/run.sh bench)");
        return;
    }
    let backend = match CudaBackend::new(0) {
        Ok(b) => Arc::new(b),
        Err(reason) => {
            println!("skipped: no CUDA device ({reason})");
            return;
        }
    };
    let dev = Device::new(backend.clone());
    println!("{}", dev.describe());
    let root = std::env::var_os("SCRIBE_TEST_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    let tiny_dir = root.join("models/tiny.en");
    let (tiny_store, tiny_config, _) = match open_checkpoint(&tiny_dir) {
        Ok(t) => t,
        Err(e) => {
            println!("skipped: tiny.en not found at {} ({e})", tiny_dir.display());
            return;
        }
    };
    bench_model("tiny.en", &dev, &backend, tiny_store.as_ref(), &tiny_config);
    let (large, large_config) = large_v3_store(tiny_store.as_ref());
    drop(tiny_store);
    bench_model("large-v3-shaped random f16 weights", &dev, &backend, &large, &large_config);
}
