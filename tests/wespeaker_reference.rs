//! WeSpeaker ResNet34 in Rust (`scribe::models::wespeaker`) against pyannote.audio 4.0.7's own
//! `WeSpeakerResNet34.forward(waveforms, weights)` (tests/reference/make_wespeaker_reference.py:
//! torch 2.8, CPU float32) on a small random ResNet34 (m_channels 4, embed_dim 32; the real
//! checkpoint is gated): crops of real recordings and synthetic waveforms, with no weights, soft
//! weights, all-zero, partial and random masks, masks of the ResNet's frame count, half of it and
//! other lengths (589 segmentation frames onto 125 ResNet frames). The weights are read from the
//! Lightning-style `pytorch_model.bin` pyannote publishes (restricted unpickler) and from a
//! safetensors copy. Also: a batch item equals the item alone, `frame_features` + `pool` equals
//! `embed`, and damaged checkpoints or bad inputs are errors naming what is wrong.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::root;
use scribe::audio::load_audio;
use scribe::backend::Device;
use scribe::models::wespeaker::{checkpoint, WeSpeakerConfig, WeSpeakerResNet34, MIN_NUM_SAMPLES};
use scribe::weights::convert::write_safetensors;
use scribe::weights::pickle::TorchCheckpoint;
use scribe::weights::safetensors_store::SafetensorsStore;
use scribe::weights::WeightStore;
use serde_json::Value;

/// Largest |Rust − PyTorch| allowed on an embedding value (they reach ~0.45).
const MAX_ABS_DIFF: f32 = 1e-4;
/// A batch item against the same item alone, and the split forward against `embed`: the same
/// arithmetic on the CPU, in other batch shapes.
const SAME_ABS_DIFF: f32 = 1e-6;

fn data() -> PathBuf {
    root().join("tests/reference/data/wespeaker")
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

fn load(dev: &Device, file: &str) -> WeSpeakerResNet34 {
    WeSpeakerResNet34::load(dev, checkpoint::open(&data().join(file)).unwrap().as_ref()).unwrap()
}

fn case<'a>(m: &'a Value, name: &str) -> &'a Value {
    m["cases"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("no case {name}"))
}

/// A case's waveforms: crops of ../shared recordings decoded by Scribe (checked against the
/// reference's sums) or stored synthetic ones. None (a failure under CI) when a recording is
/// missing.
fn waveforms(case: &Value, r: &SafetensorsStore) -> Option<Vec<Vec<f32>>> {
    let mut out = Vec::new();
    for input in case["inputs"].as_array().unwrap() {
        if let Some(name) = input["synthetic"].as_str() {
            out.push(tensor(r, &format!("waveform.{name}")).0);
            continue;
        }
        let file = input["file"].as_str().unwrap();
        let path = common::speech(file);
        if !path.is_file() {
            common::cannot_run(&format!("{} is missing", path.display()));
            return None;
        }
        let audio = load_audio(&path).unwrap();
        let start = input["start"].as_u64().unwrap() as usize;
        let crop = audio[start..start + input["length"].as_u64().unwrap() as usize].to_vec();
        let sum: f64 = crop.iter().map(|&x| x as f64).sum();
        assert!((sum - input["sum"].as_f64().unwrap()).abs() < 1e-6, "{file}: decoded samples differ (sum {sum})");
        out.push(crop);
    }
    Some(out)
}

fn weights(case: &Value, r: &SafetensorsStore) -> Option<Vec<f32>> {
    (!case["weights"].is_null()).then(|| tensor(r, &format!("weights.{}", case["name"].as_str().unwrap())).0)
}

fn embed(dev: &Device, model: &WeSpeakerResNet34, rows: &[Vec<f32>], weights: Option<&[f32]>) -> Vec<f32> {
    let rows: Vec<&[f32]> = rows.iter().map(Vec::as_slice).collect();
    dev.download(&model.embed(dev, &rows, weights).unwrap()).unwrap()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max)
}

