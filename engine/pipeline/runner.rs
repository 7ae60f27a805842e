//! The [`Pipeline`]: the loaded models and one run's options, and the stages a file goes
//! through, in order. Audio is decoded once ([`audio_in`](super::audio_in)) into a store every
//! later stage reads by time range; each later stage is a module with one entry point of the
//! [`StageFn`] shape, listed in [`STAGES`].

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::audio::Audio;
use crate::cancel::Cancel;
use crate::error::{panic_message, Result};
use crate::models::pyannote::PyanNet;
use crate::models::whisper::Whisper;
use crate::output::Transcript;

use super::batched::BatchStats;
use super::options::PipelineOptions;
use super::progress::{Progress, Stage, Timings};
use super::speech_chunks::Chunk;
use super::{audio_in, diarization, speaker_names, transcription, voice_activity, word_times};

/// The models a pipeline runs, loaded once and shared by every run (the worker's jobs).
pub struct Models {
    pub whisper: Whisper,
    /// WhisperX's VAD (pyannote segmentation); None: no VAD was loaded.
    pub vad: Option<PyanNet>,
    /// Alignment models, loaded per language on first use.
    pub align: super::align_models::AlignModels,
    /// Diarization models, loaded on first use.
    pub diarize: super::diarize_models::DiarizeModels,
    /// Speaker-verification models and voiceprints, loaded on first use.
    pub speakers: super::speaker_models::SpeakerModels,
}

impl Models {
    /// WhisperX's VAD as both the CLI and the worker find it: `explicit` (VAD_MODEL_PATH, a
    /// checkpoint or a converted directory), else `models_dir/whisperx-vad-segmentation.bin`,
    /// else `models_dir/vad/` (see `models::pyannote::checkpoint::locate`); loaded on `device`,
    /// its LSTMs in `compute_type` (see [`PyanNet::apply_compute_type`]).
    pub fn load_vad(
        device: &crate::backend::Device,
        models_dir: &Path,
        explicit: Option<&Path>,
        compute_type: &str,
    ) -> Result<(PyanNet, std::path::PathBuf)> {
        use crate::models::pyannote::checkpoint;
        let path = checkpoint::locate(models_dir, explicit)?;
        let (store, config) = checkpoint::open(&path)?;
        let mut vad = PyanNet::load(device, store.as_ref(), &config)?;
        if vad.config.powerset_max_classes.is_some() {
            // Its log-softmax over speaker sets is not the per-track speech score WhisperX's
            // VAD thresholds (0.5/0.363): a diarization segmentation model, not a VAD.
            return Err(crate::error::Error::Other(format!(
                "{} is a powerset segmentation model (segmentation-3.0), not WhisperX's VAD",
                path.display()
            )));
        }
        vad.apply_compute_type(device, compute_type)?;
        Ok((vad, path))
    }
}

/// What the diarization leaves for the speaker names: the diarizer, each speaker's centroid and
/// the exclusive (one speaker at a time) turns.
#[derive(Clone)]
pub struct DiarizedSpeakers {
    pub diarizer: Arc<crate::diarize::diarizer::Diarizer>,
    pub centroids: Vec<(String, Vec<f32>)>,
    pub exclusive_turns: Vec<crate::diarize::assign::SpeakerTurn>,
}

impl std::fmt::Debug for DiarizedSpeakers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiarizedSpeakers")
            .field("embedding", &self.diarizer.embedding.name())
            .field("speakers", &self.centroids.len())
            .field("exclusive_turns", &self.exclusive_turns.len())
            .finish()
    }
}

/// A file's transcript as the stages build it, and what it took.
#[derive(Clone, Debug, Default)]
pub struct FileTranscript {
    pub transcript: Transcript,
    /// Length of the audio, seconds.
    pub duration: f64,
    /// The voice-activity stage's speech chunks (None: it did not run).
    pub chunks: Option<Vec<Chunk>>,
    /// Seconds of detected speech.
    pub speech: f64,
    pub stats: BatchStats,
    /// What the user should know: damaged audio, stages skipped.
    pub warnings: Vec<String>,
    pub timings: Timings,
    /// The diarization's speakers, for the speaker names (None: no diarization ran).
    pub diarized: Option<DiarizedSpeakers>,
}

/// Whether a stage did its work or was skipped (not asked for, or its model missing: skipped
/// stages leave a warning in the result when the user asked for them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ran,
    Skipped,
}

