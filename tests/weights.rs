//! Checkpoint readers: CTranslate2 `model.bin` (real faster-whisper files and small synthetic
//! ones), the Hugging Face safetensors store, and the CT2 -> HF converter.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use scribe::weights::convert::ct2_to_hf;
use scribe::weights::ct2::{Ct2Store, WhisperDims, HF_PROJ_OUT};
use scribe::weights::safetensors_store::SafetensorsStore;
use scribe::weights::{DType, WeightStore};
use scribe::Error;

// ---------------------------------------------------------------------------------------------
// A tiny CTranslate2 writer, so malformed-input tests do not need the real model.

const CT2_F32: u8 = 0;
const CT2_I8: u8 = 1;
const CT2_I16: u8 = 2;

struct Var {
    name: String,
    shape: Vec<u32>,
    dtype: u8,
    bytes: Vec<u8>,
}

#[derive(Default)]
struct Ct2Writer {
    version: u32,
    spec: String,
    vars: Vec<Var>,
    aliases: Vec<(String, String)>,
}

/// Byte offsets of landmarks in a written file, for truncation tests.
#[derive(Default, Debug)]
struct Landmarks {
    spec_name: usize,
    first_var_name: usize,
    first_payload: usize,
    alias_count: usize,
    first_alias_name: usize,
}

fn push_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&((s.len() + 1) as u16).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
    out.push(0);
}

impl Ct2Writer {
    fn whisper() -> Self {
        Ct2Writer { version: 6, spec: "WhisperSpec".into(), ..Default::default() }
    }

    fn f32(&mut self, name: &str, shape: &[u32], values: &[f32]) -> &mut Self {
        let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.raw(name, shape, CT2_F32, bytes)
    }

    fn raw(&mut self, name: &str, shape: &[u32], dtype: u8, bytes: Vec<u8>) -> &mut Self {
        self.vars.push(Var { name: name.into(), shape: shape.to_vec(), dtype, bytes });
        self
    }

    fn alias(&mut self, alias: &str, target: &str) -> &mut Self {
        self.aliases.push((alias.into(), target.into()));
        self
    }

    fn bytes(&self) -> (Vec<u8>, Landmarks) {
        let mut out = Vec::new();
        let mut marks = Landmarks::default();
        out.extend_from_slice(&self.version.to_le_bytes());
        marks.spec_name = out.len();
        push_str(&mut out, &self.spec);
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&(self.vars.len() as u32).to_le_bytes());
        for (i, v) in self.vars.iter().enumerate() {
            if i == 0 {
                marks.first_var_name = out.len();
            }
            push_str(&mut out, &v.name);
            out.push(v.shape.len() as u8);
            for d in &v.shape {
                out.extend_from_slice(&d.to_le_bytes());
            }
            out.push(v.dtype);
            out.extend_from_slice(&(v.bytes.len() as u32).to_le_bytes());
            if i == 0 {
                marks.first_payload = out.len();
            }
            out.extend_from_slice(&v.bytes);
        }
        marks.alias_count = out.len();
        out.extend_from_slice(&(self.aliases.len() as u32).to_le_bytes());
        marks.first_alias_name = out.len();
        for (a, t) in &self.aliases {
            push_str(&mut out, a);
            push_str(&mut out, t);
        }
        (out, marks)
    }
}

/// Deterministic, distinct values so that any mix-up of rows or tensors shows.
fn pattern(n: usize, seed: usize) -> Vec<f32> {
    (0..n).map(|i| ((i * 7 + seed * 13) % 97) as f32 * 0.25 - 12.0).collect()
}

/// Synthetic Whisper dims: small but with every axis distinct.
const D: u32 = 4;
const HEADS: i16 = 2;
const MELS: u32 = 3;
const VOCAB: u32 = 7;
const FFN: u32 = 8;
const SRC_POS: u32 = 5;
const TGT_POS: u32 = 6;

