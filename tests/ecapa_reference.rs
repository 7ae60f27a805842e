//! SpeechBrain's ECAPA-TDNN in Rust (`scribe::models::ecapa`) against SpeechBrain 1.1.2's own
//! pretrained interface (`SpeakerRecognition.encode_batch(wavs, wav_lens, normalize=False)`, what
//! `verify_batch` embeds with; tests/reference/make_ecapa_reference.py, torch 2.8 CPU float32) on
//! small random models laid out as `speechbrain/spkrec-ecapa-voxceleb` (`hyperparams.yaml` +
//! `embedding_model.ckpt`, and a `model.safetensors` copy): `small` (the published front end and
//! block layout, a shortcut conv, res2net scale 8) and `nogc` (40 mels, f_min/f_max, no global
//! context, grouped convs, scale 4). Crops of real recordings alone and in padded batches.
//! Also: the published front end's fbank, the options read from the yaml, and damaged, foreign
//! or missing files as errors naming what is wrong.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::root;
use scribe::audio::load_audio;
use scribe::backend::Device;
use scribe::models::ecapa::config::HYPERPARAMS_FILE;
use scribe::models::ecapa::hyperparams::Hyperparams;
use scribe::models::ecapa::{checkpoint, EcapaConfig, EcapaTdnn};
use scribe::verify::voice::VoiceEmbedding;
use scribe::weights::convert::write_safetensors;
use scribe::weights::safetensors_store::SafetensorsStore;
use scribe::weights::WeightStore;
use serde_json::Value;

/// Largest |Rust − SpeechBrain| allowed on an embedding value (they reach ~2.5).
const MAX_ABS_DIFF: f32 = 1e-4;
/// Largest |Rust − SpeechBrain float64| on a dB value of the fbank (values reach ~±100 dB).
const FBANK_ABS_DIFF: f32 = 1e-4;
/// SpeechBrain's float32 fbank against its own float64 run differs by up to ~6e-4 dB (FFT and
/// matmul rounding in low bins); Rust against it gets this much room.
const FBANK_F32_ABS_DIFF: f32 = 2e-3;
/// An item of an equal-length batch against the item alone: the same arithmetic.
const SAME_ABS_DIFF: f32 = 1e-6;

fn data() -> PathBuf {
    root().join("tests/reference/data/ecapa")
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

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max)
}

/// A crop of a ../shared recording decoded by Scribe, checked against the reference's sum. None
/// (a failure under CI) when the recording is missing.
fn crop(input: &Value) -> Option<Vec<f32>> {
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
    Some(crop)
}

fn case_rows(case: &Value) -> Option<Vec<Vec<f32>>> {
    case["inputs"].as_array().unwrap().iter().map(crop).collect()
}

fn embed(dev: &Device, model: &EcapaTdnn, rows: &[Vec<f32>]) -> Vec<f32> {
    let rows: Vec<&[f32]> = rows.iter().map(Vec::as_slice).collect();
    dev.download(&model.embed(dev, &rows).unwrap()).unwrap()
}

/// The model of `variant`'s hyperparams.yaml with the weights of `file` in its directory.
fn load(dev: &Device, variant: &str, file: &str) -> EcapaTdnn {
    let dir = data().join(variant);
    let store = checkpoint::open(&dir.join(file)).unwrap();
    EcapaTdnn::new(dev, EcapaConfig::from_dir(&dir).unwrap(), store.as_ref()).unwrap()
}

fn cases<'a>(m: &'a Value, variant: &str) -> &'a Vec<Value> {
    m["variants"][variant]["cases"].as_array().unwrap()
}

fn case<'a>(m: &'a Value, variant: &str, name: &str) -> &'a Value {
    cases(m, variant).iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("no case {variant}.{name}"))
}

