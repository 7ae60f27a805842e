//! Stage 6, speaker names: enrolled voices (speaker samples) name the diarized speakers.
//!
//! 1. The model: the diarizer's own embedding model (like with like: the diarization's centroids
//!    are its embeddings), or `speaker_model` ([`SpeakerModels`]), which then also embeds each
//!    diarized speaker from its own speech (its exclusive turns, up to
//!    [`MAX_SPEAKER_SECONDS`]).
//! 2. Each sample: decoded, reduced to its speech by WhisperX's VAD, embedded (cached per model and
//!    sample key); a sample that cannot be read, has no speech or is too short is a warning naming
//!    it, and the run goes on. Samples of one name are combined ([`enrol`]).
//! 3. Each speaker is matched ([`name_speakers`]);
//! 4. each named speaker's stretches are checked against its name ([`check_turns`]);
//! 5. named speakers' labels are replaced on the segments, words, turns and embeddings, except in
//!    the stretches the check did not confirm ([`relabel`]), and the transcript gains the
//!    `speakers` table.
//!
//! [`SpeakerModels`]: super::speaker_models::SpeakerModels

use std::path::Path;

use crate::audio::{Audio, AudioOptions, SAMPLE_RATE};
use crate::backend::Device;
use crate::cancel::Cancel;
use crate::diarize::assign::SpeakerTurn;
use crate::error::{Error, Result};
use crate::models::pyannote::sliding_window::{SpeechScorer, BATCH_SIZE as VAD_WINDOWS_PER_BATCH};
use crate::models::pyannote::PyanNet;
use crate::output::result::{SpeakerIdentity, UnconfirmedStretch};
use crate::verify::enrol::{enrol, Voiceprint};
use crate::verify::naming::{name_speakers, NamingPolicy, SpeakerMatch, NAME_MARGIN};
use crate::verify::turn_check::{check_stretch, stretches, Stretch, TurnCheck, TurnDecision};
use crate::verify::voice::VoiceEmbedding;

use super::diarize_models::DEFAULT_DIARIZE_MODEL;
use super::options::SpeakerSample;
use super::progress::{Progress, Stage, Unit};
use super::runner::{DiarizedSpeakers, FileTranscript, Outcome, Pipeline};
use super::speaker_models::{turn_threshold, verify_threshold, DIARIZATION_MODEL};
use super::speaker_relabel::{name_of, relabel, Labels};
use super::speech_chunks::{speech_chunks, CHUNK_SIZE, VAD_OFFSET, VAD_ONSET};

/// A sample longer than this is refused (the worker's download caps come first).
pub const MAX_SAMPLE_SECONDS: f64 = 600.0;
/// Speech of one diarized speaker embedded when the verification model is not the diarizer's.
pub const MAX_SPEAKER_SECONDS: f64 = 120.0;
/// The longest part of one stretch embedded for its turn check.
pub const MAX_STRETCH_SECONDS: f64 = 10.0;
/// What every warning of a speaker that keeps its label ends with.
pub const LABELS_KEPT: &str = "speakers keep their SPEAKER_xx labels";

