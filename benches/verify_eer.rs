//! Speaker-verification equal error rate on the committed trial list (benches/verify/trials.txt,
//! made with the trial set by benches/verify/make_trialset.sh): every utterance reduced to its
//! speech by WhisperX's VAD and embedded as the speaker-names stage embeds a sample, every trial
//! scored by cosine. Prints the EER, the threshold at that point, and the miss and false-alarm
//! rates at the stage's threshold, for each model.
//!
//!     cargo bench --bench verify_eer [-- --speaker_model DIR]
//!
//! `--speaker_model` adds a SpeechBrain ECAPA directory to CAM++. `cargo test --all-targets`
//! runs this without `--bench`: the trials among the shared recordings only (the espeak-ng
//! utterances are built locally, never committed), as a smoke run of the code.

use std::collections::BTreeMap;
use std::path::PathBuf;

use scribe::audio::{Audio, AudioOptions};
use scribe::backend::Device;
use scribe::pipeline::diarize_models::load;
use scribe::pipeline::speaker_models::verify_threshold;
use scribe::pipeline::speaker_names::speech_of;
use scribe::pipeline::Models;
use scribe::verify::cosine;
use scribe::verify::voice::VoiceEmbedding;
use scribe::Cancel;

/// A named subset of the trials.
type Subset = (&'static str, fn(&Trial) -> bool);

struct Trial {
    target: bool,
    a: String,
    b: String,
}

/// The equal error rate and the threshold there: the point where the share of target trials
/// scored below the threshold (misses) meets the share of non-target trials at or above it
/// (false alarms), taken at the score where |miss − false alarm| is smallest (their mean).
fn eer(scores: &[(bool, f64)]) -> (f64, f64) {
    let mut sorted: Vec<(bool, f64)> = scores.to_vec();
    sorted.sort_by(|x, y| x.1.total_cmp(&y.1));
    let targets = sorted.iter().filter(|s| s.0).count() as f64;
    let nontargets = sorted.len() as f64 - targets;
    let (mut misses, mut best) = (0.0, (f64::INFINITY, 0.0, 0.0));
    let mut false_alarms = nontargets;
    for (i, &(target, score)) in sorted.iter().enumerate() {
        // Threshold = this score: everything before it is rejected.
        let (m, fa) = (misses / targets, false_alarms / nontargets);
        if (m - fa).abs() < best.0 {
            let t = if i == 0 { score } else { (score + sorted[i - 1].1) / 2.0 };
            best = ((m - fa).abs(), (m + fa) / 2.0, t);
        }
        if target {
            misses += 1.0;
        } else {
            false_alarms -= 1.0;
        }
    }
    (best.1, best.2)
}

fn main() -> anyhow::Result<()> {
    scribe::allocator::keep_large_blocks();
    let args: Vec<String> = std::env::args().collect();
    let measuring = args.iter().any(|a| a == "--bench");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dev = Device::cpu();
    let (vad, _) = Models::load_vad(&dev, &root.join("models"), None, "default")?;
    let diarizer = load(&dev, &root.join("models"))?;
    let ecapa = match args.iter().position(|a| a == "--speaker_model") {
        Some(i) => {
            let dir = args.get(i + 1).ok_or_else(|| anyhow::anyhow!("--speaker_model needs a directory"))?;
            let m = scribe::pipeline::speaker_models::SpeakerModels::new(
                root.join("models"),
                scribe::hub::HubConfig::new("http://127.0.0.1:9", root.join(".cache/hub"), None, true),
            );
            Some(m.get(&dev, dir)?)
        }
        None => None,
    };
    let mut models: Vec<&dyn VoiceEmbedding> = vec![&*diarizer.embedding];
    if let Some(e) = &ecapa {
        models.push(&**e);
    }
    let trials: Vec<Trial> = std::fs::read_to_string(root.join("benches/verify/trials.txt"))?
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some(Trial { target: f.next()? == "target", a: f.next()?.into(), b: f.next()?.into() })
        })
        .filter(|t| measuring || (t.a.starts_with("real/") && t.b.starts_with("real/")))
        .collect();
    let path = |id: &str| -> PathBuf {
        match id.split_once('/') {
            Some(("real", f)) => root.join("../shared/data/speech").join(f),
            Some((_, f)) => root.join(".cache/verify-set").join(f),
            None => root.join(id),
        }
    };
    let mut speech: BTreeMap<String, Vec<f32>> = BTreeMap::new();
    for id in trials.iter().flat_map(|t| [&t.a, &t.b]) {
        if !speech.contains_key(id) {
            let p = path(id);
            let audio = Audio::decode(&p, &AudioOptions::default(), &Cancel::new(), &mut |_| {})
                .map_err(|e| anyhow::anyhow!("{e} (run benches/verify/make_trialset.sh)"))?;
            speech.insert(id.clone(), speech_of(&vad, &dev, &audio.span(0, audio.len()))?);
        }
    }
    let targets = trials.iter().filter(|t| t.target).count();
    println!("{} utterances, {} trials ({targets} target)\n", speech.len(), trials.len());
    println!("| model | trials | EER | threshold at the EER | lowest target / highest non-target score | stage threshold | miss / false alarm there |");
    println!("|---|---|---|---|---|---|---|");
    for model in &models {
        let name = model.name();
        let mut embeddings = BTreeMap::new();
        for (id, s) in &speech {
            embeddings.insert(id.clone(), model.embed_utterance(&dev, s)?);
        }
        let subsets: [Subset; 3] = [
            ("all", |_| true),
            ("shared recordings", |t| t.a.starts_with("real/") && t.b.starts_with("real/")),
            ("espeak-ng voices", |t| t.a.starts_with("espeak/") && t.b.starts_with("espeak/")),
        ];
        for (subset, keep) in subsets {
            let scores: Vec<(bool, f64)> = trials
                .iter()
                .filter(|t| keep(t))
                .map(|t| (t.target, cosine(&embeddings[&t.a], &embeddings[&t.b])))
                .collect();
            let targets = scores.iter().filter(|s| s.0).count();
            if targets == 0 || targets == scores.len() {
                continue;
            }
            let (rate, threshold) = eer(&scores);
            let stage = verify_threshold(name);
            let miss = scores.iter().filter(|s| s.0 && s.1 < stage).count() as f64 / targets as f64;
            let fa = scores.iter().filter(|s| !s.0 && s.1 >= stage).count() as f64 / (scores.len() - targets) as f64;
            let lowest_target = scores.iter().filter(|s| s.0).map(|s| s.1).fold(f64::INFINITY, f64::min);
            let highest_nontarget = scores.iter().filter(|s| !s.0).map(|s| s.1).fold(f64::NEG_INFINITY, f64::max);
            println!(
                "| {name} | {subset} ({} trials) | {:.2} % | {threshold:.3} | {lowest_target:.3} / {highest_nontarget:.3} | {stage} | {:.2} % / {:.2} % |",
                scores.len(),
                100.0 * rate,
                100.0 * miss,
                100.0 * fa
            );
        }
    }
    Ok(())
}
