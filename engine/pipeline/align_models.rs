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
    /// The alignment models' `align_compute_type` ([`Wav2Vec2ForCtc::apply_compute_type`]).
    pub compute_type: String,
}

/// One loaded alignment model with what the aligner needs beside it.
pub struct Aligner {
    pub name: String,
    pub model: Wav2Vec2ForCtc,
    pub dictionary: Dictionary,
}

/// One model's place: empty until a load succeeds; its lock is held through the load.
type LoadSlot = Arc<Mutex<Option<Arc<Aligner>>>>;

/// Models loaded so far, by name; the source they come from (None: alignment models cannot be
/// had in this setup).
#[derive(Default)]
pub struct AlignModels {
    source: Option<AlignSource>,
    /// One slot per model name: a job loading one model never waits on the load of another.
    loaded: Mutex<HashMap<String, LoadSlot>>,
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
        // The map's lock is held only to find the model's slot; the slot's lock is held through
        // the load, so a second job asking for the same model waits for the first load, while
        // jobs asking for other models go on. A failed load leaves the slot empty (tried again).
        let slot = {
            let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
            loaded.entry(key).or_default().clone()
        };
        let mut slot = slot.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(a) = slot.as_ref() {
            return Ok(a.clone());
        }
        let aligner = Arc::new(load(device, source, &model)?);
        *slot = Some(aligner.clone());
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
    let mut wav2vec2 =
        Wav2Vec2ForCtc::load(device, &ckpt).map_err(|e| Error::Other(format!("alignment model {model}: {e}")))?;
    wav2vec2.apply_compute_type(device, &source.compute_type)?;
    let dictionary = Dictionary::from_labels(&wav2vec2.labels);
    tracing::info!(
        "alignment model {model}: {} classes, loaded from {} (compute_type={})",
        wav2vec2.labels.len(),
        ckpt.source.display(),
        wav2vec2.compute_type(device)
    );
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

/// Samples of one batched forward counted as if padded: inputs × the longest of them, here
/// eight full windows. It bounds attention's padded operands (`[B, T_longest, D]`) and, the
/// frames of a batch being fewer, every packed activation (the largest, the FFN's `[ΣT, F]`,
/// is at most 8 × 1500 × 4096 f32 = 197 MB for a large model), whatever the spans asked for at
/// once; a batch that still runs out of GPU memory is halved and retried.
pub const BATCH_SAMPLES: usize = 8 * 30 * 16_000;

/// The model run over the audio store: each span's samples (clamped to the recording),
/// zero-padded to [`MIN_SAMPLES`], cut into windows of at most [`MAX_WINDOW_SECONDS`]; the
/// windows of all spans asked for at once run in batches ([`Wav2Vec2ForCtc::log_probs_batch`],
/// each window's result that of the window alone), by length so that attention pads little.
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
        let samples: Vec<Vec<f32>> = spans
            .iter()
            .map(|span| {
                let mut samples = self.audio.span(span.start, span.end);
                if samples.len() < MIN_SAMPLES {
                    samples.resize(MIN_SAMPLES, 0.0);
                }
                samples
            })
            .collect();
        // Every window of every span: (span, sample range), in order.
        let windows: Vec<(usize, std::ops::Range<usize>)> = samples
            .iter()
            .enumerate()
            .flat_map(|(s, x)| windows_of(x.len(), window).into_iter().map(move |r| (s, r)))
            .collect();
        let input = |w: usize| -> &[f32] {
            let (s, r) = &windows[w];
            &samples[*s][r.clone()]
        };
        let mut by_length: Vec<usize> = (0..windows.len()).collect();
        by_length.sort_by_key(|&w| windows[w].1.len());
        let mut results: Vec<Option<OwnedEmissions>> = vec![None; windows.len()];
        for batch in batches(&by_length, |w| windows[w].1.len(), BATCH_SAMPLES) {
            self.cancel.check()?;
            let (chunks, _) = crate::backend::oom::halve_on_oom(batch.len(), batch.len(), |start, len| {
                let inputs: Vec<&[f32]> = batch[start..start + len].iter().map(|&w| input(w)).collect();
                model.log_probs_batch(self.device, &inputs)
            })?;
            for (&w, lp) in batch.iter().zip(chunks.into_iter().flatten()) {
                results[w] = Some(OwnedEmissions { data: lp.data, frames: lp.frames, classes: lp.classes });
            }
        }
        // Each span's windows, joined in order.
        let mut out: Vec<OwnedEmissions> = spans
            .iter()
            .map(|_| OwnedEmissions { data: Vec::new(), frames: 0, classes: model.config.vocab_size })
            .collect();
        for ((s, _), lp) in windows.iter().zip(results) {
            let lp = lp.expect("every window ran in one batch");
            out[*s].data.extend_from_slice(&lp.data);
            out[*s].frames += lp.frames;
        }
        Ok(out)
    }
}