pub fn run(
    p: &Pipeline,
    file: &mut FileTranscript,
    audio: &Audio,
    cancel: &Cancel,
    progress: &mut dyn FnMut(Progress),
) -> Result<Outcome> {
    let v = &p.options().verify_options;
    if !v.wanted() {
        return Ok(Outcome::Skipped);
    }
    if v.speaker_samples.is_empty() {
        file.warnings.push(format!("speaker_verification: no speaker sample could be used; {LABELS_KEPT}"));
        return Ok(Outcome::Skipped);
    }
    let Some(diarized) = file.diarized.take() else {
        file.warnings.push(format!("speaker_verification: there are no diarized speakers to name; {LABELS_KEPT}"));
        return Ok(Outcome::Skipped);
    };
    let device = &p.models().whisper.device;
    let models = &p.models().speakers;
    // Which model embeds, and what names it in the voiceprint cache: the diarizer's own (by the
    // diarization model that loaded it), or `speaker_model` (by the name it was asked by).
    let own_model = v.speaker_model.as_deref().filter(|&m| m != DIARIZATION_MODEL);
    let model_key = match own_model {
        Some(name) => name.to_string(),
        None => format!(
            "{DIARIZATION_MODEL}:{}",
            p.options().diarize_options.diarize_model.as_deref().unwrap_or(DEFAULT_DIARIZE_MODEL)
        ),
    };
    let own;
    let model: &dyn VoiceEmbedding = match own_model {
        None => &*diarized.diarizer.embedding,
        Some(name) => match models.get(device, name) {
            Ok(m) => {
                own = m;
                &*own
            }
            Err(e) => {
                file.warnings.push(format!("speaker_verification: {e}; {LABELS_KEPT}"));
                return Ok(Outcome::Skipped);
            }
        },
    };
    let total = v.speaker_samples.len() as f64;
    let mut embeddings = Vec::new();
    for (i, sample) in v.speaker_samples.iter().enumerate() {
        cancel.check()?;
        let key = sample.key.clone().unwrap_or_else(|| sample.source.clone());
        let embedded = models.voice(&model_key, &key, &mut || {
            embed_sample(model, device, p.models().vad.as_ref(), sample, &p.options().audio, cancel)
        });
        match embedded {
            Ok(e) => embeddings.push((sample.name.clone(), e)),
            Err(Error::Cancelled) => return Err(Error::Cancelled),
            Err(e) => file.warnings.push(format!(
                "speaker_samples: {} ({}): {e}; not enrolled",
                sample.name,
                sample.display.as_deref().unwrap_or(&sample.source)
            )),
        }
        progress(Progress { stage: Stage::SpeakerNames, done: (i + 1) as f64, total, unit: Unit::Samples });
    }
    let voiceprints = enrol(&embeddings);
    let centroids = if own_model.is_none() {
        diarized.centroids.clone()
    } else {
        speaker_voices(model, device, audio, &diarized, cancel)?
    };
    let threshold = v.speaker_threshold.unwrap_or_else(|| verify_threshold(model.name()));
    let matches = name_speakers(&centroids, &voiceprints, &NamingPolicy { threshold, margin: NAME_MARGIN });
    for m in matches.iter().filter(|m| m.name.is_none() && !voiceprints.is_empty()) {
        tracing::info!("{} keeps its label ({})", m.label, m.decision.as_str());
    }
    let turn_threshold = turn_threshold(model.name()).min(threshold);
    let checks =
        check_turns(model, device, audio, &diarized.exclusive_turns, &matches, &voiceprints, turn_threshold, cancel)?;
    let unconfirmed: Vec<Stretch> = checks.iter().map(|(s, _)| s.clone()).collect();
    if !unconfirmed.is_empty() {
        tracing::info!("{} stretches of named speakers keep their labels (turn check)", unconfirmed.len());
    }
    relabel(file, &Labels { matches: &matches, unconfirmed: &unconfirmed });
    file.transcript.speakers = Some(matches.iter().map(|m| identity(m, &checks)).collect());
    Ok(Outcome::Ran)
}

/// Rule set [`crate::verify::turn_check`]: each stretch of a named speaker, embedded alone by
/// `model` from its own parts (at most [`MAX_STRETCH_SECONDS`] of them), checked against its name; the stretches that
/// were not confirmed, with their checks.
#[allow(clippy::too_many_arguments)]
pub fn check_turns(
    model: &dyn VoiceEmbedding,
    device: &Device,
    audio: &Audio,
    exclusive_turns: &[SpeakerTurn],
    matches: &[SpeakerMatch],
    voiceprints: &[Voiceprint],
    turn_threshold: f64,
    cancel: &Cancel,
) -> Result<Vec<(Stretch, TurnCheck)>> {
    let max = (MAX_STRETCH_SECONDS * SAMPLE_RATE as f64) as usize;
    let mut out = Vec::new();
    for stretch in stretches(exclusive_turns, &|l| name_of(matches, l).is_some()) {
        cancel.check()?;
        let speech = speech_of_spans(audio, stretch.parts.iter().copied(), max);
        if speech.len() < model.min_num_samples() {
            continue;
        }
        let embedding = model.embed_utterance(device, &speech)?;
        let name = name_of(matches, &stretch.label).unwrap_or_default();
        let check = check_stretch(name, &embedding, voiceprints, turn_threshold);
        if check.decision != TurnDecision::Confirmed {
            out.push((stretch, check));
        }
    }
    Ok(out)
}

