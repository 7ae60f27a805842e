//! The diarization models a pipeline may need, loaded on first use and kept (the worker's jobs
//! share them). `--diarize_model` (the worker's `diarize_model`) names:
//! - nothing: the default pair fetched by `models/fetch segmentation-3.0` and `models/fetch
//!   campplus` (pyannote's segmentation-3.0 and 3D-Speaker's CAM++) under the models directory;
//! - a pyannote pipeline, as WhisperX loads one (`Pipeline.from_pretrained`): a hub repository
//!   (`pyannote/speaker-diarization-3.1`, `pyannote/speaker-diarization-community-1`, from the hub
//!   cache or downloaded with HF_TOKEN) or a local directory holding its `config.yaml`. Its
//!   `segmentation` and `embedding` are hub repositories, local paths or `$model/<folder>` (a
//!   folder of the pipeline itself); `clustering` is `AgglomerativeClustering` (3.1) or
//!   `VBxClustering` with the pipeline's `plda` (community-1);
//! - a local directory holding `segmentation-3.0/` and `campplus/` (this project's layout).
//!
//! A model that cannot be had is an error the stage turns into a warning.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_yaml_ng::Value as Yaml;

use crate::backend::Device;
use crate::diarize::clustering::plda::Plda;
use crate::diarize::clustering::vbx::VbxClustering;
use crate::diarize::clustering::AgglomerativeClustering;
use crate::diarize::diarizer::{ClusteringMethod, Diarizer, MIN_DURATION_OFF};
use crate::diarize::embeddings::{CamPlusPlusEmbedding, SpeakerEmbedding, WeSpeakerEmbedding};
use crate::error::{Error, Result};
use crate::hub::{snapshot_download, HubConfig, Required};
use crate::models::campplus::{checkpoint as campplus_checkpoint, CamPlusPlus};
use crate::models::pyannote::{checkpoint as pyannote_checkpoint, PyanNet};
use crate::models::wespeaker::{checkpoint as wespeaker_checkpoint, WeSpeakerResNet34};
use crate::weights::WeightStore;

/// The default pipeline's name, as results and logs show it.
pub const DEFAULT_DIARIZE_MODEL: &str = "segmentation-3.0+campplus";
/// Where `models/fetch` puts the default models, under the models directory.
pub const SEGMENTATION_DIR: &str = "segmentation-3.0";
pub const CAMPPLUS_DIR: &str = "campplus";
/// A pyannote pipeline's description, and the checkpoint file of each of its models.
pub const PIPELINE_CONFIG: &str = "config.yaml";
pub const PYANNOTE_CHECKPOINT: &str = "pytorch_model.bin";
/// A pipeline's own folders (`$model/segmentation` in community-1's config).
const OWN_FOLDER: &str = "$model/";
/// The hub revision pipelines and models are taken at.
const REVISION: &str = "main";

/// The agglomerative clustering's distance threshold for CAM++ embeddings (pyannote's 0.7046 is
/// WeSpeaker ResNet34's). Tuned on the development set (benches/diarize/make_devset.sh: 8
/// dialogues of 2–4 speakers, 19 minutes, plus two_speakers.wav) with benches/diarize_tune.rs,
/// 2026-12-04: of 0.45, 0.5, …, 0.8, 0.6 gives the lowest total DER (17.5 % without collar,
/// against 19.6 % at 0.7046 and 22.6 % at 0.45) and the most right speaker counts (6 of 9).
pub const CAMPPLUS_THRESHOLD: f64 = 0.6;

/// Whether the default CAM++ runs once per stretch of audio rather than once per window: on the
/// development set (benches/diarize_tune.rs, 2026-12-04) the same DER at 0.6 (17.49 % against
/// 17.48 % once per window), the right speaker count on 7 files of 9 (6 once per window), for
/// 5.6× less time (segmentation + embeddings at 0.110 × real time against 0.616).
pub const CAMPPLUS_SHARED_TRUNK: bool = true;

type LoadSlot = Arc<Mutex<Option<Arc<Diarizer>>>>;

/// The precisions a diarizer's models compute in: the segmentation model's LSTMs
/// ([`PyanNet::apply_compute_type`]) and CAM++'s convolutions
/// ([`CamPlusPlus::apply_compute_type`]; other embedding models stay as loaded).
#[derive(Clone, Debug, PartialEq)]
pub struct ComputeTypes {
    pub segmentation: String,
    pub embedding: String,
}