/// `0..len` cut into windows of `window` samples; a last piece shorter than the receptive field
/// joins the window before it.
fn windows_of(len: usize, window: usize) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < len {
        let mut end = (at + window).min(len);
        if len - end < MIN_SAMPLES {
            end = len;
        }
        out.push(at..end);
        at = end;
    }
    out
}

/// `items` (sorted by length, shortest first) in consecutive batches whose padded size, count ×
/// the longest, stays within `budget` (an item over it is a batch of its own).
fn batches(items: &[usize], len: impl Fn(usize) -> usize, budget: usize) -> Vec<&[usize]> {
    let mut out = Vec::new();
    let mut start = 0;
    for end in 1..=items.len() {
        // Sorted: the item at `end - 1` is the batch's longest.
        if end - start > 1 && (end - start) * len(items[end - 1]) > budget {
            out.push(&items[start..end - 1]);
            start = end - 1;
        }
    }
    if start < items.len() {
        out.push(&items[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_cover_the_span_and_a_short_tail_joins_the_last() {
        assert_eq!(windows_of(400, 1000), vec![0..400]);
        assert_eq!(windows_of(2500, 1000), vec![0..1000, 1000..2000, 2000..2500]);
        // 300 left after two windows: under the receptive field, so the second takes it.
        assert_eq!(windows_of(2300, 1000), vec![0..1000, 1000..2300]);
        assert_eq!(windows_of(2000, 1000), vec![0..1000, 1000..2000]);
    }

    #[test]
    fn batched_emissions_are_each_window_run_alone_in_span_order() {
        // The reference's small random base model over 70 s of a deterministic signal; spans of
        // every kind: shorter than the receptive field (padded), past the audio's end (clamped),
        // over 30 s (three windows, the last shorter), empty, and one asked for twice.
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/data/wav2vec2/base_group");
        let device = Device::cpu();
        let model = Wav2Vec2ForCtc::load(&device, &crate::models::wav2vec2::checkpoint::open(&dir).unwrap()).unwrap();
        let dictionary = Dictionary::from_labels(&model.labels);
        let aligner = Aligner { name: "base_group".into(), model, dictionary };
        let samples: Vec<f32> =
            (0..1_120_000).map(|i| 0.1 * ((i as f32) * 0.031).sin() * ((i as f32) * 1e-4).cos()).collect();
        let audio = Audio::from_samples("signal", samples);
        let span = |start, end| SampleSpan { start, end };
        let spans = [
            span(16_000, 56_000),
            span(0, 200),
            span(100_000, 1_100_000),
            span(5, 5),
            span(1_110_000, 1_200_000),
            span(0, 200),
        ];
        let cancel = Cancel::new();
        let mut source = ModelEmissions { aligner: &aligner, device: &device, audio: &audio, cancel: &cancel };
        let got = source.emissions(&spans).unwrap();
        assert_eq!(got.len(), spans.len());
        let model = &aligner.model;
        for (s, e) in spans.iter().zip(&got) {
            let mut x = audio.span(s.start, s.end);
            x.resize(x.len().max(MIN_SAMPLES), 0.0);
            // WhisperX's window arithmetic, one window at a time.
            let mut want = Vec::new();
            for w in windows_of(x.len(), 480_000) {
                want.extend(model.log_probs(&device, &x[w]).unwrap().data);
            }
            assert_eq!(e.classes, model.config.vocab_size);
            assert_eq!(e.data.len(), e.frames * e.classes, "{s:?}");
            assert_eq!(e.data.len(), want.len(), "{s:?}");
            let worst =
                e.data.iter().zip(&want).map(|(a, b)| (a - b).abs() / (1e-5 + 1e-6 * b.abs())).fold(0f32, f32::max);
            assert!(worst <= 1.0, "{s:?}: batched emissions differ from each window alone ({worst} of the tolerance)");
        }
        assert_eq!(got[2].frames, 1499 + 1499 + 124, "three windows of 30, 30 and 2.5 s");
        assert_eq!(got[1], got[5]);
    }

    #[test]
    fn batches_keep_count_times_longest_within_the_budget() {
        let lens = [100, 200, 250, 300, 900, 2000];
        let items: Vec<usize> = (0..lens.len()).collect();
        let got = batches(&items, |i| lens[i], 1000);
        // 3 × 250 fits, 4 × 300 does not; 900 alone; 2000 over the budget alone.
        assert_eq!(got, vec![&[0, 1, 2][..], &[3][..], &[4][..], &[5][..]]);
        assert!(batches(&[], |i| lens[i], 1000).is_empty());
        assert_eq!(batches(&items, |i| lens[i], usize::MAX), vec![&items[..]]);
    }
}
