//! What transcription needs from an audio file, computed while it is decoded so the samples are
//! never held: Whisper's log-mel with openai's 30 s of trailing zero padding (`n_mels` f32 per
//! 10 ms frame, 230 MB for two hours at 80 bins), the peak of every hop (for the digital-silence
//! check) and the length.

use std::path::Path;

use symphonia::core::io::MediaSource;

use crate::audio::decode::{stream_audio, stream_source};
use crate::audio::hop_peaks::HopPeaks;
use crate::audio::log_mel_frames::LogMelFrames;
use crate::audio::mel::N_SAMPLES;
use crate::audio::mel_stream::MelStream;
use crate::audio::SAMPLE_RATE;
use crate::Result;

/// The log-mel, hop peaks and length of one 16 kHz signal.
#[derive(Debug, Clone)]
pub struct AudioFeatures {
    /// openai's `log_mel_spectrogram(audio, n_mels, padding=N_SAMPLES)`, unscaled until read.
    pub mel: LogMelFrames,
    pub peaks: HopPeaks,
    /// 16 kHz samples of audio (without the padding).
    pub n_samples: usize,
}

impl AudioFeatures {
    /// Decode `path` (WAV, FLAC) and compute its features as it streams.
    pub fn from_file(path: &Path, n_mels: usize) -> Result<Self> {
        let mut features = FeatureStream::new(n_mels)?;
        stream_audio(path, &mut |samples| {
            features.push(samples);
            Ok(())
        })?;
        Ok(features.finish())
    }

    /// Decode any seekable source; `name` names it in errors and gives the format hint.
    pub fn from_source(source: Box<dyn MediaSource>, name: &Path, n_mels: usize) -> Result<Self> {
        let mut features = FeatureStream::new(n_mels)?;
        stream_source(source, name, &mut |samples| {
            features.push(samples);
            Ok(())
        })?;
        Ok(features.finish())
    }

    /// Features of a decoded recording, read from its store block by block.
    pub fn from_audio(audio: &crate::audio::Audio, n_mels: usize, cancel: &crate::Cancel) -> Result<Self> {
        let mut features = FeatureStream::new(n_mels)?;
        audio.for_each_block(0, audio.len(), cancel, &mut |samples| {
            features.push(samples);
            Ok(())
        })?;
        Ok(features.finish())
    }

    /// Features of samples already in memory (16 kHz mono).
    pub fn from_samples(samples: &[f32], n_mels: usize) -> Result<Self> {
        let mut features = FeatureStream::new(n_mels)?;
        features.push(samples);
        Ok(features.finish())
    }

    /// Length of the audio in seconds.
    pub fn duration_s(&self) -> f64 {
        self.n_samples as f64 / SAMPLE_RATE as f64
    }
}

/// Feeds each block of samples to the mel and the hop peaks.
struct FeatureStream {
    mel: MelStream,
    peaks: HopPeaks,
}

impl FeatureStream {
    fn new(n_mels: usize) -> Result<Self> {
        Ok(FeatureStream { mel: MelStream::new(n_mels)?, peaks: HopPeaks::new() })
    }

    fn push(&mut self, samples: &[f32]) {
        self.mel.push(samples);
        self.peaks.push(samples);
    }

    fn finish(self) -> AudioFeatures {
        let n_samples = self.mel.n_samples();
        // "Pad 30-seconds of silence to the input audio, for slicing"
        AudioFeatures { mel: self.mel.finish(N_SAMPLES), peaks: self.peaks, n_samples }
    }
}