/// Every case's embeddings from `model`, checked against SpeechBrain's; returns them by case.
fn check_cases(dev: &Device, model: &EcapaTdnn, variant: &str, source: &str) -> Option<BTreeMap<String, Vec<f32>>> {
    let (m, r) = (manifest(), reference());
    let mut out = BTreeMap::new();
    let mut worst = 0.0f32;
    for case in cases(&m, variant) {
        let name = case["name"].as_str().unwrap();
        let rows = case_rows(case)?;
        let got = embed(dev, model, &rows);
        let (want, shape) = tensor(&r, &format!("{variant}.embedding.{name}"));
        let (exact, _) = tensor(&r, &format!("{variant}.embedding64.{name}"));
        assert_eq!([rows.len(), model.config.lin_neurons], shape[..], "{name}");
        let (diff, diff64) = (max_diff(&got, &want), max_diff(&got, &exact));
        eprintln!(
            "{variant} {source} {name}: B {} × ≤{} samples: max |Δ| {diff:.2e} (vs float64 {diff64:.2e}; torch's \
             float32 {:.2e})",
            rows.len(),
            rows.iter().map(Vec::len).max().unwrap(),
            case["float32_vs_float64_max_abs"].as_f64().unwrap()
        );
        assert!(diff <= MAX_ABS_DIFF, "{variant} {source} {name}: embedding differs by {diff}");
        worst = worst.max(diff);
        out.insert(name.to_string(), got);
    }
    eprintln!("{variant} {source}: worst max |Δ| over all cases {worst:.2e} (allowed {MAX_ABS_DIFF:.0e})");
    Some(out)
}

#[test]
fn the_options_are_read_from_hyperparams_yaml() {
    let m = manifest();
    for variant in ["small", "nogc"] {
        let spec = &m["variants"][variant]["spec"];
        let c = EcapaConfig::from_dir(&data().join(variant)).unwrap();
        let list = |k: &str| -> Vec<usize> {
            spec[k].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect()
        };
        assert_eq!(c.input_size, spec["n_mels"].as_u64().unwrap() as usize, "{variant}");
        assert_eq!(c.fbank.n_mels, c.input_size);
        assert_eq!(c.channels, list("channels"), "{variant}");
        assert_eq!(c.kernel_sizes, list("kernel_sizes"), "{variant}");
        assert_eq!(c.dilations, list("dilations"), "{variant}");
        assert_eq!(c.attention_channels, spec["attention_channels"].as_u64().unwrap() as usize);
        assert_eq!(c.lin_neurons, spec["lin_neurons"].as_u64().unwrap() as usize);
    }
    let small = EcapaConfig::from_dir(&data().join("small")).unwrap();
    assert_eq!((small.res2net_scale, small.se_channels, small.global_context), (8, 16, true));
    assert_eq!((small.fbank.f_min, small.fbank.f_max), (0.0, 8000.0));
    let nogc = EcapaConfig::from_dir(&data().join("nogc")).unwrap();
    assert_eq!((nogc.res2net_scale, nogc.se_channels, nogc.global_context), (4, 8, false));
    assert_eq!(nogc.groups, [1, 2, 2, 2, 1]);
    assert_eq!((nogc.fbank.f_min, nogc.fbank.f_max), (20.0, 7600.0));

    // The published file: its options and the shortest input SpeechBrain's full-size model takes.
    let hp = Hyperparams::open(&data().join("real_hyperparams.yaml")).unwrap();
    let real = EcapaConfig::from_hyperparams(&hp).unwrap();
    assert_eq!(real.channels, [1024, 1024, 1024, 1024, 3072]);
    assert_eq!((real.input_size, real.attention_channels, real.lin_neurons), (80, 128, 192));
    assert_eq!(real.min_num_samples() as u64, m["min_num_samples"].as_u64().unwrap());
}