/// Every case's embeddings from `model`, checked against pyannote's; returns them by case.
fn check_cases(dev: &Device, model: &WeSpeakerResNet34, source: &str) -> Option<BTreeMap<String, Vec<f32>>> {
    let (m, r) = (manifest(), reference());
    let mut out = BTreeMap::new();
    let mut worst = 0.0f32;
    for case in m["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let rows = waveforms(case, &r)?;
        let w = weights(case, &r);
        let got = embed(dev, model, &rows, w.as_deref());
        let (want, shape) = tensor(&r, &format!("embedding.{name}"));
        let (exact, _) = tensor(&r, &format!("embedding64.{name}"));
        assert_eq!([rows.len(), model.config.embed_dim], shape[..], "{name}");
        let (diff, diff64) = (max_diff(&got, &want), max_diff(&got, &exact));
        eprintln!(
            "{source} {name}: B {} × {} samples, weights {}: max |Δ| {diff:.2e} (vs float64 {diff64:.2e}; \
             torch's float32 {:.2e})",
            rows.len(),
            rows[0].len(),
            case["weights"],
            case["float32_vs_float64_max_abs"].as_f64().unwrap()
        );
        assert!(diff <= MAX_ABS_DIFF, "{source} {name}: embedding differs by {diff}");
        worst = worst.max(diff);
        out.insert(name.to_string(), got);
    }
    eprintln!("{source}: worst max |Δ| over all cases {worst:.2e} (allowed {MAX_ABS_DIFF:.0e})");
    Some(out)
}

#[test]
fn the_config_is_read_from_the_tensors_and_the_minimum_is_pyannotes() {
    let m = manifest();
    for file in [checkpoint::CHECKPOINT_FILE, checkpoint::SAFETENSORS_FILE] {
        let store = checkpoint::open(&data().join(file)).unwrap();
        let config = WeSpeakerConfig::from_store(store.as_ref()).unwrap();
        let want = WeSpeakerConfig {
            m_channels: m["m_channels"].as_u64().unwrap() as usize,
            embed_dim: m["embed_dim"].as_u64().unwrap() as usize,
            ..WeSpeakerConfig::default()
        };
        assert_eq!(config, want, "{file}");
        assert_eq!(config.pooled_channels(), 8 * want.m_channels * 10);
    }
    // The frame counts pyannote's `ResNet.num_frames` gives, as the script computed them.
    for case in m["cases"].as_array().unwrap() {
        let fbank = case["fbank_frames"].as_u64().unwrap() as usize;
        assert_eq!(WeSpeakerConfig::default().num_frames(fbank), case["resnet_frames"].as_u64().unwrap() as usize);
    }
    assert_eq!(MIN_NUM_SAMPLES as u64, m["min_num_samples"].as_u64().unwrap());
    // The `.bin` is a Lightning checkpoint: tensors under `state_dict`, with hyper-parameters.
    let ckpt = TorchCheckpoint::open(&data().join(checkpoint::CHECKPOINT_FILE)).unwrap();
    let hp = ckpt.hyper_parameters().expect("hyper_parameters");
    assert_eq!(hp.get("num_mel_bins"), Some(&scribe::weights::pickle::Value::Int(80)));
    assert!(ckpt.object.get("state_dict").is_some());
}

#[test]
fn embeddings_match_pyannote_from_the_bin_and_from_safetensors() {
    let dev = Device::cpu();
    let Some(from_bin) = check_cases(&dev, &load(&dev, checkpoint::CHECKPOINT_FILE), "pytorch_model.bin") else {
        return;
    };
    let Some(from_st) = check_cases(&dev, &load(&dev, checkpoint::SAFETENSORS_FILE), "model.safetensors") else {
        return;
    };
    assert_eq!(from_bin, from_st);
    // A model directory: safetensors preferred.
    let from_dir = WeSpeakerResNet34::load(&dev, checkpoint::open(&data()).unwrap().as_ref()).unwrap();
    let (m, r) = (manifest(), reference());
    let c = case(&m, "chirp_1s37");
    assert_eq!(embed(&dev, &from_dir, &waveforms(c, &r).unwrap(), None), from_bin["chirp_1s37"]);
}

#[test]
fn a_bare_resnet_state_dict_without_the_resnet_prefix_loads_the_same() {
    let dev = Device::cpu();
    let store = checkpoint::open(&data().join(checkpoint::SAFETENSORS_FILE)).unwrap();
    let views: BTreeMap<String, _> = store
        .names()
        .into_iter()
        .filter_map(|n| store.view(&n).map(|v| (n.strip_prefix("resnet.").expect("pyannote names").to_string(), v)))
        .collect();
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("bare.safetensors");
    write_safetensors(&p, &views).unwrap();
    let bare = WeSpeakerResNet34::load(&dev, checkpoint::open(&p).unwrap().as_ref()).unwrap();
    assert_eq!(bare.config.prefix, "");
    let model = load(&dev, checkpoint::SAFETENSORS_FILE);
    let (m, r) = (manifest(), reference());
    let c = case(&m, "noise_0s5_mask");
    let (rows, w) = (waveforms(c, &r).unwrap(), weights(c, &r));
    assert_eq!(embed(&dev, &bare, &rows, w.as_deref()), embed(&dev, &model, &rows, w.as_deref()));
}

