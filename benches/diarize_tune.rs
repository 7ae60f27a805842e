//! The diarization's clustering threshold swept on the development set (benches/diarize:
//! `make_devset.sh` writes `.cache/diarize-devset/`) and on ../shared/data/speech/two_speakers.wav:
//! every file is segmented and embedded once, then clustered at each threshold and scored
//! (pyannote.metrics' DER, collar 0 and 0.5, overlap scored). Prints a markdown table of the
//! total DER and the files whose speaker count is right per threshold, then the per-file table
//! at the best one; the stage's time per step is printed too.
//!
//!     cargo bench --bench diarize_tune [-- --thresholds 0.5,0.55,0.6 --model DIR --shared-trunk true
//!                                        --segmentation-compute-type float32]
//!
//! `cargo test --all-targets` runs this file without `--bench`: the development set is built
//! locally and never committed, so that run scores two_speakers.wav alone at the stage's
//! threshold (a smoke run of the bench's code, not a measurement).

use std::path::{Path, PathBuf};
use std::time::Instant;

use scribe::audio::{Audio, AudioOptions};
use scribe::backend::Device;
use scribe::diarize::der::{diarization_error_rate, DerComponents, DerOptions};
use scribe::diarize::diarizer::{Embedded, SpeakerBounds};
use scribe::diarize::rttm;
use scribe::pipeline::diarize_models::{load_with, ComputeTypes, CAMPPLUS_SHARED_TRUNK, CAMPPLUS_THRESHOLD};
use scribe::Cancel;

const DEFAULT_THRESHOLDS: [f64; 9] = [0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.7045654963945799, 0.75, 0.8];
/// pyannote's collar is the total width: 0.5 is NIST's ±0.25 s.
const COLLARS: [f64; 2] = [0.0, 0.5];