/// A sample's embedding: decoded, its speech kept (WhisperX's VAD, when loaded), embedded.
fn embed_sample(
    model: &dyn VoiceEmbedding,
    device: &Device,
    vad: Option<&PyanNet>,
    sample: &SpeakerSample,
    options: &AudioOptions,
    cancel: &Cancel,
) -> Result<Vec<f32>> {
    let options = AudioOptions { max_seconds: Some(MAX_SAMPLE_SECONDS), ..options.clone() };
    let audio = Audio::decode(Path::new(&sample.source), &options, cancel, &mut |_| {})?;
    let samples = audio.span(0, audio.len());
    let speech = match vad {
        Some(vad) => speech_of(vad, device, &samples)?,
        None => voiced_by_energy(&samples),
    };
    if speech.len() < model.min_num_samples() {
        return Err(Error::Other(format!(
            "{:.2} s of speech, too little to embed (at least {:.2} s)",
            speech.len() as f64 / SAMPLE_RATE as f64,
            model.min_num_samples() as f64 / SAMPLE_RATE as f64
        )));
    }
    model.embed_utterance(device, &speech)
}

/// The samples WhisperX's VAD calls speech (its default onset and offset), joined.
pub fn speech_of(vad: &PyanNet, device: &Device, samples: &[f32]) -> Result<Vec<f32>> {
    let mut scorer = SpeechScorer::new(vad, device, device.sequences_per_pass(VAD_WINDOWS_PER_BATCH), None)?;
    scorer.push(samples)?;
    let scores = scorer.finish()?;
    let chunks = speech_chunks(&scores.scores, &scores.times(), VAD_ONSET, VAD_OFFSET, CHUNK_SIZE);
    let mut speech = Vec::new();
    for r in chunks.iter().flat_map(|c| &c.regions) {
        let start = ((r.start * SAMPLE_RATE as f64).round() as usize).min(samples.len());
        let end = ((r.end * SAMPLE_RATE as f64).round() as usize).min(samples.len());
        speech.extend_from_slice(&samples[start..end.max(start)]);
    }
    Ok(speech)
}

/// Frames of 10 ms in which [`voiced_by_energy`] decides.
const ENERGY_FRAME: usize = 160;
/// A frame is voiced when within this many dB of the loudest frame...
pub const VOICED_WITHIN_DB: f64 = 40.0;
/// ...and above this level (dBFS).
pub const VOICED_FLOOR_DBFS: f64 = -55.0;

/// Without a VAD model (`--vad_method none`): the 10 ms frames within [`VOICED_WITHIN_DB`] of the
/// loudest and above [`VOICED_FLOOR_DBFS`], joined (digital silence gives nothing).
pub fn voiced_by_energy(samples: &[f32]) -> Vec<f32> {
    let db = |f: &[f32]| {
        let power = f.iter().map(|x| (*x as f64).powi(2)).sum::<f64>() / f.len().max(1) as f64;
        10.0 * (power + 1e-20).log10()
    };
    let levels: Vec<f64> = samples.chunks(ENERGY_FRAME).map(db).collect();
    let loudest = levels.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    samples
        .chunks(ENERGY_FRAME)
        .zip(&levels)
        .filter(|(_, &l)| l >= loudest - VOICED_WITHIN_DB && l >= VOICED_FLOOR_DBFS)
        .flat_map(|(f, _)| f.iter().copied())
        .collect()
}