/// A complete synthetic WhisperSpec with one encoder and one decoder layer.
fn synthetic_whisper() -> Ct2Writer {
    let mut w = Ct2Writer::whisper();
    let mut seed = 0;
    let mut t = |w: &mut Ct2Writer, name: &str, shape: &[u32]| {
        seed += 1;
        let n = shape.iter().product::<u32>() as usize;
        w.f32(name, shape, &pattern(n, seed));
    };
    w.raw("decoder/activation", &[], CT2_I8, vec![3]);
    w.raw("decoder/num_heads", &[], CT2_I16, HEADS.to_le_bytes().to_vec());
    w.raw("encoder/num_heads", &[], CT2_I16, HEADS.to_le_bytes().to_vec());
    w.raw("decoder/scale_embeddings", &[], CT2_I8, vec![0]);
    t(&mut w, "decoder/embeddings/weight", &[VOCAB, D]);
    t(&mut w, "decoder/position_encodings/encodings", &[TGT_POS, D]);
    t(&mut w, "encoder/position_encodings/encodings", &[SRC_POS, D]);
    t(&mut w, "encoder/conv1/weight", &[D, MELS, 3]);
    t(&mut w, "encoder/conv1/bias", &[D]);
    t(&mut w, "encoder/conv2/weight", &[D, D, 3]);
    t(&mut w, "encoder/conv2/bias", &[D]);
    for stack in ["encoder", "decoder"] {
        t(&mut w, &format!("{stack}/layer_norm/gamma"), &[D]);
        t(&mut w, &format!("{stack}/layer_norm/beta"), &[D]);
        let l = format!("{stack}/layer_0");
        t(&mut w, &format!("{l}/self_attention/linear_0/weight"), &[3 * D, D]);
        // The fused bias's middle third is the k bias HF does not have: zero.
        let mut qkv_bias = pattern(3 * D as usize, 99);
        qkv_bias[D as usize..2 * D as usize].fill(0.0);
        w.f32(&format!("{l}/self_attention/linear_0/bias"), &[3 * D], &qkv_bias);
        t(&mut w, &format!("{l}/self_attention/linear_1/weight"), &[D, D]);
        t(&mut w, &format!("{l}/self_attention/linear_1/bias"), &[D]);
        for norm in ["self_attention", "ffn"] {
            t(&mut w, &format!("{l}/{norm}/layer_norm/gamma"), &[D]);
            t(&mut w, &format!("{l}/{norm}/layer_norm/beta"), &[D]);
        }
        t(&mut w, &format!("{l}/ffn/linear_0/weight"), &[FFN, D]);
        t(&mut w, &format!("{l}/ffn/linear_0/bias"), &[FFN]);
        t(&mut w, &format!("{l}/ffn/linear_1/weight"), &[D, FFN]);
        t(&mut w, &format!("{l}/ffn/linear_1/bias"), &[D]);
    }
    let l = "decoder/layer_0/attention";
    t(&mut w, &format!("{l}/linear_0/weight"), &[D, D]);
    t(&mut w, &format!("{l}/linear_0/bias"), &[D]);
    t(&mut w, &format!("{l}/linear_1/weight"), &[2 * D, D]);
    let mut kv_bias = pattern(2 * D as usize, 77);
    kv_bias[..D as usize].fill(0.0);
    w.f32(&format!("{l}/linear_1/bias"), &[2 * D], &kv_bias);
    t(&mut w, &format!("{l}/linear_2/weight"), &[D, D]);
    t(&mut w, &format!("{l}/linear_2/bias"), &[D]);
    t(&mut w, &format!("{l}/layer_norm/gamma"), &[D]);
    t(&mut w, &format!("{l}/layer_norm/beta"), &[D]);
    w.alias("decoder/projection/weight", "decoder/embeddings/weight");
    w
}

fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Assert `result` is a `Format` error about `path` whose message contains `needle`.
fn assert_format_err<T>(result: Result<T, Error>, path: &Path, needle: &str) {
    match result {
        Err(Error::Format { path: p, what }) => {
            assert_eq!(p, path);
            assert!(what.contains(needle), "message {what:?} lacks {needle:?}");
        }
        Err(other) => panic!("expected a Format error containing {needle:?}, got {other}"),
        Ok(_) => panic!("expected a Format error containing {needle:?}, got Ok"),
    }
}

