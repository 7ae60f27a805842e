//! Stage 4, word times. Whisper's cross-attention (DTW) word times are computed during
//! transcription, where the encoder's output is at hand (`--word_timestamps`). wav2vec2 CTC
//! alignment (`align_output`, WhisperX's `align`) comes here; until it is built, a run that
//! asks for it gets the DTW times and a warning saying so.

use crate::audio::Audio;
use crate::cancel::Cancel;
use crate::error::Result;

use super::progress::Progress;
use super::runner::{FileTranscript, Outcome, Pipeline};

/// The warning a run asking for wav2vec2 alignment gets.
pub const NOT_BUILT: &str =
    "align_output: wav2vec2 alignment is not in this build yet; word times come from Whisper's cross-attention (DTW)";

pub fn run(
    p: &Pipeline,
    file: &mut FileTranscript,
    _audio: &Audio,
    _cancel: &Cancel,
    _progress: &mut dyn FnMut(Progress),
) -> Result<Outcome> {
    if p.options().align_options.align_output {
        file.warnings.push(NOT_BUILT.into());
    }
    Ok(Outcome::Skipped)
}
