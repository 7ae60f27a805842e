//! `scribe::audio::kaldi_fbank` against torchaudio 2.8's `kaldi.fbank`
//! (tests/reference/make_kaldi_fbank_reference.py): CAM++'s front end (3D-Speaker's `FBank`) and
//! pyannote's WeSpeaker `compute_fbank` on crops of real recordings and synthetic edge cases, and an
//! option sweep (windows, energy, snip_edges, band edges, frame sizes, linear and magnitude
//! spectra).
//!
//! Each case has two references: torchaudio on the float32 waveform (`fbank.<case>`, what the models
//! are fed) and the same code on the float64 waveform (`fbank64.<case>`). Scribe computes frames in
//! f64, so it must be within [`MAX_ABS_DIFF_F64`] of the float64 run, and within [`MAX_ABS_DIFF`] of
//! the float32 output beyond that output's own float32 rounding error at the same value
//! (`|fbank - fbank64|`, up to ~3e-3 in a few low mel bins of loud frames). For `use_log_fbank=False`
//! the difference of the logs (the relative error) is compared. Run with `--nocapture` for each
//! case's errors.

mod common;

use std::collections::BTreeMap;

use safetensors::{Dtype, SafeTensors};
use scribe::audio::kaldi_fbank::{fbank, FbankOptions, WindowType, EPSILON};
use scribe::audio::load_audio;
use serde_json::Value;

/// Largest |Rust - torchaudio float32| allowed on a log mel value, beyond torchaudio's own float32
/// error there (|torchaudio float32 - torchaudio float64|).
const MAX_ABS_DIFF: f32 = 1e-3;
/// Largest |Rust - torchaudio float64| allowed on a log mel value: the same algorithm.
const MAX_ABS_DIFF_F64: f32 = 1e-4;

