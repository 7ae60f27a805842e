//! Stage 5, diarization: who speaks when, and each segment's and word's speaker (WhisperX's
//! `--diarize`, the worker's `diarization`). The diarizer ([`DiarizeModels`], loaded on first use)
//! finds the speaker turns ([`crate::diarize::diarizer`]); WhisperX's `assign_word_speakers`
//! (`fill_nearest` off, as WhisperX calls it) puts them on the segments and words, and a
//! segment whose words change speaker is split at each change. A diarizer that cannot be had or
//! fails leaves a warning and the transcript without speakers; the job never fails for it.
//!
//! [`DiarizeModels`]: super::diarize_models::DiarizeModels

use crate::audio::Audio;
use crate::cancel::Cancel;
use crate::diarize::assign::{assign_word_speakers, split_at_speaker_changes};
use crate::diarize::diarizer::{DiarizeStep, SpeakerBounds};
use crate::error::{Error, Result};

use super::progress::{Progress, Stage, Unit};
use super::runner::{DiarizedSpeakers, FileTranscript, Outcome, Pipeline};

/// WhisperX's `assign_word_speakers(diarize_segments, result)`: `fill_nearest=False`.
pub const FILL_NEAREST: bool = false;
/// What every warning of this stage ends with.
pub const NO_SPEAKERS: &str = "segments carry no speaker";

pub fn run(
    p: &Pipeline,
    file: &mut FileTranscript,
    audio: &Audio,
    cancel: &Cancel,
    progress: &mut dyn FnMut(Progress),
) -> Result<Outcome> {
    let o = &p.options().diarize_options;
    if !o.diarize {
        if !p.options().verify_options.wanted() {
            return Ok(Outcome::Skipped);
        }
        // The seed worker needs the diarization for its speaker names, and so does stage 6.
        file.warnings.push("speaker_verification: diarization turned on (speaker names need diarized speakers)".into());
    }
    let device = &p.models().whisper.device;
    let (name, diarizer) = match p.models().diarize.get(device, o.diarize_model.as_deref()) {
        Ok(d) => d,
        Err(e) => {
            file.warnings.push(format!("diarization: {e}; {NO_SPEAKERS}"));
            return Ok(Outcome::Skipped);
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
    let diarization = match diarizer.diarize(device, &mut &*audio, bounds, cancel, &mut report) {
        Ok(d) => d,
        Err(Error::Cancelled) => return Err(Error::Cancelled),
        Err(e) => {
            file.warnings.push(format!("diarization: {name} failed ({e}); {NO_SPEAKERS}"));
            return Ok(Outcome::Skipped);
        }
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
    if o.speaker_embeddings {
        t.speaker_embeddings = Some(diarization.speakers.iter().cloned().collect());
    }
    t.speaker_turns = diarization.turns;
    file.diarized = Some(DiarizedSpeakers {
        diarizer,
        centroids: diarization.speakers,
        exclusive_turns: diarization.exclusive_turns,
    });
    Ok(Outcome::Ran)
}
