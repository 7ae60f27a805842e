//! The worker's configuration, from the environment (read through a lookup function, so tests
//! pass their own). Every malformed value is an error naming the variable.

use std::path::PathBuf;
use std::time::Duration;

use scribe::models::campplus::EMBEDDING_COMPUTE_TYPES;
use scribe::models::pyannote::SEGMENTATION_COMPUTE_TYPES;
use scribe::models::wav2vec2::ALIGN_COMPUTE_TYPES;
use scribe::models::whisper::COMPUTE_TYPES;

use crate::download::DownloadLimits;
use crate::storage::StorageConfig;
use crate::url_guard::UrlPolicy;

/// MAX_DOWNLOAD_BYTES default: 2 GiB.
pub const DEFAULT_MAX_DOWNLOAD_BYTES: u64 = 2 << 30;
/// MAX_AUDIO_SECONDS default: 4 hours.
pub const DEFAULT_MAX_AUDIO_SECONDS: f64 = 14_400.0;
/// DOWNLOAD_TIMEOUT_S default.
pub const DEFAULT_DOWNLOAD_TIMEOUT_S: u64 = 300;
/// WHISPERX_MODEL_DIR default (the WhisperX worker image's layout).
pub const DEFAULT_MODEL_DIR: &str = "/app/models/faster-whisper-large-v3";
/// The model fetched from the hub when nothing else is configured.
pub const DEFAULT_MODEL_NAME: &str = "large-v3";
/// RUNPOD_PING_INTERVAL default, milliseconds (the SDK's).
pub const DEFAULT_PING_INTERVAL_MS: u64 = 10_000;
/// The shortest ping interval used (the SDK pings every `RUNPOD_PING_INTERVAL // 1000` s, so
/// below a second it spins): RUNPOD_PING_INTERVAL=0 gave 515 pings a second.
pub const MIN_PING_INTERVAL_MS: u64 = 1_000;
/// SCRIBE_PLATFORM_TIMEOUT_S default: the limit on each result post, progress post and ping.
pub const DEFAULT_PLATFORM_TIMEOUT_S: f64 = 30.0;
/// SCRIBE_DRAIN_TIMEOUT_S default: after SIGTERM, how long jobs in flight may run before they
/// are cancelled.
pub const DEFAULT_DRAIN_TIMEOUT_S: f64 = 300.0;

/// Where the Whisper model comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum ModelChoice {
    /// WHISPERX_MODEL / WHISPERX_MODEL_NAME: a name (`large-v3`) or a path.
    Named(String),
    /// WHISPERX_MODEL_DIR, when it holds a model.
    Dir(PathBuf),
    /// Nothing configured: `large-v3` from the hub.
    Default,
}

/// WHISPERX_COMPUTE_TYPE when unset.
pub const DEFAULT_COMPUTE_TYPE: &str = "default";

#[derive(Clone, Debug)]
pub struct Settings {
    pub jobs_dir: PathBuf,
    pub limits: DownloadLimits,
    pub max_audio_seconds: f64,
    pub policy: UrlPolicy,
    /// DEBUG=1: jobs default to `debug: true`.
    pub debug: bool,
    pub model: ModelChoice,
    /// WHISPERX_DEVICE: auto, cpu or cuda.
    pub device: String,
    /// WHISPERX_COMPUTE_TYPE: default (bf16 encoder products on CPUs with AVX-512 BF16), bfloat16
    /// (the decoder's products too), int8, float16 or float32 (see `Whisper::apply_compute_type`).
    pub compute_type: String,
    /// SEGMENTATION_COMPUTE_TYPE: default, bfloat16 or float32, the pyannote segmentation models'
    /// LSTMs (see `PyanNet::apply_compute_type`).
    pub segmentation_compute_type: String,
    /// EMBEDDING_COMPUTE_TYPE: default, bfloat16 or float32, the diarization's CAM++
    /// convolutions (see `CamPlusPlus::apply_compute_type`).
    pub embedding_compute_type: String,
    /// ALIGN_COMPUTE_TYPE: default, bfloat16 or float32, the wav2vec2 alignment models'
    /// products (see `Wav2Vec2ForCtc::apply_compute_type`; default keeps float32).
    pub align_compute_type: String,
    /// Directory searched for the VAD checkpoint (after VAD_MODEL_PATH).
    pub vad_dir: PathBuf,
    pub vad_model_path: Option<PathBuf>,
    /// SPEAKER_MODEL: the speaker-verification model (None: the diarizer's own, CAM++).
    pub speaker_model: Option<String>,
    pub concurrency: usize,
    pub ping_interval: Duration,
    /// Limit on each request to the platform other than the take's long-poll.
    pub platform_timeout: Duration,
    /// After SIGTERM, how long jobs in flight may run before they are cancelled.
    pub drain_timeout: Duration,
    /// STORAGE_*: where artifacts go; None keeps results inline.
    pub storage: Option<StorageConfig>,
    /// LOCAL_API_RESULT_TTL_S: how long the local API keeps finished jobs (None: the platform's
    /// 30 min for /run and 1 min for /runsync).
    pub local_api_ttl: Option<Duration>,
    /// Where alignment models come from: the hub (its cache and variables, as for Whisper) and
    /// torch.hub's checkpoints (`TORCH_HOME`) for torchaudio bundles; offline with the hub.
    pub align_hub: scribe::hub::HubConfig,
    pub align_torch: scribe::hub::torch_hub::TorchHubConfig,
    /// Values changed to something usable, to log once logging is up.
    pub notes: Vec<String>,
}