/// A stage's one entry point.
pub type StageFn = fn(&Pipeline, &mut FileTranscript, &Audio, &Cancel, &mut dyn FnMut(Progress)) -> Result<Outcome>;

/// The stages after the audio is in, in the order they run. A new stage is a module of the
/// pipeline with a [`StageFn`] entry point, added here.
pub const STAGES: [(Stage, StageFn); 5] = [
    (Stage::VoiceActivity, voice_activity::run),
    (Stage::Transcription, transcription::run),
    (Stage::WordTimes, word_times::run),
    (Stage::Diarization, diarization::run),
    (Stage::SpeakerNames, speaker_names::run),
];

/// Cancels the diarizer alongside when dropped before the stages before it are done.
struct StopUnlessDone<'a> {
    stop: &'a Cancel,
    done: bool,
}

impl Drop for StopUnlessDone<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.stop.cancel();
        }
    }
}

/// How often the diarizer's progress is passed on once the stages before it are done (while
/// it runs alongside them, see [`Pipeline::diarize_alongside`]).
const PROGRESS_POLL: Duration = Duration::from_millis(50);

/// Models and options: built once (per job in the worker, per invocation in the CLI), run on
/// any number of files.
pub struct Pipeline {
    models: Arc<Models>,
    options: PipelineOptions,
}

impl Pipeline {
    /// Check the options against each other and the models.
    pub fn new(models: Arc<Models>, mut options: PipelineOptions) -> Result<Pipeline> {
        // `align_output` may fall back to Whisper's cross-attention (DTW) word times, which
        // transcription computes, when no alignment model can be had (see word_times).
        if options.align_options.align_output && options.align_options.dtw_fallback {
            options.asr_options.word_timestamps = true;
        }
        options.validate()?;
        Ok(Pipeline { models, options })
    }

    pub fn models(&self) -> &Models {
        &self.models
    }

    pub fn options(&self) -> &PipelineOptions {
        &self.options
    }

