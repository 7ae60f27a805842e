//! The alignment models a pipeline may need, loaded on first use and kept: the language of a
//! file is known only after transcription, so each language's wav2vec2 model (and its punkt
//! sentence model) is found, loaded once and shared by every later file and job. Also the
//! model as the aligner's [`EmissionSource`] over the audio store.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::align::punkt::Punkt;
use crate::align::{Dictionary, EmissionSource, OwnedEmissions, SampleSpan, SentenceSplitter, MIN_SAMPLES};
use crate::audio::Audio;
use crate::backend::Device;
use crate::cancel::Cancel;
use crate::error::{Error, Result};
use crate::hub::torch_hub::TorchHubConfig;
use crate::hub::HubConfig;
use crate::models::wav2vec2::choice::{self, AlignModel};
use crate::models::wav2vec2::Wav2Vec2ForCtc;

/// The longest input the model sees in one forward: longer spans are cut into windows this long
/// and their emissions joined, so attention memory stays bounded whatever a segment's length
/// (WhisperX's segments are at most 30 s, so it never cuts them).
pub const MAX_WINDOW_SECONDS: f64 = 30.0;

/// Where alignment models and sentence models come from.
#[derive(Clone, Debug)]
pub struct AlignSource {
    pub hub: HubConfig,
    pub torch: TorchHubConfig,
    /// The models directory holding `punkt/<language>/` (`models/fetch punkt`).
    pub models_dir: PathBuf,
}

/// One loaded alignment model with what the aligner needs beside it.
pub struct Aligner {
    pub name: String,
    pub model: Wav2Vec2ForCtc,
    pub dictionary: Dictionary,
}

/// Models loaded so far, by name; the source they come from (None: alignment models cannot be
/// had in this setup).
#[derive(Default)]
pub struct AlignModels {
    source: Option<AlignSource>,
    loaded: Mutex<HashMap<String, Arc<Aligner>>>,
    punkt: Mutex<HashMap<String, Arc<Punkt>>>,
}

impl AlignModels {
    pub fn new(source: AlignSource) -> Self {
        AlignModels { source: Some(source), ..Default::default() }
    }

    /// No alignment models: every run asking for alignment gets a warning and DTW times.
    pub fn none() -> Self {
        Self::default()
    }

    /// The model for `language` (`explicit`: `--align_model`), loading it on `device` the first
    /// time. Errors say which model and why (no default for the language, download refused,
    /// damaged file).
    pub fn get(&self, device: &Device, language: &str, explicit: Option<&str>) -> Result<Arc<Aligner>> {
        let source =
            self.source.as_ref().ok_or_else(|| Error::Other("no alignment model source is configured".into()))?;
        let model = choice::model_for(language, explicit).ok_or_else(|| {
            Error::Other(format!(
                "no default alignment model for language `{language}`; pass one with --align_model / align_model"
            ))
        })?;
        let key = model.to_string();
        // One load at a time: a second job asking for the same model waits for the first load.
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(a) = loaded.get(&key) {
            return Ok(a.clone());
        }
        let aligner = Arc::new(load(device, source, &model)?);
        loaded.insert(key, aligner.clone());
        Ok(aligner)
    }

    /// The punkt model WhisperX would use for `language`, loaded once.
    pub fn punkt(&self, language: &str) -> Result<Arc<Punkt>> {
        let source =
            self.source.as_ref().ok_or_else(|| Error::Other("no sentence model source is configured".into()))?;
        let mut cache = self.punkt.lock().unwrap_or_else(|p| p.into_inner());
        let name = crate::align::punkt::language::punkt_language(language).to_string();
        if let Some(p) = cache.get(&name) {
            return Ok(p.clone());
        }
        let punkt = Arc::new(Punkt::for_language(&source.models_dir, language)?);
        cache.insert(name, punkt.clone());
        Ok(punkt)
    }
}

fn load(device: &Device, source: &AlignSource, model: &AlignModel) -> Result<Aligner> {
    let ckpt = choice::open(model, &source.hub, &source.torch)
        .map_err(|e| Error::Other(format!("alignment model {model}: {e}")))?;
    let wav2vec2 =
        Wav2Vec2ForCtc::load(device, &ckpt).map_err(|e| Error::Other(format!("alignment model {model}: {e}")))?;
    let dictionary = Dictionary::from_labels(&wav2vec2.labels);
    tracing::info!("alignment model {model}: {} classes, loaded from {}", wav2vec2.labels.len(), ckpt.source.display());
    Ok(Aligner { name: model.to_string(), model: wav2vec2, dictionary })
}

/// One sentence per segment: what the aligner uses when no punkt model can be had.
pub struct WholeText;

impl SentenceSplitter for WholeText {
    fn spans(&self, text: &str) -> Vec<(usize, usize)> {
        let n = text.chars().count();
        let lead = text.chars().take_while(|c| c.is_whitespace()).count();
        let trail = text.chars().rev().take_while(|c| c.is_whitespace()).count();
        if lead >= n {
            Vec::new()
        } else {
            vec![(lead, n - trail)]
        }
    }
}

/// The model run over the audio store: each span's samples (clamped to the recording),
/// zero-padded to [`MIN_SAMPLES`], cut into windows of at most [`MAX_WINDOW_SECONDS`].
pub struct ModelEmissions<'a> {
    pub aligner: &'a Aligner,
    pub device: &'a Device,
    pub audio: &'a Audio,
    pub cancel: &'a Cancel,
}

impl EmissionSource for ModelEmissions<'_> {
    fn emissions(&mut self, spans: &[SampleSpan]) -> Result<Vec<OwnedEmissions>> {
        let model = &self.aligner.model;
        let window = (MAX_WINDOW_SECONDS * crate::align::SAMPLE_RATE) as usize;
        let window = window - window % model.config.hop(); // windows end on frame boundaries
        spans
            .iter()
            .map(|span| {
                let mut samples = self.audio.span(span.start, span.end);
                if samples.len() < MIN_SAMPLES {
                    samples.resize(MIN_SAMPLES, 0.0);
                }
                let mut out = OwnedEmissions { data: Vec::new(), frames: 0, classes: model.config.vocab_size };
                let mut at = 0;
                while at < samples.len() {
                    self.cancel.check()?;
                    let mut end = (at + window).min(samples.len());
                    // A last piece shorter than the receptive field joins the window before it.
                    if samples.len() - end < MIN_SAMPLES {
                        end = samples.len();
                    }
                    let lp = model.log_probs(self.device, &samples[at..end])?;
                    out.data.extend_from_slice(&lp.data);
                    out.frames += lp.frames;
                    at = end;
                }
                Ok(out)
            })
            .collect()
    }
}
