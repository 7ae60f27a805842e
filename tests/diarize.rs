//! The diarization stage end to end on real weights: the default models (segmentation-3.0 +
//! CAM++) on ../shared/data/speech/two_speakers.wav scored against its reference RTTM with
//! pyannote.metrics' DER; pyannote pipeline directories (`config.yaml` naming a segmentation model,
//! an embedding model and a clustering) loaded and run; a PLDA that does not fit the embedding
//! model refused at load.

mod common;

use std::path::Path;

use common::{model_dir, root, speech};
use scribe::audio::{Audio, AudioOptions};
use scribe::backend::Device;
use scribe::diarize::der::{diarization_error_rate, DerOptions};
use scribe::diarize::diarizer::SpeakerBounds;
use scribe::diarize::rttm;
use scribe::pipeline::diarize_models::{load, ComputeTypes, DiarizeModels};
use scribe::Cancel;

/// The DER (collar 0, overlap scored) the default models must stay under on two_speakers.wav:
/// measured 5.2 % at the default threshold (benches/diarize_tune.rs); a regression past 10 %
/// fails.
const MAX_DER_TWO_SPEAKERS: f64 = 0.10;

/// How far bf16 LSTMs may move that DER (measured 2026-12-05: 5.21 % float32, 5.14 % bf16).
const BF16_DER_DELTA: f64 = 0.005;

fn two_speakers() -> Vec<f32> {
    let audio =
        Audio::decode(&speech("two_speakers.wav"), &AudioOptions::default(), &Cancel::new(), &mut |_| {}).unwrap();
    audio.span(0, audio.len())
}

#[test]
fn the_default_models_find_both_speakers_of_the_dialogue() {
    let (Some(_), Some(_)) = (model_dir("segmentation-3.0"), model_dir("campplus")) else { return };
    let dev = Device::cpu();
    let diarizer = load(&dev, &root().join("models")).unwrap();
    let d = diarizer
        .diarize(&dev, &mut two_speakers().as_slice(), SpeakerBounds::default(), &Cancel::new(), &mut |_, _, _| {})
        .unwrap();
    let reference = rttm::read(&speech("two_speakers.rttm")).unwrap();
    let r = diarization_error_rate(&reference, &d.turns, &DerOptions::default());
    let c = &r.components;
    eprintln!(
        "DER {:.2} % (miss {:.2}, false alarm {:.2}, confusion {:.2} s of {:.2} s), {} speakers",
        100.0 * c.der(),
        c.missed,
        c.false_alarm,
        c.confusion,
        c.total,
        d.speakers.len()
    );
    assert_eq!(d.speakers.len(), 2, "{:?}", d.turns);
    assert!(c.der() <= MAX_DER_TWO_SPEAKERS, "DER {}", c.der());
    // Centroids are the embedding model's size; turns are in time order and named.
    assert!(d.speakers.iter().all(|(_, centroid)| centroid.len() == 192));
    assert!(d.turns.windows(2).all(|p| p[0].start <= p[1].start));
    // The threshold decides: a much lower one splits the two voices further.
    let embedded = diarizer.embed(&dev, &mut two_speakers().as_slice(), &Cancel::new(), &mut |_, _, _| {}).unwrap();
    let split = diarizer.finish(embedded, SpeakerBounds { threshold: Some(0.3), ..Default::default() }).unwrap();
    assert!(split.speakers.len() > 2, "{:?}", split.speakers.iter().map(|s| &s.0).collect::<Vec<_>>());
    // Asking for one speaker gives one.
    let one = diarizer
        .diarize(
            &dev,
            &mut two_speakers().as_slice(),
            SpeakerBounds { max_speakers: Some(1), ..Default::default() },
            &Cancel::new(),
            &mut |_, _, _| {},
        )
        .unwrap();
    assert_eq!(one.speakers.len(), 1);
}