/// Assert `result` is a `Tensor` error about `path` and tensor `name`, message containing `needle`.
fn assert_tensor_err<T>(result: Result<T, Error>, path: &Path, name: &str, needle: &str) {
    match result {
        Err(Error::Tensor { path: p, name: n, what }) => {
            assert_eq!(p, path);
            assert_eq!(n, name);
            assert!(what.contains(needle), "message {what:?} lacks {needle:?}");
        }
        Err(other) => panic!("expected a Tensor error for {name} containing {needle:?}, got {other}"),
        Ok(_) => panic!("expected a Tensor error for {name} containing {needle:?}, got Ok"),
    }
}

// ---------------------------------------------------------------------------------------------
// The real faster-whisper checkpoints.

fn real_model(name: &str) -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("models").join(name).join("model.bin");
    if path.is_file() {
        Some(path)
    } else {
        common::cannot_run(&format!("run models/fetch {name}"));
        None
    }
}

#[test]
fn tiny_en_dims_match_the_published_model() {
    let Some(path) = real_model("tiny.en") else { return };
    let store = Ct2Store::open(&path).unwrap();
    assert_eq!(store.binary_version(), 6);
    assert_eq!(
        store.whisper_dims().unwrap(),
        WhisperDims {
            d_model: 384,
            encoder_layers: 4,
            decoder_layers: 4,
            encoder_attention_heads: 6,
            decoder_attention_heads: 6,
            num_mel_bins: 80,
            vocab_size: 51864,
            max_source_positions: 1500,
            max_target_positions: 448,
            encoder_ffn_dim: 1536,
            decoder_ffn_dim: 1536,
        }
    );
    assert!(store.unmapped().is_empty(), "unmapped CT2 tensors: {:?}", store.unmapped());
    // 2 convs x2, 2 embed_positions, embed_tokens, 2 final norms x2, proj_out,
    // encoder layer: 4 attn weights + 3 attn biases (no k) + norms 4 + fc 4 = 15,
    // decoder layer: 15 + cross-attn (4 weights + 3 biases + 2 norm) = 24.
    assert_eq!(store.names().len(), 4 + 2 + 1 + 4 + 1 + 4 * 15 + 4 * 24);
    assert_eq!(store.view("model.encoder.conv1.weight").unwrap().shape, vec![384, 80, 3]);
    assert_eq!(store.view("model.encoder.conv1.weight").unwrap().dtype, DType::F16);
}

#[test]
fn tiny_en_split_projections_are_the_row_ranges_of_the_fused_tensors() {
    let Some(path) = real_model("tiny.en") else { return };
    let store = Ct2Store::open(&path).unwrap();
    let d = 384;
    let row_bytes = d * 2; // f16
    for stack in ["encoder", "decoder"] {
        for layer in 0..4 {
            let fused = store.ct2_view(&format!("{stack}/layer_{layer}/self_attention/linear_0/weight")).unwrap();
            assert_eq!(fused.shape, vec![3 * d, d]);
            for (i, part) in ["q_proj", "k_proj", "v_proj"].iter().enumerate() {
                let hf = format!("model.{stack}.layers.{layer}.self_attn.{part}.weight");
                let view = store.view(&hf).unwrap();
                assert_eq!(view.shape, vec![d, d], "{hf}");
                assert_eq!(view.bytes, &fused.bytes[i * d * row_bytes..(i + 1) * d * row_bytes], "{hf}");
            }
            let fused_bias = store.ct2_view(&format!("{stack}/layer_{layer}/self_attention/linear_0/bias")).unwrap();
            let q_bias = store.view(&format!("model.{stack}.layers.{layer}.self_attn.q_proj.bias")).unwrap();
            let v_bias = store.view(&format!("model.{stack}.layers.{layer}.self_attn.v_proj.bias")).unwrap();
            assert_eq!(q_bias.bytes, &fused_bias.bytes[..d * 2]);
            assert_eq!(v_bias.bytes, &fused_bias.bytes[2 * d * 2..]);
            assert!(store.view(&format!("model.{stack}.layers.{layer}.self_attn.k_proj.bias")).is_none());
        }
    }
    for layer in 0..4 {
        let fused = store.ct2_view(&format!("decoder/layer_{layer}/attention/linear_1/weight")).unwrap();
        let k = store.view(&format!("model.decoder.layers.{layer}.encoder_attn.k_proj.weight")).unwrap();
        let v = store.view(&format!("model.decoder.layers.{layer}.encoder_attn.v_proj.weight")).unwrap();
        assert_eq!(k.bytes, &fused.bytes[..d * row_bytes]);
        assert_eq!(v.bytes, &fused.bytes[d * row_bytes..]);
        assert_ne!(k.bytes, v.bytes);
    }
    let embed = store.view("model.decoder.embed_tokens.weight").unwrap();
    let proj = store.view(HF_PROJ_OUT).unwrap();
    assert_eq!(proj.shape, vec![51864, 384]);
    assert_eq!(proj.bytes, embed.bytes);
    // The views borrow the mapped file: the same bytes at the same address.
    assert_eq!(proj.bytes.as_ptr(), embed.bytes.as_ptr());
    assert_eq!(store.attribute("encoder/num_heads"), Some(6));
    assert_eq!(store.attribute("decoder/activation"), Some(3));
}