impl Default for ComputeTypes {
    fn default() -> Self {
        ComputeTypes { segmentation: "default".into(), embedding: "default".into() }
    }
}

/// Diarizers loaded so far, by name; `models_dir` holds the default models and `hub` says where
/// pyannote pipelines come from (None: diarization models cannot be had in this setup).
/// `compute_types` says the precisions its models compute in.
#[derive(Default)]
pub struct DiarizeModels {
    source: Option<(PathBuf, HubConfig)>,
    compute_types: ComputeTypes,
    loaded: Mutex<HashMap<String, LoadSlot>>,
}

impl DiarizeModels {
    pub fn new(models_dir: PathBuf, hub: HubConfig) -> Self {
        DiarizeModels { source: Some((models_dir, hub)), ..Default::default() }
    }

    /// The same, the models computing in `compute_types` (each one of
    /// [`SEGMENTATION_COMPUTE_TYPES`](crate::models::pyannote::SEGMENTATION_COMPUTE_TYPES) and
    /// [`EMBEDDING_COMPUTE_TYPES`](crate::models::campplus::EMBEDDING_COMPUTE_TYPES)).
    pub fn with_compute_types(mut self, compute_types: ComputeTypes) -> Self {
        self.compute_types = compute_types;
        self
    }

    /// No diarization models: every run asking for diarization gets a warning.
    pub fn none() -> Self {
        Self::default()
    }

    /// The diarizer `name` names (None: the default), loaded on `device` the first time. A failed
    /// load is tried again by the next run.
    pub fn get(&self, device: &Device, name: Option<&str>) -> Result<(String, Arc<Diarizer>)> {
        let key = name.unwrap_or(DEFAULT_DIARIZE_MODEL).to_string();
        let slot = {
            let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
            loaded.entry(key.clone()).or_default().clone()
        };
        let mut slot = slot.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(d) = slot.as_ref() {
            return Ok((key, d.clone()));
        }
        let (models_dir, hub) =
            self.source.as_ref().ok_or_else(|| Error::Other("no diarization model source is configured".into()))?;
        let ct = &self.compute_types;
        let loaded = match name {
            None | Some(DEFAULT_DIARIZE_MODEL) => load_with(device, models_dir, CAMPPLUS_SHARED_TRUNK, ct),
            Some(other) => load_named(device, hub, other, ct),
        };
        let diarizer = Arc::new(loaded.map_err(|e| Error::Other(format!("diarization model {key}: {e}")))?);
        tracing::info!(
            "diarization model {key}: {} embeddings (compute_type={}), segmentation compute_type={}",
            diarizer.embedding.name(),
            diarizer.embedding.compute_type(device),
            diarizer.segmentation.compute_type(device)
        );
        *slot = Some(diarizer.clone());
        Ok((key, diarizer))
    }
}

/// `name` as a local directory (a pipeline's `config.yaml`, or this project's layout) or a hub
/// repository holding a pipeline.
fn load_named(device: &Device, hub: &HubConfig, name: &str, compute_type: &ComputeTypes) -> Result<Diarizer> {
    let path = Path::new(name);
    if path.is_dir() {
        if path.join(PIPELINE_CONFIG).is_file() {
            return load_pipeline(device, hub, &PipelineHome::Dir(path.to_path_buf()), compute_type);
        }
        return load_with(device, path, CAMPPLUS_SHARED_TRUNK, compute_type);
    }
    if path.is_absolute() || name.starts_with('.') || name.starts_with('~') || name.split('/').count() != 2 {
        return Err(Error::Other(format!("{name} is neither a directory nor a hub repository (owner/name)")));
    }
    load_pipeline(device, hub, &PipelineHome::Hub(name.to_string()), compute_type)
}

/// segmentation-3.0 from `dir/segmentation-3.0/` and CAM++ from `dir/campplus/`, as the
/// pipeline runs them by default.
pub fn load(device: &Device, dir: &Path) -> Result<Diarizer> {
    load_with(device, dir, CAMPPLUS_SHARED_TRUNK, &ComputeTypes::default())
}

