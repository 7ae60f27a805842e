//! The models a worker loads once, at start-up, and shares between jobs: Whisper (resolved as
//! WhisperX workers do: WHISPERX_MODEL / WHISPERX_MODEL_NAME, else WHISPERX_MODEL_DIR when it
//! holds a model, else `large-v3` from the hub) and the pyannote VAD.

use anyhow::Context;

use scribe::backend::{Device, DeviceRequest};
use scribe::hub::{resolve_whisper, HubConfig};
use scribe::models::pyannote::{checkpoint as vad_checkpoint, PyanNet};
use scribe::models::whisper::Whisper;

use crate::settings::{ModelChoice, Settings, DEFAULT_MODEL_NAME};

pub struct Models {
    pub whisper: Whisper,
    pub vad: PyanNet,
    /// What was loaded, for logs: `name` or `path`.
    pub whisper_source: String,
}

impl Models {
    pub fn load(settings: &Settings) -> anyhow::Result<Self> {
        let device = Device::select(settings.device.parse::<DeviceRequest>()?)
            .with_context(|| format!("WHISPERX_DEVICE={}", settings.device))?;
        let hub = HubConfig::from_env();
        let (dir, source) = match &settings.model {
            ModelChoice::Named(m) => (resolve_whisper(&hub, m)?, format!("{m} (name|path)")),
            ModelChoice::Dir(d) => (d.clone(), format!("{} (path)", d.display())),
            ModelChoice::Default => {
                (resolve_whisper(&hub, DEFAULT_MODEL_NAME)?, format!("{DEFAULT_MODEL_NAME} (name)"))
            }
        };
        let whisper =
            Whisper::load(&dir, device.clone()).with_context(|| format!("loading Whisper from {}", dir.display()))?;
        tracing::info!("[Predict] whisper_arch={source}");
        tracing::info!("[Predict] device={} compute_type={}", device.name(), device.compute_type());
        let vad_path = vad_checkpoint::locate(&settings.vad_dir, settings.vad_model_path.as_deref())?;
        let (store, config) = vad_checkpoint::open(&vad_path)?;
        let vad = PyanNet::load(&device, store.as_ref(), &config)
            .with_context(|| format!("loading the VAD model from {}", vad_path.display()))?;
        tracing::info!("VAD model: {}", vad_path.display());
        Ok(Models { whisper, vad, whisper_source: source })
    }
}