#[test]
fn base_dims_match_the_published_multilingual_model() {
    let Some(path) = real_model("base") else { return };
    let dims = Ct2Store::open(&path).unwrap().whisper_dims().unwrap();
    assert_eq!((dims.d_model, dims.encoder_layers, dims.decoder_layers), (512, 6, 6));
    assert_eq!((dims.encoder_attention_heads, dims.decoder_attention_heads), (8, 8));
    assert_eq!((dims.vocab_size, dims.num_mel_bins, dims.encoder_ffn_dim), (51865, 80, 2048));
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Convert `in_dir`, reopen the result, and check every tensor is byte-identical to the CT2 view.
fn assert_round_trip(in_dir: &Path) -> (tempfile::TempDir, Ct2Store) {
    let out = tempfile::tempdir().unwrap();
    ct2_to_hf(in_dir, out.path()).unwrap();
    let ct2 = Ct2Store::open(&in_dir.join("model.bin")).unwrap();
    let hf = SafetensorsStore::open(&out.path().join("model.safetensors")).unwrap();
    let mut expected = ct2.names();
    expected.retain(|n| n != HF_PROJ_OUT);
    assert_eq!(hf.names(), expected);
    for name in &expected {
        let (a, b) = (ct2.view(name).unwrap(), hf.view(name).unwrap());
        assert_eq!((a.dtype, &a.shape), (b.dtype, &b.shape), "{name}");
        assert!(a.bytes == b.bytes, "{name}: bytes differ");
    }
    // Our writer's output must also satisfy the reference safetensors implementation.
    let raw = std::fs::read(out.path().join("model.safetensors")).unwrap();
    let reference = safetensors::SafeTensors::deserialize(&raw).unwrap();
    assert_eq!(reference.len(), expected.len());
    assert_eq!(hf.metadata().get("format").map(String::as_str), Some("pt"));
    assert_eq!(
        std::fs::read(in_dir.join("tokenizer.json")).unwrap(),
        std::fs::read(out.path().join("tokenizer.json")).unwrap()
    );
    // No temporary files left behind.
    let leftovers: Vec<_> = std::fs::read_dir(out.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    (out, ct2)
}

#[test]
fn tiny_en_round_trips_through_the_hugging_face_layout() {
    let Some(path) = real_model("tiny.en") else { return };
    let (out, _) = assert_round_trip(path.parent().unwrap());
    let config = read_json(&out.path().join("config.json"));
    assert_eq!(config["d_model"], 384);
    assert_eq!(config["encoder_layers"], 4);
    assert_eq!(config["decoder_attention_heads"], 6);
    assert_eq!(config["num_mel_bins"], 80);
    assert_eq!(config["vocab_size"], 51864);
    assert_eq!(config["max_source_positions"], 1500);
    assert_eq!(config["decoder_ffn_dim"], 1536);
    assert_eq!(config["decoder_start_token_id"], 50257);
    assert_eq!(config["eos_token_id"], 50256);
    assert_eq!(config["pad_token_id"], 50256);
    assert_eq!(config["torch_dtype"], "float16");
    assert_eq!(config["begin_suppress_tokens"], serde_json::json!([220, 50256]));
    assert_eq!(config["suppress_tokens"].as_array().unwrap().len(), 90);
    let generation = read_json(&out.path().join("generation_config.json"));
    assert_eq!(generation["is_multilingual"], false);
    assert_eq!(generation["no_timestamps_token_id"], 50362);
    assert_eq!(generation["alignment_heads"][2], serde_json::json!([2, 5]));
    assert!(generation.get("lang_to_id").is_none());
}

#[test]
fn base_generation_config_names_the_languages() {
    let Some(path) = real_model("base") else { return };
    let out = tempfile::tempdir().unwrap();
    ct2_to_hf(path.parent().unwrap(), out.path()).unwrap();
    let generation = read_json(&out.path().join("generation_config.json"));
    assert_eq!(generation["is_multilingual"], true);
    assert_eq!(generation["lang_to_id"]["<|en|>"], 50259);
    assert_eq!(generation["lang_to_id"].as_object().unwrap().len(), 99);
    assert_eq!(generation["task_to_id"]["transcribe"], 50359);
    let config = read_json(&out.path().join("config.json"));
    assert_eq!(
        (config["eos_token_id"].clone(), config["decoder_start_token_id"].clone()),
        (50257.into(), 50258.into())
    );
}

// ---------------------------------------------------------------------------------------------
// Synthetic checkpoints.

/// A synthetic CT2 model directory: model.bin, config.json and a minimal tokenizer.json.
fn synthetic_dir(writer: &Ct2Writer) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "model.bin", &writer.bytes().0);
    let config = r#"{"alignment_heads": [[0, 1]], "lang_ids": [], "suppress_ids": [1, 2], "suppress_ids_begin": [5]}"#;
    write_file(dir.path(), "config.json", config.as_bytes());
    let tokenizer = r#"{"added_tokens": [
        {"id": 4, "content": "<|endoftext|>"}, {"id": 5, "content": "<|startoftranscript|>"},
        {"id": 6, "content": "<|notimestamps|>"}]}"#;
    write_file(dir.path(), "tokenizer.json", tokenizer.as_bytes());
    dir
}

