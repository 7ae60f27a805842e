//! pyannote's segmentation model (PyanNet), WhisperX's VAD and diarization's segmentation-3.0:
//! where its checkpoint comes from (`checkpoint`), the network (`sincnet`, `pyannet`, with the
//! frame arithmetic in `receptive_field`), the sliding-window inference that turns a recording
//! into per-frame speech scores (`sliding_window`), segmentation-3.0's powerset output
//! (`powerset`) and its local speakers over a recording (`local_speakers`).
pub mod checkpoint;
pub mod local_speakers;
pub mod powerset;
pub mod pyannet;
pub mod receptive_field;
pub mod sincnet;
pub mod sliding_window;

pub use pyannet::{PyanNet, PyanNetConfig, SEGMENTATION_COMPUTE_TYPES};
