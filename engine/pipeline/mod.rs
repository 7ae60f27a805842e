//! The WhisperX pipeline around the models: one [`Pipeline`] of stages, shared by the CLI and
//! the worker, that any run can cancel.
//!
//! A file goes through the stages in order, each a module with one entry point
//! ([`runner::StageFn`]) over `(&mut FileTranscript, &Audio, &Cancel, progress)`:
//!
//! 1. [`audio_in`]: decoded once into a store (memory, or a temporary file for long recordings);
//! 2. [`voice_activity`]: WhisperX's VAD, speech merged into ≤ `chunk_size` chunks
//!    ([`speech_chunks`]);
//! 3. [`transcription`]: chunks decoded in batches ([`batched`]), or the whole recording
//!    sequentially without VAD;
//! 4. [`word_times`]: wav2vec2 CTC alignment (models per language in [`align_models`]), DTW
//!    word times kept when no model can be had;
//! 5. [`diarization`]: speaker turns (models in [`diarize_models`]) and each segment's and
//!    word's speaker;
//! 6. [`speaker_names`]: enrolled voices name the diarized speakers (models and voiceprints in
//!    [`speaker_models`]).
//!
//! A stage the user did not ask for, or whose model is missing, is skipped with a warning in
//! the result, never an error. Every stage reports one [`Progress`] type and its wall time in
//! [`Timings`]. A new stage is a module here with that entry point, listed in
//! [`runner::STAGES`]; `docs/pipeline.md` says more.
pub mod align_models;
pub mod audio_in;
pub mod batched;
pub mod diarization;
pub mod diarize_models;
pub mod options;
pub mod progress;
pub mod runner;
pub mod speaker_models;
pub mod speaker_names;
pub mod speaker_relabel;
pub mod speech_chunks;
pub mod transcription;
pub mod vad_refine;
pub mod voice_activity;
pub mod word_times;

pub use options::{AlignOptions, DiarizeOptions, PipelineOptions, SpeakerSample, VadMethod, VadOptions, VerifyOptions};
pub use progress::{Progress, Stage, Timings, Unit};
pub use runner::{DiarizedSpeakers, FileTranscript, Models, Outcome, Pipeline};
