//! Speaker names on the diarization's development dialogues (benches/diarize/make_devset.sh):
//! each dialogue is diarized by the default models, two or three of its speakers are enrolled
//! (a two-speaker dialogue: both; more: all but the last of its list, who stays unenrolled) with
//! the enrolment samples of benches/verify/make_trialset.sh, and the diarized speakers are named
//! as the speaker-names stage names them (the centroids, then each named speaker's stretches
//! checked against its name). Scored on a 10 ms grid over the reference's single-speaker time
//! (the exclusive turns carry the names; an unconfirmed stretch keeps its label):
//! - right: an enrolled speaker's time labelled with its name;
//! - wrong: any time labelled with another enrolled name (target 0 %), and the part of it
//!   farther than pyannote's collar (0.25 s) from a reference turn's start or end;
//! - unnamed: an enrolled speaker's time labelled SPEAKER_xx, or with no speaker;
//! - unenrolled named: an unenrolled speaker's time labelled with an enrolled name (target 0 %).
//!
//!     cargo bench --bench verify_naming [-- --threshold 0.75]
//!
//! `cargo test --all-targets` runs this without `--bench`: two_speakers.wav alone, each
//! reference speaker enrolled with one of its own turns (a smoke run, not a measurement).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use scribe::audio::{Audio, AudioOptions};
use scribe::backend::Device;
use scribe::diarize::assign::SpeakerTurn;
use scribe::diarize::diarizer::SpeakerBounds;
use scribe::diarize::rttm;
use scribe::pipeline::diarize_models::load;
use scribe::pipeline::speaker_models::{turn_threshold, verify_threshold};
use scribe::pipeline::speaker_names::{check_turns, speech_of};
use scribe::pipeline::Models;
use scribe::verify::enrol::enrol;
use scribe::verify::naming::{name_speakers, NamingPolicy, NAME_MARGIN};
use scribe::Cancel;

/// The scoring grid, seconds.
const STEP: f64 = 0.01;
/// pyannote's DER collar is 0.5 s in all, 0.25 s each side of a reference boundary: wrong time
/// that near a turn change is the diarization's boundary, not a wrong voice.
const COLLAR: f64 = 0.25;

struct Case {
    name: String,
    wav: PathBuf,
    reference: Vec<rttm::Turn>,
    /// (speaker, sample) enrolled.
    enrolled: Vec<(String, Vec<f32>)>,
}

#[derive(Default, Clone, Copy)]
struct Score {
    enrolled_s: f64,
    right: f64,
    wrong: f64,
    unnamed: f64,
    unenrolled_s: f64,
    unenrolled_named: f64,
    /// Wrong time farther than [`COLLAR`] from every reference turn's start and end.
    wrong_beyond_collar: f64,
}

