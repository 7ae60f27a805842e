//! Whisper (in progress)