#[test]
fn the_fbank_is_speechbrains() {
    let (m, r) = (manifest(), reference());
    let spec = &m["fbank_crop"];
    let Some(samples) = crop(spec) else { return };
    let hp = Hyperparams::open(&data().join("real_hyperparams.yaml")).unwrap();
    let config = EcapaConfig::from_hyperparams(&hp).unwrap();
    let fbank = scribe::models::ecapa::fbank::Fbank::new(&config.fbank);
    let (got, frames) = fbank.compute(&samples).unwrap();
    assert_eq!(frames as u64, spec["frames"].as_u64().unwrap());
    let (want64, shape) = tensor(&r, "fbank64");
    let (want32, _) = tensor(&r, "fbank");
    assert_eq!(shape, [frames, 80]);
    let (d64, d32) = (max_diff(&got, &want64), max_diff(&got, &want32));
    eprintln!(
        "fbank {shape:?}: max |Δ| {d64:.2e} dB vs SpeechBrain in float64, {d32:.2e} vs float32 (its own float32 \
         vs float64: {:.2e}); values {:.1}..{:.1} dB",
        spec["float32_vs_float64_max_abs"].as_f64().unwrap(),
        want64.iter().cloned().fold(f32::MAX, f32::min),
        want64.iter().cloned().fold(f32::MIN, f32::max)
    );
    assert!(d64 <= FBANK_ABS_DIFF, "fbank differs from float64 SpeechBrain by {d64}");
    assert!(d32 <= FBANK_F32_ABS_DIFF, "fbank differs from float32 SpeechBrain by {d32}");

    // The mean-normalised features, as the model sees them.
    let dev = Device::cpu();
    let model = load(&dev, "small", checkpoint::SAFETENSORS_FILE);
    let features = model.features(&[&samples]).unwrap();
    let (want, _) = tensor(&r, "feats");
    let mut want64_norm = want64.clone();
    scribe::models::ecapa::fbank::subtract_sentence_mean(&mut want64_norm, 80, frames);
    let (d, d64) = (max_diff(&features.data, &want), max_diff(&features.data, &want64_norm));
    eprintln!("mean-normalised features: max |Δ| {d:.2e} vs SpeechBrain float32, {d64:.2e} vs float64");
    assert!(d64 <= FBANK_ABS_DIFF && d <= FBANK_F32_ABS_DIFF, "{d64} {d}");
}

#[test]
fn embeddings_match_speechbrain_from_the_ckpt_and_from_safetensors() {
    let dev = Device::cpu();
    let small = load(&dev, "small", checkpoint::CHECKPOINT_FILE);
    let Some(from_ckpt) = check_cases(&dev, &small, "small", checkpoint::CHECKPOINT_FILE) else { return };
    let small_st = load(&dev, "small", checkpoint::SAFETENSORS_FILE);
    let Some(from_st) = check_cases(&dev, &small_st, "small", checkpoint::SAFETENSORS_FILE) else { return };
    assert_eq!(from_ckpt, from_st);
    let nogc = load(&dev, "nogc", checkpoint::CHECKPOINT_FILE);
    if check_cases(&dev, &nogc, "nogc", checkpoint::CHECKPOINT_FILE).is_none() {
        return;
    }
    // A model directory: hyperparams.yaml with model.safetensors preferred, else the ckpt.
    let m = manifest();
    let c = case(&m, "small", "spk2_snt3_1s7");
    let rows = case_rows(c).unwrap();
    let from_dir = EcapaTdnn::load(&dev, &data().join("small")).unwrap();
    assert_eq!(embed(&dev, &from_dir, &rows), from_st["spk2_snt3_1s7"]);
    let tmp = tempfile::tempdir().unwrap();
    for file in [HYPERPARAMS_FILE, checkpoint::CHECKPOINT_FILE] {
        std::fs::copy(data().join("small").join(file), tmp.path().join(file)).unwrap();
    }
    let ckpt_only = EcapaTdnn::load(&dev, tmp.path()).unwrap();
    assert_eq!(embed(&dev, &ckpt_only, &rows), from_ckpt["spk2_snt3_1s7"]);
}

