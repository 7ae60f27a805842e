//! wav2vec2 alignment's cost on the CPU at the real size. No real wav2vec2 weights can be had
//! here, so this writes a base-size model (WhisperX's English default's architecture: group-norm
//! feature encoder, 768/12/12/3072 post-LN, 32 classes) with seeded random weights to
//! `.cache/align-bench/wav2vec2-base-random/` (random weights cost what trained ones cost), then
//! times the model on 30 s of audio (one full WhisperX segment) and on 5 s.
//! `benches/align_speed.sh` uses the same directory for the whole-pipeline comparison.
//! The trellis group times the aligner alone (both modes) on a 30 s segment's synthetic
//! emissions, to set against the model's time on the same 30 s.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use criterion::{criterion_group, criterion_main, Criterion};

use scribe::align::{align, AlignConfig, Dictionary, Mode};
use scribe::backend::Device;
use scribe::output::result::Segment;
use scribe::Cancel;

#[path = "support/synthetic_emissions.rs"]
mod synthetic_emissions;
use scribe::models::wav2vec2::checkpoint;
use scribe::models::wav2vec2::Wav2Vec2ForCtc;
use synthetic_emissions::{spoken, transcript, Prepared, FRAMES_PER_SECOND};

const HIDDEN: usize = 768;
const LAYERS: usize = 12;
const FFN: usize = 3072;
const CONV: usize = 512;
const KERNELS: [usize; 7] = [10, 3, 3, 3, 3, 2, 2];
const POS_KERNEL: usize = 128;
const POS_GROUPS: usize = 16;
/// The English base-960h vocabulary (transformers' `vocab.json` order).
const VOCAB: [&str; 32] = [
    "<pad>", "<s>", "</s>", "<unk>", "|", "E", "T", "A", "O", "N", "I", "H", "S", "R", "D", "L", "U", "M", "W", "C",
    "F", "G", "Y", "P", "B", "V", "K", "'", "X", "J", "Q", "Z",
];
/// Standard deviation of the random weights (transformers' `initializer_range`).
const INIT_STD: f32 = 0.02;

fn model_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".cache/align-bench/wav2vec2-base-random")
}

/// Every tensor of the base model with its shape and whether it is a norm's weight (1), a
/// norm's or layer's bias (0) or a random matrix.
fn tensors() -> Vec<(String, Vec<usize>, Init)> {
    let mut t = Vec::new();
    let p = "wav2vec2";
    let mut c_in = 1;
    for (i, &k) in KERNELS.iter().enumerate() {
        t.push((format!("{p}.feature_extractor.conv_layers.{i}.conv.weight"), vec![CONV, c_in, k], Init::Random));
        c_in = CONV;
    }
    t.push((format!("{p}.feature_extractor.conv_layers.0.layer_norm.weight"), vec![CONV], Init::One));
    t.push((format!("{p}.feature_extractor.conv_layers.0.layer_norm.bias"), vec![CONV], Init::Zero));
    t.push((format!("{p}.feature_projection.layer_norm.weight"), vec![CONV], Init::One));
    t.push((format!("{p}.feature_projection.layer_norm.bias"), vec![CONV], Init::Zero));
    t.push((format!("{p}.feature_projection.projection.weight"), vec![HIDDEN, CONV], Init::Random));
    t.push((format!("{p}.feature_projection.projection.bias"), vec![HIDDEN], Init::Zero));
    t.push((
        format!("{p}.encoder.pos_conv_embed.conv.weight"),
        vec![HIDDEN, HIDDEN / POS_GROUPS, POS_KERNEL],
        Init::Random,
    ));
    t.push((format!("{p}.encoder.pos_conv_embed.conv.bias"), vec![HIDDEN], Init::Zero));
    t.push((format!("{p}.encoder.layer_norm.weight"), vec![HIDDEN], Init::One));
    t.push((format!("{p}.encoder.layer_norm.bias"), vec![HIDDEN], Init::Zero));
    for l in 0..LAYERS {
        let q = format!("{p}.encoder.layers.{l}");
        for proj in ["q_proj", "k_proj", "v_proj", "out_proj"] {
            t.push((format!("{q}.attention.{proj}.weight"), vec![HIDDEN, HIDDEN], Init::Random));
            t.push((format!("{q}.attention.{proj}.bias"), vec![HIDDEN], Init::Zero));
        }
        for ln in ["layer_norm", "final_layer_norm"] {
            t.push((format!("{q}.{ln}.weight"), vec![HIDDEN], Init::One));
            t.push((format!("{q}.{ln}.bias"), vec![HIDDEN], Init::Zero));
        }
        t.push((format!("{q}.feed_forward.intermediate_dense.weight"), vec![FFN, HIDDEN], Init::Random));
        t.push((format!("{q}.feed_forward.intermediate_dense.bias"), vec![FFN], Init::Zero));
        t.push((format!("{q}.feed_forward.output_dense.weight"), vec![HIDDEN, FFN], Init::Random));
        t.push((format!("{q}.feed_forward.output_dense.bias"), vec![HIDDEN], Init::Zero));
    }
    t.push(("lm_head.weight".into(), vec![VOCAB.len(), HIDDEN], Init::Random));
    t.push(("lm_head.bias".into(), vec![VOCAB.len()], Init::Zero));
    t
}

