//! The WhisperX pipeline around the models: voice-activity chunks (`speech_chunks`) and their
//! batched transcription (`batched`), one file through both (`file`); alignment and diarization stages join here.
pub mod batched;
pub mod file;
pub mod speech_chunks;