fn f32s(st: &SafeTensors, name: &str) -> (Vec<f32>, Vec<usize>) {
    let view = st.tensor(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(view.dtype(), Dtype::F32, "{name}");
    let data = view.data().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
    (data, view.shape().to_vec())
}

/// A preset, then the torchaudio keyword arguments the case passed, by their torchaudio names.
fn options(case: &Value) -> FbankOptions {
    let mut opts = match case["preset"].as_str() {
        Some("campplus") => FbankOptions::campplus(),
        Some("wespeaker") => FbankOptions::wespeaker(),
        Some(other) => panic!("unknown preset {other}"),
        None => FbankOptions::default(),
    };
    for (key, value) in case["options"].as_object().unwrap() {
        let float = || value.as_f64().unwrap_or_else(|| panic!("{key}: {value}"));
        let flag = || value.as_bool().unwrap_or_else(|| panic!("{key}: {value}"));
        match key.as_str() {
            "sample_frequency" => opts.sample_frequency = float(),
            "frame_length" => opts.frame_length = float(),
            "frame_shift" => opts.frame_shift = float(),
            "snip_edges" => opts.snip_edges = flag(),
            "dither" => opts.dither = float(),
            "remove_dc_offset" => opts.remove_dc_offset = flag(),
            "preemphasis_coefficient" => opts.preemphasis_coefficient = float(),
            "window_type" => opts.window_type = WindowType::from_name(value.as_str().unwrap()).unwrap(),
            "blackman_coeff" => opts.blackman_coeff = float(),
            "round_to_power_of_two" => opts.round_to_power_of_two = flag(),
            "num_mel_bins" => opts.num_mel_bins = value.as_u64().unwrap() as usize,
            "low_freq" => opts.low_freq = float(),
            "high_freq" => opts.high_freq = float(),
            "use_power" => opts.use_power = flag(),
            "use_log_fbank" => opts.use_log_fbank = flag(),
            "use_energy" => opts.use_energy = flag(),
            "htk_compat" => opts.htk_compat = flag(),
            "raw_energy" => opts.raw_energy = flag(),
            "energy_floor" => opts.energy_floor = float(),
            "subtract_mean" => opts.subtract_mean = flag(),
            other => panic!("option {other} is not mapped to FbankOptions"),
        }
    }
    opts
}

/// The case inputs: stored ones from the safetensors file, crops of ../shared recordings decoded
/// by Scribe (checked against the reference's checksum). None for a recording that is missing.
fn inputs(meta: &Value, st: &SafeTensors) -> BTreeMap<String, Option<Vec<f32>>> {
    let mut out = BTreeMap::new();
    for (name, input) in meta["inputs"].as_object().unwrap() {
        let samples = if let Some(tensor) = input["stored"].as_str() {
            Some(f32s(st, tensor).0)
        } else {
            let file = input["file"].as_str().unwrap();
            let path = common::speech(file);
            if path.is_file() {
                let audio = load_audio(&path).unwrap();
                let start = input["start"].as_u64().unwrap() as usize;
                let crop = audio[start..start + input["length"].as_u64().unwrap() as usize].to_vec();
                let sum: f64 = crop.iter().map(|&x| x as f64).sum();
                assert!(
                    (sum - input["sum"].as_f64().unwrap()).abs() < 1e-6,
                    "{file}: decoded samples differ (sum {sum})"
                );
                assert_eq!(crop[0] as f64, input["first"].as_f64().unwrap(), "{file}: first sample");
                assert_eq!(*crop.last().unwrap() as f64, input["last"].as_f64().unwrap(), "{file}: last sample");
                Some(crop)
            } else {
                common::cannot_run(&format!("{} is missing", path.display()));
                None
            }
        };
        out.insert(name.clone(), samples);
    }
    out
}

#[test]
fn kaldi_fbank_matches_torchaudio() {
    let dir = common::root().join("tests/reference/data/kaldi_fbank");
    let meta: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("cases.json")).unwrap()).unwrap();
    let bytes = std::fs::read(dir.join("fbank.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let inputs = inputs(&meta, &st);
    // Largest errors per option set (the case name before its first dot: campplus, wespeaker, ...):
    // against torchaudio float32, against its float64 run, and float32 against float64.
    let mut worst: BTreeMap<String, [f32; 3]> = BTreeMap::new();
    let mut checked = 0;
    for case in meta["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let Some(samples) = &inputs[case["input"].as_str().unwrap()] else { continue };
        let opts = options(case);
        let (expected, shape) = f32s(&st, &format!("fbank.{name}"));
        let (expected64, shape64) = f32s(&st, &format!("fbank64.{name}"));
        assert_eq!(shape, shape64, "{name}");
        let (got, frames) = fbank(samples, &opts).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!([frames, opts.dim()], shape[..], "{name}: [frames, dim]");
        assert_eq!(got.len(), expected.len(), "{name}");
        let log = |x: f32| if opts.use_log_fbank { x } else { (x as f64).max(EPSILON).ln() as f32 };
        let at = |i: usize| format!("frame {} column {}", i / shape[1], i % shape[1]);
        let mut max = [0.0f32; 3];
        for (i, ((&g, &e), &e64)) in got.iter().zip(&expected).zip(&expected64).enumerate() {
            let (g, e, e64) = (log(g), log(e), log(e64));
            assert!(g.is_finite(), "{name}: {g} at {}", at(i));
            let diffs = [(g - e).abs(), (g - e64).abs(), (e - e64).abs()];
            assert!(
                diffs[0] <= MAX_ABS_DIFF + diffs[2],
                "{name}: {g} vs torchaudio {e} (float64 run {e64}) at {}",
                at(i)
            );
            assert!(diffs[1] <= MAX_ABS_DIFF_F64, "{name}: {g} vs torchaudio float64 {e64} at {}", at(i));
            max.iter_mut().zip(diffs).for_each(|(m, d)| *m = m.max(d));
        }
        println!(
            "{name:38} [{frames:3} x {:2}] max |diff| vs torchaudio {:.1e}, vs its float64 run {:.1e} \
             (torchaudio float32 vs float64 {:.1e})",
            shape[1], max[0], max[1], max[2]
        );
        let group = worst.entry(name.split('.').next().unwrap().to_owned()).or_default();
        group.iter_mut().zip(max).for_each(|(w, m)| *w = w.max(m));
        checked += 1;
    }
    let mut overall = [0.0f32; 3];
    for (group, max) in &worst {
        println!(
            "max {group:22} vs torchaudio {:.1e}, vs float64 {:.1e} (torchaudio float32 vs float64 {:.1e})",
            max[0], max[1], max[2]
        );
        overall.iter_mut().zip(max).for_each(|(o, m)| *o = o.max(*m));
    }
    println!(
        "{checked} cases: max |diff| vs torchaudio {:.1e} (tolerance {MAX_ABS_DIFF:.0e} + its float32 error, \
         itself up to {:.1e}), vs its float64 run {:.1e} (tolerance {MAX_ABS_DIFF_F64:.0e})",
        overall[0], overall[2], overall[1]
    );
    assert!(checked > 0);
}

/// torchaudio asserts `window_size <= len(waveform)`: a shorter input is an error here too.
#[test]
fn inputs_shorter_than_one_frame_are_errors() {
    for opts in [FbankOptions::campplus(), FbankOptions::wespeaker()] {
        assert!(fbank(&[0.0; 399], &opts).is_err());
        let (data, frames) = fbank(&[0.0; 400], &opts).unwrap();
        assert_eq!((frames, data.len()), (1, 80));
    }
}
