//! One job, end to end: check the input, download the audio into the job's own directory,
//! transcribe it (VAD chunks, batched decoding), and build the result. The directory is removed
//! when the job ends, whatever happened.
//!
//! Each run gets a directory of its own, `job-{id as a file name}-{random}`, created fresh and
//! locked (`flock`) while the job runs, so neither two runs of one id, nor ids that read the same
//! as file names (`x.1`, `x_1`), nor workers sharing JOBS_DIR touch each other's files. Start-up
//! cleanup removes only directories no live process holds and that are older than
//! [`STALE_JOB_AGE`].

use std::collections::BTreeMap;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tracing::Instrument;

use scribe::models::whisper::Task;
use scribe::output::{render, OutputFormat, WriterOptions};
use scribe::pipeline::options::set_beam_size;
use scribe::pipeline::{Pipeline, PipelineOptions, Progress, SpeakerSample, Stage};
use scribe::Cancel;

use crate::download::{redact, Downloader};
use crate::job_input::JobInput;
use crate::job_result::{build_result, timings};
use crate::models::Models;
use crate::redact::safe_message;
use crate::sample_cache::SampleCache;
use crate::settings::Settings;
use crate::speaker_names::speaker_name;
use crate::storage::{Artifact, Storage};

/// Why a job failed.
#[derive(Clone, Debug, PartialEq)]
pub struct JobError {
    pub message: String,
    /// The GPU context is unusable: the platform should restart the worker (the SDK's
    /// `refresh_worker`, posted as `stopPod: true`).
    pub stop_pod: bool,
    /// The job's [`Cancel`] token stopped it (the caller knows why).
    pub cancelled: bool,
}

impl From<String> for JobError {
    fn from(message: String) -> Self {
        JobError { message, stop_pod: false, cancelled: false }
    }
}

impl JobError {
    fn cancelled() -> Self {
        JobError { message: "the job was cancelled before it finished".into(), stop_pod: false, cancelled: true }
    }
}

impl std::fmt::Display for JobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// What a job produced: its output, or why it failed.
pub type JobOutcome = Result<Value, JobError>;

/// What the job loop posts: `{"output": …}`, or `{"error": …}` with `stopPod: true` when the
/// worker must be restarted (the SDK's `refresh_worker`).
pub fn outcome_body(outcome: &JobOutcome) -> Value {
    match outcome {
        Ok(output) => json!({"output": output}),
        Err(e) if e.stop_pod => json!({"error": e.message, "stopPod": true}),
        Err(e) => json!({"error": e.message}),
    }
}

/// An engine error as a job error: a CUDA error other than running out of memory leaves the
/// context unusable, so the worker asks to be restarted.
pub fn engine_error(e: scribe::Error, audio_shown: &str, url: &str) -> JobError {
    if matches!(e, scribe::Error::Cancelled) {
        return JobError::cancelled();
    }
    let stop_pod = matches!(e, scribe::Error::Cuda(_));
    // Errors name the job's temporary file; the user knows the URL.
    let message = e.to_string().replace(audio_shown, &format!("audio_file {}", redact(url)));
    JobError { message, stop_pod, cancelled: false }
}

/// Resolves once `cancel` is cancelled (checked every [`CANCEL_POLL`]).
pub async fn cancelled(cancel: &Cancel) {
    while !cancel.is_cancelled() {
        tokio::time::sleep(CANCEL_POLL).await;
    }
}

/// How often an async wait looks at a job's [`Cancel`] token.
pub const CANCEL_POLL: Duration = Duration::from_millis(50);

/// Runs jobs with the loaded models.
pub struct JobRunner {
    pub models: Arc<Models>,
    pub downloader: Arc<Downloader>,
    pub settings: Arc<Settings>,
    /// Object storage for artifacts; None keeps results inline.
    pub storage: Option<Arc<Storage>>,
}

/// A job directory left by a process that is gone is removed at start-up once it is this old
/// (younger ones may belong to a worker that has created but not yet locked it).
pub const STALE_JOB_AGE: Duration = Duration::from_secs(10 * 60);
/// The file in each job directory that its process holds locked.
const LOCK_FILE: &str = ".lock";