fn parse<T: std::str::FromStr>(var: &dyn Fn(&str) -> Option<String>, name: &str, default: T) -> Result<T, String> {
    match var(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|_| format!("{name}={v:?} is not a valid value")),
    }
}

/// `name`'s value (trimmed; `default` when unset or blank), which must be one of `allowed`.
fn one_of(var: &dyn Fn(&str) -> Option<String>, name: &str, allowed: &[&str], default: &str) -> Result<String, String> {
    match var(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty()) {
        None => Ok(default.to_string()),
        Some(v) if allowed.contains(&v.as_str()) => Ok(v),
        Some(v) => Err(format!("{name}={v:?} should be one of {}", allowed.join(", "))),
    }
}

/// A model directory the engine reads directly: faster-whisper's `model.bin` or HF safetensors.
pub fn holds_model(dir: &std::path::Path) -> bool {
    dir.join("model.bin").is_file() || dir.join("model.safetensors").is_file()
}

impl Settings {
    pub fn from_env() -> Result<Self, String> {
        Self::from_vars(&|k| std::env::var(k).ok())
    }

    pub fn from_vars(var: &dyn Fn(&str) -> Option<String>) -> Result<Self, String> {
        let set = |k: &str| var(k).filter(|v| !v.trim().is_empty());
        let jobs_dir = set("JOBS_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| set("TMPDIR").map(PathBuf::from).unwrap_or_else(std::env::temp_dir).join("scribe-jobs"));
        let model = if let Some(m) = set("WHISPERX_MODEL").or_else(|| set("WHISPERX_MODEL_NAME")) {
            ModelChoice::Named(m)
        } else {
            let dir = PathBuf::from(set("WHISPERX_MODEL_DIR").unwrap_or_else(|| DEFAULT_MODEL_DIR.into()));
            if holds_model(&dir) {
                ModelChoice::Dir(dir)
            } else {
                ModelChoice::Default
            }
        };
        let debug = matches!(set("DEBUG").as_deref(), Some("1" | "true" | "TRUE" | "True"));
        let concurrency: usize = parse(var, "SCRIBE_CONCURRENCY", 1)?;
        if concurrency == 0 {
            return Err("SCRIBE_CONCURRENCY must be at least 1".into());
        }
        let max_audio_seconds: f64 = parse(var, "MAX_AUDIO_SECONDS", DEFAULT_MAX_AUDIO_SECONDS)?;
        if max_audio_seconds.is_nan() || max_audio_seconds <= 0.0 {
            return Err(format!("MAX_AUDIO_SECONDS must be positive, got {max_audio_seconds}"));
        }
        let mut notes = Vec::new();
        let mut ping_ms: u64 = parse(var, "RUNPOD_PING_INTERVAL", DEFAULT_PING_INTERVAL_MS)?;
        if ping_ms < MIN_PING_INTERVAL_MS {
            notes.push(format!("RUNPOD_PING_INTERVAL={ping_ms} ms is below {MIN_PING_INTERVAL_MS} ms; pinging every {MIN_PING_INTERVAL_MS} ms"));
            ping_ms = MIN_PING_INTERVAL_MS;
        }
        let platform_timeout: f64 = parse(var, "SCRIBE_PLATFORM_TIMEOUT_S", DEFAULT_PLATFORM_TIMEOUT_S)?;
        if !(platform_timeout > 0.0 && platform_timeout <= 3600.0) {
            return Err(format!(
                "SCRIBE_PLATFORM_TIMEOUT_S must be more than 0 and at most 3600, got {platform_timeout}"
            ));
        }
        let drain_timeout: f64 = parse(var, "SCRIBE_DRAIN_TIMEOUT_S", DEFAULT_DRAIN_TIMEOUT_S)?;
        if !(0.0..=86_400.0).contains(&drain_timeout) {
            return Err(format!("SCRIBE_DRAIN_TIMEOUT_S must be from 0 to 86400, got {drain_timeout}"));
        }
        let align_hub = scribe::hub::HubConfig::from_vars(|k| crate::models::hub_var(var, k));
        let align_torch = scribe::hub::torch_hub::TorchHubConfig::from_vars(
            |k| var(k),
            scribe::models::wav2vec2::bundles::TORCHAUDIO_MODELS_URL,
            align_hub.offline,
        );
        Ok(Settings {
            speaker_model: set("SPEAKER_MODEL"),
            align_hub,
            align_torch,
            jobs_dir,
            limits: DownloadLimits {
                max_bytes: parse(var, "MAX_DOWNLOAD_BYTES", DEFAULT_MAX_DOWNLOAD_BYTES)?,
                timeout: Duration::from_secs(parse(var, "DOWNLOAD_TIMEOUT_S", DEFAULT_DOWNLOAD_TIMEOUT_S)?),
            },
            max_audio_seconds,
            policy: UrlPolicy::from_allow_list(&set("ALLOW_PRIVATE_URLS").unwrap_or_default())?,
            debug,
            model,
            device: set("WHISPERX_DEVICE").unwrap_or_else(|| "auto".into()),
            compute_type: one_of(var, "WHISPERX_COMPUTE_TYPE", &COMPUTE_TYPES, DEFAULT_COMPUTE_TYPE)?,
            segmentation_compute_type: one_of(
                var,
                "SEGMENTATION_COMPUTE_TYPE",
                &SEGMENTATION_COMPUTE_TYPES,
                "default",
            )?,
            embedding_compute_type: one_of(var, "EMBEDDING_COMPUTE_TYPE", &EMBEDDING_COMPUTE_TYPES, "default")?,
            align_compute_type: one_of(var, "ALIGN_COMPUTE_TYPE", &ALIGN_COMPUTE_TYPES, "default")?,
            vad_dir: PathBuf::from(set("SCRIBE_MODELS_DIR").unwrap_or_else(|| "models".into())),
            vad_model_path: set("VAD_MODEL_PATH").map(PathBuf::from),
            concurrency,
            ping_interval: Duration::from_millis(ping_ms),
            platform_timeout: Duration::from_secs_f64(platform_timeout),
            drain_timeout: Duration::from_secs_f64(drain_timeout),
            storage: StorageConfig::from_vars(var)?,
            local_api_ttl: match var("LOCAL_API_RESULT_TTL_S").filter(|v| !v.trim().is_empty()) {
                None => None,
                Some(v) => match v.trim().parse::<f64>() {
                    Ok(s) if s > 0.0 && s <= 86_400.0 => Some(Duration::from_secs_f64(s)),
                    _ => {
                        return Err(format!(
                            "LOCAL_API_RESULT_TTL_S={v:?} should be seconds, more than 0 and at most 86400"
                        ))
                    }
                },
            },
            notes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::from_vars(&|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_follow_the_whisperx_worker() {
        let s = settings(&[("TMPDIR", "/tmp/x")]).unwrap();
        assert_eq!(s.jobs_dir, PathBuf::from("/tmp/x/scribe-jobs"));
        assert_eq!(s.limits.max_bytes, 2 << 30);
        assert_eq!(s.limits.timeout, Duration::from_secs(300));
        assert_eq!(s.max_audio_seconds, 14_400.0);
        assert_eq!(s.model, ModelChoice::Default);
        assert_eq!((s.concurrency, s.debug), (1, false));
        assert_eq!(s.compute_type, "default");
        assert_eq!(settings(&[("WHISPERX_COMPUTE_TYPE", " int8 ")]).unwrap().compute_type, "int8");
        assert_eq!(s.segmentation_compute_type, "default");
        let set = settings(&[("SEGMENTATION_COMPUTE_TYPE", "float32")]).unwrap();
        assert_eq!(set.segmentation_compute_type, "float32");
        let e = settings(&[("SEGMENTATION_COMPUTE_TYPE", "int8")]).err().unwrap();
        assert!(e.contains("SEGMENTATION_COMPUTE_TYPE") && e.contains("bfloat16"), "{e}");
        assert_eq!(s.embedding_compute_type, "default");
        let set = settings(&[("EMBEDDING_COMPUTE_TYPE", " bfloat16")]).unwrap();
        assert_eq!(set.embedding_compute_type, "bfloat16");
        let e = settings(&[("EMBEDDING_COMPUTE_TYPE", "float16")]).err().unwrap();
        assert!(e.contains("EMBEDDING_COMPUTE_TYPE") && e.contains("float32"), "{e}");
        assert_eq!(s.align_compute_type, "default");
        let set = settings(&[("ALIGN_COMPUTE_TYPE", "bfloat16 ")]).unwrap();
        assert_eq!(set.align_compute_type, "bfloat16");
        let e = settings(&[("ALIGN_COMPUTE_TYPE", "int8")]).err().unwrap();
        assert!(e.contains("ALIGN_COMPUTE_TYPE") && e.contains("bfloat16"), "{e}");
        assert_eq!(s.ping_interval, Duration::from_millis(10_000));
        assert_eq!(s.platform_timeout, Duration::from_secs(30));
        assert!(s.notes.is_empty());
    }

    #[test]
    fn a_ping_interval_below_a_second_is_floored_and_said() {
        for ms in ["0", "1", "999"] {
            let s = settings(&[("RUNPOD_PING_INTERVAL", ms)]).unwrap();
            assert_eq!(s.ping_interval, Duration::from_millis(MIN_PING_INTERVAL_MS), "{ms}");
            assert!(s.notes[0].contains("RUNPOD_PING_INTERVAL"), "{:?}", s.notes);
        }
        assert_eq!(settings(&[("RUNPOD_PING_INTERVAL", "2500")]).unwrap().ping_interval, Duration::from_millis(2500));
        assert_eq!(
            settings(&[("SCRIBE_PLATFORM_TIMEOUT_S", "0.5")]).unwrap().platform_timeout,
            Duration::from_millis(500)
        );
    }

    #[test]
    fn model_name_beats_model_dir_and_debug_is_read() {
        let s =
            settings(&[("WHISPERX_MODEL_NAME", "base"), ("WHISPERX_MODEL_DIR", "/nowhere"), ("DEBUG", "1")]).unwrap();
        assert_eq!(s.model, ModelChoice::Named("base".into()));
        assert!(s.debug);
        let s = settings(&[("WHISPERX_MODEL", "tiny.en"), ("WHISPERX_MODEL_NAME", "base")]).unwrap();
        assert_eq!(s.model, ModelChoice::Named("tiny.en".into()));
    }

    #[test]
    fn malformed_values_name_the_variable() {
        for (k, v) in [
            ("MAX_DOWNLOAD_BYTES", "2GB"),
            ("MAX_AUDIO_SECONDS", "-1"),
            ("DOWNLOAD_TIMEOUT_S", "soon"),
            ("SCRIBE_CONCURRENCY", "0"),
            ("ALLOW_PRIVATE_URLS", "localhost"),
            ("RUNPOD_PING_INTERVAL", "1.5s"),
            ("SCRIBE_PLATFORM_TIMEOUT_S", "0"),
            ("SCRIBE_PLATFORM_TIMEOUT_S", "never"),
            ("LOCAL_API_RESULT_TTL_S", "-5"),
            ("SCRIBE_DRAIN_TIMEOUT_S", "-1"),
            ("WHISPERX_COMPUTE_TYPE", "int4"),
        ] {
            let e = settings(&[(k, v)]).unwrap_err();
            assert!(e.contains(k), "{k}: {e}");
        }
    }
}
