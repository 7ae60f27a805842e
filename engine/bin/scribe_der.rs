//! `scribe-der`: scores hypothesis RTTMs against the diarization development set
//! (benches/diarize/make_devset.py) and the shared recordings with a reference RTTM
//! (`../shared/data/speech`, manifest entries with an `rttm`), with `scribe::diarize::der`
//! (pyannote.metrics' DiarizationErrorRate, checked in tests/der_reference.rs).
//!
//! Per file and in total (components summed over files, as pyannote's `abs(metric)`): DER, missed
//! speech, false alarm and confusion as percentages of the scored reference speech, the true and
//! the estimated (distinct hypothesis labels) speaker counts, at pyannote collar 0 (the published
//! numbers' setting) and 0.5 (NIST's ±0.25 s). Overlap is scored unless `--skip-overlap`.
//! A file without a hypothesis RTTM is scored as an empty hypothesis and marked.

use anyhow::{Context, Result};
use clap::Parser;
use scribe::diarize::der::{diarization_error_rate, DerComponents, DerOptions};
use scribe::diarize::rttm::{self, Turn};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// pyannote `collar` values scored: none, and NIST's ±0.25 s (total width 0.5).
const COLLARS: [f64; 2] = [0.0, 0.5];

#[derive(Parser)]
#[command(name = "scribe-der", about = "Diarization error rate of hypothesis RTTMs on the dev set")]
struct Args {
    /// Directory of hypothesis RTTMs, `<stem>.rttm` for each `<stem>.wav`.
    #[arg(long)]
    hyp: PathBuf,
    /// The development set (manifest.json, NN.wav, NN.rttm).
    #[arg(long, default_value = ".cache/diarize-devset")]
    set: PathBuf,
    /// The shared recordings; their manifest entries with an `rttm` are scored too. Skipped when
    /// the directory does not exist.
    #[arg(long, env = "SCRIBE_SPEECH_DATA", default_value = "../shared/data/speech")]
    speech: PathBuf,
    /// Leave reference overlap out of the scoring (pyannote `skip_overlap=True`).
    #[arg(long)]
    skip_overlap: bool,
    /// Write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the markdown table here.
    #[arg(long)]
    md: Option<PathBuf>,
}

struct Reference {
    stem: String,
    source: String,
    rttm: PathBuf,
    speakers: usize,
}

fn manifest(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
}

fn stem(file: &str) -> String {
    Path::new(file).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

fn references(args: &Args) -> Result<Vec<Reference>> {
    let mut refs = Vec::new();
    let set = manifest(&args.set.join("manifest.json"))
        .context("the dev set is missing: run benches/diarize/make_devset.sh")?;
    for f in set["files"].as_array().context("manifest.json has no files")? {
        let file = f["file"].as_str().context("a file without `file`")?;
        refs.push(Reference {
            stem: stem(file),
            source: "devset".into(),
            rttm: args.set.join(f["rttm"].as_str().context("a file without `rttm`")?),
            speakers: f["num_speakers"].as_u64().context("a file without `num_speakers`")? as usize,
        });
    }
    if args.speech.join("manifest.json").exists() {
        for f in manifest(&args.speech.join("manifest.json"))?.as_array().into_iter().flatten() {
            if let (Some(file), Some(rttm)) = (f["file"].as_str(), f["rttm"].as_str()) {
                let path = args.speech.join(rttm);
                let speakers = match f["speakers"].as_u64() {
                    Some(n) => n as usize,
                    None => distinct(&rttm::read(&path)?),
                };
                refs.push(Reference { stem: stem(file), source: "shared".into(), rttm: path, speakers });
            }
        }
    }
    Ok(refs)
}

fn distinct(turns: &[Turn]) -> usize {
    let mut labels: Vec<&str> = turns.iter().map(|t| t.speaker.as_str()).collect();
    labels.sort_unstable();
    labels.dedup();
    labels.len()
}

fn pct(part: f64, c: &DerComponents) -> f64 {
    if c.total > 0.0 {
        100.0 * part / c.total
    } else {
        f64::NAN
    }
}

fn components_json(c: &DerComponents) -> Value {
    json!({
        "total_s": c.total, "missed_s": c.missed, "false_alarm_s": c.false_alarm,
        "confusion_s": c.confusion, "der": c.der(),
    })
}

fn cells(c: &DerComponents) -> String {
    format!(
        "{:.1} | {:.1} | {:.1} | {:.1}",
        100.0 * c.der(),
        pct(c.missed, c),
        pct(c.false_alarm, c),
        pct(c.confusion, c)
    )
}

fn main() -> Result<()> {
    let args = Args::parse();
    let refs = references(&args)?;
    let mut totals = [DerComponents::default(); COLLARS.len()];
    let mut rows = Vec::new();
    let mut md = String::new();
    md.push_str(&format!(
        "| file | speakers true / est. | DER % | miss % | FA % | conf. % | DER % | miss % | FA % | conf. % |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n\
         | | | collar 0{0} | | | | collar 0.5{0} | | | |\n",
        if args.skip_overlap { ", no overlap" } else { "" }
    ));
    let mut exact_count = 0;
    for r in &refs {
        let reference = rttm::read(&r.rttm)?;
        let hyp_path = args.hyp.join(format!("{}.rttm", r.stem));
        let (hypothesis, missing) = if hyp_path.exists() {
            (rttm::read(&hyp_path)?, false)
        } else {
            eprintln!("scribe-der: no hypothesis {}: scored as empty", hyp_path.display());
            (Vec::new(), true)
        };
        let estimated = distinct(&hypothesis);
        exact_count += usize::from(estimated == r.speakers);
        let mut per_collar = Vec::new();
        let mut line =
            format!("| {}{} | {} / {} |", r.stem, if missing { " (no hypothesis)" } else { "" }, r.speakers, estimated);
        for (i, &collar) in COLLARS.iter().enumerate() {
            let options = DerOptions { collar, skip_overlap: args.skip_overlap, uem: None };
            let res = diarization_error_rate(&reference, &hypothesis, &options);
            totals[i].add(&res.components);
            line.push_str(&format!(" {} |", cells(&res.components)));
            let mut c = components_json(&res.components);
            c["collar"] = json!(collar);
            c["mapping"] = json!(res.mapping);
            per_collar.push(c);
        }
        md.push_str(&line);
        md.push('\n');
        rows.push(json!({
            "file": r.stem, "source": r.source, "true_speakers": r.speakers,
            "estimated_speakers": estimated, "missing_hypothesis": missing, "scores": per_collar,
        }));
    }
    let mut line = format!("| **total** ({} files) | {} / {} exact |", refs.len(), exact_count, refs.len());
    for t in &totals {
        line.push_str(&format!(" {} |", cells(t)));
    }
    md.push_str(&line);
    md.push('\n');
    print!("{md}");

    if let Some(path) = &args.json {
        let out = json!({
            "hypothesis_dir": args.hyp, "skip_overlap": args.skip_overlap,
            "files": rows,
            "total": COLLARS.iter().zip(&totals).map(|(&collar, t)| {
                let mut c = components_json(t);
                c["collar"] = json!(collar);
                c
            }).collect::<Vec<_>>(),
            "speaker_count_exact": exact_count,
        });
        std::fs::write(path, serde_json::to_string_pretty(&out)? + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(path) = &args.md {
        std::fs::write(path, &md).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}
