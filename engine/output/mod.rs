//! The transcription result (WhisperX's JSON schema) and the writers that turn it into files.
//! Writers see only this result, never the audio.
//!
//! - `result`: the schema types.
//! - `timestamp`: the one timestamp formatter (SRT, VTT, TSV milliseconds, Python float repr).
//! - `subtitles`: segments → cues (line width, line count, highlighted words), shared by SRT/VTT.
//! - `writers`: txt, srt, vtt, tsv, json, aud, and writing them next to each other.

pub mod result;
pub mod subtitles;
pub mod timestamp;
pub mod writers;

pub use result::{Segment, Transcript, Word};
pub use subtitles::{Cue, WriterOptions};
pub use timestamp::{format_timestamp, TimestampStyle};
pub use writers::{parse_formats, render, write_outputs, OutputFormat, ALL_FORMATS};
