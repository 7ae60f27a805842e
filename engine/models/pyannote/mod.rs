//! pyannote's segmentation model (PyanNet), WhisperX's VAD: where its checkpoint comes from
//! (`checkpoint`); the network itself comes next.
pub mod checkpoint;