/// The segmentation's LSTMs and CAM++'s convs in bf16 (the defaults where the CPU has AVX-512
/// BF16), each alone and both, diarize the dialogue as float32 does: the same speakers, DER
/// within [`BF16_DER_DELTA`].
#[test]
fn bfloat16_models_diarize_the_dialogue_as_float32_does() {
    let (Some(_), Some(_)) = (model_dir("segmentation-3.0"), model_dir("campplus")) else { return };
    let dev = Device::cpu();
    if !common::bf16_products() {
        eprintln!("no bf16 products on this CPU: nothing to compare");
        return;
    }
    let reference = rttm::read(&speech("two_speakers.rttm")).unwrap();
    let mut der = Vec::new();
    for (segmentation, embedding) in
        [("float32", "float32"), ("bfloat16", "float32"), ("float32", "bfloat16"), ("bfloat16", "bfloat16")]
    {
        let types = ComputeTypes { segmentation: segmentation.into(), embedding: embedding.into() };
        let diarizer = scribe::pipeline::diarize_models::load_with(&dev, &root().join("models"), true, &types).unwrap();
        assert_eq!(diarizer.segmentation.compute_type(&dev), segmentation);
        assert_eq!(diarizer.embedding.compute_type(&dev), embedding);
        let compute_type = format!("segmentation {segmentation}, embedding {embedding}");
        let d = diarizer
            .diarize(&dev, &mut two_speakers().as_slice(), SpeakerBounds::default(), &Cancel::new(), &mut |_, _, _| {})
            .unwrap();
        let c = diarization_error_rate(&reference, &d.turns, &DerOptions::default()).components;
        eprintln!("{compute_type}: DER {:.2} %, {} speakers", 100.0 * c.der(), d.speakers.len());
        assert_eq!(d.speakers.len(), 2, "{compute_type}");
        der.push(c.der());
    }
    for (i, d) in der.iter().enumerate().skip(1) {
        assert!((der[0] - d).abs() <= BF16_DER_DELTA, "DER float32 {} vs bfloat16 case {i}: {d}", der[0]);
    }
}

#[test]
fn silence_has_no_speakers_and_a_cancel_stops_the_stage() {
    let (Some(_), Some(_)) = (model_dir("segmentation-3.0"), model_dir("campplus")) else { return };
    let dev = Device::cpu();
    let diarizer = load(&dev, &root().join("models")).unwrap();
    let d = diarizer
        .diarize(
            &dev,
            &mut vec![0.0; 16_000 * 12].as_slice(),
            SpeakerBounds::default(),
            &Cancel::new(),
            &mut |_, _, _| {},
        )
        .unwrap();
    assert!(d.turns.is_empty() && d.speakers.is_empty(), "{d:?}");
    let cancel = Cancel::new();
    cancel.cancel();
    let r =
        diarizer.diarize(&dev, &mut two_speakers().as_slice(), SpeakerBounds::default(), &cancel, &mut |_, _, _| {});
    assert!(matches!(r, Err(scribe::Error::Cancelled)), "{:?}", r.map(|d| d.turns));
}

/// A pyannote pipeline directory: `config.yaml` naming segmentation-3.0's `pytorch_model.bin`
/// and a (small, random) WeSpeaker ResNet34 checkpoint by relative paths.
fn pipeline_dir(dir: &Path, clustering: &str, plda: Option<&Path>) {
    let seg = dir.join("segmentation");
    std::fs::create_dir_all(&seg).unwrap();
    std::fs::copy(root().join("models/segmentation-3.0/pytorch_model.bin"), seg.join("pytorch_model.bin")).unwrap();
    let emb = dir.join("embedding");
    std::fs::create_dir_all(&emb).unwrap();
    std::fs::copy(root().join("tests/reference/data/wespeaker/pytorch_model.bin"), emb.join("pytorch_model.bin"))
        .unwrap();
    let plda_line = plda.map(|p| format!("    plda: {}\n", p.display())).unwrap_or_default();
    let config = format!(
        "pipeline:\n  name: pyannote.audio.pipelines.SpeakerDiarization\n  params:\n    clustering: {clustering}\n    \
         embedding: embedding\n    embedding_batch_size: 32\n    embedding_exclude_overlap: true\n{plda_line}    \
         segmentation: $model/segmentation\n    segmentation_batch_size: 32\nparams:\n  clustering:\n    \
         method: centroid\n    min_cluster_size: 12\n    threshold: 0.5\n  segmentation:\n    min_duration_off: 0.0\n"
    );
    std::fs::write(dir.join("config.yaml"), config).unwrap();
}

#[test]
fn a_pyannote_pipeline_directory_is_loaded_and_run() {
    let Some(_) = model_dir("segmentation-3.0") else { return };
    let tmp = tempfile::tempdir().unwrap();
    pipeline_dir(tmp.path(), "AgglomerativeClustering", None);
    let cache = tempfile::tempdir().unwrap();
    let hub = scribe::hub::HubConfig::new("http://127.0.0.1:9", cache.path(), None, true);
    let models = DiarizeModels::new(root().join("models"), hub);
    let dev = Device::cpu();
    let name = tmp.path().to_str().unwrap();
    let (key, diarizer) = models.get(&dev, Some(name)).unwrap();
    assert_eq!(key, name);
    assert_eq!(diarizer.embedding.name(), "WeSpeaker ResNet34");
    assert_eq!(diarizer.clustering.threshold(), 0.5);
    // A random model gives meaningless speakers, but the whole stage runs through it.
    let d = diarizer
        .diarize(&dev, &mut two_speakers().as_slice(), SpeakerBounds::default(), &Cancel::new(), &mut |_, _, _| {})
        .unwrap();
    assert!(!d.turns.is_empty());
    assert!(d.speakers.iter().all(|(_, c)| c.len() == diarizer.embedding.dimension()));
    // Loaded once: the second call shares it.
    let (_, again) = models.get(&dev, Some(name)).unwrap();
    assert!(std::sync::Arc::ptr_eq(&diarizer, &again));
}

