//! A base-size wav2vec2 CTC model with seeded random weights, written as a transformers
//! checkpoint (`model.safetensors`, `config.json`, `vocab.json`): WhisperX's English default's
//! architecture (group-norm feature encoder, 768/12/12/3072 post-LN, 32 classes). No real
//! wav2vec2 weights can be had here, and random weights cost what trained ones cost, so the
//! benchmarks time alignment with this model (`benches/align.rs`, `benches/whole_job.sh`, and
//! on a GPU `gpu-pack/run.sh bench` through `benches/cuda.rs`). Its emissions carry no speech:
//! for timing only.

use std::collections::HashMap;
use std::io;
use std::path::Path;

const HIDDEN: usize = 768;
const LAYERS: usize = 12;
const HEADS: usize = 12;
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
/// The file whose presence means a model was written whole (written last).
const COMPLETE: &str = "vocab.json";

#[derive(Clone, Copy)]
enum Init {
    One,
    Zero,
    Random,
}

/// Every tensor of the base model with its shape and how it starts.
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

/// Write the random base model into `dir` unless a whole one is there; the same seed gives the
/// same file on every machine.
pub fn ensure_base_model(dir: &Path) -> io::Result<()> {
    if dir.join(COMPLETE).is_file() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
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
    let views = data
        .iter()
        .map(|(n, s, b)| Ok((n.clone(), safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)?)))
        .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()
        .map_err(io::Error::other)?;
    safetensors::serialize_to_file(views, &None, &dir.join("model.safetensors")).map_err(io::Error::other)?;
    let config = serde_json::json!({
        "model_type": "wav2vec2", "architectures": ["Wav2Vec2ForCTC"], "vocab_size": VOCAB.len(),
        "hidden_size": HIDDEN, "num_hidden_layers": LAYERS, "num_attention_heads": HEADS, "intermediate_size": FFN,
        "feat_extract_norm": "group", "conv_bias": false, "do_stable_layer_norm": false,
        "num_conv_pos_embeddings": POS_KERNEL, "num_conv_pos_embedding_groups": POS_GROUPS,
        "hidden_act": "gelu", "feat_extract_activation": "gelu", "pad_token_id": 0,
        "_note": "random weights (benches/support/random_wav2vec2.rs): for timing only"
    });
    std::fs::write(dir.join("config.json"), serde_json::to_string_pretty(&config)?)?;
    let vocab: HashMap<&str, usize> = VOCAB.iter().enumerate().map(|(i, v)| (*v, i)).collect();
    std::fs::write(dir.join(COMPLETE), serde_json::to_string(&vocab)?)
}

/// `--write-aligner DIR` among a bench binary's arguments: write the model there and say so.
/// Returns whether the flag was given (the binary then exits instead of benchmarking).
pub fn write_if_asked() -> bool {
    let args: Vec<String> = std::env::args().collect();
    let Some(i) = args.iter().position(|a| a == "--write-aligner") else {
        return false;
    };
    let Some(dir) = args.get(i + 1) else {
        eprintln!("--write-aligner needs a directory");
        std::process::exit(2);
    };
    match ensure_base_model(Path::new(dir)) {
        Ok(()) => println!("random base-size wav2vec2 aligner (timing only): {dir}"),
        Err(e) => {
            eprintln!("could not write the random aligner to {dir}: {e}");
            std::process::exit(1);
        }
    }
    true
}
