//! The networks: Whisper now; wav2vec2, pyannote and ECAPA later.
pub mod common;
pub mod whisper;
