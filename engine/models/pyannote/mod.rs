//! pyannote's segmentation model (PyanNet), WhisperX's VAD: where its checkpoint comes from
//! (`checkpoint`), the network (`sincnet`, `pyannet`, with the frame arithmetic in
//! `receptive_field`), and the sliding-window inference that turns a recording into per-frame
//! speech scores (`sliding_window`).
pub mod checkpoint;
pub mod pyannet;
pub mod receptive_field;
pub mod sincnet;
pub mod sliding_window;

pub use pyannet::{PyanNet, PyanNetConfig};