#[test]
fn a_plda_that_does_not_fit_the_embeddings_and_unknown_clusterings_are_refused() {
    let Some(_) = model_dir("segmentation-3.0") else { return };
    let cache = tempfile::tempdir().unwrap();
    let hub = scribe::hub::HubConfig::new("http://127.0.0.1:9", cache.path(), None, true);
    let dev = Device::cpu();
    // community-1's clustering with a PLDA for 256-d x-vectors, and a 32-d embedding model.
    let vbx = tempfile::tempdir().unwrap();
    pipeline_dir(vbx.path(), "VBxClustering", Some(&root().join("tests/reference/data/vbx")));
    let e = DiarizeModels::new(root().join("models"), hub.clone())
        .get(&dev, vbx.path().to_str())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("256-d") && e.contains("32-d"), "{e}");
    let other = tempfile::tempdir().unwrap();
    pipeline_dir(other.path(), "SpectralClustering", None);
    let e = DiarizeModels::new(root().join("models"), hub).get(&dev, other.path().to_str()).err().unwrap().to_string();
    assert!(e.contains("SpectralClustering"), "{e}");
}

/// CAM++'s shared trunk (the default) against one forward per window on real speech: the same
/// speakers on two_speakers.wav, and each active pair's embedding close to its per-window one.
#[test]
fn the_shared_campplus_trunk_embeds_like_one_forward_per_window() {
    let (Some(_), Some(_)) = (model_dir("segmentation-3.0"), model_dir("campplus")) else { return };
    let dev = Device::cpu();
    let audio = two_speakers();
    let shared =
        scribe::pipeline::diarize_models::load_with(&dev, &root().join("models"), true, &ComputeTypes::default())
            .unwrap();
    let alone =
        scribe::pipeline::diarize_models::load_with(&dev, &root().join("models"), false, &ComputeTypes::default())
            .unwrap();
    let a = shared.embed(&dev, &mut audio.as_slice(), &Cancel::new(), &mut |_, _, _| {}).unwrap();
    let b = alone.embed(&dev, &mut audio.as_slice(), &Cancel::new(), &mut |_, _, _| {}).unwrap();
    assert_eq!(a.local.binarized, b.local.binarized);
    let active = scribe::diarize::clustering::active_pairs(&a.local);
    let mut worst = 1.0f64;
    for (i, _) in active.iter().enumerate().filter(|(_, &on)| on) {
        let (x, y) = (&a.embeddings[i * 192..(i + 1) * 192], &b.embeddings[i * 192..(i + 1) * 192]);
        let dot: f64 = x.iter().zip(y).map(|(p, q)| *p as f64 * *q as f64).sum();
        let norm = |v: &[f32]| v.iter().map(|p| (*p as f64).powi(2)).sum::<f64>().sqrt();
        worst = worst.min(dot / (norm(x) * norm(y)));
    }
    eprintln!("lowest cosine between shared-trunk and per-window embeddings of an active pair: {worst:.4}");
    assert!(worst > 0.8, "{worst}");
    let (da, db) =
        (shared.finish(a, SpeakerBounds::default()).unwrap(), alone.finish(b, SpeakerBounds::default()).unwrap());
    assert_eq!(da.speakers.len(), db.speakers.len());
}

/// A slice that records the longest stretch read from it; `to_the_end` gives every read up to
/// the recording's end, whatever was asked for.
struct Spy<'a> {
    samples: &'a [f32],
    longest: usize,
    reads: usize,
    to_the_end: bool,
}

impl scribe::audio::SampleSource for Spy<'_> {
    fn len(&self) -> usize {
        self.samples.len()
    }

    fn samples(&mut self, start: usize, end: usize) -> scribe::Result<Vec<f32>> {
        let end = if self.to_the_end { self.samples.len() } else { end.min(self.samples.len()) };
        self.longest = self.longest.max(end - start.min(end));
        self.reads += 1;
        (&mut &*self.samples).samples(start, end)
    }

    fn release_before(&mut self, _start: usize) {}
}

