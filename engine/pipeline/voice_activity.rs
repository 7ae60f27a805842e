//! Stage 2, voice activity: WhisperX's VAD (pyannote segmentation, 5 s windows) scores the
//! recording read from the store, and the scores become the ≤ `chunk_size` speech chunks the
//! batched transcription decodes (`speech_chunks`). By default the windows are scored coarse to
//! fine (`vad_refine`); `coarse_to_fine: false` streams every window through the model.

use crate::audio::Audio;
use crate::cancel::Cancel;
use crate::error::Result;
use crate::models::pyannote::sliding_window::{SpeechScorer, BATCH_SIZE as VAD_WINDOWS_PER_BATCH};

use super::options::VadMethod;
use super::progress::{Progress, Stage, Unit};
use super::runner::{FileTranscript, Outcome, Pipeline};
use super::speech_chunks::{merge_chunks, speech_chunks, Chunk};
use super::vad_refine::{self, Thresholds};

pub fn run(
    p: &Pipeline,
    file: &mut FileTranscript,
    audio: &Audio,
    cancel: &Cancel,
    progress: &mut dyn FnMut(Progress),
) -> Result<Outcome> {
    let o = &p.options().vad_options;
    if o.method == VadMethod::None {
        return Ok(Outcome::Skipped);
    }
    let Some(vad) = &p.models().vad else {
        file.warnings
            .push("voice_activity: no VAD model is loaded; the whole recording is transcribed sequentially".into());
        return Ok(Outcome::Skipped);
    };
    let device = &p.models().whisper.device;
    let total = audio.duration();
    // pyannote's batch of windows, or fewer where the backend prefers fewer (the CPU's caches):
    // the same scores either way, up to the filter bank's last bits.
    let windows_per_batch = device.sequences_per_pass(VAD_WINDOWS_PER_BATCH);
    let chunks = if o.coarse_to_fine {
        let thresholds = Thresholds { onset: o.vad_onset, offset: o.vad_offset, max_duration: o.chunk_size };
        let mut report =
            |done: f64| progress(Progress { stage: Stage::VoiceActivity, done, total, unit: Unit::Seconds });
        let refined = vad_refine::speech_regions(
            vad,
            device,
            audio,
            o.step,
            windows_per_batch,
            &thresholds,
            cancel,
            &mut report,
        )?;
        tracing::debug!(
            "voice activity: {} windows scored coarse to fine in {} rounds, {} of {} frames exact",
            refined.windows_scored,
            refined.rounds,
            refined.exact.iter().filter(|&&e| e).count(),
            refined.exact.len()
        );
        merge_chunks(&refined.regions, o.chunk_size)
    } else {
        let mut scorer = SpeechScorer::new(vad, device, windows_per_batch, o.step)?;
        audio.for_each_block(0, audio.len(), cancel, &mut |block| {
            let before = scorer.windows_done();
            scorer.push(block)?;
            if scorer.windows_done() != before {
                progress(Progress { stage: Stage::VoiceActivity, done: scorer.seconds(), total, unit: Unit::Seconds });
            }
            Ok(())
        })?;
        cancel.check()?;
        let scores = scorer.finish()?;
        speech_chunks(&scores.scores, &scores.times(), o.vad_onset, o.vad_offset, o.chunk_size)
    };
    if tracing::enabled!(tracing::Level::DEBUG) {
        for (i, c) in chunks.iter().enumerate() {
            let regions: Vec<String> = c.regions.iter().map(|r| format!("{:.3}-{:.3}", r.start, r.end)).collect();
            tracing::debug!("chunk {i}: speech {}", regions.join(" "));
        }
    }
    file.speech = speech_seconds(&chunks);
    tracing::info!("{}: {} chunks, {:.1} s of speech in {total:.1} s", audio.path.display(), chunks.len(), file.speech);
    progress(Progress { stage: Stage::VoiceActivity, done: total, total, unit: Unit::Seconds });
    file.chunks = Some(chunks);
    Ok(Outcome::Ran)
}

/// Seconds of speech in `chunks`' regions. A fold from +0.0: `Iterator::sum` of no regions is
/// −0.0, which the stage's log line printed as "-0.0 s of speech".
fn speech_seconds(chunks: &[Chunk]) -> f64 {
    chunks.iter().flat_map(|c| c.regions.iter()).fold(0.0, |total, r| total + (r.end - r.start))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::speech_chunks::Region;

    #[test]
    fn speech_seconds_adds_every_region_and_is_plus_zero_without_any() {
        let none = speech_seconds(&[]);
        assert!(none == 0.0 && none.is_sign_positive(), "{none}");
        assert_eq!(format!("{none:.1}"), "0.0");
        let chunk = |regions: &[(f64, f64)]| Chunk {
            start: regions[0].0,
            end: regions[regions.len() - 1].1,
            regions: regions.iter().map(|&(start, end)| Region { start, end }).collect(),
        };
        let chunks = [chunk(&[(0.5, 2.0), (3.0, 4.25)]), chunk(&[(31.0, 33.5)])];
        assert_eq!(speech_seconds(&chunks), 1.5 + 1.25 + 2.5);
    }
}