#[test]
fn a_padded_batch_is_speechbrains_and_an_equal_length_batch_is_the_items_alone() {
    let dev = Device::cpu();
    let (m, r) = (manifest(), reference());
    for variant in ["small", "nogc"] {
        let model = load(&dev, variant, checkpoint::CHECKPOINT_FILE);
        let e = model.config.lin_neurons;
        // SpeechBrain's padded batch: each item, and each item alone, as SpeechBrain gives them.
        let c = case(&m, variant, "batch_padded");
        let Some(rows) = case_rows(c) else { return };
        let batch = embed(&dev, &model, &rows);
        let (want, _) = tensor(&r, &format!("{variant}.embedding.batch_padded"));
        let (want_alone, _) = tensor(&r, &format!("{variant}.alone.batch_padded"));
        assert!(max_diff(&batch, &want) <= MAX_ABS_DIFF);
        let alone: Vec<f32> = rows.iter().flat_map(|row| embed(&dev, &model, std::slice::from_ref(row))).collect();
        let d_alone = max_diff(&alone, &want_alone);
        let (ours, theirs) = (max_diff(&batch, &alone), c["batched_vs_alone_max_abs"].as_f64().unwrap());
        eprintln!(
            "{variant} padded batch of {:?} samples: vs SpeechBrain's batch {:.2e}, items alone vs SpeechBrain's \
             alone {d_alone:.2e}; batched vs alone {ours:.2e} (SpeechBrain's own {theirs:.2e})",
            rows.iter().map(Vec::len).collect::<Vec<_>>(),
            max_diff(&batch, &want)
        );
        assert!(d_alone <= MAX_ABS_DIFF, "{variant}: {d_alone}");
        assert!((ours as f64 - theirs).abs() <= 2.0 * MAX_ABS_DIFF as f64, "{ours} vs {theirs}");
        // The longest item has every frame valid and no padding: the same as alone.
        let longest = (0..rows.len()).max_by_key(|&i| rows[i].len()).unwrap();
        let d = max_diff(&batch[longest * e..(longest + 1) * e], &alone[longest * e..(longest + 1) * e]);
        assert!(d <= SAME_ABS_DIFF, "{variant}: longest item {d}");

        // Equal lengths: no padding, each item exactly as alone.
        let c = case(&m, variant, "batch_equal");
        let Some(rows) = case_rows(c) else { return };
        let batch = embed(&dev, &model, &rows);
        let (want, _) = tensor(&r, &format!("{variant}.embedding.batch_equal"));
        assert!(max_diff(&batch, &want) <= MAX_ABS_DIFF);
        for (i, row) in rows.iter().enumerate() {
            let d = max_diff(&embed(&dev, &model, std::slice::from_ref(row)), &batch[i * e..(i + 1) * e]);
            eprintln!("{variant} equal-length batch item {i} vs alone: max |Δ| {d:.2e}");
            assert!(d <= SAME_ABS_DIFF, "{variant} item {i}: {d}");
        }
    }
}

#[test]
fn the_voice_embedding_is_the_utterance_alone() {
    let dev = Device::cpu();
    let model = load(&dev, "small", checkpoint::SAFETENSORS_FILE);
    let (m, r) = (manifest(), reference());
    let voice: &dyn VoiceEmbedding = &model;
    assert_eq!((voice.name(), voice.dimension(), voice.min_num_samples()), ("ECAPA-TDNN", 24, 640));
    let c = case(&m, "small", "spk1_snt2_3s");
    let Some(rows) = case_rows(c) else { return };
    let got = voice.embed_utterance(&dev, &rows[0]).unwrap();
    let (want, _) = tensor(&r, "small.embedding.spk1_snt2_3s");
    assert!(max_diff(&got, &want) <= MAX_ABS_DIFF);
    // The shortest inputs: 640 samples (5 frames) embed, 639 (4 frames, the widest conv reflects
    // 4) are refused by name; an empty batch too.
    let short = &rows[0][..640];
    assert_eq!(voice.embed_utterance(&dev, short).unwrap().len(), 24);
    let err = voice.embed_utterance(&dev, &short[..639]).unwrap_err().to_string();
    assert!(err.contains("639 samples") && err.contains("640"), "{err}");
    assert!(model.embed(&dev, &[]).is_err());
    let mut bad = rows[0].clone();
    bad[7] = f32::NAN;
    assert!(voice.embed_utterance(&dev, &bad).unwrap_err().to_string().contains("sample 7"));
}

/// `small`'s tensors as a map, to write damaged copies.
fn write_without(store: &dyn WeightStore, path: &Path, skip: &str) {
    let views: BTreeMap<String, _> =
        store.names().into_iter().filter(|n| n != skip).filter_map(|n| store.view(&n).map(|v| (n, v))).collect();
    write_safetensors(path, &views).unwrap();
}