/// Try to take `file`'s exclusive lock without waiting.
fn try_lock(file: &File) -> bool {
    // SAFETY: flock on a descriptor this process owns; the lock goes with the descriptor.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

/// A job's own directory: created fresh, locked while it lives, removed when dropped.
pub struct JobDir {
    path: PathBuf,
    _lock: File,
}

impl JobDir {
    /// A new directory for job `id` under `jobs_dir`.
    pub fn create(jobs_dir: &Path, id: &str) -> Result<JobDir, String> {
        std::fs::create_dir_all(jobs_dir).map_err(|e| format!("cannot create {}: {e}", jobs_dir.display()))?;
        let mut state = crate::backoff::seed();
        for _ in 0..16 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let path = jobs_dir.join(format!("job-{}-{:08x}", safe_id(id), state as u32));
            match std::fs::create_dir(&path) {
                Ok(()) => {
                    let lock = File::create(path.join(LOCK_FILE))
                        .map_err(|e| format!("cannot create the job's lock file: {e}"))?;
                    if !try_lock(&lock) {
                        return Err(format!("cannot lock {}", path.display()));
                    }
                    return Ok(JobDir { path, _lock: lock });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(format!("cannot create the job directory: {e}")),
            }
        }
        Err(format!("cannot find a free job directory name in {}", jobs_dir.display()))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for JobDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.path) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!("cannot remove {}: {e}", self.path.display());
            }
        }
    }
}

/// A job id as a file name: anything but letters, digits, `-` and `_` becomes `_`.
pub fn safe_id(id: &str) -> String {
    let s: String =
        id.chars().take(64).map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    if s.is_empty() {
        "job".into()
    } else {
        s
    }
}

/// The audio file's name in the job directory, keeping the URL's extension (the decoder's hint).
fn audio_name(url: &str) -> String {
    let ext = url::Url::parse(url)
        .ok()
        .and_then(|u| u.path_segments().and_then(|mut s| s.next_back().map(str::to_string)))
        .and_then(|last| last.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()))
        .filter(|e| !e.is_empty() && e.len() <= 5 && e.chars().all(|c| c.is_ascii_alphanumeric()));
    match ext {
        Some(e) => format!("audio.{e}"),
        None => "audio".into(),
    }
}

/// Remove job directories that earlier runs left (a worker killed mid-job): those no live
/// process holds locked and older than `min_age`. Another worker's jobs, and this one's, stay.
pub fn clean_stale_jobs(jobs_dir: &Path, min_age: Duration) {
    let Ok(entries) = std::fs::read_dir(jobs_dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if !(p.is_dir() && p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("job-"))) {
            continue;
        }
        let old = e.metadata().and_then(|m| m.modified()).is_ok_and(|t| t.elapsed().is_ok_and(|age| age >= min_age));
        if !old {
            continue;
        }
        // Held while we remove it, so no process can take it meanwhile.
        let lock = File::open(p.join(LOCK_FILE));
        if lock.as_ref().is_ok_and(|l| !try_lock(l)) {
            continue;
        }
        match std::fs::remove_dir_all(&p) {
            Ok(()) => tracing::info!("removed stale job files {}", p.display()),
            Err(err) => tracing::warn!("cannot remove stale {}: {err}", p.display()),
        }
    }
}

impl JobRunner {
    /// Run job `id` with `input`; `progress` receives progress updates for the platform.
    /// `cancel` stops it at the engine's next check: the call returns only once the engine has
    /// stopped (a cancelled job's error has `cancelled` set), and the job's files are removed
    /// after that. Log lines inside carry the job id as `request_id` (a field of the JSON lines
    /// on RunPod).
    pub async fn run(
        &self,
        id: &str,
        input: &Value,
        progress: Arc<dyn Fn(Value) + Send + Sync>,
        cancel: &Cancel,
    ) -> JobOutcome {
        let span = tracing::info_span!("job", request_id = %id);
        // Whatever failed, the message that leaves the worker names no secret and is bounded.
        let outcome = self
            .run_job(id, input, progress, cancel)
            .instrument(span)
            .await
            .map_err(|e| JobError { message: safe_message(&e.message), ..e });
        // The heap keeps large freed blocks for reuse during a job (main); an idle worker gives
        // them back.
        scribe::allocator::release_free_memory();
        outcome
    }

