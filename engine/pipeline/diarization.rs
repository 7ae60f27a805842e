//! Stage 5, diarization: who speaks when, and each segment's and word's speaker (WhisperX's
//! `--diarize`). Not built yet: a run that asks for it gets a warning, never an error.

use crate::audio::Audio;
use crate::cancel::Cancel;
use crate::error::Result;

use super::progress::Progress;
use super::runner::{FileTranscript, Outcome, Pipeline};

pub const NOT_BUILT: &str = "diarization: not in this build yet; segments carry no speaker";

pub fn run(
    p: &Pipeline,
    file: &mut FileTranscript,
    _audio: &Audio,
    _cancel: &Cancel,
    _progress: &mut dyn FnMut(Progress),
) -> Result<Outcome> {
    if p.options().diarize_options.diarize {
        file.warnings.push(NOT_BUILT.into());
    }
    Ok(Outcome::Skipped)
}