#[test]
fn synthetic_checkpoint_maps_dims_and_round_trips() {
    let dir = synthetic_dir(&synthetic_whisper());
    let (out, ct2) = assert_round_trip(dir.path());
    let dims = ct2.whisper_dims().unwrap();
    assert_eq!((dims.d_model, dims.num_mel_bins, dims.vocab_size), (4, 3, 7));
    assert_eq!((dims.encoder_layers, dims.decoder_layers, dims.encoder_attention_heads), (1, 1, 2));
    assert_eq!((dims.max_source_positions, dims.max_target_positions, dims.decoder_ffn_dim), (5, 6, 8));
    assert!(ct2.unmapped().is_empty(), "unmapped CT2 tensors: {:?}", ct2.unmapped());
    // Per stack: 4 + 3 attention, 2 + 2 norms, 4 fc (+ 9 cross-attention in the decoder);
    // top level: 4 conv, 2 positions, embed_tokens, 4 final-norm, proj_out.
    assert_eq!(ct2.names().len(), 15 + 24 + 4 + 2 + 1 + 4 + 1);
    let norm = ct2.view("model.encoder.layer_norm.bias").unwrap();
    assert_eq!(norm.bytes, ct2.ct2_view("encoder/layer_norm/beta").unwrap().bytes);
    assert_ne!(norm.bytes, ct2.view("model.encoder.layer_norm.weight").unwrap().bytes);
    let q = ct2.f32("model.decoder.layers.0.self_attn.q_proj.bias", &[4]).unwrap();
    assert_eq!(q, pattern(12, 99)[..4]);
    let v = ct2.f32("model.decoder.layers.0.encoder_attn.v_proj.bias", &[4]).unwrap();
    assert_eq!(v, pattern(8, 77)[4..]);
    let config = read_json(&out.path().join("config.json"));
    assert_eq!(config["decoder_start_token_id"], 5);
    assert_eq!(config["torch_dtype"], "float32");
}

#[test]
fn nonzero_fused_k_bias_is_refused() {
    let mut w = synthetic_whisper();
    let name = "encoder/layer_0/self_attention/linear_0/bias";
    let var = w.vars.iter_mut().find(|v| v.name == name).unwrap();
    var.bytes[4 * 4..4 * 5].copy_from_slice(&0.5f32.to_le_bytes()); // first k-bias entry
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "model.bin", &w.bytes().0);
    assert_tensor_err(Ct2Store::open(&path), &path, name, "k_proj.bias");
}

