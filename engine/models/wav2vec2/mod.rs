//! wav2vec2 CTC models for word alignment (WhisperX's `align`): transformers' `Wav2Vec2ForCTC`
//! (group-norm base and layer-norm large/XLSR bodies, post-LN and pre-LN encoders), from Hugging
//! Face directories or torchaudio bundle files. Other bodies (HuBERT, WavLM, …) are refused by
//! name: WhisperX loads every Hugging Face model as `Wav2Vec2ForCTC`, and none is in its tables.
//!
//! Sources: HFM / HFC = transformers `models/wav2vec2/{modeling,configuration}_wav2vec2.py`;
//! TAI / TAU / TAC / TAH = torchaudio `pipelines/_wav2vec2/{impl,utils}.py`,
//! `models/wav2vec2/components.py`, `models/wav2vec2/utils/import_huggingface.py`.
pub mod bundles;
pub mod checkpoint;
pub mod choice;
pub mod config;
mod encoder;
mod feature_encoder;
pub mod model;

pub use checkpoint::Checkpoint;
pub use config::Wav2Vec2Config;
pub use model::{LogProbs, Wav2Vec2ForCtc, ALIGN_COMPUTE_TYPES};
