//! The whole diarization of a recording, as pyannote's speaker diarization pipeline runs it
//! (pyannote.audio 4.0 `pipelines/speaker_diarization.py` `SpeakerDiarization.apply`):
//! 1. the local speakers of the segmentation model's 10 s windows, 1 s apart, and the number of
//!    speakers at each frame ([`local_speakers`], [`LocalSpeakers::speaker_count`]);
//! 2. an embedding per (window, local speaker) over its frames ([`embedding_masks`],
//!    [`embeddings::embed_pairs`]);
//! 3. the clustering of the active pairs across the file ([`clustering::cluster`]);
//! 4. the count capped at `max_speakers`, the reconstruction, the turns and their labels
//!    ([`reconstruct`]).
//!
//! [`Diarizer::diarize`] is the one entry point.

use crate::audio::SampleSource;
use crate::backend::Device;
use crate::cancel::Cancel;
use crate::error::Result;
use crate::models::pyannote::local_speakers::{local_speakers, LocalSpeakers, SEGMENTATION_BATCH_SIZE};
use crate::models::pyannote::PyanNet;

use super::assign::SpeakerTurn;
use super::clustering::plda::Plda;
use super::clustering::vbx::{cluster_vbx, PairActivity, VbxClustering, VbxOptions};
use super::clustering::{self, AgglomerativeClustering};
use super::embedding_masks::{embedding_masks, min_num_frames, EXCLUDE_OVERLAP};
use super::embeddings::{embed_pairs, PairWindows, SpeakerEmbedding};
use super::reconstruct::{self, reconstruct, speaker_labels, turns};

/// The pipeline's `segmentation.min_duration_off` in 3.1 and community-1: no gap filled.
pub const MIN_DURATION_OFF: f64 = 0.0;

/// The speakers asked for (WhisperX's `num_speakers`, `min_speakers`, `max_speakers`), and the
/// clustering threshold when not the diarizer's own (pyannote's `clustering.threshold`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SpeakerBounds {
    pub num_speakers: Option<usize>,
    pub min_speakers: Option<usize>,
    pub max_speakers: Option<usize>,
    pub threshold: Option<f64>,
}

/// Where the pipeline is: windows segmented, then windows embedded, out of `total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiarizeStep {
    Segmentation,
    Embeddings,
}

/// A recording's diarization.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Diarization {
    /// Every speaker turn (overlapping speech gives overlapping turns), in time order.
    pub turns: Vec<SpeakerTurn>,
    /// The same with at most one speaker at a time (pyannote 4's exclusive diarization).
    pub exclusive_turns: Vec<SpeakerTurn>,
    /// The labels that have turns, in order (`SPEAKER_00`, …), with each one's centroid (the
    /// mean embedding of its clustered pairs).
    pub speakers: Vec<(String, Vec<f32>)>,
    /// Windows of the segmentation, and (window, local speaker) pairs clustered.
    pub windows: usize,
    pub clustered_pairs: usize,
}

/// How the pairs are clustered: pyannote 3.1's agglomerative clustering, or community-1's VBx
/// with its PLDA.
pub enum ClusteringMethod {
    Agglomerative(AgglomerativeClustering),
    Vbx { plda: Box<Plda>, clustering: VbxClustering },
}

impl ClusteringMethod {
    /// The distance threshold of the (initial) agglomerative clustering.
    pub fn threshold(&self) -> f64 {
        match self {
            ClusteringMethod::Agglomerative(a) => a.threshold,
            ClusteringMethod::Vbx { clustering, .. } => clustering.threshold,
        }
    }
}

/// What the expensive steps give: the local speakers, the speaker count per frame and the
/// `[chunks · local speakers, dim]` embeddings (empty when nobody ever speaks).
#[derive(Clone, Debug)]
pub struct Embedded {
    pub local: LocalSpeakers,
    pub count: Vec<u8>,
    pub embeddings: Vec<f32>,
}

/// The loaded models and the clustering's hyper-parameters.
pub struct Diarizer {
    pub segmentation: PyanNet,
    pub embedding: Box<dyn SpeakerEmbedding>,
    pub clustering: ClusteringMethod,
    /// The pipeline's `segmentation.min_duration_off`.
    pub min_duration_off: f64,
}

impl Diarizer {
    /// Diarize 16 kHz mono `audio` (a slice, or the pipeline's audio store: it is read a batch
    /// of windows at a time, never whole). `progress(step, done, total)` counts windows.
    pub fn diarize(
        &self,
        dev: &Device,
        audio: &mut dyn SampleSource,
        bounds: SpeakerBounds,
        cancel: &Cancel,
        progress: &mut dyn FnMut(DiarizeStep, usize, usize),
    ) -> Result<Diarization> {
        let embedded = self.embed(dev, audio, cancel, progress)?;
        self.finish(embedded, bounds)
    }

