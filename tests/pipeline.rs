//! The pipeline of stages (engine/pipeline): a file decoded once into the store runs through
//! VAD and transcription, with the same result whether the store is in memory or in a temporary
//! file; and a cancelled run stops: a counting backend cancels the run when a given forward
//! starts and shows that no forward of any model starts after it.

mod common;
#[path = "common/counting.rs"]
mod counting;

use std::sync::Arc;

use common::{model_dir, speech};
use counting::{Counting, Forward};
use scribe::models::pyannote::{checkpoint, PyanNet};
use scribe::models::whisper::Whisper;
use scribe::pipeline::options::set_beam_size;
use scribe::pipeline::{Models, Pipeline, PipelineOptions, Progress, Stage, VadMethod};
use scribe::{Cancel, Error};

/// tiny.en and the VAD on a counting CPU backend; None when the models are missing.
fn models() -> Option<(Arc<Counting>, Arc<Models>)> {
    let tiny = model_dir("tiny.en")?;
    let vad_dir = model_dir("vad")?;
    let backend = Arc::new(Counting::new(80));
    let device = Counting::cpu(&backend);
    let whisper = Whisper::load(&tiny, device.clone()).unwrap();
    let (store, config) = checkpoint::open(&vad_dir).unwrap();
    let vad = PyanNet::load(&device, store.as_ref(), &config).unwrap();
    Some((
        backend,
        Arc::new(Models {
            whisper,
            vad: Some(vad),
            align: scribe::pipeline::align_models::AlignModels::none(),
            diarize: Default::default(),
            speakers: Default::default(),
        }),
    ))
}

fn options(method: VadMethod) -> PipelineOptions {
    let mut o = PipelineOptions::default();
    o.asr_options.decode.language = Some("en".into());
    set_beam_size(&mut o.asr_options, 1, 1.0);
    o.vad_options.method = method;
    o.batch_size = 2;
    o
}

#[test]
fn a_file_runs_through_the_stages_the_same_from_memory_and_from_a_temporary_file() {
    let Some((_, models)) = models() else { return };
    let spill = tempfile::tempdir().unwrap();
    let in_memory = Pipeline::new(models.clone(), options(VadMethod::Pyannote)).unwrap();
    let mut on_disk_options = options(VadMethod::Pyannote).with_spill_dir(spill.path());
    on_disk_options.audio.in_memory_seconds = 5.0;
    let on_disk = Pipeline::new(models, on_disk_options).unwrap();
    let path = speech("two_speakers.wav");
    let mut stages = Vec::new();
    let mut threads = Vec::new();
    let a = in_memory
        .run(&path, &Cancel::new(), &mut |p: Progress| {
            stages.push(p.stage);
            threads.push((p.stage, rayon::current_thread_index()));
        })
        .unwrap();
    let b = on_disk.run(&path, &Cancel::new(), &mut |_| {}).unwrap();
    assert_eq!(a.transcript, b.transcript);
    assert!(a.transcript.segments.len() >= 3, "{:?}", a.transcript);
    assert_eq!(a.duration, 30.0);
    assert!(a.chunks.as_ref().is_some_and(|c| !c.is_empty()));
    // Progress came from each stage that runs, in order; timings name the stages that ran.
    stages.dedup();
    assert_eq!(stages, [Stage::Audio, Stage::VoiceActivity, Stage::Transcription]);
    let timed: Vec<Stage> = a.timings.stages.iter().map(|(s, _)| *s).collect();
    assert_eq!(timed, [Stage::Audio, Stage::VoiceActivity, Stage::Transcription]);
    // The stages after the audio run on a thread of the rayon pool (Pipeline::run_stages), so
    // their ops' parallel loops start from a worker instead of waking the pool from outside it.
    for (stage, thread) in threads.iter().filter(|(s, _)| *s != Stage::Audio) {
        assert!(thread.is_some(), "{stage:?} reported progress from outside the pool");
    }
    assert!(a.warnings.is_empty(), "{:?}", a.warnings);
    // The temporary file was unnamed: nothing is left behind.
    assert_eq!(std::fs::read_dir(spill.path()).unwrap().count(), 0);
}