#[test]
fn damaged_foreign_and_missing_files_are_errors_naming_them() {
    let dev = Device::cpu();
    let small = data().join("small");
    let tmp = tempfile::tempdir().unwrap();

    // Truncated checkpoints.
    let bytes = std::fs::read(small.join(checkpoint::CHECKPOINT_FILE)).unwrap();
    for (name, cut) in [("half.ckpt", bytes.len() / 2), ("head.ckpt", 100), ("empty.ckpt", 0)] {
        let p = tmp.path().join(name);
        std::fs::write(&p, &bytes[..cut]).unwrap();
        let err = checkpoint::open(&p).err().expect("a damaged checkpoint is an error").to_string();
        assert!(err.contains(name), "{err}");
    }
    let st = std::fs::read(small.join(checkpoint::SAFETENSORS_FILE)).unwrap();
    let p = tmp.path().join("half.safetensors");
    std::fs::write(&p, &st[..st.len() / 2]).unwrap();
    assert!(checkpoint::open(&p).err().unwrap().to_string().contains("half.safetensors"));

    // Another model's checkpoint.
    let foreign = root().join("tests/reference/data/wespeaker/model.safetensors");
    let err = checkpoint::open(&foreign).err().unwrap().to_string();
    assert!(err.contains("model.safetensors") && err.contains("not a SpeechBrain ECAPA_TDNN"), "{err}");

    // A tensor missing, or of the wrong shape: the error names the file and the tensor.
    let config = EcapaConfig::from_dir(&small).unwrap();
    let store = checkpoint::open(&small.join(checkpoint::SAFETENSORS_FILE)).unwrap();
    for (victim, file) in [
        ("blocks.2.res2net_block.blocks.6.norm.norm.running_var", "no_var.safetensors"),
        ("blocks.1.shortcut.conv.weight", "no_shortcut.safetensors"),
        ("blocks.3.se_block.conv2.conv.bias", "no_se_bias.safetensors"),
        ("asp.tdnn.conv.conv.weight", "no_asp.safetensors"),
        ("fc.conv.bias", "no_fc_bias.safetensors"),
    ] {
        assert!(store.view(victim).is_some(), "{victim}");
        let p = tmp.path().join(file);
        write_without(store.as_ref(), &p, victim);
        let err =
            EcapaTdnn::new(&dev, config.clone(), checkpoint::open(&p).unwrap().as_ref()).err().unwrap().to_string();
        assert!(err.contains(file) && err.contains(victim), "{err}");
    }
    let mut views: BTreeMap<String, _> =
        store.names().into_iter().filter_map(|n| store.view(&n).map(|v| (n, v))).collect();
    let victim = "mfa.conv.conv.weight";
    let full = views[victim].clone();
    views.insert(
        victim.to_string(),
        scribe::weights::TensorView { shape: vec![96, 48, 1], bytes: &full.bytes[..96 * 48 * 4], ..full },
    );
    let p = tmp.path().join("narrow.safetensors");
    write_safetensors(&p, &views).unwrap();
    let err = EcapaTdnn::new(&dev, config.clone(), checkpoint::open(&p).unwrap().as_ref()).err().unwrap().to_string();
    assert!(err.contains("narrow.safetensors") && err.contains(victim) && err.contains("[96, 96, 1]"), "{err}");
    // The options of another model than the weights.
    let nogc = EcapaConfig::from_dir(&data().join("nogc")).unwrap();
    let err = EcapaTdnn::new(&dev, nogc, store.as_ref()).err().unwrap().to_string();
    assert!(err.contains("blocks.0.conv.conv.weight") && err.contains("expected"), "{err}");

    // Directories: no hyperparams.yaml, no checkpoint, a broken yaml.
    let dir = tmp.path().join("no_yaml");
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(small.join(checkpoint::CHECKPOINT_FILE), dir.join(checkpoint::CHECKPOINT_FILE)).unwrap();
    let err = EcapaTdnn::load(&dev, &dir).err().unwrap().to_string();
    assert!(err.contains("no_yaml") && err.contains(HYPERPARAMS_FILE), "{err}");
    let dir = tmp.path().join("no_weights");
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(small.join(HYPERPARAMS_FILE), dir.join(HYPERPARAMS_FILE)).unwrap();
    let err = EcapaTdnn::load(&dev, &dir).err().unwrap().to_string();
    assert!(err.contains("no_weights") && err.contains(checkpoint::CHECKPOINT_FILE), "{err}");
    std::fs::write(
        dir.join(HYPERPARAMS_FILE),
        "embedding_model: !new:speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN\n  channels: [1,\n",
    )
    .unwrap();
    let err = EcapaTdnn::load(&dev, &dir).err().unwrap().to_string();
    assert!(err.contains(HYPERPARAMS_FILE) && err.contains("not a SpeechBrain hyperparams.yaml"), "{err}");
    let err = checkpoint::open(&tmp.path().join("nowhere.ckpt")).err().unwrap().to_string();
    assert!(err.contains("nowhere.ckpt"), "{err}");
}