#[test]
fn int8_weights_are_dequantized_per_row() {
    let mut w = synthetic_whisper();
    let name = "decoder/layer_0/ffn/linear_1/weight"; // [D, FFN]
    let q: Vec<i8> = (0..(D * FFN) as i32).map(|i| (i % 21 - 10) as i8).collect();
    let scales: Vec<f32> = (0..D).map(|r| 2.0 + r as f32).collect();
    let var = w.vars.iter_mut().find(|v| v.name == name).unwrap();
    var.dtype = CT2_I8;
    var.bytes = q.iter().map(|&b| b as u8).collect();
    w.f32(&format!("{name}_scale"), &[D], &scales);
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "model.bin", &w.bytes().0);
    let store = Ct2Store::open(&path).unwrap();
    let got = store.f32("model.decoder.layers.0.fc2.weight", &[D as usize, FFN as usize]).unwrap();
    let expected: Vec<f32> = q.iter().enumerate().map(|(i, &v)| v as f32 / scales[i / FFN as usize]).collect();
    assert_eq!(got, expected);
    assert_eq!(store.view("model.decoder.layers.0.fc2.weight").unwrap().dtype, DType::F32);

    // Without its scale an int8 weight cannot be read.
    w.vars.retain(|v| !v.name.ends_with("_scale"));
    let path = write_file(dir.path(), "noscale.bin", &w.bytes().0);
    assert_tensor_err(Ct2Store::open(&path), &path, name, "_scale` is missing");
}

#[test]
fn truncated_model_bin_is_a_format_error_at_every_cut() {
    let (bytes, marks) = synthetic_whisper().bytes();
    let dir = tempfile::tempdir().unwrap();
    let cuts = [
        (2, "the binary version"),
        (marks.spec_name + 4, "the model spec name"),
        (marks.first_var_name + 3, "the name of variable 0"),
        (marks.first_payload - 2, "the byte count of variable `decoder/activation`"),
        (marks.alias_count - 3, "the payload of variable"),
        (marks.alias_count + 1, "the alias count"),
        (marks.first_alias_name + 5, "the name of alias 0"),
        (bytes.len() - 1, "the target of alias `decoder/projection/weight`"),
    ];
    for (cut, needle) in cuts {
        let path = write_file(dir.path(), &format!("cut{cut}.bin"), &bytes[..cut]);
        assert_format_err(Ct2Store::open(&path), &path, needle);
        assert!(Ct2Store::open(&path).err().unwrap().to_string().contains(&*path.to_string_lossy()));
    }
    // Trailing garbage is as suspicious as a short file.
    let mut long = bytes.clone();
    long.extend_from_slice(b"junk");
    let path = write_file(dir.path(), "long.bin", &long);
    assert_format_err(Ct2Store::open(&path), &path, "unexpected bytes after the aliases");
}

#[test]
fn unsupported_versions_and_specs_and_empty_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for version in [3, 7] {
        let mut w = synthetic_whisper();
        w.version = version;
        let path = write_file(dir.path(), &format!("v{version}.bin"), &w.bytes().0);
        assert_format_err(Ct2Store::open(&path), &path, &format!("binary version {version}"));
    }
    let mut w = synthetic_whisper();
    w.spec = "TransformerSpec".into();
    let path = write_file(dir.path(), "spec.bin", &w.bytes().0);
    assert_format_err(Ct2Store::open(&path), &path, "TransformerSpec");

    let path = write_file(dir.path(), "empty.bin", b"");
    assert_format_err(Ct2Store::open(&path), &path, "empty file");
    let path = write_file(dir.path(), "empty.safetensors", b"");
    assert_format_err(SafetensorsStore::open(&path), &path, "too short");
}