    async fn run_job(
        &self,
        id: &str,
        input: &Value,
        progress: Arc<dyn Fn(Value) + Send + Sync>,
        cancel: &Cancel,
    ) -> JobOutcome {
        let started = Instant::now();
        let job = JobInput::parse(input).map_err(|errors| format!("invalid input: {}", errors.join(" ")))?;
        let debug = job.debug.unwrap_or(self.settings.debug);
        let dir = JobDir::create(&self.settings.jobs_dir, id)?;
        let audio = dir.path().join(audio_name(&job.audio_file));
        let audio_shown = audio.display().to_string();
        let got = tokio::select! {
            got = self.downloader.fetch(&job.audio_file, &audio) => got.map_err(|e| format!("audio_file: {e}"))?,
            _ = cancelled(cancel) => return Err(JobError::cancelled()),
        };
        tracing::info!("job {id}: downloaded {} bytes from {}", got.bytes, redact(&job.audio_file));
        let download_s = started.elapsed().as_secs_f64();

        let mut options = pipeline_options(&job, &self.settings, dir.path());
        let mut sample_warnings = Vec::new();
        if job.speaker_verification || !job.speaker_samples.is_empty() {
            let fetched = tokio::select! {
                f = self.fetch_samples(&options.verify_options.speaker_samples, dir.path()) => f,
                _ = cancelled(cancel) => return Err(JobError::cancelled()),
            };
            (options.verify_options.speaker_samples, sample_warnings) = fetched;
        }
        let pipeline =
            Pipeline::new(self.models.pipeline.clone(), options).map_err(|e| format!("invalid input: {e}"))?;
        let span = tracing::Span::current();
        let engine_cancel = cancel.clone();
        let audio_path = audio.clone();
        // The engine runs on a blocking thread; this task waits for it to return, also when
        // cancelled, so the job's slot and files are released only once it has stopped.
        let transcribed = tokio::task::spawn_blocking(move || {
            let _in_job = span.enter();
            let mut updates = ProgressUpdates::default();
            pipeline.run(&audio_path, &engine_cancel, &mut |p| {
                if let Some(update) = updates.next(p) {
                    progress(update);
                }
            })
        })
        .await
        .map_err(|e| format!("transcription crashed: {e}"))?
        .map_err(|e| engine_error(e, &audio_shown, &job.audio_file))?;

        let mut warnings = sample_warnings;
        warnings.extend(transcribed.warnings.iter().cloned());
        let upload_started = Instant::now();
        let artifacts = match &self.storage {
            Some(storage) => match upload(storage, id, &transcribed.transcript, &job.output_formats).await {
                Ok(a) => Some(a),
                Err(e) => {
                    tracing::warn!("job {id}: {e}");
                    warnings.push(format!("storage: {e}; the transcript is in the inline preview"));
                    None
                }
            },
            None => None,
        };
        let timings = debug.then(|| {
            timings(download_s, &transcribed, upload_started.elapsed().as_secs_f64(), started.elapsed().as_secs_f64())
        });
        drop(dir);
        Ok(build_result(&transcribed, artifacts.as_ref(), warnings, timings)?)
    }
}

impl JobRunner {
    /// The speaker samples (`source` a URL) fetched through the sample cache: those that could
    /// be had, with their local file, cache key and redacted URL, and a warning naming each that
    /// could not.
    async fn fetch_samples(&self, samples: &[SpeakerSample], job_dir: &Path) -> (Vec<SpeakerSample>, Vec<String>) {
        let cache = SampleCache::new(&self.settings.jobs_dir);
        let (mut ready, mut warnings) = (Vec::new(), Vec::new());
        for (i, s) in samples.iter().enumerate() {
            match cache.fetch(&self.downloader, &s.source, job_dir, &format!("speaker-sample-{i}")).await {
                Ok(f) => {
                    tracing::info!(
                        "speaker sample {}: {}{}",
                        s.name,
                        redact(&s.source),
                        if f.cached { " (cached)" } else { "" }
                    );
                    ready.push(SpeakerSample {
                        name: s.name.clone(),
                        source: f.path.display().to_string(),
                        key: f.key,
                        display: Some(redact(&s.source)),
                    });
                }
                Err(e) => {
                    warnings.push(format!("speaker_samples: {} ({}): {e}; not enrolled", s.name, redact(&s.source)))
                }
            }
        }
        (ready, warnings)
    }
}

