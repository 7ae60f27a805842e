//! Stage 5, diarization: who speaks when, and each segment's and word's speaker (WhisperX's
//! `--diarize`, the worker's `diarization`). The diarizer ([`DiarizeModels`], loaded on first use)
//! finds the speaker turns ([`crate::diarize::diarizer`]); WhisperX's `assign_word_speakers`
//! (`fill_nearest` off, as WhisperX calls it) puts them on the segments and words, and a
//! segment whose words change speaker is split at each change. A diarizer that cannot be had or
//! fails leaves a warning and the transcript without speakers; the job never fails for it.
//!
//! Finding the speakers needs only the audio; on a backend that runs stages alongside each
//! other (the CPU) the pipeline runs [`find`] on its own thread while voice activity and
//! transcription run, and [`apply`]s its turns here (`Pipeline::run_audio`).
//!
//! [`DiarizeModels`]: super::diarize_models::DiarizeModels

use std::sync::Arc;

use crate::audio::Audio;
use crate::cancel::Cancel;
use crate::diarize::assign::{assign_word_speakers, split_at_speaker_changes};
use crate::diarize::diarizer::{Diarization, DiarizeStep, Diarizer, SpeakerBounds};
use crate::error::{Error, Result};

use super::progress::{Progress, Stage, Unit};
use super::runner::{DiarizedSpeakers, FileTranscript, Outcome, Pipeline};

/// WhisperX's `assign_word_speakers(diarize_segments, result)`: `fill_nearest=False`.
pub const FILL_NEAREST: bool = false;
/// What every warning of this stage ends with.
pub const NO_SPEAKERS: &str = "segments carry no speaker";

/// What the diarizer made of a recording, before it meets the transcript: [`find`]'s half of
/// the stage, which needs only the audio (so it may run alongside the transcription, see
/// [`Pipeline::run_audio`]).
pub struct Found {
    /// For the result's warnings, in order.
    pub warnings: Vec<String>,
    /// None: the stage was not asked for, or its diarizer could not be had or failed.
    pub speakers: Option<FoundSpeakers>,
}

pub struct FoundSpeakers {
    name: String,
    diarizer: Arc<Diarizer>,
    diarization: Diarization,
}

/// The stage's entry point: [`find`] the speakers, then [`apply`] them to the transcript.
pub fn run(
    p: &Pipeline,
    file: &mut FileTranscript,
    audio: &Audio,
    cancel: &Cancel,
    progress: &mut dyn FnMut(Progress),
) -> Result<Outcome> {
    let found = find(p, audio, cancel, progress)?;
    Ok(apply(file, found, p.options().diarize_options.speaker_embeddings))
}

/// Whether the run asks for speakers: `diarization`, or speaker names, which need them.
pub fn wanted(p: &Pipeline) -> bool {
    p.options().diarize_options.diarize || p.options().verify_options.wanted()
}

/// The speaker turns of `audio`. Only cancelling is an error: a diarizer that cannot be had or
/// fails is a warning.
pub fn find(p: &Pipeline, audio: &Audio, cancel: &Cancel, progress: &mut dyn FnMut(Progress)) -> Result<Found> {
    let o = &p.options().diarize_options;
    let mut warnings = Vec::new();
    if !wanted(p) {
        return Ok(Found { warnings, speakers: None });
    }
    if !o.diarize {
        // The seed worker needs the diarization for its speaker names, and so does stage 6.
        warnings.push("speaker_verification: diarization turned on (speaker names need diarized speakers)".into());
    }
    let device = &p.models().whisper.device;
    let (name, diarizer) = match p.models().diarize.get(device, o.diarize_model.as_deref()) {
        Ok(d) => d,
        Err(e) => {
            warnings.push(format!("diarization: {e}; {NO_SPEAKERS}"));
            return Ok(Found { warnings, speakers: None });
        }
    };
    let bounds = SpeakerBounds {
        num_speakers: None,
        min_speakers: o.min_speakers,
        max_speakers: o.max_speakers,
        threshold: o.diarize_threshold,
    };
    // Segmentation counts as the first half of the work, embeddings as the second.
    let mut report = |step: DiarizeStep, done: usize, total: usize| {
        let half = match step {
            DiarizeStep::Segmentation => 0.0,
            DiarizeStep::Embeddings => 1.0,
        };
        let total = total.max(1) as f64;
        progress(Progress {
            stage: Stage::Diarization,
            done: (half + done as f64 / total) * audio.duration() / 2.0,
            total: audio.duration(),
            unit: Unit::Seconds,
        })
    };
    match diarizer.diarize(device, &mut &*audio, bounds, cancel, &mut report) {
        Ok(diarization) => Ok(Found { warnings, speakers: Some(FoundSpeakers { name, diarizer, diarization }) }),
        Err(Error::Cancelled) => Err(Error::Cancelled),
        Err(e) => {
            warnings.push(format!("diarization: {name} failed ({e}); {NO_SPEAKERS}"));
            Ok(Found { warnings, speakers: None })
        }
    }
}

/// Put what [`find`] found on the transcript's segments and words: WhisperX's
/// `assign_word_speakers`, then each segment split where its words change speaker.
pub fn apply(file: &mut FileTranscript, found: Found, speaker_embeddings: bool) -> Outcome {
    file.warnings.extend(found.warnings);
    let Some(FoundSpeakers { name, diarizer, diarization }) = found.speakers else {
        return Outcome::Skipped;
    };
    tracing::info!(
        "diarized with {name}: {} speakers, {} turns, {} windows, {} pairs clustered",
        diarization.speakers.len(),
        diarization.turns.len(),
        diarization.windows,
        diarization.clustered_pairs
    );
    let t = &mut file.transcript;
    assign_word_speakers(&diarization.turns, &mut t.segments, FILL_NEAREST);
    let segments = std::mem::take(&mut t.segments);
    t.segments = split_at_speaker_changes(segments, &t.language);
    t.collect_word_segments();
    if speaker_embeddings {
        t.speaker_embeddings = Some(diarization.speakers.iter().cloned().collect());
    }
    t.speaker_turns = diarization.turns;
    file.diarized = Some(DiarizedSpeakers {
        diarizer,
        centroids: diarization.speakers,
        exclusive_turns: diarization.exclusive_turns,
    });
    Outcome::Ran
}
