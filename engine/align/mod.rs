//! Word alignment by wav2vec2 CTC (WhisperX's `align`), its own module beside the models: the
//! token-to-frame search ([`ctc`]: WhisperX's trellis for `whisperx-compat` mode, and true CTC
//! Viterbi with blank states, banded, for the default mode).
pub mod ctc;
pub mod punkt;
