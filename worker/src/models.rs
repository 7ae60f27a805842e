//! The models a worker loads once, at start-up, and shares between jobs: Whisper (resolved as
//! WhisperX workers do: WHISPERX_MODEL / WHISPERX_MODEL_NAME, else WHISPERX_MODEL_DIR when it
//! holds a model, else `large-v3` from the hub) and the pyannote VAD.

use anyhow::Context;

use scribe::backend::{Device, DeviceRequest};
use scribe::hub::{resolve_whisper, HubConfig};
use scribe::models::whisper::Whisper;
use scribe::pipeline::align_models::{AlignModels, AlignSource};
use scribe::pipeline::Models as PipelineModels;

use crate::settings::{ModelChoice, Settings, DEFAULT_MODEL_NAME};

/// The hub's variables as WhisperX workers set them: transformers' older TRANSFORMERS_CACHE
/// names the hub cache when neither HF_HUB_CACHE nor HUGGINGFACE_HUB_CACHE does. (TORCH_HOME
/// holds torch-hub models: the torchaudio alignment bundles; Whisper and the VAD never come from
/// there.)
pub fn hub_var(var: &dyn Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    let set = |k: &str| var(k).filter(|v| !v.is_empty());
    match name {
        "HUGGINGFACE_HUB_CACHE" => {
            set(name).or_else(|| set("HF_HUB_CACHE").is_none().then(|| set("TRANSFORMERS_CACHE")).flatten())
        }
        _ => var(name),
    }
}

pub struct Models {
    /// Whisper and the VAD, as every job's pipeline runs them.
    pub pipeline: std::sync::Arc<PipelineModels>,
    /// What was loaded, for logs: `name` or `path`.
    pub whisper_source: String,
}

impl Models {
    pub fn load(settings: &Settings) -> anyhow::Result<Self> {
        let device = Device::select(settings.device.parse::<DeviceRequest>()?)
            .with_context(|| format!("WHISPERX_DEVICE={}", settings.device))?;
        let hub = HubConfig::from_vars(|k| hub_var(&|k| std::env::var(k).ok(), k));
        let (dir, source) = match &settings.model {
            ModelChoice::Named(m) => {
                let kind = if std::path::Path::new(m).is_dir() { "path" } else { "name" };
                (resolve_whisper(&hub, m)?, format!("{m} ({kind})"))
            }
            ModelChoice::Dir(d) => (d.clone(), format!("{} (path)", d.display())),
            ModelChoice::Default => {
                (resolve_whisper(&hub, DEFAULT_MODEL_NAME)?, format!("{DEFAULT_MODEL_NAME} (name)"))
            }
        };
        let mut whisper =
            Whisper::load(&dir, device.clone()).with_context(|| format!("loading Whisper from {}", dir.display()))?;
        whisper
            .apply_compute_type(&settings.compute_type)
            .with_context(|| format!("WHISPERX_COMPUTE_TYPE={}", settings.compute_type))?;
        tracing::info!("[Predict] whisper_arch={source}");
        tracing::info!(
            "[Predict] device={} compute_type={} decoder={} cross_kv={}",
            device.name(),
            whisper.compute_type(),
            whisper.decoder_compute_type(),
            whisper.cross_kv_dtype()
        );
        let (vad, vad_path) = PipelineModels::load_vad(
            &device,
            &settings.vad_dir,
            settings.vad_model_path.as_deref(),
            &settings.segmentation_compute_type,
        )
        .context("loading the VAD model")?;
        tracing::info!("VAD model: {} (compute_type={})", vad_path.display(), vad.compute_type(&device));
        Ok(Models {
            pipeline: std::sync::Arc::new(PipelineModels {
                whisper,
                vad: Some(vad),
                align: AlignModels::new(AlignSource {
                    hub: settings.align_hub.clone(),
                    torch: settings.align_torch.clone(),
                    models_dir: settings.vad_dir.clone(),
                    compute_type: settings.align_compute_type.clone(),
                }),
                diarize: scribe::pipeline::diarize_models::DiarizeModels::new(
                    settings.vad_dir.clone(),
                    settings.align_hub.clone(),
                )
                .with_compute_types(scribe::pipeline::diarize_models::ComputeTypes {
                    segmentation: settings.segmentation_compute_type.clone(),
                    embedding: settings.embedding_compute_type.clone(),
                }),
                speakers: scribe::pipeline::speaker_models::SpeakerModels::new(
                    settings.vad_dir.clone(),
                    settings.align_hub.clone(),
                ),
            }),
            whisper_source: source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)], name: &str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        hub_var(&|k| map.get(k).cloned(), name)
    }

    #[test]
    fn transformers_cache_is_the_hub_cache_only_when_nothing_newer_is_set() {
        assert_eq!(lookup(&[("TRANSFORMERS_CACHE", "/t")], "HUGGINGFACE_HUB_CACHE").as_deref(), Some("/t"));
        assert_eq!(
            lookup(&[("TRANSFORMERS_CACHE", "/t"), ("HUGGINGFACE_HUB_CACHE", "/h")], "HUGGINGFACE_HUB_CACHE")
                .as_deref(),
            Some("/h")
        );
        assert_eq!(lookup(&[("TRANSFORMERS_CACHE", "/t"), ("HF_HUB_CACHE", "/n")], "HUGGINGFACE_HUB_CACHE"), None);
        assert_eq!(lookup(&[("HF_HOME", "/x")], "HF_HOME").as_deref(), Some("/x"));
    }
}
