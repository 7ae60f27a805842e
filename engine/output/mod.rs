//! The transcription result (WhisperX's JSON schema) and the writers that turn it into files.
//! Writers see only this result, never the audio.

pub mod result;

pub use result::{Segment, Transcript, Word};
