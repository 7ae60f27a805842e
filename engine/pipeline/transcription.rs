//! Stage 3, transcription: with the VAD's chunks, WhisperX's batched decoding (`batched`);
//! without them, openai's sequential long-form decoding of the whole recording
//! (`models::whisper::transcribe`). Word times by cross-attention (DTW) are computed here when
//! asked for, while the encoder's output is at hand.

use crate::audio::mel::HOP_LENGTH;
use crate::audio::SAMPLE_RATE;
use crate::audio::{Audio, AudioFeatures};
use crate::cancel::Cancel;
use crate::error::Result;
use crate::models::whisper::transcribe::transcribe_features;

use super::batched::transcribe_chunks;
use super::progress::{Progress, Stage, Unit};
use super::runner::{FileTranscript, Outcome, Pipeline};

pub fn run(
    p: &Pipeline,
    file: &mut FileTranscript,
    audio: &Audio,
    cancel: &Cancel,
    progress: &mut dyn FnMut(Progress),
) -> Result<Outcome> {
    let whisper = &p.models().whisper;
    let o = p.options();
    file.transcript = match &file.chunks {
        Some(chunks) => {
            let mut report = |done: usize, total: usize| {
                progress(Progress {
                    stage: Stage::Transcription,
                    done: done as f64,
                    total: total as f64,
                    unit: Unit::Chunks,
                })
            };
            let t = transcribe_chunks(
                whisper,
                &mut &*audio,
                chunks,
                &o.asr_options,
                o.batch_size,
                &mut report,
                &mut file.stats,
                cancel,
            )?;
            tracing::debug!(
                "batched: {} encoder calls, {} decoding batches, {} chunks silent",
                file.stats.encoder_calls,
                file.stats.decoder_calls,
                file.stats.silent_chunks
            );
            t
        }
        None => {
            // The log-mel and per-hop peaks of the whole recording, read from the store.
            let features = AudioFeatures::from_audio(audio, whisper.config.num_mel_bins, cancel)?;
            let seconds = |frames: usize| (frames * HOP_LENGTH) as f64 / SAMPLE_RATE as f64;
            let mut report = |done: usize, total: usize| {
                progress(Progress {
                    stage: Stage::Transcription,
                    done: seconds(done),
                    total: seconds(total),
                    unit: Unit::Seconds,
                })
            };
            transcribe_features(whisper, &features, &o.asr_options, &mut report, cancel)?
        }
    };
    Ok(Outcome::Ran)
}
