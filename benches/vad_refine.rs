//! The coarse-to-fine VAD (`pipeline::vad_refine`) against WhisperX's full VAD on recordings:
//! for each file, the full VAD (every window, as `SpeechScorer` streams them) and the
//! coarse-to-fine one, each timed, their speech regions compared, and the windows scored. Then,
//! from every window's scores kept once, each `--margins` × `--coarse-every` setting replayed
//! without the model: its regions against the full VAD's, the windows it scores, and the largest
//! distance between a partial average and the full one at a frame whose decision it left to
//! that partial average (the error [`MARGIN`] must cover).
//!
//!     cargo bench --bench vad_refine -- FILE... [--margins 0.1,0.2] [--coarse-every 5,10]
//!
//! `cargo test --all-targets` runs this without `--bench`: the shared recordings' first file,
//! a smoke run of the code, not a measurement.

use std::path::PathBuf;
use std::time::Instant;

use scribe::audio::{Audio, AudioOptions};
use scribe::backend::Device;
use scribe::models::pyannote::sliding_window::{score_windows, window_starts, SpeechScorer, BATCH_SIZE, STEP_RATIO};
use scribe::pipeline::runner::Models;
use scribe::pipeline::speech_chunks::{binarize, CHUNK_SIZE, VAD_OFFSET, VAD_ONSET};
use scribe::pipeline::vad_refine::{self, refine, Thresholds, Windows, COARSE_EVERY, MARGIN};
use scribe::Cancel;

fn list<T: std::str::FromStr>(args: &[String], flag: &str, default: Vec<T>) -> anyhow::Result<Vec<T>> {
    match args.iter().position(|a| a == flag) {
        None => Ok(default),
        Some(i) => {
            let v = args.get(i + 1).ok_or_else(|| anyhow::anyhow!("{flag} needs a list"))?;
            v.split(',').map(|x| x.parse().map_err(|_| anyhow::anyhow!("{flag}: bad value {x}"))).collect()
        }
    }
}

fn main() -> anyhow::Result<()> {
    scribe::allocator::keep_large_blocks();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let measuring = args.iter().any(|a| a == "--bench");
    let margins: Vec<f32> = list(&args, "--margins", vec![MARGIN])?;
    let coarse: Vec<usize> = list(&args, "--coarse-every", vec![COARSE_EVERY])?;
    let mut files: Vec<PathBuf> = args
        .iter()
        .enumerate()
        .filter(|(i, a)| {
            !a.starts_with("--") && (*i == 0 || !["--margins", "--coarse-every"].contains(&args[i - 1].as_str()))
        })
        .map(|(_, a)| PathBuf::from(a))
        .collect();
    if !measuring || files.is_empty() {
        files = vec![root.join("../shared/data/speech/two_speakers.wav")];
    }
    let dev = Device::cpu();
    let (vad, path) = Models::load_vad(&dev, &root.join("models"), None, "default")?;
    println!("VAD {} ({})", path.display(), vad.compute_type(&dev));
    let thresholds = Thresholds { onset: VAD_ONSET, offset: VAD_OFFSET, max_duration: CHUNK_SIZE };
    let cancel = Cancel::default();
    for file in &files {
        let audio = Audio::decode(file, &AudioOptions::default(), &cancel, &mut |_| {})?;
        println!("\n{} ({:.1} s)", file.display(), audio.duration());

        let t = Instant::now();
        let mut scorer = SpeechScorer::new(&vad, &dev, BATCH_SIZE, None)?;
        audio.for_each_block(0, audio.len(), &cancel, &mut |b| scorer.push(b))?;
        let full = scorer.finish()?;
        let full_s = t.elapsed().as_secs_f64();
        let times = full.times();
        let expect = binarize(&full.scores, &times, VAD_ONSET, VAD_OFFSET, CHUNK_SIZE);

        let t = Instant::now();
        let refined =
            vad_refine::speech_regions(&vad, &dev, &audio, None, BATCH_SIZE, &thresholds, &cancel, &mut |_| {})?;
        let refined_s = t.elapsed().as_secs_f64();
        let hop = (STEP_RATIO * vad.config.duration * vad.config.sample_rate as f64).round() as usize;
        let (starts, has_last) = window_starts(audio.len(), vad.config.window_samples(), hop);
        println!(
            "full VAD {full_s:.2} s, {} windows, {} regions; coarse-to-fine {refined_s:.2} s ({:.2}x), {} windows \
             ({:.0} %), {} rounds, regions {}",
            starts.len(),
            expect.len(),
            full_s / refined_s,
            refined.windows_scored,
            100.0 * refined.windows_scored as f64 / starts.len() as f64,
            refined.rounds,
            compare(&refined.regions, &expect)
        );

        // Every window once, then each setting replayed from them.
        let all: Vec<usize> = (0..starts.len()).collect();
        let mut span = |s: usize, e: usize| audio.span(s, e);
        let kept = score_windows(&vad, &dev, hop, &all, 1, BATCH_SIZE, &mut span)?;
        let windows = Windows {
            count: starts.len(),
            frames_per_window: vad.num_frames(vad.config.window_samples()),
            duration: vad.config.duration,
            step: STEP_RATIO * vad.config.duration,
            frames: full.frames,
            crop: has_last.then(|| audio.duration()),
        };
        for &every in &coarse {
            for &margin in &margins {
                let mut replay =
                    |indices: &[usize], _gap: usize| Ok(indices.iter().map(|&c| kept[c].clone()).collect::<Vec<_>>());
                let r = refine(&windows, &thresholds, margin, every, &mut replay)?;
                // The largest error a decision was left to: frames not exact at the end.
                let worst = r
                    .scores
                    .iter()
                    .zip(&full.scores)
                    .zip(&r.exact)
                    .filter(|(_, &e)| !e)
                    .map(|((a, b), _)| (a - b).abs())
                    .fold(0.0f32, f32::max);
                println!(
                    "  every {every:>2}, margin {margin:.2}: {:>5} windows ({:>3.0} %), {} rounds, largest error left \
                     {worst:.3}, regions {}",
                    r.windows_scored,
                    100.0 * r.windows_scored as f64 / windows.count as f64,
                    r.rounds,
                    compare(&r.regions, &expect)
                );
            }
        }
    }
    Ok(())
}

/// "the same" or how the regions differ: count and the largest edge shift, in frames.
fn compare(
    got: &[scribe::pipeline::speech_chunks::Region],
    expect: &[scribe::pipeline::speech_chunks::Region],
) -> String {
    if got == expect {
        return "the same".into();
    }
    if got.len() != expect.len() {
        return format!("DIFFER: {} vs {}", got.len(), expect.len());
    }
    let shift = got
        .iter()
        .zip(expect)
        .map(|(a, b)| (a.start - b.start).abs().max((a.end - b.end).abs()))
        .fold(0.0f64, f64::max);
    format!("DIFFER: same count, an edge {:.3} s away", shift)
}