#[test]
fn a_batch_item_equals_the_item_alone() {
    let dev = Device::cpu();
    let model = load(&dev, checkpoint::SAFETENSORS_FILE);
    let (m, r) = (manifest(), reference());
    for name in ["two_speakers_10s_3masks", "batch_spk1_soft", "batch_spk1_half_mask"] {
        let c = case(&m, name);
        let Some(rows) = waveforms(c, &r) else { return };
        let w = weights(c, &r).unwrap();
        let whole = embed(&dev, &model, &rows, Some(&w));
        let (e, per_row) = (model.config.embed_dim, w.len() / rows.len());
        for (i, row) in rows.iter().enumerate() {
            let alone = embed(&dev, &model, std::slice::from_ref(row), Some(&w[i * per_row..(i + 1) * per_row]));
            let diff = max_diff(&alone, &whole[i * e..(i + 1) * e]);
            eprintln!("{name}[{i}] alone vs in the batch: max |Δ| {diff:.2e}");
            assert!(diff <= SAME_ABS_DIFF, "{name}[{i}]: {diff}");
        }
    }
}

#[test]
fn frame_features_then_pool_equals_embed_and_pyannotes_frames() {
    let dev = Device::cpu();
    let model = load(&dev, checkpoint::SAFETENSORS_FILE);
    let (m, r) = (manifest(), reference());

    // pyannote's `forward_frames` (rearranged as TSTP pools it) on one case.
    let frames_case = m["frames_case"].as_str().unwrap();
    let Some(rows) = waveforms(case(&m, frames_case), &r) else { return };
    let fbank = model.fbank(&dev, &[&rows[0]]).unwrap();
    let features = model.frame_features(&dev, &fbank).unwrap();
    let (want, shape) = tensor(&r, &format!("frames.{frames_case}"));
    assert_eq!(features.shape(), &shape[..]);
    let got = dev.download(&features).unwrap();
    let scale = want.iter().fold(0.0f32, |a, v| a.max(v.abs()));
    let diff = max_diff(&got, &want);
    eprintln!("frames.{frames_case} {shape:?}: max |Δ| {diff:.2e} (values up to {scale:.2})");
    assert!(diff <= MAX_ABS_DIFF * scale.max(1.0), "frames differ by {diff}");

    // The diarization use: one window through the ResNet once, its features repeated for three
    // local speakers, pooled with their masks — what `embed` gives for the window repeated.
    let c = case(&m, "two_speakers_10s_3masks");
    let Some(rows) = waveforms(c, &r) else { return };
    assert!(rows.iter().all(|w| w == &rows[0]));
    let w = weights(c, &r).unwrap();
    let fbank = model.fbank(&dev, &[&rows[0]]).unwrap();
    let features = model.frame_features(&dev, &fbank).unwrap();
    assert_eq!(features.shape(), &[1, model.config.pooled_channels(), 125]);
    let repeated = dev.index_select(&features, &[0, 0, 0]).unwrap();
    let split = dev.download(&model.pool(&dev, &repeated, Some(&w)).unwrap()).unwrap();
    let whole = embed(&dev, &model, &rows, Some(&w));
    let diff = max_diff(&split, &whole);
    eprintln!("frame_features + pool vs embed: max |Δ| {diff:.2e}");
    assert!(diff <= SAME_ABS_DIFF, "{diff}");
    let (want, _) = tensor(&r, "embedding.two_speakers_10s_3masks");
    assert!(max_diff(&split, &want) <= MAX_ABS_DIFF);
    // The all-zero mask (speaker 2) pools to zeros: the embedding is seg_1's bias, the same for
    // any window.
    let e = model.config.embed_dim;
    let silent = dev.download(&model.pool(&dev, &features, Some(&[0.0; 7])).unwrap()).unwrap();
    assert_eq!(silent, split[e..2 * e]);
}

