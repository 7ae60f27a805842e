//! Audio in: decode files to 16 kHz mono f32 (`decode`, `resample`) and Whisper's log-mel (`mel`).
pub mod decode;
pub mod mel;
pub mod resample;

/// Whisper's sample rate (openai/whisper audio.py SAMPLE_RATE).
pub const SAMPLE_RATE: u32 = 16_000;
