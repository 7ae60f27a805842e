//! The diarization stage's time and memory on one recording: decoded into the pipeline's audio
//! store (a mapped file beyond a minute), then segmented, embedded and clustered with the
//! default models (segmentation-3.0 + CAM++) as the stage runs them. Prints the time of each
//! step, the real-time factor and the process's peak RSS (before and after the stage).
//!
//!     cargo bench --bench diarize_speed -- FILE [--repeat N] [--trunk-per-window]
//!
//! `--repeat N` concatenates the file N times (a 1-hour recording from the long benchmark
//! file: `--repeat 18`). Where the file has an RTTM beside it (its name with `.rttm` for its
//! extension), the DER (collar 0) against it, repeated as the audio is, is printed too.
//! `--trunk-per-window` runs CAM++ once per window instead of sharing its trunk between
//! overlapping windows. `cargo test --all-targets` runs this without `--bench`:
//! two_speakers.wav once, as a smoke run of the code, not a measurement.

use std::path::PathBuf;
use std::time::Instant;

use scribe::audio::{Audio, AudioOptions, SampleSource};
use scribe::backend::Device;
use scribe::diarize::der::{diarization_error_rate, DerOptions};
use scribe::diarize::diarizer::{DiarizeStep, SpeakerBounds};
use scribe::diarize::rttm::{self, Turn};
use scribe::pipeline::diarize_models::{load_with, ComputeTypes};
use scribe::Cancel;

/// The process's peak resident set so far, MiB.
fn peak_rss_mib() -> f64 {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes the struct it is given.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    usage.ru_maxrss as f64 / 1024.0
}

/// A recording `repeat` times over, read from the audio store span by span.
struct Repeated<'a> {
    audio: &'a Audio,
    repeat: usize,
}

impl SampleSource for Repeated<'_> {
    fn len(&self) -> usize {
        self.audio.len() * self.repeat
    }

    fn samples(&mut self, start: usize, end: usize) -> scribe::Result<Vec<f32>> {
        let (one, end) = (self.audio.len(), end.min(self.len()));
        let mut out = Vec::with_capacity(end.saturating_sub(start));
        let mut at = start;
        while at < end {
            let within = at % one;
            let take = (one - within).min(end - at);
            out.extend_from_slice(&self.audio.span(within, within + take));
            at += take;
        }
        Ok(out)
    }

    fn release_before(&mut self, _start: usize) {}
}

fn main() -> anyhow::Result<()> {
    scribe::allocator::keep_large_blocks();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let measuring = args.iter().any(|a| a == "--bench");
    let repeat: usize = match args.iter().position(|a| a == "--repeat") {
        Some(i) => args.get(i + 1).ok_or_else(|| anyhow::anyhow!("--repeat needs a number"))?.parse()?,
        None => 1,
    };
    let file = args
        .iter()
        .enumerate()
        .find(|(i, a)| !a.starts_with("--") && (*i == 0 || args[i - 1] != "--repeat"))
        .map(|(_, a)| PathBuf::from(a))
        .filter(|_| measuring)
        .unwrap_or_else(|| root.join("../shared/data/speech/two_speakers.wav"));
    let dev = Device::cpu();
    let started = Instant::now();
    let shared_trunk = !args.iter().any(|a| a == "--trunk-per-window");
    let diarizer = load_with(&dev, &root.join("models"), shared_trunk, &ComputeTypes::default())?;
    let load_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let audio = Audio::decode(&file, &AudioOptions::default(), &Cancel::new(), &mut |_| {})?;
    let decode_s = started.elapsed().as_secs_f64();
    let seconds = audio.duration() * repeat as f64;
    let rss_before = peak_rss_mib();
    let mut source = Repeated { audio: &audio, repeat };
    let mut step_done = Vec::new();
    let started = Instant::now();
    let embedded = diarizer.embed(&dev, &mut source, &Cancel::new(), &mut |step, done, total| {
        if done == total && !step_done.iter().any(|(s, _)| *s == step) {
            step_done.push((step, started.elapsed().as_secs_f64()));
        }
    })?;
    let embed_s = started.elapsed().as_secs_f64();
    let segmentation_s = step_done.iter().find(|(s, _)| *s == DiarizeStep::Segmentation).map_or(0.0, |(_, t)| *t);
    let started = Instant::now();
    let diarization = diarizer.finish(embedded, SpeakerBounds::default())?;
    let cluster_s = started.elapsed().as_secs_f64();
    let stage_s = embed_s + cluster_s;
    println!("{} × {repeat}: {seconds:.0} s of audio", file.display());
    println!("models loaded in {load_s:.2} s, decoded in {decode_s:.2} s");
    println!("| step | s |\n|---|---|");
    println!("| segmentation | {segmentation_s:.2} |");
    println!("| embeddings | {:.2} |", embed_s - segmentation_s);
    println!("| clustering and reconstruction | {cluster_s:.2} |");
    println!("| stage | {stage_s:.2} (RTF {:.3}) |", stage_s / seconds);
    println!(
        "{} speakers, {} turns, {} windows, {} pairs clustered",
        diarization.speakers.len(),
        diarization.turns.len(),
        diarization.windows,
        diarization.clustered_pairs
    );
    println!("peak RSS: {rss_before:.0} MiB before the stage, {:.0} MiB after", peak_rss_mib());
    let truth = file.with_extension("rttm");
    if truth.is_file() {
        let once = rttm::read(&truth)?;
        let reference: Vec<Turn> = (0..repeat)
            .flat_map(|k| {
                let offset = k as f64 * audio.duration();
                once.iter().map(move |t| Turn { start: t.start + offset, end: t.end + offset, ..t.clone() })
            })
            .collect();
        let r = diarization_error_rate(&reference, &diarization.turns, &DerOptions::default());
        println!("DER (collar 0) against {} × {repeat}: {:.2} %", truth.display(), 100.0 * r.der());
    }
    if scribe::backend::profile::enabled() {
        eprint!("{}", scribe::backend::profile::report());
    }
    if diarization.windows == 0 {
        anyhow::bail!("no windows: the recording is empty");
    }
    Ok(())
}
