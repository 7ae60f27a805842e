//! The networks: Whisper; pyannote segmentation (PyanNet, the VAD); wav2vec2 and ECAPA later.
pub mod common;
pub mod pyannote;
pub mod whisper;