#[derive(Clone, Copy)]
enum Init {
    One,
    Zero,
    Random,
}

/// Write the random base model unless it is there.
pub fn ensure_model(dir: &Path) {
    if dir.join("model.safetensors").is_file() {
        return;
    }
    std::fs::create_dir_all(dir).unwrap();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut uniform = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32
    };
    let mut data: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, shape, init) in tensors() {
        let n: usize = shape.iter().product();
        let values: Vec<f32> = match init {
            Init::One => vec![1.0; n],
            Init::Zero => vec![0.0; n],
            // Uniform with the standard deviation INIT_STD.
            Init::Random => (0..n).map(|_| (uniform() * 2.0 - 1.0) * INIT_STD * 3f32.sqrt()).collect(),
        };
        data.push((name, shape, values.iter().flat_map(|v| v.to_le_bytes()).collect()));
    }
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = data
        .iter()
        .map(|(n, s, b)| {
            (n.clone(), safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b).unwrap())
        })
        .collect();
    safetensors::serialize_to_file(views, &None, &dir.join("model.safetensors")).unwrap();
    let config = serde_json::json!({
        "model_type": "wav2vec2", "architectures": ["Wav2Vec2ForCTC"], "vocab_size": VOCAB.len(),
        "hidden_size": HIDDEN, "num_hidden_layers": LAYERS, "num_attention_heads": 12, "intermediate_size": FFN,
        "feat_extract_norm": "group", "conv_bias": false, "do_stable_layer_norm": false,
        "num_conv_pos_embeddings": POS_KERNEL, "num_conv_pos_embedding_groups": POS_GROUPS,
        "hidden_act": "gelu", "feat_extract_activation": "gelu", "pad_token_id": 0,
        "_note": "random weights (benches/align.rs): for timing only"
    });
    std::fs::write(dir.join("config.json"), serde_json::to_string_pretty(&config).unwrap()).unwrap();
    let vocab: HashMap<&str, usize> = VOCAB.iter().enumerate().map(|(i, v)| (*v, i)).collect();
    std::fs::write(dir.join("vocab.json"), serde_json::to_string(&vocab).unwrap()).unwrap();
}

/// A deterministic speech-like signal (the model's cost does not depend on the samples).
fn signal(samples: usize) -> Vec<f32> {
    (0..samples).map(|i| (i as f32 * 0.031).sin() * 0.3 + ((i * 7919) % 1000) as f32 / 10_000.0).collect()
}

fn model_forward(c: &mut Criterion) {
    let dir = model_dir();
    ensure_model(&dir);
    let dev = Device::cpu();
    let mut group = c.benchmark_group("wav2vec2 base (random weights), CPU");
    group.sample_size(10);
    // `--align_compute_type`: float32 (the default), and bfloat16 where the CPU has bf16 products.
    for compute_type in ["float32", "bfloat16"] {
        let mut model = Wav2Vec2ForCtc::load(&dev, &checkpoint::open(&dir).unwrap()).unwrap();
        model.apply_compute_type(&dev, compute_type).unwrap();
        if model.compute_type(&dev) != compute_type {
            continue;
        }
        for seconds in [5usize, 30] {
            let x = signal(seconds * 16_000);
            group.bench_function(format!("log-probs of {seconds} s, {compute_type}"), |b| {
                b.iter(|| model.log_probs(&dev, &x).unwrap())
            });
        }
    }
    group.finish();
}

/// The aligner alone on one 30 s segment (what WhisperX's batched transcription hands it): the
/// stage's time is the model's plus this.
fn trellis(c: &mut Criterion) {
    const SECONDS: usize = 30;
    let text = transcript(SECONDS as f64);
    let (em, _) = spoken(&text, SECONDS * FRAMES_PER_SECOND - 1);
    let dict = Dictionary::torchaudio_base_960h();
    let segment = Segment { start: 0.0, end: SECONDS as f64, text: text.clone(), ..Default::default() };
    let mut group = c.benchmark_group(format!("aligner on a {SECONDS} s segment ({} characters)", text.len()));
    for (name, mode) in [("ctc-viterbi", Mode::CtcViterbi), ("whisperx-compat", Mode::WhisperxCompat)] {
        let cfg = AlignConfig { mode, language: "en".into(), audio_seconds: SECONDS as f64, ..Default::default() };
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut source = Prepared(em.clone());
                let splitter = scribe::pipeline::align_models::WholeText;
                align(
                    std::slice::from_ref(&segment),
                    &dict,
                    &mut source,
                    &splitter,
                    &cfg,
                    &Cancel::new(),
                    &mut |_, _| {},
                )
                .unwrap()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, model_forward, trellis);
criterion_main!(benches);