/// [`load`], choosing whether CAM++ runs once per window or once per stretch of audio
/// ([`CamPlusPlusEmbedding::shared_trunk`]) and the models' compute types.
pub fn load_with(device: &Device, dir: &Path, shared_trunk: bool, compute_type: &ComputeTypes) -> Result<Diarizer> {
    if !dir.is_dir() {
        return Err(Error::Other(format!("{} is not a directory", dir.display())));
    }
    let seg_dir = dir.join(SEGMENTATION_DIR);
    if !seg_dir.is_dir() {
        return Err(Error::Other(format!(
            "no {SEGMENTATION_DIR}/ in {} (run models/fetch segmentation-3.0)",
            dir.display()
        )));
    }
    let segmentation = load_segmentation(device, &seg_dir, &compute_type.segmentation)?;
    let store = campplus_checkpoint::open(&dir.join(CAMPPLUS_DIR))?;
    let mut embedding = campplus_embedding(device, store.as_ref(), &compute_type.embedding)?;
    embedding.shared_trunk = shared_trunk;
    let embedding = Box::new(embedding);
    Ok(Diarizer {
        segmentation,
        embedding,
        clustering: ClusteringMethod::Agglomerative(AgglomerativeClustering {
            threshold: CAMPPLUS_THRESHOLD,
            ..Default::default()
        }),
        min_duration_off: MIN_DURATION_OFF,
    })
}

/// A powerset segmentation model from a directory (converted, or its `pytorch_model.bin`) or a
/// checkpoint file.
fn load_segmentation(device: &Device, path: &Path, compute_type: &str) -> Result<PyanNet> {
    let file = path.join(PYANNOTE_CHECKPOINT);
    let path = if path.is_dir() && !path.join("model.safetensors").is_file() && file.is_file() { &file } else { path };
    let (store, config) = pyannote_checkpoint::open(path)?;
    let mut segmentation = PyanNet::load(device, store.as_ref(), &config)?;
    if segmentation.config.powerset_max_classes.is_none() {
        return Err(Error::Other(format!(
            "{} is not a powerset segmentation model (segmentation-3.0)",
            path.display()
        )));
    }
    segmentation.apply_compute_type(device, compute_type)?;
    Ok(segmentation)
}

/// A speaker-embedding checkpoint: WeSpeaker ResNet34 (pyannote's `resnet.*` or a bare ResNet)
/// or CAM++ (`head.*`, `xvector.*`), told apart by its tensors.
fn load_embedding(device: &Device, path: &Path, compute_type: &str) -> Result<Box<dyn SpeakerEmbedding>> {
    let campplus = |p: &Path| -> Result<Box<dyn WeightStore>> { campplus_checkpoint::open(p) };
    let store = wespeaker_checkpoint::open(path).or_else(|_| campplus(path))?;
    let names = store.names();
    if names.iter().any(|n| n.starts_with("xvector.")) {
        return Ok(Box::new(campplus_embedding(device, store.as_ref(), compute_type)?));
    }
    Ok(Box::new(WeSpeakerEmbedding::new(WeSpeakerResNet34::load(device, store.as_ref())?)))
}

/// CAM++ from its checkpoint, its convolutions in `compute_type`
/// ([`CamPlusPlus::apply_compute_type`]).
fn campplus_embedding(device: &Device, store: &dyn WeightStore, compute_type: &str) -> Result<CamPlusPlusEmbedding> {
    let mut model = CamPlusPlus::load(device, store)?;
    model.apply_compute_type(device, compute_type)?;
    CamPlusPlusEmbedding::new(model)
}

/// Where a pipeline's files are.
enum PipelineHome {
    Dir(PathBuf),
    Hub(String),
}

impl PipelineHome {
    /// The directory holding `files` of the pipeline (downloaded into the hub cache if needed).
    fn files(&self, hub: &HubConfig, files: &[&str]) -> Result<PathBuf> {
        match self {
            PipelineHome::Dir(d) => Ok(d.clone()),
            PipelineHome::Hub(repo) => {
                let wanted: Vec<(&str, Required)> = files.iter().map(|f| (*f, Required::Yes)).collect();
                snapshot_download(hub, repo, REVISION, &wanted)
            }
        }
    }
}

/// What a pyannote `SpeakerDiarization` pipeline's `config.yaml` says.
#[derive(Clone, Debug, PartialEq)]
pub struct PipelineConfig {
    pub segmentation: String,
    pub embedding: String,
    /// `AgglomerativeClustering` or `VBxClustering`.
    pub clustering: String,
    pub plda: Option<String>,
    pub threshold: Option<f64>,
    pub min_cluster_size: Option<usize>,
    pub fa: Option<f64>,
    pub fb: Option<f64>,
    pub min_duration_off: Option<f64>,
}

