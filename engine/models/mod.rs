//! The networks: Whisper; pyannote segmentation (PyanNet, the VAD); wav2vec2 CTC (alignment);
//! speaker embeddings (CAM++, WeSpeaker ResNet34, SpeechBrain's ECAPA-TDNN for verification).
pub mod campplus;
pub mod common;
pub mod ecapa;
pub mod pyannote;
pub mod wav2vec2;
pub mod wespeaker;
pub mod whisper;