#[test]
fn bad_variable_records_name_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = synthetic_whisper();
    w.vars[5].dtype = 42;
    let name = w.vars[5].name.clone();
    let path = write_file(dir.path(), "dtype.bin", &w.bytes().0);
    assert_tensor_err(Ct2Store::open(&path), &path, &name, "unknown CTranslate2 dtype id 42");

    let mut w = synthetic_whisper();
    w.vars[5].shape[0] += 1;
    let path = write_file(dir.path(), "shape.bin", &w.bytes().0);
    assert_tensor_err(Ct2Store::open(&path), &path, &name, "needs");

    let mut w = synthetic_whisper();
    w.aliases[0].1 = "decoder/nowhere".into();
    let path = write_file(dir.path(), "alias.bin", &w.bytes().0);
    assert_tensor_err(Ct2Store::open(&path), &path, "decoder/projection/weight", "decoder/nowhere");

    let mut w = synthetic_whisper();
    let fused = w.vars.iter_mut().find(|v| v.name == "encoder/layer_0/self_attention/linear_0/weight").unwrap();
    fused.shape = vec![3 * D + 1, D];
    fused.bytes.extend(std::iter::repeat_n(0, 4 * D as usize));
    let path = write_file(dir.path(), "fused.bin", &w.bytes().0);
    assert_tensor_err(
        Ct2Store::open(&path),
        &path,
        "encoder/layer_0/self_attention/linear_0/weight",
        "do not split into 3",
    );
}

#[test]
fn weight_store_reports_wrong_shapes_and_missing_tensors() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "model.bin", &synthetic_whisper().bytes().0);
    let store = Ct2Store::open(&path).unwrap();
    let name = "model.encoder.conv1.weight";
    assert_tensor_err(store.f32(name, &[4, 3]), &path, name, "has shape [4, 3, 3], expected [4, 3]");
    assert_tensor_err(store.f32("model.encoder.conv9.weight", &[1]), &path, "model.encoder.conv9.weight", "missing");
    assert!(store.f32_opt("model.encoder.conv9.weight", &[1]).unwrap().is_none());

    let out = tempfile::tempdir().unwrap();
    let st_path = out.path().join("model.safetensors");
    let tensors: BTreeMap<String, _> = [(name.to_string(), store.view(name).unwrap())].into();
    scribe::weights::convert::write_safetensors(&st_path, &tensors).unwrap();
    let st = SafetensorsStore::open(&st_path).unwrap();
    assert_eq!(st.f32(name, &[4, 3, 3]).unwrap(), store.f32(name, &[4, 3, 3]).unwrap());
    assert_tensor_err(st.f32(name, &[12, 3]), &st_path, name, "expected [12, 3]");
    assert_tensor_err(st.f32("nope", &[1]), &st_path, "nope", "missing");
}

/// A safetensors file with `header` as its JSON and `data_len` bytes of data.
fn safetensors_bytes(header: &str, data_len: usize) -> Vec<u8> {
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend(std::iter::repeat_n(0u8, data_len));
    out
}

