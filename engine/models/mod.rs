//! The networks: Whisper; pyannote segmentation (PyanNet, the VAD); wav2vec2 CTC (alignment); ECAPA later.
pub mod common;
pub mod pyannote;
pub mod wav2vec2;
pub mod whisper;