/// Progress updates for the platform: one per whole percent of each stage.
#[derive(Default)]
struct ProgressUpdates {
    last: Option<(Stage, u32)>,
}

impl ProgressUpdates {
    fn next(&mut self, p: Progress) -> Option<Value> {
        let percent = p.percent();
        if self.last == Some((p.stage, percent)) || p.total <= 0.0 {
            return None;
        }
        self.last = Some((p.stage, percent));
        Some(json!({"stage": p.stage.name(), "done": p.done, "total": p.total, "unit": p.unit, "percent": percent}))
    }
}

/// Upload the job's artifacts: the full JSON result and the requested renderings.
async fn upload(
    storage: &Storage,
    id: &str,
    transcript: &scribe::output::Transcript,
    formats: &[String],
) -> Result<BTreeMap<String, Artifact>, String> {
    let mut out = BTreeMap::new();
    for ext in formats {
        let format: OutputFormat = ext.parse().map_err(|e: scribe::Error| e.to_string())?;
        let body = render(transcript, format, &WriterOptions::default()).map_err(|e| e.to_string())?;
        let content_type = match format {
            OutputFormat::Json => "application/json",
            OutputFormat::Vtt => "text/vtt; charset=utf-8",
            OutputFormat::Srt => "application/x-subrip; charset=utf-8",
            _ => "text/plain; charset=utf-8",
        };
        out.insert(ext.clone(), storage.put(id, ext, content_type, body.into_bytes()).await?);
    }
    Ok(out)
}