#[test]
fn corrupt_safetensors_headers_are_format_errors() {
    let dir = tempfile::tempdir().unwrap();
    let good = r#"{"w":{"dtype":"F16","shape":[2,2],"data_offsets":[0,8]}}"#;
    let path = write_file(dir.path(), "good.safetensors", &safetensors_bytes(good, 8));
    let store = SafetensorsStore::open(&path).unwrap();
    assert_eq!(store.view("w").unwrap().shape, vec![2, 2]);

    let path = write_file(dir.path(), "json.safetensors", &safetensors_bytes("{\"w\": [", 8));
    assert_format_err(SafetensorsStore::open(&path), &path, "not a JSON object");

    let mut bytes = safetensors_bytes(good, 8);
    bytes[..8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    let path = write_file(dir.path(), "len.safetensors", &bytes);
    assert_format_err(SafetensorsStore::open(&path), &path, "runs past the end");

    let path = write_file(dir.path(), "short.safetensors", &[1, 2, 3]);
    assert_format_err(SafetensorsStore::open(&path), &path, "too short");

    let beyond = r#"{"w":{"dtype":"F16","shape":[2,2],"data_offsets":[4,12]}}"#;
    let path = write_file(dir.path(), "beyond.safetensors", &safetensors_bytes(beyond, 8));
    assert_tensor_err(SafetensorsStore::open(&path), &path, "w", "outside the 8 bytes");

    let mismatch = r#"{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,8]}}"#;
    let path = write_file(dir.path(), "mismatch.safetensors", &safetensors_bytes(mismatch, 8));
    assert_tensor_err(SafetensorsStore::open(&path), &path, "w", "needs");

    let dtype = r#"{"w":{"dtype":"F8_E4M3","shape":[8],"data_offsets":[0,8]}}"#;
    let path = write_file(dir.path(), "dtype.safetensors", &safetensors_bytes(dtype, 8));
    assert_tensor_err(SafetensorsStore::open(&path), &path, "w", "F8_E4M3");
}

#[test]
fn conversion_errors_name_the_file_and_field() {
    let dir = synthetic_dir(&synthetic_whisper());
    let out = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.json");

    std::fs::write(&config, r#"{"suppress_ids": [1], "alignment_heads": []}"#).unwrap();
    match ct2_to_hf(dir.path(), out.path()) {
        Err(Error::Config { path, field, .. }) => {
            assert_eq!((path, field.as_str()), (config.clone(), "suppress_ids_begin"))
        }
        other => panic!("expected a Config error, got {other:?}"),
    }
    std::fs::write(&config, r#"{"suppress_ids": "1", "suppress_ids_begin": []}"#).unwrap();
    match ct2_to_hf(dir.path(), out.path()) {
        Err(Error::Config { path, field, .. }) => assert_eq!((path, field.as_str()), (config.clone(), "suppress_ids")),
        other => panic!("expected a Config error, got {other:?}"),
    }
    std::fs::remove_file(&config).unwrap();
    match ct2_to_hf(dir.path(), out.path()) {
        Err(Error::Io { path, .. }) => assert_eq!(path, config),
        other => panic!("expected an Io error, got {other:?}"),
    }

    // A CT2 tensor with no HF name must not be dropped silently.
    let mut w = synthetic_whisper();
    w.f32("decoder/layer_0/mystery/weight", &[2], &[1.0, 2.0]);
    let dir = synthetic_dir(&w);
    assert_tensor_err(
        ct2_to_hf(dir.path(), out.path()),
        &dir.path().join("model.bin"),
        "decoder/layer_0/mystery/weight",
        "no Hugging Face name",
    );
    // Nothing was written by the failed conversions.
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);
}

#[test]
fn quantized_embedding_is_shared_with_its_alias_and_int16_uses_one_scale() {
    let mut w = synthetic_whisper();
    let embed = w.vars.iter_mut().find(|v| v.name == "decoder/embeddings/weight").unwrap();
    embed.dtype = CT2_I8;
    embed.bytes = (0..VOCAB * D).map(|i| (i as i8).wrapping_mul(3) as u8).collect();
    let row_scales: Vec<f32> = (0..VOCAB).map(|r| 1.0 + r as f32).collect();
    w.f32("decoder/embeddings/weight_scale", &[VOCAB], &row_scales);

    let name = "encoder/layer_0/ffn/linear_0/weight"; // [FFN, D]
    let fc1 = w.vars.iter_mut().find(|v| v.name == name).unwrap();
    fc1.dtype = CT2_I16;
    let q: Vec<i16> = (0..(FFN * D) as i16).map(|i| i * 100 - 1000).collect();
    fc1.bytes = q.iter().flat_map(|v| v.to_le_bytes()).collect();
    w.f32(&format!("{name}_scale"), &[], &[50.0]);

    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "model.bin", &w.bytes().0);
    let store = Ct2Store::open(&path).unwrap();
    let tokens = store.f32("model.decoder.embed_tokens.weight", &[VOCAB as usize, D as usize]).unwrap();
    assert_eq!(tokens[D as usize], 12.0 / 2.0); // row 1, element 0: q = 4 * 3, scale 2
    let (e, p) = (store.view("model.decoder.embed_tokens.weight").unwrap(), store.view(HF_PROJ_OUT).unwrap());
    assert_eq!(e.bytes.as_ptr(), p.bytes.as_ptr());
    let fc1 = store.f32("model.encoder.layers.0.fc1.weight", &[FFN as usize, D as usize]).unwrap();
    assert_eq!(fc1, q.iter().map(|&v| v as f32 / 50.0).collect::<Vec<_>>());
    assert!(store.names().iter().all(|n| !n.ends_with("_scale")));
}
