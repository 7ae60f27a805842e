//! Diarization: who speaks when. pyannote's pipeline (3.1, community-1) as a stage: the local
//! speakers of segmentation-3.0's sliding windows (`models::pyannote::local_speakers`), an
//! embedding per (window, local speaker) over the frames `embedding_masks` chooses, their
//! clustering across the file (`clustering`: 3.1's agglomerative clustering), and the
//! reconstruction of the diarization from the clustered local speakers (`reconstruct`), and the
//! speakers put on the transcript's segments and words (`assign`). [`diarizer::Diarizer`] runs
//! the steps in order: the stage's one entry point. `rttm` reads and writes turns as RTTM; `der`
//! scores them (pyannote.metrics' diarization error rate).
pub mod assign;
pub mod clustering;
pub mod der;
pub mod diarizer;
pub mod embedding_masks;
pub mod embeddings;
pub mod hungarian;
pub mod reconstruct;
pub mod rttm;
