//! Memory and time of the aligner on one very long segment (issue: "a 2-hour single segment must
//! not need more than a few hundred MB"): synthetic emissions of `SECONDS` (default 7200) of
//! speech, aligned as one segment in each mode; prints the peak resident memory before and after
//! the aligner ran, so the aligner's own share is the difference.
//!
//!     cargo bench --bench align_long_segment -- [seconds] [ctc-viterbi|whisperx-compat]
//!
//! WhisperX's trellis is frames × tokens floats: 360,000 × ~100,000 for two hours, which no
//! machine holds; whisperx-compat reproduces that and is expected to fail such a segment
//! (WhisperX runs out of memory past about 7 minutes), so the default mode is the one measured.

use std::time::Instant;

use scribe::align::{align, AlignConfig, Dictionary, Mode};
use scribe::output::result::Segment;
use scribe::Cancel;

#[path = "support/synthetic_emissions.rs"]
mod synthetic_emissions;
use synthetic_emissions::{spoken, transcript, Prepared, FRAMES_PER_SECOND};

/// Default length: two hours.
const DEFAULT_SECONDS: usize = 7200;

/// Peak resident set size of this process so far (Linux `VmHWM`), MiB.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() {
    // cargo bench passes `--bench`; the rest are ours.
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let seconds = args.first().and_then(|a| a.parse().ok()).unwrap_or(DEFAULT_SECONDS);
    let mode = match args.get(1).map(String::as_str) {
        Some("whisperx-compat") => Mode::WhisperxCompat,
        _ => Mode::CtcViterbi,
    };
    let text = transcript(seconds as f64);
    let (em, truth) = spoken(&text, seconds * FRAMES_PER_SECOND - 1);
    let dict = Dictionary::torchaudio_base_960h();
    let segment = Segment { start: 0.0, end: seconds as f64, text: text.clone(), ..Default::default() };
    let cfg = AlignConfig { mode, language: "en".into(), audio_seconds: seconds as f64, ..Default::default() };
    let mut source = Prepared(em);
    let before = peak_rss_mib();
    let t = Instant::now();
    let out = align(
        std::slice::from_ref(&segment),
        &dict,
        &mut source,
        &scribe::pipeline::align_models::WholeText,
        &cfg,
        &Cancel::new(),
        &mut |_, _| {},
    );
    let wall = t.elapsed().as_secs_f64();
    let after = peak_rss_mib();
    let words = out.as_ref().map_or(0, |a| a.word_segments.len());
    let timed = out.as_ref().map_or(0, |a| a.word_segments.iter().filter(|w| w.start.is_some()).count());
    // Mean |start − truth| over the words, when every word came back (a check that the band
    // did not lose the path: the synthetic speech is clean, so this is a frame or two).
    let start_error_ms = out.as_ref().ok().filter(|a| a.word_segments.len() == truth.len()).map(|a| {
        let sum: f64 = a.word_segments.iter().zip(&truth).map(|(w, t)| (w.start.unwrap_or(f64::NAN) - t).abs()).sum();
        1000.0 * sum / truth.len() as f64
    });
    println!(
        "{mode:?}: {seconds} s segment, {} characters, {} frames: {wall:.2} s, {words} words ({timed} timed, \
         mean |start error| {}), peak RSS {before:.0} MiB with the emissions built and {after:.0} MiB after \
         the aligner: it added {:.0} MiB{}",
        text.len(),
        source.0.frames,
        start_error_ms.map_or("n/a".to_string(), |ms| format!("{ms:.1} ms")),
        after - before,
        out.as_ref().err().map_or(String::new(), |e| format!("; error: {e}")),
    );
}