#[test]
fn short_unweighted_input_is_nan_as_in_pyannote_and_bad_inputs_are_errors() {
    let dev = Device::cpu();
    let model = load(&dev, checkpoint::SAFETENSORS_FILE);
    let r = reference();
    let (noise, _) = tensor(&r, "waveform.noise_400");
    assert_eq!(noise.len(), MIN_NUM_SAMPLES);
    // One ResNet frame and no weights: torch's unbiased std of one value is NaN, so is the
    // embedding (pyannote's min_num_samples search only looks for exceptions).
    let emb = embed(&dev, &model, std::slice::from_ref(&noise), None);
    assert!(emb.iter().all(|v| v.is_nan()), "{emb:?}");
    // One sample short of the minimum: an error, as torchaudio's assert.
    let err = model.embed(&dev, &[&noise[..MIN_NUM_SAMPLES - 1]], None).err().unwrap().to_string();
    assert!(err.contains("399") && err.contains("shorter than one frame"), "{err}");
    // Items of different lengths, no items, weights that are not [B, mask_frames].
    let err = model.embed(&dev, &[&noise, &noise[..MIN_NUM_SAMPLES - 1]], None).err().unwrap().to_string();
    assert!(err.contains("one length"), "{err}");
    assert!(model.embed(&dev, &[], None).is_err());
    let err = model.embed(&dev, &[&noise, &noise], Some(&[1.0; 3])).err().unwrap().to_string();
    assert!(err.contains("3 weights for a batch of 2"), "{err}");
    assert!(model.embed(&dev, &[&noise], Some(&[])).is_err());
    // Features of the wrong width.
    let x = dev.upload(&[0.0; 2 * 64 * 10], &[2, 10, 64]).unwrap();
    assert!(model.frame_features(&dev, &x).err().unwrap().to_string().contains("80"));
    let x = dev.upload(&[0.0; 2 * 7 * 3], &[2, 7, 3]).unwrap();
    assert!(model.pool(&dev, &x, None).err().unwrap().to_string().contains("320"));
}

#[test]
fn damaged_checkpoints_are_errors_naming_the_file_and_tensor() {
    let tmp = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(data().join(checkpoint::CHECKPOINT_FILE)).unwrap();
    for (name, cut) in [("half.bin", bytes.len() / 2), ("head.bin", 100), ("empty.bin", 0)] {
        let p = tmp.path().join(name);
        std::fs::write(&p, &bytes[..cut]).unwrap();
        let err = checkpoint::open(&p).err().expect("a damaged checkpoint is an error").to_string();
        assert!(err.contains(name), "{err}");
    }
    let st = std::fs::read(data().join(checkpoint::SAFETENSORS_FILE)).unwrap();
    let p = tmp.path().join("half.safetensors");
    std::fs::write(&p, &st[..st.len() / 2]).unwrap();
    assert!(checkpoint::open(&p).err().unwrap().to_string().contains("half.safetensors"));
    for missing in ["missing.bin", "nowhere"] {
        let err = checkpoint::open(&tmp.path().join(missing)).err().unwrap().to_string();
        assert!(err.contains(missing), "{err}");
    }
    let err = checkpoint::open(tmp.path()).err().unwrap().to_string();
    assert!(err.contains(checkpoint::CHECKPOINT_FILE), "{err}");

    // A state dict without one tensor, or with one of the wrong shape: the error names the file
    // and the tensor.
    let dev = Device::cpu();
    let store = checkpoint::open(&data().join(checkpoint::SAFETENSORS_FILE)).unwrap();
    for (victim, file) in [
        ("resnet.layer3.4.bn2.running_var", "no_var.safetensors"),
        ("resnet.layer2.0.shortcut.0.weight", "no_shortcut.safetensors"),
        ("resnet.seg_1.bias", "no_bias.safetensors"),
        ("resnet.conv1.weight", "no_conv1.safetensors"),
    ] {
        let views: BTreeMap<String, _> =
            store.names().into_iter().filter(|n| n != victim).filter_map(|n| store.view(&n).map(|v| (n, v))).collect();
        let p = tmp.path().join(file);
        write_safetensors(&p, &views).unwrap();
        let err = WeSpeakerResNet34::load(&dev, checkpoint::open(&p).unwrap().as_ref()).err().unwrap().to_string();
        assert!(err.contains(file) && err.contains(victim), "{err}");
    }
    let mut views: BTreeMap<String, _> =
        store.names().into_iter().filter_map(|n| store.view(&n).map(|v| (n, v))).collect();
    let victim = "resnet.layer4.1.conv2.weight";
    let short = views[victim].clone();
    views.insert(
        victim.to_string(),
        scribe::weights::TensorView { shape: vec![32, 32, 3, 2], bytes: &short.bytes[..32 * 32 * 6 * 4], ..short },
    );
    let p = tmp.path().join("narrow.safetensors");
    write_safetensors(&p, &views).unwrap();
    let err = WeSpeakerResNet34::load(&dev, checkpoint::open(&p).unwrap().as_ref()).err().unwrap().to_string();
    assert!(err.contains("narrow.safetensors") && err.contains(victim), "{err}");
}