/// Each diarized speaker embedded by `model` from its exclusive turns (at most
/// [`MAX_SPEAKER_SECONDS`] of them); a speaker with too little speech gets a zero vector (it keeps
/// its label).
fn speaker_voices(
    model: &dyn VoiceEmbedding,
    device: &Device,
    audio: &Audio,
    diarized: &DiarizedSpeakers,
    cancel: &Cancel,
) -> Result<Vec<(String, Vec<f32>)>> {
    let max = (MAX_SPEAKER_SECONDS * SAMPLE_RATE as f64) as usize;
    let mut out = Vec::new();
    for (label, _) in &diarized.centroids {
        cancel.check()?;
        let turns = diarized.exclusive_turns.iter().filter(|t| &t.speaker == label);
        let speech = speech_of_spans(audio, turns.map(|t| (t.start, t.end)), max);
        let v = if speech.len() >= model.min_num_samples() {
            model.embed_utterance(device, &speech)?
        } else {
            vec![0.0; model.dimension()]
        };
        out.push((label.clone(), v));
    }
    Ok(out)
}

/// The samples of `spans` (seconds, in order) joined, at most `max_samples` of them: a speaker's
/// voice to embed, from its turns or from one stretch's parts.
fn speech_of_spans(audio: &Audio, spans: impl IntoIterator<Item = (f64, f64)>, max_samples: usize) -> Vec<f32> {
    let mut speech = Vec::new();
    for (start, end) in spans {
        let start = ((start * SAMPLE_RATE as f64).round() as usize).min(audio.len());
        let end = ((end * SAMPLE_RATE as f64).round() as usize).min(audio.len());
        let take = end.saturating_sub(start).min(max_samples - speech.len());
        if take > 0 {
            speech.extend_from_slice(&audio.span(start, start + take));
        }
    }
    speech
}

fn identity(m: &SpeakerMatch, checks: &[(Stretch, TurnCheck)]) -> SpeakerIdentity {
    let unconfirmed = checks
        .iter()
        .filter(|(s, _)| s.label == m.label)
        .map(|(s, c)| UnconfirmedStretch {
            start: round4(s.start),
            end: round4(s.end),
            score: round4(c.score),
            best_other: c.best_other.as_ref().map(|b| b.0.clone()),
            best_other_score: c.best_other.as_ref().map(|b| round4(b.1)),
            decision: c.decision.as_str().to_string(),
        })
        .collect();
    SpeakerIdentity {
        unconfirmed,
        label: m.label.clone(),
        name: m.name.clone(),
        best: m.best.as_ref().map(|b| b.0.clone()),
        score: m.best.as_ref().map(|b| round4(b.1)),
        runner_up: m.runner_up.as_ref().map(|r| r.0.clone()),
        runner_up_score: m.runner_up.as_ref().map(|r| round4(r.1)),
        decision: m.decision.as_str().to_string(),
    }
}

fn round4(x: f64) -> f64 {
    (x * 1e4).round() / 1e4
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn energy_keeps_the_loud_frames_and_digital_silence_gives_nothing() {
        assert!(voiced_by_energy(&[0.0; 16_000]).is_empty());
        let mut x = vec![0.0f32; 1600];
        x.extend((0..1600).map(|i| 0.3 * (i as f32 * 0.2).sin()));
        x.extend(vec![1e-5f32; 1600]);
        let v = voiced_by_energy(&x);
        assert_eq!(v.len(), 1600);
        assert_eq!(v[..], x[1600..3200]);
    }

    #[test]
    fn speech_of_spans_joins_the_spans_up_to_the_cap_and_the_end() {
        let sr = SAMPLE_RATE as f64;
        let audio = Audio::from_samples("x.wav", (0..16_000).map(|i| i as f32).collect());
        // 0.1–0.2 s and 0.5–0.6 s: 1600 samples each, in order.
        let speech = speech_of_spans(&audio, [(0.1, 0.2), (0.5, 0.6)], 10_000);
        assert_eq!(speech.len(), 3200);
        assert_eq!((speech[0], speech[1599], speech[1600]), (1600.0, 3199.0, 8000.0));
        // The cap cuts inside the second span; empty, reversed and out-of-file spans give nothing.
        let capped = speech_of_spans(&audio, [(0.3, 0.2), (0.1, 0.2), (0.5, 0.6), (2.0, 3.0)], 2000);
        assert_eq!(capped, (1600..3200).chain(8000..8400).map(|v| v as f32).collect::<Vec<_>>());
        // A span past the end is cut at the last sample.
        assert_eq!(speech_of_spans(&audio, [(0.9, 1.5)], 100_000).len(), (sr * 0.1) as usize);
    }
}
