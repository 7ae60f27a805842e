//! Where WhisperX's VAD model (pyannote segmentation, PyanNet) comes from, and its weights and
//! hyper-parameters. WhisperX workers keep the checkpoint at `models/whisperx-vad-segmentation.bin`
//! or name it with `VAD_MODEL_PATH`; `models/fetch vad` writes `models/vad/` (the checkpoint,
//! and its conversion to `model.safetensors` + `config.json`). A `.bin` is read directly with the
//! restricted unpickler; nothing in it is executed.

use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use crate::error::{Error, Result};
use crate::weights::convert_vad::vad_config;
use crate::weights::pickle::TorchCheckpoint;
use crate::weights::safetensors_store::SafetensorsStore;
use crate::weights::WeightStore;

/// Environment variable naming the VAD checkpoint (WhisperX workers' convention).
pub const VAD_MODEL_PATH: &str = "VAD_MODEL_PATH";
/// WhisperX's file name for the checkpoint in a model directory.
pub const WHISPERX_VAD_FILE: &str = "whisperx-vad-segmentation.bin";

/// The VAD model to load: `env` (the value of `VAD_MODEL_PATH`, a file or a directory) first,
/// then `MODEL_DIR/whisperx-vad-segmentation.bin`, then `MODEL_DIR/vad/` as `models/fetch vad`
/// writes it.
pub fn locate(model_dir: &Path, env: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = env {
        if p.exists() {
            return Ok(p.to_path_buf());
        }
        return Err(Error::Other(format!("{VAD_MODEL_PATH}={} does not exist", p.display())));
    }
    let whisperx = model_dir.join(WHISPERX_VAD_FILE);
    if whisperx.is_file() {
        return Ok(whisperx);
    }
    let fetched = model_dir.join("vad");
    if fetched.join("model.safetensors").is_file() || fetched.join(WHISPERX_VAD_FILE).is_file() {
        return Ok(fetched);
    }
    Err(Error::Other(format!(
        "no VAD model: set {VAD_MODEL_PATH}, put {WHISPERX_VAD_FILE} in {}, or run models/fetch vad",
        model_dir.display()
    )))
}

/// Weights and config of a located VAD model: a `.bin` checkpoint (read directly), or a directory
/// holding `model.safetensors` + `config.json` (else its `.bin`).
pub fn open(path: &Path) -> Result<(Box<dyn WeightStore>, Json)> {
    if path.is_dir() {
        let st = path.join("model.safetensors");
        if st.is_file() {
            let config_path = path.join("config.json");
            let text = std::fs::read_to_string(&config_path).map_err(|e| Error::io(&config_path, e))?;
            let config: Json = serde_json::from_str(&text).map_err(|e| Error::format(&config_path, e.to_string()))?;
            return Ok((Box::new(SafetensorsStore::open(&st)?), config));
        }
        return open(&path.join(WHISPERX_VAD_FILE));
    }
    let ckpt = TorchCheckpoint::open(path)?;
    let config = vad_config(&ckpt)?;
    Ok((Box::new(ckpt), config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_env_path_wins_then_whisperx_file_then_the_fetched_directory() {
        let dir = tempfile::tempdir().unwrap();
        let models = dir.path();
        let err = locate(models, None).unwrap_err().to_string();
        assert!(err.contains("models/fetch vad") && err.contains(VAD_MODEL_PATH), "{err}");
        std::fs::create_dir_all(models.join("vad")).unwrap();
        std::fs::write(models.join("vad/model.safetensors"), b"x").unwrap();
        assert_eq!(locate(models, None).unwrap(), models.join("vad"));
        std::fs::write(models.join(WHISPERX_VAD_FILE), b"x").unwrap();
        assert_eq!(locate(models, None).unwrap(), models.join(WHISPERX_VAD_FILE));
        let custom = models.join("elsewhere.bin");
        std::fs::write(&custom, b"x").unwrap();
        assert_eq!(locate(models, Some(&custom)).unwrap(), custom);
        let missing = models.join("missing.bin");
        assert!(locate(models, Some(&missing)).unwrap_err().to_string().contains("missing.bin"));
    }
}