    /// Run `path` through every stage.
    pub fn run(
        &self,
        path: &Path,
        cancel: &Cancel,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<FileTranscript> {
        let started = Instant::now();
        let audio = audio_in::run(self, path, cancel, progress)?;
        let mut timings = Timings::default();
        timings.add(Stage::Audio, started.elapsed().as_secs_f64());
        let mut file = self.run_audio(&audio, cancel, progress)?;
        timings.stages.append(&mut file.timings.stages);
        file.timings = timings;
        Ok(file)
    }

    /// Run audio already in a store through the stages after `audio_in`. Where the device runs
    /// stages alongside each other (the CPU) and the run wants speakers, the diarizer finds them
    /// on a thread of its own while the stages before it run ([`Self::diarize_alongside`]).
    pub fn run_audio(
        &self,
        audio: &Audio,
        cancel: &Cancel,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<FileTranscript> {
        let mut file = FileTranscript {
            duration: audio.duration(),
            warnings: audio.report.warnings.iter().map(|w| format!("audio: {w}")).collect(),
            ..Default::default()
        };
        let alongside = diarization::wanted(self)
            && !self.options.diarize_options.after_transcription
            && self.models.whisper.device.runs_stages_alongside();
        if alongside {
            self.diarize_alongside(&mut file, audio, cancel, progress)?;
        } else {
            self.run_stages(&STAGES, &mut file, audio, cancel, progress)?;
        }
        Ok(file)
    }

    /// `stages` in order, on a thread of a rayon pool of this run's own (as many threads as the
    /// current pool; inline when already on a pool's thread). Called from a thread outside any
    /// pool, every op's parallel loop woke the pool's threads and put the caller to sleep until
    /// they were done (the batched long benchmark file: 16 000 context switches, 0.45–0.55 s of
    /// system time; on a pool thread 120 and 0.3–0.4 s, the wall time 3.1–3.3 → 2.9–3.05 s). A
    /// pool of its own, not the global one: on the global pool a worker waiting inside one run's
    /// op could take up another run's whole list of stages (the worker's concurrent jobs) and
    /// hold the first until it finished, or deadlock on a lock the first holds (a model slot
    /// being loaded). The caller's tracing span (the worker's job) is entered on the pool's
    /// thread, so the stages' logs keep it.
    fn run_stages(
        &self,
        stages: &[(Stage, StageFn)],
        file: &mut FileTranscript,
        audio: &Audio,
        cancel: &Cancel,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<()> {
        let span = tracing::Span::current();
        let mut run_all = || {
            let _in_caller_span = span.enter();
            for (stage, run) in stages {
                cancel.check()?;
                let started = Instant::now();
                if run(self, file, audio, cancel, progress)? == Outcome::Ran {
                    file.timings.add(*stage, started.elapsed().as_secs_f64());
                }
            }
            Ok(())
        };
        if rayon::current_thread_index().is_some() {
            return run_all();
        }
        match rayon::ThreadPoolBuilder::new().num_threads(rayon::current_num_threads()).build() {
            Ok(pool) => pool.install(run_all),
            Err(e) => {
                tracing::warn!("no thread pool for the stages ({e}); they run on the calling thread");
                run_all()
            }
        }
    }

    /// [`STAGES`] with the diarizer's half that needs only the audio ([`diarization::find`])
    /// on a thread of its own from the start: two stages' ops fill the cores that either leaves
    /// idle (its serial stretches, a decoder step's small products). Its turns meet the
    /// transcript where the diarization stage stands in the list. Its progress is passed on
    /// from this thread once the stages before it are done (so progress still goes stage by
    /// stage: the latest report at each poll). Should a stage before it fail or panic, the
    /// diarizer is stopped ([`Cancel::linked`]) and the failure returned; a diarizer that panics
    /// is a warning, as one that fails. The result is the same as in order; the diarization's
    /// time is its own, which overlaps the others'.
    fn diarize_alongside(
        &self,
        file: &mut FileTranscript,
        audio: &Audio,
        cancel: &Cancel,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<()> {
        let at = STAGES.iter().position(|(s, _)| *s == Stage::Diarization).expect("diarization is a stage");
        let (before, after) = (&STAGES[..at], &STAGES[at + 1..]);
        let stop = cancel.linked();
        let latest: Mutex<Option<Progress>> = Mutex::new(None);
        let pass_on = |progress: &mut dyn FnMut(Progress)| {
            if let Some(p) = latest.lock().unwrap_or_else(|e| e.into_inner()).take() {
                progress(p)
            }
        };
        let (found, before_result) = std::thread::scope(|scope| {
            let finder = scope.spawn(|| {
                let started = Instant::now();
                let find = || {
                    diarization::find(self, audio, &stop, &mut |p| {
                        *latest.lock().unwrap_or_else(|e| e.into_inner()) = Some(p)
                    })
                };
                // A pool of its own: the operating system then shares the cores between the two
                // stages' threads, where in one pool each op waits for the other's to finish.
                let found = match rayon::ThreadPoolBuilder::new().num_threads(rayon::current_num_threads()).build() {
                    Ok(pool) => pool.install(find),
                    Err(_) => find(),
                };
                (found, started.elapsed().as_secs_f64())
            });
            // Stops the diarizer unless the stages before it succeed: on their error, and on a
            // panic, which would otherwise wait here for the whole diarization.
            let mut guard = StopUnlessDone { stop: &stop, done: false };
            let before_result = self.run_stages(before, file, audio, cancel, progress);
            guard.done = before_result.is_ok();
            drop(guard);
            // Until it finishes, and once after its last report.
            loop {
                let finished = finder.is_finished();
                if before_result.is_ok() {
                    pass_on(&mut *progress);
                }
                if finished {
                    break;
                }
                std::thread::sleep(PROGRESS_POLL);
            }
            (finder.join(), before_result)
        });
        before_result?;
        let (found, seconds) = match found {
            Ok(found) => found,
            // As a diarizer's error: a warning, the transcript without speakers.
            Err(panic) => {
                let warning =
                    format!("diarization: panicked ({}); {}", panic_message(&*panic), diarization::NO_SPEAKERS);
                (Ok(diarization::Found { warnings: vec![warning], speakers: None }), 0.0)
            }
        };
        let found = found?;
        cancel.check()?;
        let started = Instant::now();
        if diarization::apply(file, found, self.options.diarize_options.speaker_embeddings) == Outcome::Ran {
            file.timings.add(Stage::Diarization, seconds + started.elapsed().as_secs_f64());
        }
        self.run_stages(after, file, audio, cancel, progress)
    }
}
