//! Broken model directories give errors that name the file and the field or tensor.

mod common;

use std::path::Path;

use common::model_dir;
use scribe::backend::Device;
use scribe::models::whisper::Whisper;
use scribe::weights::convert::ct2_to_hf;

fn load_err(dir: &Path) -> String {
    match Whisper::load(dir, Device::cpu()) {
        Ok(_) => panic!("{} loaded although it is broken", dir.display()),
        Err(e) => e.to_string(),
    }
}

fn edit_config(dir: &Path, edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>)) {
    let p = dir.join("config.json");
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    edit(v.as_object_mut().unwrap());
    std::fs::write(&p, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

#[test]
fn hugging_face_layout_errors_name_file_and_field() {
    let Some(src) = model_dir("tiny.en") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let hf = tmp.path().join("hf");
    ct2_to_hf(&src, &hf).unwrap();
    // The converted directory loads and agrees with the original on its configuration.
    let ok = Whisper::load(&hf, Device::cpu()).unwrap();
    assert_eq!(ok.config, Whisper::load(&src, Device::cpu()).unwrap().config);
    drop(ok);

    let original = std::fs::read_to_string(hf.join("config.json")).unwrap();
    edit_config(&hf, |c| {
        c.remove("d_model");
    });
    let e = load_err(&hf);
    assert!(e.contains("config.json") && e.contains("d_model") && e.contains("missing"), "{e}");

    std::fs::write(hf.join("config.json"), &original).unwrap();
    edit_config(&hf, |c| {
        c.insert("encoder_layers".into(), "four".into());
    });
    let e = load_err(&hf);
    assert!(e.contains("encoder_layers") && e.contains("positive integer"), "{e}");

    // A config that disagrees with the tensors: the first tensor of the wrong shape is named.
    std::fs::write(hf.join("config.json"), &original).unwrap();
    edit_config(&hf, |c| {
        c.insert("encoder_ffn_dim".into(), 1000.into());
    });
    let e = load_err(&hf);
    assert!(
        e.contains("model.safetensors") && e.contains("model.encoder.layers.0.fc1.weight") && e.contains("shape"),
        "{e}"
    );

    std::fs::write(hf.join("config.json"), "{ not json").unwrap();
    let e = load_err(&hf);
    assert!(e.contains("config.json") && e.contains("invalid JSON"), "{e}");

    std::fs::write(hf.join("config.json"), &original).unwrap();
    std::fs::remove_file(hf.join("tokenizer.json")).unwrap();
    let e = load_err(&hf);
    assert!(e.contains("tokenizer.json"), "{e}");
}

#[test]
fn truncated_weights_are_named() {
    let Some(src) = model_dir("tiny.en") else { return };
    let tmp = tempfile::tempdir().unwrap();
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(src.join(f), tmp.path().join(f)).unwrap();
    }
    let bin = std::fs::read(src.join("model.bin")).unwrap();
    std::fs::write(tmp.path().join("model.bin"), &bin[..bin.len() / 2]).unwrap();
    let e = load_err(tmp.path());
    assert!(e.contains("model.bin"), "{e}");

    let hf = tmp.path().join("hf");
    ct2_to_hf(&src, &hf).unwrap();
    let st = std::fs::read(hf.join("model.safetensors")).unwrap();
    std::fs::write(hf.join("model.safetensors"), &st[..st.len() - 1000]).unwrap();
    let e = load_err(&hf);
    assert!(e.contains("model.safetensors"), "{e}");
}

#[test]
fn empty_directory_says_what_is_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let e = load_err(tmp.path());
    assert!(e.contains("model.safetensors") && e.contains("model.bin"), "{e}");
}
