//! pyannote's reconstruction of a diarization from clustered local speakers, in Rust against
//! pyannote.audio 4.0.7's own code (tests/reference/make_reconstruction_reference.py): the
//! discrete diarization and the turns with their SPEAKER_xx labels, regular (count capped at
//! `max_speakers`) and exclusive (capped at 1), on real segmentation-3.0 local speakers with
//! seeded random cluster assignments.

mod common;

use common::root;
use scribe::diarize::reconstruct::{drop_inactive, reconstruct, speaker_labels, turns};
use scribe::models::pyannote::local_speakers::LocalSpeakers;
use scribe::models::pyannote::receptive_field::FrameWindow;
use scribe::weights::safetensors_store::SafetensorsStore;
use scribe::weights::WeightStore;
use serde_json::Value;

/// Turn boundaries are frame middles computed the same way: equal to float rounding.
const TIME_TOLERANCE: f64 = 1e-9;

fn json(path: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(root().join(path)).unwrap()).unwrap()
}

fn bytes(store: &SafetensorsStore, name: &str) -> (Vec<u8>, Vec<usize>) {
    let v = store.view(name).unwrap_or_else(|| panic!("no {name}"));
    (v.bytes.to_vec(), v.shape.to_vec())
}

fn local_speakers(seg: &SafetensorsStore, manifest: &Value, name: &str) -> LocalSpeakers {
    let m = &manifest["recordings"][name];
    let (binarized, shape) = bytes(seg, &format!("{name}.binarized"));
    let rf = &m["receptive_field"];
    LocalSpeakers {
        chunk_duration: m["chunks"]["duration"].as_f64().unwrap(),
        chunk_step: m["chunks"]["step"].as_f64().unwrap(),
        chunks: shape[0],
        frames_per_chunk: shape[1],
        speakers: shape[2],
        binarized,
        frames: FrameWindow {
            start: rf["start"].as_f64().unwrap(),
            duration: rf["duration"].as_f64().unwrap(),
            step: rf["step"].as_f64().unwrap(),
        },
    }
}

#[test]
fn reconstruction_and_turns_match_pyannote() {
    let seg = SafetensorsStore::open(&root().join("tests/reference/data/segmentation/reference.safetensors")).unwrap();
    let seg_manifest = json("tests/reference/data/segmentation/manifest.json");
    let rec =
        SafetensorsStore::open(&root().join("tests/reference/data/reconstruction/reference.safetensors")).unwrap();
    let cases = json("tests/reference/data/reconstruction/cases.json");
    let (mut checked, mut ties) = (0, 0);
    for case in cases["cases"].as_array().unwrap() {
        let key = case["key"].as_str().unwrap();
        let local = local_speakers(&seg, &seg_manifest, case["recording"].as_str().unwrap());
        let (hard, _) = bytes(&rec, &format!("{key}.hard_clusters"));
        let reference_hard: Vec<i32> = hard.iter().map(|&b| b as i8 as i32).collect();
        // The reference assigned the inactive ones −2 itself: the rule must agree.
        let mut ours = reference_hard.iter().map(|&k| if k < 0 { 0 } else { k }).collect::<Vec<_>>();
        drop_inactive(&local, &mut ours);
        assert_eq!(ours, reference_hard, "{key}: inactive local speakers");
        let (count, _) = bytes(&seg, &format!("{}.count", case["recording"].as_str().unwrap()));
        let max_speakers = case["max_speakers"].as_u64().map_or(u8::MAX, |m| m as u8);
        let min_duration_off = case["min_duration_off"].as_f64().unwrap();
        for (variant, cap) in [("regular", max_speakers), ("exclusive", 1)] {
            let capped: Vec<u8> = count.iter().map(|&c| c.min(cap)).collect();
            let d = reconstruct(&local, &ours, &capped);
            let (want, shape) = bytes(&rec, &format!("{key}.{variant}.discrete"));
            assert_eq!([d.num_frames, d.clusters], [shape[0], shape[1]], "{key} {variant}");
            // Frames may differ only where pyannote's choice fell between clusters of equal
            // activity (numpy's sort order for ties depends on the machine).
            let mut tied = 0;
            for t in 0..d.num_frames {
                let row = t * d.clusters..(t + 1) * d.clusters;
                if d.on[row.clone()] == want[row.clone()] {
                    continue;
                }
                let activity = &d.activity[row.clone()];
                let on_value = |on: &[u8]| {
                    let mut v: Vec<f32> = on.iter().zip(activity).filter(|(o, _)| **o == 1).map(|(_, a)| *a).collect();
                    v.sort_by(f32::total_cmp);
                    v
                };
                assert_eq!(
                    on_value(&d.on[row.clone()]),
                    on_value(&want[row.clone()]),
                    "{key} {variant}: frame {t}, not a tie"
                );
                tied += 1;
            }
            if tied > 0 {
                ties += 1;
                continue;
            }
            let got = turns(&d, min_duration_off);
            let labels = speaker_labels(&got, d.clusters);
            let want_turns = case[variant]["turns"].as_array().unwrap();
            assert_eq!(got.len(), want_turns.len(), "{key} {variant}: {got:?}");
            for (t, w) in got.iter().zip(want_turns) {
                let w = w.as_array().unwrap();
                assert!((t.start - w[0].as_f64().unwrap()).abs() < TIME_TOLERANCE, "{key} {variant}: {t:?} vs {w:?}");
                assert!((t.end - w[1].as_f64().unwrap()).abs() < TIME_TOLERANCE, "{key} {variant}: {t:?} vs {w:?}");
                assert_eq!(t.cluster as u64, w[3].as_u64().unwrap(), "{key} {variant}");
                assert_eq!(labels[t.cluster].as_deref(), w[2].as_str(), "{key} {variant}");
            }
            checked += 1;
        }
    }
    eprintln!("{checked} reconstructions identical to pyannote's, {ties} differing only at ties");
    assert_eq!(checked + ties, 72);
    assert!(checked >= 48, "too few cases without ties to compare the turns: {checked}");
}