    /// Steps 1 and 2: the local speakers, the speaker count and every pair's embedding.
    pub fn embed(
        &self,
        dev: &Device,
        audio: &mut dyn SampleSource,
        cancel: &Cancel,
        progress: &mut dyn FnMut(DiarizeStep, usize, usize),
    ) -> Result<Embedded> {
        cancel.check()?;
        let local = local_speakers(&self.segmentation, dev, audio, SEGMENTATION_BATCH_SIZE)?;
        progress(DiarizeStep::Segmentation, local.chunks, local.chunks);
        let count = local.speaker_count();
        if count.iter().all(|&c| c == 0) {
            // "exit early when no speaker is ever active"
            return Ok(Embedded { local, count, embeddings: Vec::new() });
        }
        let window_samples = self.segmentation.config.window_samples();
        let sample_rate = self.segmentation.config.sample_rate as f64;
        let step = (local.chunk_step * sample_rate).round() as usize;
        let starts: Vec<usize> = (0..local.chunks).map(|c| c * step).collect();
        let min_frames = min_num_frames(local.frames_per_chunk, self.embedding.min_num_samples(), window_samples);
        let masks = embedding_masks(&local, EXCLUDE_OVERLAP, min_frames);
        let total = local.chunks;
        let windows = PairWindows { starts: &starts, window_samples, masks: &masks, speakers: local.speakers };
        let embeddings = embed_pairs(self.embedding.as_ref(), dev, audio, &windows, cancel, &mut |done| {
            progress(DiarizeStep::Embeddings, done, total)
        })?;
        cancel.check()?;
        Ok(Embedded { local, count, embeddings })
    }

    /// Steps 3 and 4: clustering, reconstruction, turns and labels (cheap: tools run it again
    /// with other bounds or thresholds on the same embeddings).
    pub fn finish(&self, embedded: Embedded, bounds: SpeakerBounds) -> Result<Diarization> {
        let Embedded { local, mut count, embeddings } = embedded;
        if embeddings.is_empty() {
            return Ok(Diarization { windows: local.chunks, ..Default::default() });
        }
        let dim = self.embedding.dimension();
        let active = clustering::active_pairs(&local);
        let (chunks, speakers) = (local.chunks, local.speakers);
        let clusters = match &self.clustering {
            ClusteringMethod::Agglomerative(a) => {
                let options = clustering::Options {
                    num_clusters: bounds.num_speakers,
                    min_clusters: bounds.min_speakers,
                    max_clusters: bounds.max_speakers,
                    clustering: AgglomerativeClustering { threshold: bounds.threshold.unwrap_or(a.threshold), ..*a },
                };
                clustering::cluster(&embeddings, dim, chunks, speakers, &active, &options)?
            }
            ClusteringMethod::Vbx { plda, clustering } => {
                let options = VbxOptions {
                    num_clusters: bounds.num_speakers,
                    min_clusters: bounds.min_speakers,
                    max_clusters: bounds.max_speakers,
                    clustering: VbxClustering {
                        threshold: bounds.threshold.unwrap_or(clustering.threshold),
                        ..*clustering
                    },
                };
                let activity = PairActivity::from_local(&local)?;
                cluster_vbx(&embeddings, dim, chunks, speakers, &activity, plda, &options)?
            }
        };
        let mut hard = clusters.hard.clone();
        reconstruct::drop_inactive(&local, &mut hard);
        // "we cap the maximum instantaneous number of speakers by the `max_speakers` value"
        if let Some(max) = bounds.max_speakers.or(bounds.num_speakers) {
            let max = max.min(u8::MAX as usize) as u8;
            count.iter_mut().for_each(|c| *c = (*c).min(max));
        }
        let regular = turns(&reconstruct(&local, &hard, &count), self.min_duration_off);
        let exclusive_count: Vec<u8> = count.iter().map(|&c| c.min(1)).collect();
        let exclusive = turns(&reconstruct(&local, &hard, &exclusive_count), self.min_duration_off);
        let width = regular.iter().chain(&exclusive).map(|t| t.cluster + 1).max().unwrap_or(0);
        let labels = speaker_labels(&regular, width.max(clusters.num_clusters));
        let named = |ts: &[reconstruct::Turn]| -> Vec<SpeakerTurn> {
            ts.iter()
                .filter_map(|t| {
                    let speaker = labels.get(t.cluster)?.clone()?;
                    Some(SpeakerTurn { start: t.start, end: t.end, speaker })
                })
                .collect()
        };
        let speakers = labels
            .iter()
            .enumerate()
            .filter_map(|(k, l)| {
                let centroid = if k < clusters.num_clusters {
                    clusters.centroids[k * dim..(k + 1) * dim].to_vec()
                } else {
                    vec![0.0; dim]
                };
                l.clone().map(|l| (l, centroid))
            })
            .collect();
        Ok(Diarization {
            turns: named(&regular),
            exclusive_turns: named(&exclusive),
            speakers,
            windows: local.chunks,
            clustered_pairs: active.iter().filter(|&&a| a).count(),
        })
    }

    /// The local speakers alone (the first step), for tools and tests.
    pub fn local_speakers(&self, dev: &Device, audio: &mut dyn SampleSource) -> Result<LocalSpeakers> {
        local_speakers(&self.segmentation, dev, audio, SEGMENTATION_BATCH_SIZE)
    }
}