/// The job's pipeline options: WhisperX's defaults with the job's fields.
fn pipeline_options(job: &JobInput, settings: &Settings, dir: &Path) -> PipelineOptions {
    let mut o = PipelineOptions::default().with_spill_dir(dir);
    let asr = &mut o.asr_options;
    if let Some(t) = job.temperature {
        asr.temperatures = vec![t];
    }
    asr.initial_prompt = job.initial_prompt.clone();
    asr.word_timestamps = job.word_timestamps;
    asr.decode.task = if job.task_translate { Task::Translate } else { Task::Transcribe };
    asr.decode.language = job.language.clone();
    set_beam_size(asr, job.beam_size, scribe::pipeline::options::PATIENCE);
    o.vad_options.vad_onset = job.vad_onset;
    o.vad_options.vad_offset = job.vad_offset;
    o.vad_options.chunk_size = job.chunk_size;
    o.batch_size = job.batch_size;
    o.audio.max_seconds = Some(settings.max_audio_seconds);
    o.align_options.align_output = job.align_output;
    o.align_options.dtw_fallback = true;
    o.align_options.align_model = job.align_model.as_ref().map(|name| {
        // A name of a directory under SCRIBE_MODELS_DIR is that directory; anything else is a
        // torchaudio bundle or a hub repo (job_input only lets plain names through).
        let local = settings.vad_dir.join(name);
        if local.is_dir() {
            local.display().to_string()
        } else {
            name.clone()
        }
    });
    o.align_options.interpolate_method = job.interpolate_method;
    o.align_options.return_char_alignments = job.return_char_alignments;
    o.diarize_options.diarize = job.diarization;
    o.diarize_options.min_speakers = job.min_speakers;
    o.diarize_options.max_speakers = job.max_speakers;
    o.verify_options.speaker_verification = job.speaker_verification;
    // SpeakerModels (rooted at SCRIBE_MODELS_DIR) resolves a folder name, a path or a repository.
    o.verify_options.speaker_model = settings.speaker_model.clone();
    o.verify_options.speaker_samples = job
        .speaker_samples
        .iter()
        .enumerate()
        .map(|(i, s)| SpeakerSample {
            name: speaker_name(s.name.as_deref(), &s.url).unwrap_or_else(|| format!("speaker_{}", i + 1)),
            source: s.url.clone(),
            ..Default::default()
        })
        .collect();
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_errors_and_restarts_have_the_sdks_shapes() {
        assert_eq!(outcome_body(&Ok(json!({"a": 1}))), json!({"output": {"a": 1}}));
        assert_eq!(outcome_body(&Err(JobError::from("bad".to_string()))), json!({"error": "bad"}));
        let gpu = JobError { message: "cuda: launch failed".into(), stop_pod: true, cancelled: false };
        assert_eq!(outcome_body(&Err(gpu)), json!({"error": "cuda: launch failed", "stopPod": true}));
    }

    #[test]
    fn only_a_cuda_error_asks_for_a_restart_and_errors_name_the_url_not_the_temporary_file() {
        let url = "https://media.example/talk.mp3?sig=secret";
        let e = engine_error(scribe::Error::Cuda("CUDA_ERROR_ILLEGAL_ADDRESS".into()), "/j/audio.mp3", url);
        assert!(e.stop_pod, "{e}");
        let e = engine_error(scribe::Error::DeviceOutOfMemory("encoder".into()), "/j/audio.mp3", url);
        assert!(!e.stop_pod, "out of memory leaves the context usable: {e}");
        let e =
            engine_error(scribe::Error::audio(std::path::Path::new("/j/audio.mp3"), "truncated"), "/j/audio.mp3", url);
        assert!(!e.stop_pod);
        assert_eq!(e.message, "audio_file https://media.example/talk.mp3: truncated");
    }

    /// Set `path`'s modification time `age` in the past.
    fn age(path: &Path, age: Duration) {
        let t = std::time::SystemTime::now() - age;
        File::open(path).unwrap().set_modified(t).unwrap();
    }

    #[test]
    fn only_old_unlocked_job_directories_are_removed_and_kept_results_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        for d in ["job-crashed/x", "job-legacy", "job-fresh", "pending-results", "other"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        std::fs::write(dir.join("pending-results/j.json"), "{}").unwrap();
        std::fs::write(dir.join("job-crashed/.lock"), "").unwrap();
        // A live job of another worker: created, locked, and old.
        let live = JobDir::create(dir, "live").unwrap();
        for d in ["job-crashed", "job-legacy", "other", "pending-results"] {
            age(&dir.join(d), Duration::from_secs(3600));
        }
        age(live.path(), Duration::from_secs(3600));
        clean_stale_jobs(dir, STALE_JOB_AGE);
        assert!(!dir.join("job-crashed").exists() && !dir.join("job-legacy").exists());
        assert!(live.path().is_dir(), "a locked job directory stays");
        assert!(dir.join("job-fresh").is_dir(), "a young one may be a job not locked yet");
        assert!(dir.join("pending-results/j.json").is_file() && dir.join("other").is_dir());
        drop(live);
        assert_eq!(std::fs::read_dir(dir).unwrap().count(), 3, "job-fresh, pending-results, other");
    }

    #[test]
    fn every_run_gets_its_own_directory_even_for_ids_that_read_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let a = JobDir::create(dir.path(), "x.1").unwrap();
        let b = JobDir::create(dir.path(), "x_1").unwrap();
        let c = JobDir::create(dir.path(), "x_1").unwrap();
        assert!(a.path() != b.path() && b.path() != c.path() && a.path() != c.path());
        assert!(a.path().file_name().unwrap().to_string_lossy().starts_with("job-x_1-"));
        drop((a, b, c));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn job_ids_and_audio_names_are_safe_file_names() {
        assert_eq!(safe_id("abc-123_x"), "abc-123_x");
        assert_eq!(safe_id("../../etc/passwd"), "______etc_passwd");
        assert_eq!(safe_id(&"a".repeat(500)).len(), 64);
        assert_eq!(safe_id(""), "job");
        assert_eq!(audio_name("https://h/a/b/talk.MP3?sig=1"), "audio.mp3");
        assert_eq!(audio_name("https://h/a/b/noext"), "audio");
        assert_eq!(audio_name("https://h/x.%2F..%2Fpasswd"), "audio");
        assert_eq!(audio_name("https://h/"), "audio");
    }
}