impl PipelineConfig {
    pub fn parse(text: &str, origin: &str) -> Result<Self> {
        let doc: Yaml =
            serde_yaml_ng::from_str(text).map_err(|e| Error::Other(format!("{origin}: not a pipeline config: {e}")))?;
        let params = &doc["pipeline"]["params"];
        let string = |v: &Yaml, key: &str| -> Result<String> {
            v[key]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| Error::Other(format!("{origin}: no pipeline.params.{key}")))
        };
        let hyper = &doc["params"];
        let number = |section: &str, key: &str| hyper[section][key].as_f64();
        Ok(PipelineConfig {
            segmentation: string(params, "segmentation")?,
            embedding: string(params, "embedding")?,
            clustering: string(params, "clustering")?,
            plda: params["plda"].as_str().map(str::to_string),
            threshold: number("clustering", "threshold"),
            min_cluster_size: hyper["clustering"]["min_cluster_size"].as_u64().map(|n| n as usize),
            fa: number("clustering", "Fa"),
            fb: number("clustering", "Fb"),
            min_duration_off: number("segmentation", "min_duration_off"),
        })
    }
}

/// A pyannote pipeline: its config, then each model it names.
fn load_pipeline(
    device: &Device,
    hub: &HubConfig,
    home: &PipelineHome,
    compute_type: &ComputeTypes,
) -> Result<Diarizer> {
    let dir = home.files(hub, &[PIPELINE_CONFIG])?;
    let config_path = dir.join(PIPELINE_CONFIG);
    let text = std::fs::read_to_string(&config_path).map_err(|e| Error::io(&config_path, e))?;
    let config = PipelineConfig::parse(&text, &config_path.display().to_string())?;
    // A model reference: the pipeline's own folder, a local path, or a hub repository.
    let model = |reference: &str, files: &[&str]| -> Result<PathBuf> {
        if let Some(folder) = reference.strip_prefix(OWN_FOLDER) {
            let wanted: Vec<String> = files.iter().map(|f| format!("{folder}/{f}")).collect();
            let wanted: Vec<&str> = wanted.iter().map(String::as_str).collect();
            return Ok(home.files(hub, &wanted)?.join(folder));
        }
        let local = match home {
            PipelineHome::Dir(d) => d.join(reference),
            PipelineHome::Hub(_) => PathBuf::from(reference),
        };
        if local.exists() {
            return Ok(local);
        }
        let wanted: Vec<(&str, Required)> = files.iter().map(|f| (*f, Required::Yes)).collect();
        snapshot_download(hub, reference, REVISION, &wanted)
    };
    let segmentation =
        load_segmentation(device, &model(&config.segmentation, &[PYANNOTE_CHECKPOINT])?, &compute_type.segmentation)?;
    let embedding =
        load_embedding(device, &model(&config.embedding, &[PYANNOTE_CHECKPOINT])?, &compute_type.embedding)?;
    let clustering = match config.clustering.as_str() {
        "AgglomerativeClustering" => {
            let d = AgglomerativeClustering::default();
            ClusteringMethod::Agglomerative(AgglomerativeClustering {
                threshold: config.threshold.unwrap_or(d.threshold),
                min_cluster_size: config.min_cluster_size.unwrap_or(d.min_cluster_size),
            })
        }
        "VBxClustering" => {
            let plda = config.plda.as_deref().ok_or_else(|| {
                Error::Other(format!("{}: VBxClustering needs pipeline.params.plda", config_path.display()))
            })?;
            let plda = Plda::load_dir(&model(plda, &["xvec_transform.npz", "plda.npz"])?)?;
            if plda.dim != embedding.dimension() {
                return Err(Error::Other(format!(
                    "{}: the PLDA transforms {}-d x-vectors but {} gives {}-d embeddings",
                    config_path.display(),
                    plda.dim,
                    embedding.name(),
                    embedding.dimension()
                )));
            }
            let d = VbxClustering::default();
            ClusteringMethod::Vbx {
                plda: Box::new(plda),
                clustering: VbxClustering {
                    threshold: config.threshold.unwrap_or(d.threshold),
                    fa: config.fa.unwrap_or(d.fa),
                    fb: config.fb.unwrap_or(d.fb),
                    ..d
                },
            }
        }
        other => {
            return Err(Error::Other(format!(
                "{}: clustering `{other}` is not supported (AgglomerativeClustering or VBxClustering)",
                config_path.display()
            )))
        }
    };
    Ok(Diarizer {
        segmentation,
        embedding,
        clustering,
        min_duration_off: config.min_duration_off.unwrap_or(MIN_DURATION_OFF),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// speaker-diarization-3.1's config.yaml (as published; reproduced in pyannote.audio's
    /// `tutorials/community/offline_usage_speaker_diarization.ipynb`).
    const CONFIG_31: &str = "version: 3.1.0

pipeline:
  name: pyannote.audio.pipelines.SpeakerDiarization
  params:
    clustering: AgglomerativeClustering
    embedding: pyannote/wespeaker-voxceleb-resnet34-LM
    embedding_batch_size: 32
    embedding_exclude_overlap: true
    segmentation: pyannote/segmentation-3.0
    segmentation_batch_size: 32

params:
  clustering:
    method: centroid
    min_cluster_size: 12
    threshold: 0.7045654963945799
  segmentation:
    min_duration_off: 0.0
";

    /// community-1's layout: the models and the PLDA in the pipeline's own folders.
    const CONFIG_COMMUNITY_1: &str = "pipeline:
  name: pyannote.audio.pipelines.SpeakerDiarization
  params:
    clustering: VBxClustering
    embedding: $model/embedding
    embedding_batch_size: 32
    embedding_exclude_overlap: true
    plda: $model/plda
    segmentation: $model/segmentation
    segmentation_batch_size: 32
params:
  clustering:
    threshold: 0.6
    Fa: 0.07
    Fb: 0.8
  segmentation:
    min_duration_off: 0.0
";

    #[test]
    fn the_31_config_names_its_models_and_hyper_parameters() {
        let c = PipelineConfig::parse(CONFIG_31, "config.yaml").unwrap();
        assert_eq!(c.segmentation, "pyannote/segmentation-3.0");
        assert_eq!(c.embedding, "pyannote/wespeaker-voxceleb-resnet34-LM");
        assert_eq!(c.clustering, "AgglomerativeClustering");
        assert_eq!(c.threshold, Some(0.7045654963945799));
        assert_eq!(c.min_cluster_size, Some(12));
        assert_eq!(c.min_duration_off, Some(0.0));
        assert_eq!(c.plda, None);
    }

    #[test]
    fn the_community_1_config_points_into_its_own_folders() {
        let c = PipelineConfig::parse(CONFIG_COMMUNITY_1, "config.yaml").unwrap();
        assert_eq!(c.clustering, "VBxClustering");
        assert_eq!(c.plda.as_deref(), Some("$model/plda"));
        assert_eq!(c.segmentation.strip_prefix(OWN_FOLDER), Some("segmentation"));
        assert_eq!((c.threshold, c.fa, c.fb), (Some(0.6), Some(0.07), Some(0.8)));
    }

    #[test]
    fn a_config_without_its_models_is_an_error_naming_the_key() {
        let e = PipelineConfig::parse("pipeline:\n  params:\n    clustering: X\n", "here/config.yaml").unwrap_err();
        assert!(e.to_string().contains("here/config.yaml") && e.to_string().contains("segmentation"), "{e}");
        assert!(PipelineConfig::parse(": : :\n\t-", "c.yaml").is_err());
    }

    #[test]
    fn names_that_are_neither_directories_nor_repositories_are_refused() {
        let dev = Device::cpu();
        let cache = tempfile::tempdir().unwrap();
        // Offline: nothing may be asked of a network in a unit test.
        let hub = HubConfig::new("http://127.0.0.1:9", cache.path(), None, true);
        for name in ["/no/such/dir", "./nope", "just-a-name", "a/b/c"] {
            let e = load_named(&dev, &hub, name, &ComputeTypes::default()).err().expect("refused").to_string();
            assert!(e.contains(name), "{e}");
        }
        // A repository name that is not in the (empty, offline) cache: an error naming it.
        let e = load_named(&dev, &hub, "pyannote/speaker-diarization-3.1", &ComputeTypes::default())
            .err()
            .expect("not cached")
            .to_string();
        assert!(e.contains("pyannote/speaker-diarization-3.1"), "{e}");
    }
}
