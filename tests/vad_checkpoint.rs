//! WhisperX's VAD checkpoint (`models/fetch vad`) read by the restricted unpickler and, converted,
//! from model.safetensors: every tensor's shape, sum and first/last values equal what Python's own
//! pickle machinery reads (tests/reference/make_vad_checkpoint_reference.py, no torch), and the
//! hyper-parameters survive the conversion.

mod common;

use common::root;
use scribe::weights::convert_vad::vad_config;
use scribe::weights::pickle::TorchCheckpoint;
use scribe::weights::safetensors_store::SafetensorsStore;
use scribe::weights::WeightStore;
use serde_json::Value;

fn vad_dir() -> Option<std::path::PathBuf> {
    common::model_dir("vad")
}

fn check_store(store: &dyn WeightStore, reference: &Value) {
    let tensors = reference["tensors"].as_object().unwrap();
    let mut names = store.names();
    names.sort();
    let mut want: Vec<&String> = tensors.keys().collect();
    want.sort();
    assert_eq!(names.iter().collect::<Vec<_>>(), want, "{}: tensor names", store.path().display());
    for (name, r) in tensors {
        let view = store.view(name).unwrap();
        let shape: Vec<usize> = r["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
        assert_eq!(view.shape, shape, "{name}");
        let values = view.to_f32().unwrap();
        let first: Vec<f32> = r["first"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
        assert_eq!(&values[..first.len()], &first[..], "{name}: first values");
        assert_eq!(*values.last().unwrap(), r["last"].as_f64().unwrap() as f32, "{name}: last value");
        let sum: f64 = values.iter().map(|&v| v as f64).sum();
        let want = r["sum"].as_f64().unwrap();
        assert!((sum - want).abs() <= 1e-9 * want.abs().max(1.0), "{name}: sum {sum} vs {want}");
    }
}

#[test]
fn the_checkpoint_reads_as_python_reads_it() {
    let Some(dir) = vad_dir() else { return };
    let reference: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("tests/reference/data/vad_checkpoint.json")).unwrap(),
    )
    .unwrap();
    let ckpt = TorchCheckpoint::open(&dir.join("whisperx-vad-segmentation.bin")).unwrap();
    check_store(&ckpt, &reference);
    let config = vad_config(&ckpt).unwrap();
    for key in ["sample_rate", "sincnet", "lstm", "linear", "num_channels"] {
        assert_eq!(config[key], reference["hyper_parameters"][key], "{key}");
    }
    assert_eq!(config["classes"], serde_json::json!(["speaker#1", "speaker#2", "speaker#3"]));
    assert_eq!(config["duration"], serde_json::json!(5.0));
    assert_eq!(config["lstm"]["num_layers"], serde_json::json!(4));

    // Both ways the engine opens it (the .bin directly, the fetched directory's safetensors).
    let (store, config_bin) =
        scribe::models::pyannote::checkpoint::open(&dir.join("whisperx-vad-segmentation.bin")).unwrap();
    check_store(store.as_ref(), &reference);
    let (store, config_dir) = scribe::models::pyannote::checkpoint::open(&dir).unwrap();
    check_store(store.as_ref(), &reference);
    assert_eq!(config_bin, config_dir);

    // The converted files of models/fetch vad hold the same tensors and config.
    check_store(&SafetensorsStore::open(&dir.join("model.safetensors")).unwrap(), &reference);
    let written: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(written, config);
}

#[test]
fn damaged_checkpoints_are_errors_naming_the_file() {
    let Some(dir) = vad_dir() else { return };
    let bytes = std::fs::read(dir.join("whisperx-vad-segmentation.bin")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    for (name, cut) in [("half.bin", bytes.len() / 2), ("head.bin", 100), ("empty.bin", 0)] {
        let path = tmp.path().join(name);
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let err = TorchCheckpoint::open(&path).err().expect("a damaged checkpoint is an error").to_string();
        assert!(err.contains(name), "{err}");
    }
    let text = tmp.path().join("notes.bin");
    std::fs::write(&text, b"not a checkpoint").unwrap();
    assert!(TorchCheckpoint::open(&text).err().unwrap().to_string().contains("not a PyTorch zip checkpoint"));
}
