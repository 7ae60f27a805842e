//! Stage 1, audio in: the file decoded once, resampled to 16 kHz mono, into the store every
//! later stage reads by time range (memory for short recordings, a temporary file for long
//! ones). Headers declaring more than the allowed length are refused before decoding.

use std::path::Path;

use crate::audio::Audio;
use crate::cancel::Cancel;
use crate::error::Result;

use super::progress::{Progress, Stage, Unit};
use super::runner::Pipeline;

/// Decode `path` into a store.
pub fn run(p: &Pipeline, path: &Path, cancel: &Cancel, progress: &mut dyn FnMut(Progress)) -> Result<Audio> {
    let audio = Audio::decode(path, &p.options().audio, cancel, &mut |seconds| {
        progress(Progress { stage: Stage::Audio, done: seconds, total: 0.0, unit: Unit::Seconds })
    })?;
    tracing::debug!(
        "{}: {:.1} s decoded ({})",
        path.display(),
        audio.duration(),
        if audio.is_on_disk() { "kept in a temporary file" } else { "kept in memory" }
    );
    Ok(audio)
}
