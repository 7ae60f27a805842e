//! Audio in: decode files to 16 kHz mono f32 (`decode`, `resample`) and Whisper's log-mel (`mel`,
//! with its filterbank in `filters`, one frame in `mel_frame`, computed as samples arrive by
//! `mel_stream` and stored in `log_mel_frames`); `features` computes the mel and per-hop peaks
//! (`hop_peaks`) of a file while decoding it, without holding its samples; `store` keeps a
//! recording decoded once (memory, or a temporary file for long ones) for every stage to read by
//! time range; `sample_source` is how the batched transcription reads chunks from it.
pub mod decode;
pub mod features;
pub mod filters;
pub mod hop_peaks;
pub mod kaldi_fbank;
pub mod log_mel_frames;
pub mod mel;
pub mod mel_frame;
pub mod mel_stream;
pub mod opus;
pub mod resample;
pub mod sample_source;
pub mod store;

pub use decode::{decode_bytes, load_audio, probe, stream_audio, AudioInfo, DecodeReport};
pub use features::AudioFeatures;
pub use hop_peaks::HopPeaks;
pub use log_mel_frames::LogMelFrames;
pub use mel::{log_mel_spectrogram, log_mel_window, Mel};
pub use mel_stream::MelStream;
pub use resample::resample_to_16k;
pub use sample_source::SampleSource;
pub use store::{Audio, AudioOptions};

/// Whisper's sample rate (openai/whisper audio.py SAMPLE_RATE).
pub const SAMPLE_RATE: u32 = 16_000;
