//! Audio in: decode files to 16 kHz mono f32 (`decode`, `resample`) and Whisper's log-mel (`mel`,
//! with its filterbank in `filters`).
pub mod decode;
pub mod filters;
pub mod mel;
pub mod resample;

pub use decode::{decode_bytes, load_audio};
pub use mel::{log_mel_spectrogram, log_mel_window, Mel};
pub use resample::resample_to_16k;

/// Whisper's sample rate (openai/whisper audio.py SAMPLE_RATE).
pub const SAMPLE_RATE: u32 = 16_000;