/// The stage reads a long recording a batch of windows at a time, never whole: on 90 s, no read
/// is longer than a batch's stretch (32 windows 1 s apart plus a window and CAM++'s shared-trunk
/// margin: under 52 s). Each read asks for enough: reads given everything up to the end of the
/// recording give the same local speakers and embeddings.
#[test]
fn a_long_recording_is_read_a_batch_of_windows_at_a_time() {
    let (Some(_), Some(_)) = (model_dir("segmentation-3.0"), model_dir("campplus")) else { return };
    let dev = Device::cpu();
    let diarizer = load(&dev, &root().join("models")).unwrap();
    let one = two_speakers();
    let long: Vec<f32> = one.iter().copied().cycle().take(90 * 16_000).collect();
    let mut spy = Spy { samples: &long, longest: 0, reads: 0, to_the_end: false };
    let streamed = diarizer.embed(&dev, &mut spy, &Cancel::new(), &mut |_, _, _| {}).unwrap();
    eprintln!("{} reads, the longest {:.1} s", spy.reads, spy.longest as f64 / 16_000.0);
    assert!(spy.reads >= 4, "{} reads", spy.reads);
    assert!(spy.longest < 52 * 16_000, "{} samples in one read", spy.longest);
    let mut generous = Spy { samples: &long, longest: 0, reads: 0, to_the_end: true };
    let whole = diarizer.embed(&dev, &mut generous, &Cancel::new(), &mut |_, _, _| {}).unwrap();
    assert_eq!(streamed.local, whole.local);
    assert_eq!(streamed.count, whole.count);
    assert_eq!(streamed.embeddings, whole.embeddings);
}

/// Stage 6's turn check with the real CAM++ on two_speakers.wav: the reference turns stand for
/// the diarization's, one of speaker91's turns is put in speaker90's cluster (a confusion the
/// diarization makes); both speakers are enrolled with turns of their own (anna, ben) and
/// speaker90's cluster is named anna. The stray stretch sounds like ben (0.90 against anna's
/// 0.65) and loses the name; speaker90's own stretches (0.55-0.79 for anna) keep it.
#[test]
fn a_stretch_of_another_voice_in_a_named_cluster_loses_the_name() {
    use scribe::diarize::assign::SpeakerTurn;
    use scribe::pipeline::speaker_models::turn_threshold;
    use scribe::pipeline::speaker_names::check_turns;
    use scribe::verify::enrol::enrol;
    use scribe::verify::naming::{Decision, SpeakerMatch};
    use scribe::verify::turn_check::TurnDecision;

    let (Some(_), Some(_)) = (model_dir("segmentation-3.0"), model_dir("campplus")) else { return };
    let dev = Device::cpu();
    let diarizer = load(&dev, &root().join("models")).unwrap();
    let audio =
        Audio::decode(&speech("two_speakers.wav"), &AudioOptions::default(), &Cancel::new(), &mut |_| {}).unwrap();
    let at = |s: f64| (s * 16_000.0) as usize;
    let own = [(8.32, 10.02), (10.57, 14.49), (27.85, 30.0)];
    let stray = (21.78, 27.0);
    let mut turns: Vec<SpeakerTurn> = own.iter().map(|&(s, e)| SpeakerTurn::new(s, e, "SPEAKER_00")).collect();
    turns.push(SpeakerTurn::new(stray.0, stray.1, "SPEAKER_00"));
    turns.push(SpeakerTurn::new(14.49, 17.92, "SPEAKER_01"));
    let sample = diarizer.embedding.embed_utterance(&dev, &audio.span(at(18.05), at(21.49))).unwrap();
    let ben = diarizer.embedding.embed_utterance(&dev, &audio.span(at(14.49), at(17.92))).unwrap();
    let voiceprints = enrol(&[("anna".to_string(), sample), ("ben".to_string(), ben)]);
    let matches = [
        SpeakerMatch {
            label: "SPEAKER_00".into(),
            name: Some("anna".into()),
            best: None,
            runner_up: None,
            decision: Decision::Named,
        },
        SpeakerMatch {
            label: "SPEAKER_01".into(),
            name: None,
            best: None,
            runner_up: None,
            decision: Decision::BelowThreshold,
        },
    ];
    let threshold = turn_threshold(diarizer.embedding.name());
    let checks =
        check_turns(&*diarizer.embedding, &dev, &audio, &turns, &matches, &voiceprints, threshold, &Cancel::new())
            .unwrap();
    eprintln!("{checks:#?}");
    assert_eq!(checks.len(), 1, "{checks:#?}");
    let (stretch, check) = &checks[0];
    assert_eq!((stretch.label.as_str(), stretch.start, stretch.end), ("SPEAKER_00", stray.0, stray.1));
    assert_eq!(check.decision, TurnDecision::CloserToAnother, "{check:?}");
    assert_eq!(check.best_other.as_ref().map(|b| b.0.as_str()), Some("ben"));
}
