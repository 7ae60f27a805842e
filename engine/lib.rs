//! Scribe: a self-contained speech-to-text engine.
//!
//! Layout: `tensor` and `backend` are the device-blind compute layer; `weights` reads checkpoints;
//! `audio` decodes files and computes Whisper's log-mel; `models` holds the networks; `hub` fetches
//! checkpoints into the Hugging Face cache.

pub mod align;
pub mod allocator;
pub mod audio;
pub mod backend;
pub mod cancel;
pub mod diarize;
pub mod error;
pub mod hub;
pub mod models;
pub mod output;
pub mod pipeline;
pub mod verify;
pub mod weights;

pub use cancel::Cancel;
pub use error::{Error, Result};