struct File {
    name: String,
    reference: Vec<rttm::Turn>,
    speakers: usize,
    embedded: Embedded,
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

fn main() -> anyhow::Result<()> {
    scribe::allocator::keep_large_blocks();
    let args: Vec<String> = std::env::args().collect();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this file without it.
    let measuring = args.iter().any(|a| a == "--bench");
    let thresholds: Vec<f64> = match arg(&args, "--thresholds") {
        Some(t) => t.split(',').map(|v| v.trim().parse()).collect::<Result<_, _>>()?,
        None if measuring => DEFAULT_THRESHOLDS.to_vec(),
        None => vec![CAMPPLUS_THRESHOLD],
    };
    let models = arg(&args, "--model").map(PathBuf::from).unwrap_or_else(|| root.join("models"));
    let dev = Device::cpu();
    let shared = match arg(&args, "--shared-trunk").as_deref() {
        None => CAMPPLUS_SHARED_TRUNK,
        Some(v) => v == "true",
    };
    let compute_types = ComputeTypes {
        segmentation: arg(&args, "--segmentation-compute-type").unwrap_or_else(|| "default".into()),
        embedding: arg(&args, "--embedding-compute-type").unwrap_or_else(|| "default".into()),
    };
    let diarizer = load_with(&dev, &models, shared, &compute_types)?;
    println!("CAM++ trunk {}", if shared { "shared by overlapping windows" } else { "once per window" });
    println!(
        "segmentation compute_type={}, embedding compute_type={}\n",
        diarizer.segmentation.compute_type(&dev),
        diarizer.embedding.compute_type(&dev)
    );
    let devset = root.join(".cache/diarize-devset");
    let manifest: serde_json::Value = if measuring {
        serde_json::from_str(
            &std::fs::read_to_string(devset.join("manifest.json"))
                .map_err(|e| anyhow::anyhow!("{e}: run benches/diarize/make_devset.sh first"))?,
        )?
    } else {
        println!("not run with --bench: two_speakers.wav alone, at the stage's threshold\n");
        serde_json::json!({ "files": [] })
    };
    let mut inputs: Vec<(String, PathBuf, PathBuf, usize)> = Vec::new();
    for f in manifest["files"].as_array().into_iter().flatten() {
        let wav = f["file"].as_str().unwrap_or_default();
        let rttm = f["rttm"].as_str().unwrap_or_default();
        inputs.push((
            wav.into(),
            devset.join(wav),
            devset.join(rttm),
            f["num_speakers"].as_u64().unwrap_or(0) as usize,
        ));
    }
    let speech = root.join("../shared/data/speech");
    inputs.push(("two_speakers.wav".into(), speech.join("two_speakers.wav"), speech.join("two_speakers.rttm"), 2));

    let (mut audio_s, mut segment_embed_s) = (0.0, 0.0);
    let mut files = Vec::new();
    for (name, wav, rttm_path, speakers) in inputs {
        let audio = Audio::decode(Path::new(&wav), &AudioOptions::default(), &Cancel::new(), &mut |_| {})?;
        audio_s += audio.duration();
        let started = Instant::now();
        let embedded = diarizer.embed(&dev, &mut &audio, &Cancel::new(), &mut |_, _, _| {})?;
        segment_embed_s += started.elapsed().as_secs_f64();
        eprintln!(
            "{name}: {:.1} s of audio, segmented and embedded in {:.1} s",
            audio.duration(),
            started.elapsed().as_secs_f64()
        );
        files.push(File { name, reference: rttm::read(&rttm_path)?, speakers, embedded });
    }
    println!(
        "{} files, {audio_s:.0} s of audio; segmentation + embeddings {segment_embed_s:.1} s (RTF {:.3})\n",
        files.len(),
        segment_embed_s / audio_s
    );
    println!("| threshold | DER collar 0 | DER collar 0.5 (±0.25 s) | miss / FA / confusion (collar 0) | right speaker count | clustering s |");
    println!("|---|---|---|---|---|---|");
    let mut best: Option<(f64, f64)> = None;
    for &threshold in &thresholds {
        let started = Instant::now();
        let mut totals = [DerComponents::default(), DerComponents::default()];
        let mut right = 0;
        for f in &files {
            let d = diarizer
                .finish(f.embedded.clone(), SpeakerBounds { threshold: Some(threshold), ..Default::default() })?;
            right += usize::from(d.speakers.len() == f.speakers);
            for (total, collar) in totals.iter_mut().zip(COLLARS) {
                let r = diarization_error_rate(&f.reference, &d.turns, &DerOptions { collar, ..Default::default() });
                total.add(&r.components);
            }
        }
        let c = &totals[0];
        println!(
            "| {threshold} | {:.2} % | {:.2} % | {:.2} / {:.2} / {:.2} % | {right} of {} | {:.2} |",
            100.0 * c.der(),
            100.0 * totals[1].der(),
            100.0 * c.missed / c.total,
            100.0 * c.false_alarm / c.total,
            100.0 * c.confusion / c.total,
            files.len(),
            started.elapsed().as_secs_f64()
        );
        if best.is_none_or(|(_, der)| c.der() < der) {
            best = Some((threshold, c.der()));
        }
    }
    let Some((threshold, _)) = best else { return Ok(()) };
    println!("\nPer file at threshold {threshold}:\n");
    println!("| file | DER collar 0 | DER collar 0.5 | miss / FA / confusion | speakers true / found |");
    println!("|---|---|---|---|---|");
    for f in &files {
        let d =
            diarizer.finish(f.embedded.clone(), SpeakerBounds { threshold: Some(threshold), ..Default::default() })?;
        let r: Vec<_> = COLLARS
            .iter()
            .map(|&collar| diarization_error_rate(&f.reference, &d.turns, &DerOptions { collar, ..Default::default() }))
            .collect();
        let c = &r[0].components;
        println!(
            "| {} | {:.2} % | {:.2} % | {:.2} / {:.2} / {:.2} % | {} / {} |",
            f.name,
            100.0 * c.der(),
            100.0 * r[1].components.der(),
            100.0 * c.missed / c.total,
            100.0 * c.false_alarm / c.total,
            100.0 * c.confusion / c.total,
            f.speakers,
            d.speakers.len()
        );
    }
    Ok(())
}
