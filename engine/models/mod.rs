//! The networks: Whisper; pyannote (its checkpoint so far); wav2vec2 and ECAPA later.
pub mod common;
pub mod pyannote;
pub mod whisper;
