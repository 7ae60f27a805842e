//! The models speaker verification embeds with, and the voiceprints it has already computed.
//!
//! Verification compares like with like: by default the diarizer's own embedding model
//! (CAM++ for the default diarization) embeds the samples, so they are scored against the
//! diarization's centroids. `--speaker_model` / `SPEAKER_MODEL` names another model (a
//! SpeechBrain ECAPA directory or hub repository); the diarized speakers are then embedded by it
//! too, from their own speech.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::backend::Device;
use crate::error::{Error, Result};
use crate::hub::{snapshot_download, HubConfig, Required};
use crate::verify::voice::VoiceEmbedding;

/// `--speaker_model`'s name for the diarizer's own embedding model (the default).
pub const DIARIZATION_MODEL: &str = "diarization";
/// SpeechBrain's ECAPA on the hub (`speechbrain/spkrec-ecapa-voxceleb`).
pub const ECAPA_REPO: &str = "speechbrain/spkrec-ecapa-voxceleb";
/// The files an ECAPA directory needs.
pub const ECAPA_FILES: &[&str] = &["hyperparams.yaml", "embedding_model.ckpt"];
const REVISION: &str = "main";

/// Cosine similarity a voiceprint must reach, per model (the naming policy's threshold).
///
/// CAM++: the equal-error point of the project's trial list (benches/verify/trials.txt,
/// `cargo bench --bench verify_eer`: 50 utterances of the shared recordings and six espeak-ng
/// voices, 1225 trials): EER 9.9 % at 0.748. The stage scores a diarized speaker's centroid,
/// pooled over all its windows, against the enrolled voiceprint, which scores higher for the
/// same speaker than two single sentences do: on two_speakers.wav each speaker's centroid
/// scores 0.80 and 0.85 against a sample of its own voice, and 0.555 to 0.678 against the other
/// speaker's (tests/cli.rs `speaker_samples_name_the_diarized_speakers`). The real recordings
/// alone separate at 0.533 (sentence against sentence), which would name the other speaker of
/// that dialogue.
pub const CAMPPLUS_VERIFY_THRESHOLD: f64 = 0.75;
/// SpeechBrain's `SpeakerRecognition.verify_batch` threshold (`inference/speaker.py`: 0.25).
pub const ECAPA_VERIFY_THRESHOLD: f64 = 0.25;
/// WeSpeaker ResNet34: its weights are unreachable here, so not calibrated by the project;
/// WeSpeaker's own cosine scoring recipes put same-speaker trials above about 0.5.
pub const WESPEAKER_VERIFY_THRESHOLD: f64 = 0.5;

/// The threshold for a model by its [`VoiceEmbedding::name`].
pub fn verify_threshold(model_name: &str) -> f64 {
    match model_name {
        "CAM++" => CAMPPLUS_VERIFY_THRESHOLD,
        "ECAPA-TDNN" => ECAPA_VERIFY_THRESHOLD,
        _ => WESPEAKER_VERIFY_THRESHOLD,
    }
}

/// Cosine similarity one stretch of a named speaker's speech must reach against its name
/// ([`crate::verify::turn_check`]); lower than the centroid's threshold, as a stretch of a few
/// seconds is a noisier embedding than a whole cluster.
///
/// CAM++: the equal-error point of the trial list's recorded speakers (spk1, spk2, jfk, lj:
/// sentence against sentence, `cargo bench --bench verify_eer`), 0.533, where their lowest
/// same-speaker score is 0.627 and their highest other-speaker score 0.439. On the development
/// dialogues (`cargo bench --bench verify_naming`) the stretches of the right voice scored 0.57
/// and up, the stretch of an unenrolled voice put in a named cluster 0.33.
pub const CAMPPLUS_TURN_THRESHOLD: f64 = 0.53;

/// The turn threshold for a model by its [`VoiceEmbedding::name`]. ECAPA's and WeSpeaker's
/// naming thresholds already are utterance-pair points (SpeechBrain's 0.25 scores two
/// utterances), so a stretch needs the same.
pub fn turn_threshold(model_name: &str) -> f64 {
    match model_name {
        "CAM++" => CAMPPLUS_TURN_THRESHOLD,
        other => verify_threshold(other),
    }
}

/// Voiceprints kept: a worker serving many jobs with the same samples embeds each once.
pub const VOICE_CACHE_ENTRIES: usize = 256;

/// Embeddings by (model, sample key), the oldest dropped beyond [`VOICE_CACHE_ENTRIES`].
#[derive(Default)]
struct VoiceCache {
    entries: HashMap<(String, String), Vec<f32>>,
    order: VecDeque<(String, String)>,
}

impl VoiceCache {
    fn get(&self, key: &(String, String)) -> Option<Vec<f32>> {
        self.entries.get(key).cloned()
    }

    fn put(&mut self, key: (String, String), embedding: Vec<f32>) {
        if self.entries.insert(key.clone(), embedding).is_none() {
            self.order.push_back(key);
        }
        while self.order.len() > VOICE_CACHE_ENTRIES {
            if let Some(old) = self.order.pop_front() {
                self.entries.remove(&old);
            }
        }
    }
}

