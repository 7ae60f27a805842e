//! The WhisperX pipeline around the models: voice-activity chunks for batched transcription
//! (`speech_chunks`); batching, alignment and diarization stages join here.
pub mod speech_chunks;