#[test]
fn stages_that_cannot_run_are_warnings_not_errors() {
    // No alignment model source: alignment cannot run.
    let Some((_, models)) = models() else { return };
    let mut o = options(VadMethod::Pyannote);
    o.align_options.align_output = true;
    o.align_options.dtw_fallback = true;
    o.diarize_options.diarize = true;
    o.verify_options.speaker_verification = true;
    let file = Pipeline::new(models, o).unwrap().run(&speech("spk1_snt1.wav"), &Cancel::new(), &mut |_| {}).unwrap();
    let w = file.warnings.join("\n");
    assert!(w.contains("align_output") && w.contains("diarization") && w.contains("speaker_verification"), "{w}");
    // align_output with the DTW fallback: Whisper's cross-attention gives the word times.
    assert!(file.transcript.segments.iter().all(|s| !s.words.is_empty()), "{:?}", file.transcript);
}

/// Run `path` with a cancel planned when the `at`-th forward of `kind` starts; returns the
/// counts when it was cancelled and at the end.
fn cancelled_run(method: VadMethod, kind: Forward, at: usize) -> Option<(counting::Counts, counting::Counts)> {
    let (backend, models) = models()?;
    let pipeline = Pipeline::new(models, options(method)).unwrap();
    let cancel = Cancel::new();
    *backend.cancel_at.lock().unwrap() = Some((kind, at, cancel.clone()));
    let mut at_cancel = None;
    let result = pipeline.run(&speech("two_speakers.wav"), &cancel, &mut |_| {
        if cancel.is_cancelled() && at_cancel.is_none() {
            at_cancel = Some(backend.counts());
        }
    });
    assert!(matches!(result, Err(Error::Cancelled)), "{:?}", result.map(|f| f.transcript));
    let end = backend.counts();
    Some((at_cancel.unwrap_or(end), end))
}

#[test]
fn no_forward_starts_after_a_cancel_during_decoding() {
    for method in [VadMethod::Pyannote, VadMethod::None] {
        let Some((_, end)) = cancelled_run(method, Forward::Decoder, 4) else { return };
        // The fourth decoder step was under way when the cancel came: it finished, and no
        // further step, encoder batch or VAD window started.
        assert_eq!(end.decoder, 4, "{method:?}: {end:?}");
        assert_eq!(end.encoder, 1, "{method:?}: {end:?}");
    }
}

#[test]
fn no_forward_starts_after_a_cancel_during_voice_activity_or_encoding() {
    let Some((_, end)) = cancelled_run(VadMethod::Pyannote, Forward::Vad, 1) else { return };
    // On the CPU the VAD scores two batches of windows at once, so the first batch's partner
    // may have started with it; nothing after them.
    assert!((1..=2).contains(&end.vad) && (end.encoder, end.decoder) == (0, 0), "{end:?}");
    let Some((_, end)) = cancelled_run(VadMethod::Pyannote, Forward::Encoder, 1) else { return };
    assert_eq!((end.encoder, end.decoder), (1, 0), "{end:?}");
}

#[test]
fn a_run_cancelled_before_it_starts_computes_nothing() {
    let Some((backend, models)) = models() else { return };
    let pipeline = Pipeline::new(models, options(VadMethod::Pyannote)).unwrap();
    let cancel = Cancel::new();
    cancel.cancel();
    let r = pipeline.run(&speech("two_speakers.wav"), &cancel, &mut |_| {});
    assert!(matches!(r, Err(Error::Cancelled)));
    assert_eq!(backend.counts(), counting::Counts::default());
}

/// Alignment models from local files only (the reference's small random-initialised wav2vec2
/// names its directory); `models_dir` holds `punkt/`.
fn align_models() -> scribe::pipeline::align_models::AlignModels {
    use scribe::hub::torch_hub::TorchHubConfig;
    use scribe::hub::HubConfig;
    use scribe::pipeline::align_models::{AlignModels, AlignSource};
    let nowhere = std::env::temp_dir().join("scribe-no-cache");
    AlignModels::new(AlignSource {
        hub: HubConfig::new("http://127.0.0.1:9", &nowhere, None, true),
        torch: TorchHubConfig { checkpoints_dir: nowhere, base_url: "http://127.0.0.1:9".into(), offline: true },
        models_dir: common::root().join("models"),
        compute_type: "default".into(),
    })
}

