//! Stage 6, speaker names: enrolled voices (speaker samples) name the diarized speakers.
//! Not built yet: a run that asks for it gets a warning naming the samples it could not use.

use crate::audio::Audio;
use crate::cancel::Cancel;
use crate::error::Result;

use super::progress::Progress;
use super::runner::{FileTranscript, Outcome, Pipeline};

pub fn run(
    p: &Pipeline,
    file: &mut FileTranscript,
    _audio: &Audio,
    _cancel: &Cancel,
    _progress: &mut dyn FnMut(Progress),
) -> Result<Outcome> {
    let v = &p.options().verify_options;
    if v.speaker_verification || !v.speaker_samples.is_empty() {
        let names: Vec<&str> = v.speaker_samples.iter().map(|s| s.name.as_str()).collect();
        file.warnings.push(format!(
            "speaker_verification: not in this build yet; speaker_samples ({}) were not used",
            if names.is_empty() { "none given".to_string() } else { names.join(", ") }
        ));
    }
    Ok(Outcome::Skipped)
}