fn decode(path: &Path) -> anyhow::Result<Audio> {
    Ok(Audio::decode(path, &AudioOptions::default(), &Cancel::new(), &mut |_| {})?)
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

fn main() -> anyhow::Result<()> {
    scribe::allocator::keep_large_blocks();
    let args: Vec<String> = std::env::args().collect();
    let measuring = args.iter().any(|a| a == "--bench");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let speech = root.join("../shared/data/speech");
    let dev = Device::cpu();
    let (vad, _) = Models::load_vad(&dev, &root.join("models"), None, "default")?;
    let diarizer = load(&dev, &root.join("models"))?;
    let threshold = match arg(&args, "--threshold") {
        Some(t) => t.parse()?,
        None => verify_threshold(diarizer.embedding.name()),
    };
    let mut cases = Vec::new();
    if measuring {
        let devset = root.join(".cache/diarize-devset");
        let verify = root.join(".cache/verify-set");
        let read = |p: PathBuf| -> anyhow::Result<serde_json::Value> {
            let text = std::fs::read_to_string(&p).map_err(|e| {
                anyhow::anyhow!(
                    "{}: {e}: run benches/diarize/make_devset.sh and benches/verify/make_trialset.sh",
                    p.display()
                )
            })?;
            Ok(serde_json::from_str(&text)?)
        };
        let (dialogues, samples) = (read(devset.join("manifest.json"))?, read(verify.join("manifest.json"))?);
        for f in dialogues["files"].as_array().into_iter().flatten() {
            let speakers: Vec<String> =
                f["speakers"].as_array().into_iter().flatten().filter_map(|s| s.as_str().map(String::from)).collect();
            let take = if speakers.len() <= 2 { speakers.len() } else { speakers.len() - 1 };
            let mut enrolled = Vec::new();
            for s in &speakers[..take] {
                let id = samples["enrol"][s].as_str().ok_or_else(|| anyhow::anyhow!("no enrolment sample for {s}"))?;
                let path = match id.split_once('/') {
                    Some(("real", f)) => speech.join(f),
                    Some((_, f)) => verify.join(f),
                    None => verify.join(id),
                };
                let a = decode(&path)?;
                enrolled.push((s.clone(), a.span(0, a.len())));
            }
            let file = f["file"].as_str().unwrap_or_default();
            cases.push(Case {
                name: file.into(),
                wav: devset.join(file),
                reference: rttm::read(&devset.join(f["rttm"].as_str().unwrap_or_default()))?,
                enrolled,
            });
        }
    } else {
        let a = decode(&speech.join("two_speakers.wav"))?;
        let cut = |start: f64, end: f64| a.span((start * 16_000.0) as usize, (end * 16_000.0) as usize);
        cases.push(Case {
            name: "two_speakers.wav".into(),
            wav: speech.join("two_speakers.wav"),
            reference: rttm::read(&speech.join("two_speakers.rttm"))?,
            enrolled: vec![("speaker90".into(), cut(10.57, 14.70)), ("speaker91".into(), cut(21.78, 28.50))],
        });
    }
    println!("threshold {threshold}, margin {NAME_MARGIN}\n");
    println!(
        "| file | enrolled | right | wrong | wrong beyond the collar | unnamed | unenrolled speakers' time named |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut total = Score::default();
    for case in &cases {
        let audio = decode(&case.wav)?;
        let d = diarizer.diarize(&dev, &mut &audio, SpeakerBounds::default(), &Cancel::new(), &mut |_, _, _| {})?;
        let mut embeddings = Vec::new();
        for (name, samples) in &case.enrolled {
            embeddings
                .push((name.clone(), diarizer.embedding.embed_utterance(&dev, &speech_of(&vad, &dev, samples)?)?));
        }
        let voiceprints = enrol(&embeddings);
        let matches = name_speakers(&d.speakers, &voiceprints, &NamingPolicy { threshold, margin: NAME_MARGIN });
        let checks = check_turns(
            &*diarizer.embedding,
            &dev,
            &audio,
            &d.exclusive_turns,
            &matches,
            &voiceprints,
            turn_threshold(diarizer.embedding.name()).min(threshold),
            &Cancel::new(),
        )?;
        let names: BTreeMap<&str, Option<&str>> =
            matches.iter().map(|m| (m.label.as_str(), m.name.as_deref())).collect();
        let enrolled: Vec<&str> = case.enrolled.iter().map(|(n, _)| n.as_str()).collect();
        let mut s = Score::default();
        let end = case.reference.iter().map(|t| t.end).fold(0.0, f64::max);
        let mut t = STEP / 2.0;
        while t < end {
            let refs: Vec<&str> =
                case.reference.iter().filter(|r| r.start <= t && t < r.end).map(|r| r.speaker.as_str()).collect();
            let near_boundary =
                case.reference.iter().any(|r| (r.start - t).abs() < COLLAR || (r.end - t).abs() < COLLAR);
            if let [speaker] = refs[..] {
                let hyp = d.exclusive_turns.iter().find(|h| h.start <= t && t < h.end);
                let unconfirmed =
                    |h: &&SpeakerTurn| checks.iter().any(|(s, _)| s.label == h.speaker && s.start <= t && t < s.end);
                let named =
                    hyp.filter(|h| !unconfirmed(h)).and_then(|h| names.get(h.speaker.as_str()).copied().flatten());
                if enrolled.contains(&speaker) {
                    s.enrolled_s += STEP;
                    match named {
                        Some(n) if n == speaker => s.right += STEP,
                        Some(_) => {
                            s.wrong += STEP;
                            s.wrong_beyond_collar += if near_boundary { 0.0 } else { STEP };
                        }
                        None => s.unnamed += STEP,
                    }
                } else {
                    s.unenrolled_s += STEP;
                    if named.is_some() {
                        s.unenrolled_named += STEP;
                        s.wrong += STEP;
                        s.wrong_beyond_collar += if near_boundary { 0.0 } else { STEP };
                    }
                }
            }
            t += STEP;
        }
        let pct = |x: f64, of: f64| if of > 0.0 { format!("{:.1} %", 100.0 * x / of) } else { "–".into() };
        let all = s.enrolled_s + s.unenrolled_s;
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            case.name,
            enrolled.join(", "),
            pct(s.right, s.enrolled_s),
            pct(s.wrong, all),
            pct(s.wrong_beyond_collar, all),
            pct(s.unnamed, s.enrolled_s),
            pct(s.unenrolled_named, s.unenrolled_s)
        );
        for (s, c) in &checks {
            eprintln!(
                "  {} {:.2}-{:.2} s unconfirmed: {:.3} for its name, best other {:?} ({})",
                s.label,
                s.start,
                s.end,
                c.score,
                c.best_other,
                c.decision.as_str()
            );
        }
        for m in &matches {
            eprintln!(
                "  {}: {:?} best {:?} runner-up {:?} ({})",
                m.label,
                m.name,
                m.best,
                m.runner_up,
                m.decision.as_str()
            );
        }
        total.enrolled_s += s.enrolled_s;
        total.right += s.right;
        total.wrong += s.wrong;
        total.unnamed += s.unnamed;
        total.unenrolled_s += s.unenrolled_s;
        total.unenrolled_named += s.unenrolled_named;
        total.wrong_beyond_collar += s.wrong_beyond_collar;
    }
    let pct = |x: f64, of: f64| if of > 0.0 { format!("{:.1} %", 100.0 * x / of) } else { "–".into() };
    println!(
        "| all | | {} | {} ({:.2} s) | {} ({:.2} s) | {} | {} |",
        pct(total.right, total.enrolled_s),
        pct(total.wrong, total.enrolled_s + total.unenrolled_s),
        total.wrong,
        pct(total.wrong_beyond_collar, total.enrolled_s + total.unenrolled_s),
        total.wrong_beyond_collar,
        pct(total.unnamed, total.enrolled_s),
        pct(total.unenrolled_named, total.unenrolled_s)
    );
    Ok(())
}