#[test]
fn word_times_stage_aligns_every_segment_and_reports_progress() {
    let tiny = match model_dir("tiny.en") {
        Some(d) => d,
        None => return,
    };
    let Some(vad_dir) = model_dir("vad") else { return };
    if model_dir("punkt").is_none() {
        return;
    }
    let device = scribe::backend::Device::cpu();
    let whisper = Whisper::load(&tiny, device.clone()).unwrap();
    let (store, config) = checkpoint::open(&vad_dir).unwrap();
    let vad = PyanNet::load(&device, store.as_ref(), &config).unwrap();
    let models = Arc::new(Models {
        whisper,
        vad: Some(vad),
        align: align_models(),
        diarize: Default::default(),
        speakers: Default::default(),
    });
    let model = common::root().join("tests/reference/data/wav2vec2/base_group");
    for mode in [scribe::align::Mode::CtcViterbi, scribe::align::Mode::WhisperxCompat] {
        let mut o = options(VadMethod::Pyannote);
        o.align_options.align_output = true;
        o.align_options.align_model = Some(model.display().to_string());
        o.align_options.mode = mode;
        let mut stages = Vec::new();
        let file = Pipeline::new(models.clone(), o)
            .unwrap()
            .run(&speech("spk2_snt3.wav"), &Cancel::new(), &mut |p: Progress| stages.push(p))
            .unwrap();
        assert!(file.warnings.is_empty(), "{mode:?}: {:?}", file.warnings);
        // No DTW was asked for, so every word time is the aligner's.
        let words = &file.transcript.word_segments;
        assert!(words.len() >= 4, "{mode:?}: {:?}", file.transcript);
        for w in words {
            let (s, e) = (w.start.unwrap(), w.end.unwrap());
            assert!(0.0 <= s && s <= e && e <= file.duration + 0.5, "{mode:?}: {w:?}");
        }
        assert!(file.timings.stages.iter().any(|(s, _)| *s == Stage::WordTimes), "{mode:?}");
        let last = stages.iter().rev().find(|p| p.stage == Stage::WordTimes).expect("word_times progress");
        assert_eq!(last.done, last.total, "{mode:?}");
    }
}

#[test]
fn an_alignment_model_that_cannot_be_had_leaves_a_warning() {
    let Some(tiny) = model_dir("tiny.en") else { return };
    let device = scribe::backend::Device::cpu();
    let whisper = Whisper::load(&tiny, device).unwrap();
    let models = Arc::new(Models {
        whisper,
        vad: None,
        align: align_models(),
        diarize: Default::default(),
        speakers: Default::default(),
    });
    for (model, says) in [(None, "offline"), (Some("/no/such/model"), "does not exist")] {
        let mut o = options(VadMethod::None);
        o.align_options.align_output = true;
        o.align_options.align_model = model.map(str::to_string);
        let file = Pipeline::new(models.clone(), o)
            .unwrap()
            .run(&speech("spk1_snt1.wav"), &Cancel::new(), &mut |_| {})
            .unwrap();
        let w = file.warnings.join("\n");
        assert!(w.starts_with("align_output") && w.contains(says) && w.contains("no word times"), "{w}");
        assert!(file.transcript.word_segments.is_empty());
        assert!(!file.transcript.segments.is_empty());
    }
}

#[test]
fn an_alignment_model_load_that_failed_is_tried_again_and_models_load_side_by_side() {
    let device = scribe::backend::Device::cpu();
    let models = align_models();
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("base_group");
    std::fs::create_dir(&copy).unwrap();
    let path = copy.to_str().unwrap();
    // An empty directory: the load fails and names the model.
    let e = models.get(&device, "en", Some(path)).err().expect("an empty directory is no model").to_string();
    assert!(e.contains("base_group"), "{e}");
    // The files arrive: the next job loads it (the failure was not kept), and later jobs share it.
    let source = common::root().join("tests/reference/data/wav2vec2/base_group");
    for f in ["config.json", "model.safetensors", "vocab.json"] {
        std::fs::copy(source.join(f), copy.join(f)).unwrap();
    }
    let first = models.get(&device, "en", Some(path)).unwrap();
    assert!(Arc::ptr_eq(&first, &models.get(&device, "en", Some(path)).unwrap()));
    // Two other models asked for at once by two jobs: each loads, each once.
    let large = common::root().join("tests/reference/data/wav2vec2/large_layer");
    let large = large.to_str().unwrap();
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| models.get(&device, "en", Some(large)).unwrap());
        let b = s.spawn(|| models.get(&device, "fr", Some(large)).unwrap());
        (a.join().unwrap(), b.join().unwrap())
    });
    assert!(Arc::ptr_eq(&a, &b), "one model, loaded once for both jobs");
    assert!(!Arc::ptr_eq(&a, &first));
}