type Loader = fn(&Device, &Path) -> Result<Arc<dyn VoiceEmbedding>>;

/// Verification models loaded so far, and the voiceprint cache.
#[derive(Default)]
pub struct SpeakerModels {
    source: Option<(PathBuf, HubConfig)>,
    loaded: Mutex<HashMap<String, Arc<dyn VoiceEmbedding>>>,
    voices: Mutex<VoiceCache>,
    /// How a SpeechBrain ECAPA directory is loaded (set by [`SpeakerModels::new`]).
    ecapa: Option<Loader>,
}

impl SpeakerModels {
    /// Models from `models_dir` (a name of a folder there) or the hub.
    pub fn new(models_dir: PathBuf, hub: HubConfig) -> Self {
        SpeakerModels { source: Some((models_dir, hub)), ecapa: ecapa_loader(), ..Default::default() }
    }

    /// The model `name` names (a directory, a folder of `models_dir`, or a hub repository),
    /// loaded on `device` the first time.
    pub fn get(&self, device: &Device, name: &str) -> Result<Arc<dyn VoiceEmbedding>> {
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = loaded.get(name) {
            return Ok(m.clone());
        }
        let (models_dir, hub) =
            self.source.as_ref().ok_or_else(|| Error::Other("no speaker model source is configured".into()))?;
        let dir = resolve(models_dir, hub, name)?;
        let load = self.ecapa.ok_or_else(|| Error::Other("this build has no ECAPA model".into()))?;
        let model = load(device, &dir).map_err(|e| Error::Other(format!("speaker model {name}: {e}")))?;
        tracing::info!("speaker model {name}: {} from {}", model.name(), dir.display());
        loaded.insert(name.to_string(), model.clone());
        Ok(model)
    }

    /// The embedding of the sample `key` by the model `model` names (a key that tells models
    /// apart, not [`VoiceEmbedding::name`]: two ECAPA checkpoints share that), computed by
    /// `embed` the first time.
    pub fn voice(&self, model: &str, key: &str, embed: &mut dyn FnMut() -> Result<Vec<f32>>) -> Result<Vec<f32>> {
        let k = (model.to_string(), key.to_string());
        if let Some(e) = self.voices.lock().unwrap_or_else(|p| p.into_inner()).get(&k) {
            return Ok(e);
        }
        let e = embed()?;
        self.voices.lock().unwrap_or_else(|p| p.into_inner()).put(k, e.clone());
        Ok(e)
    }
}

/// `name` as a directory, a folder of `models_dir`, or a hub repository (owner/name).
fn resolve(models_dir: &Path, hub: &HubConfig, name: &str) -> Result<PathBuf> {
    let path = Path::new(name);
    if path.is_dir() {
        return Ok(path.to_path_buf());
    }
    let local = models_dir.join(name);
    if !name.contains('/') && local.is_dir() {
        return Ok(local);
    }
    if path.is_absolute() || name.starts_with('.') || name.starts_with('~') || name.split('/').count() != 2 {
        return Err(Error::Other(format!(
            "speaker model {name} is neither a directory nor a hub repository (owner/name)"
        )));
    }
    let wanted: Vec<(&str, Required)> = ECAPA_FILES.iter().map(|f| (*f, Required::Yes)).collect();
    snapshot_download(hub, name, REVISION, &wanted)
}

fn ecapa_loader() -> Option<Loader> {
    Some(|device, dir| Ok(Arc::new(crate::models::ecapa::EcapaTdnn::load(device, dir)?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_voice_cache_computes_once_per_model_and_key_and_drops_the_oldest() {
        let models = SpeakerModels::default();
        let mut calls = 0;
        for _ in 0..3 {
            let e = models.voice("CAM++", "a", &mut || {
                calls += 1;
                Ok(vec![1.0])
            });
            assert_eq!(e.unwrap(), vec![1.0]);
        }
        assert_eq!(calls, 1);
        models.voice("ECAPA-TDNN", "a", &mut || Ok(vec![2.0])).unwrap();
        assert_eq!(models.voice("ECAPA-TDNN", "a", &mut || Ok(vec![9.0])).unwrap(), vec![2.0]);
        // A failure is not cached.
        assert!(models.voice("CAM++", "b", &mut || Err(Error::Other("x".into()))).is_err());
        assert_eq!(models.voice("CAM++", "b", &mut || Ok(vec![3.0])).unwrap(), vec![3.0]);
        for i in 0..VOICE_CACHE_ENTRIES {
            models.voice("CAM++", &format!("k{i}"), &mut || Ok(vec![0.0])).unwrap();
        }
        assert_eq!(models.voice("CAM++", "a", &mut || Ok(vec![7.0])).unwrap(), vec![7.0], "the oldest is gone");
    }

    #[test]
    fn a_name_that_is_no_directory_nor_a_repository_is_refused() {
        let hub = HubConfig::new("http://127.0.0.1:9", "/nonexistent", None, true);
        let e = resolve(Path::new("/nonexistent"), &hub, "./nowhere").unwrap_err().to_string();
        assert!(e.contains("./nowhere"), "{e}");
    }
}
