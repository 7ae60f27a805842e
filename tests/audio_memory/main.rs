//! A 2-hour file runs in bounded memory: decoding, resampling and the log-mel of two hours of
//! 44.1 kHz stereo audio (generated on the fly, see [`synth_wav`]) stay under [`PEAK_RSS_LIMIT_MIB`]
//! of peak resident memory. Transcribing all of it is a benchmark, not a test.
//!
//! The work runs in a child process (this test binary again, running [`child_decode_two_hours`])
//! so that the peak (`VmHWM` in `/proc/self/status`) is that of the audio path alone.
//!
//! What it must hold: the log-mel, 720 000 + 3000 (padding) frames x 80 bins x 4 B = 231 MB
//! (221 MiB), plus one f32 peak per hop (2.9 MB). Measured on this machine (2 cores, 2026-11-24):
//!
//! | path | peak RSS | wall |
//! |---|---:|---:|
//! | before: `decode_source` (460 MB of 16 kHz samples), then `log_mel_spectrogram` (two full-size mel buffers) | 885 MiB | 11.9 s |
//! | now: `AudioFeatures::from_source` (decode, resample and mel streamed; frames kept unscaled) | 229-230 MiB | 7.2-11.2 s |
//!
//! (Wall times with other builds sharing the machine: both paths 11-12 s at load average 6; the
//! new one 7.2 s at load 3.) The bound leaves 120 MiB of margin over what the new path measured;
//! the old path exceeds it by 535 MiB.

#[path = "../common/mod.rs"]
mod common;
mod synth_wav;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use scribe::audio::mel::{HOP_LENGTH, N_SAMPLES};
use scribe::audio::{AudioFeatures, SAMPLE_RATE};
use synth_wav::SynthWav;

/// Two hours.
const SECONDS: u64 = 2 * 60 * 60;
/// CD rate, so the resampler runs (and stereo, so the down-mix does).
const SOURCE_RATE: u32 = 44_100;
const N_MELS: usize = 80;
/// The test the child process runs.
const CHILD_TEST: &str = "child_decode_two_hours";
/// The child runs only when this variable is set.
const CHILD_ENV: &str = "SCRIBE_AUDIO_MEMORY_CHILD";
/// What the child prints before its peak (libtest may put it mid-line).
const PEAK_PREFIX: &str = "peak_rss_kb=";
/// Bound on the child's peak RSS.
const PEAK_RSS_LIMIT_MIB: u64 = 350;

/// Peak resident set size of this process in KiB (Linux only).
fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
#[ignore = "the child process of two_hours_of_audio_decode_to_mel_in_bounded_memory"]
fn child_decode_two_hours() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let source = SynthWav::new(SOURCE_RATE, SECONDS);
    assert_eq!(source.frames(), SOURCE_RATE as u64 * SECONDS);
    let audio = AudioFeatures::from_source(Box::new(source), Path::new("synthetic-2h.wav"), N_MELS).expect("decode");
    assert_eq!(audio.n_samples, SECONDS as usize * SAMPLE_RATE as usize);
    assert_eq!(audio.mel.n_frames(), (audio.n_samples + N_SAMPLES) / HOP_LENGTH);
    println!("{PEAK_PREFIX}{}", peak_rss_kb().expect("VmHWM"));
}

#[test]
fn two_hours_of_audio_decode_to_mel_in_bounded_memory() {
    if peak_rss_kb().is_none() {
        common::cannot_run("no /proc/self/status (peak RSS is read from Linux's VmHWM)");
        return;
    }
    let start = Instant::now();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([CHILD_TEST, "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .output()
        .expect("spawn the child test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let peak_kb: u64 = stdout
        .lines()
        .find_map(|l| l.split_once(PEAK_PREFIX).map(|(_, v)| v))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no `{PEAK_PREFIX}` line in the child's output:\n{stdout}"));
    let peak_mib = peak_kb / 1024;
    eprintln!("2 h decode + resample + mel: peak RSS {peak_mib} MiB, {:.1} s", start.elapsed().as_secs_f64());
    assert!(peak_mib <= PEAK_RSS_LIMIT_MIB, "peak RSS {peak_mib} MiB > {PEAK_RSS_LIMIT_MIB} MiB");
}
