//! What speaker verification needs of an embedding model: one embedding for a whole utterance.
//! The diarization's models ([`crate::diarize::embeddings::SpeakerEmbedding`], which extends
//! this) and verification-only models (ECAPA) implement it, so enrolment and the diarized
//! speakers can be embedded by the same model.

use crate::backend::Device;
use crate::error::Result;

/// A speaker-embedding model seen from the utterance level.
pub trait VoiceEmbedding: Send + Sync {
    /// What the result and the logs call it.
    fn name(&self) -> &str;
    /// Length of an embedding.
    fn dimension(&self) -> usize;
    /// The fewest samples the model embeds meaningfully (pyannote's `min_num_samples`).
    fn min_num_samples(&self) -> usize;
    /// The embedding of 16 kHz mono `samples` (at least [`Self::min_num_samples`]), unnormalised.
    fn embed_utterance(&self, dev: &Device, samples: &[f32]) -> Result<Vec<f32>>;
    /// What its products compute in (the logs): the device's own precision unless the model
    /// says otherwise.
    fn compute_type(&self, dev: &Device) -> &'static str {
        dev.compute_type()
    }
}
