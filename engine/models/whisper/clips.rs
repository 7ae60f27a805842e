//! openai/whisper transcribe.py `clip_timestamps` (release 20250625): transcribe only the spans
//! `start,end,start,end,...` (seconds) of a file. Each span is cut into windows of at most 30 s
//! that end at the span's end; `seek` jumps from the end of one span to the start of the next.
//!
//! Pinned source: <https://github.com/openai/whisper/blob/v20250625/whisper/transcribe.py>
//! (parsing lines 168-177, the loop head lines 272-283).
//!
//! Two deliberate differences, both for input the reference mishandles:
//! - a timestamp that is not a finite number ≥ 0, or a span that does not end after it starts, is
//!   an error naming it (the reference skips an inverted span without a word);
//! - seek points are clamped to the end of the audio (the reference would decode a window of
//!   negative size for a span starting past the end).

use crate::error::{Error, Result};

use super::timing::FRAMES_PER_SECOND;

/// transcribe.py's default `clip_timestamps`: one span from the start to the end of the file.
pub const DEFAULT_CLIP_TIMESTAMPS: &str = "0";

/// Span bounds in mel frames: `(seek_clip_start, seek_clip_end)`.
pub type SeekClip = (usize, usize);

/// transcribe.py lines 168-171: `[float(ts) for ts in clip_timestamps.split(",")]`, no
/// timestamps for an empty string; then [`validate_clip_timestamps`].
pub fn parse_clip_timestamps(s: &str) -> Result<Vec<f64>> {
    if s.is_empty() {
        return Ok(Vec::new());
    }
    let timestamps = s
        .split(',')
        .map(|ts| {
            ts.trim()
                .parse::<f64>()
                .map_err(|_| Error::Other(format!("clip_timestamps: `{ts}` is not a number of seconds")))
        })
        .collect::<Result<Vec<f64>>>()?;
    validate_clip_timestamps(&timestamps)?;
    Ok(timestamps)
}

/// Every timestamp a finite number of seconds ≥ 0, and every span ending after it starts.
pub fn validate_clip_timestamps(timestamps: &[f64]) -> Result<()> {
    if let Some(ts) = timestamps.iter().find(|ts| !ts.is_finite() || **ts < 0.0) {
        return Err(Error::Other(format!("clip_timestamps: {ts} is not a time in seconds (finite, >= 0)")));
    }
    for (i, pair) in timestamps.chunks_exact(2).enumerate() {
        if pair[1] <= pair[0] {
            return Err(Error::Other(format!(
                "clip_timestamps: clip {} ends at {} s, not after its start {} s",
                i + 1,
                pair[1],
                pair[0]
            )));
        }
    }
    Ok(())
}

/// transcribe.py lines 172-177: seek points `round(ts * FRAMES_PER_SECOND)` (Python's `round`,
/// ties to even), `[0]` when there are none, `content_frames` appended to an odd count, paired.
/// Points are clamped to `content_frames`.
pub fn seek_clips(clip_timestamps: &[f64], content_frames: usize) -> Vec<SeekClip> {
    let mut seek_points: Vec<usize> = clip_timestamps
        .iter()
        .map(|ts| ((ts * FRAMES_PER_SECOND).round_ties_even().max(0.0) as usize).min(content_frames))
        .collect();
    if seek_points.is_empty() {
        seek_points.push(0);
    }
    if seek_points.len() % 2 == 1 {
        seek_points.push(content_frames);
    }
    seek_points.chunks_exact(2).map(|p| (p[0], p[1])).collect()
}

/// The loop head of transcribe.py lines 272-280: moves `seek` into the current span, or on to
/// the next span once it reaches the current one's end. Returns the end of the span the next
/// window belongs to, or None when every span is done.
pub fn next_window(clips: &[SeekClip], clip_idx: &mut usize, seek: &mut usize) -> Option<usize> {
    while let Some(&(seek_clip_start, seek_clip_end)) = clips.get(*clip_idx) {
        if *seek < seek_clip_start {
            *seek = seek_clip_start;
        }
        if *seek >= seek_clip_end {
            *clip_idx += 1;
            if let Some(&(next_start, _)) = clips.get(*clip_idx) {
                *seek = next_start;
            }
            continue;
        }
        return Some(seek_clip_end);
    }
    None
}

/// Progress over the spans as (frames done, frames in all spans), for progress reports.
pub fn progress(clips: &[SeekClip], clip_idx: usize, seek: usize) -> (usize, usize) {
    let len = |&(start, end): &SeekClip| end.saturating_sub(start);
    let total = clips.iter().map(len).sum();
    let done_before: usize = clips.iter().take(clip_idx).map(len).sum();
    let current = clips.get(clip_idx).map_or(0, |&(start, end)| seek.clamp(start, end.max(start)) - start);
    ((done_before + current).min(total), total)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// transcribe.py lines 168-171: comma-separated floats; "" gives no timestamps.
    #[test]
    fn parses_comma_separated_seconds() {
        assert_eq!(parse_clip_timestamps(DEFAULT_CLIP_TIMESTAMPS).unwrap(), vec![0.0]);
        assert_eq!(parse_clip_timestamps("1.5, 3,10").unwrap(), vec![1.5, 3.0, 10.0]);
        assert!(parse_clip_timestamps("").unwrap().is_empty());
    }

    #[test]
    fn bad_timestamps_are_errors_naming_them() {
        for (input, needle) in [("1,abc", "abc"), ("nan", "NaN"), ("-1", "-1"), ("inf", "inf"), ("5,2", "clip 1")] {
            let err = parse_clip_timestamps(input).unwrap_err().to_string();
            assert!(err.contains(needle) && err.contains("clip_timestamps"), "{input}: {err}");
        }
        // the second span ends where it starts
        assert!(parse_clip_timestamps("0,1,4,4").unwrap_err().to_string().contains("clip 2"));
    }

    /// transcribe.py lines 172-177: frames, [0] by default, an odd count runs to the end.
    #[test]
    fn seek_clips_pair_points_and_default_to_the_end() {
        assert_eq!(seek_clips(&[0.0], 5000), vec![(0, 5000)]);
        assert_eq!(seek_clips(&[], 5000), vec![(0, 5000)]);
        assert_eq!(seek_clips(&[1.0, 2.5, 10.0], 5000), vec![(100, 250), (1000, 5000)]);
        // Python's round: ties to even (0.005 * 100 == 0.5 -> 0, 0.025 * 100 == 2.5 -> 2)
        assert_eq!(seek_clips(&[0.005, 0.025], 5000), vec![(0, 2)]);
        // clamped to the audio
        assert_eq!(seek_clips(&[10.0, 99.0], 5000), vec![(1000, 5000)]);
        assert_eq!(seek_clips(&[60.0], 5000), vec![(5000, 5000)]);
    }

    /// transcribe.py lines 272-280: seek moves into a span, past a finished one to the next.
    #[test]
    fn next_window_walks_the_spans() {
        let clips = [(100, 250), (1000, 5000)];
        let (mut idx, mut seek) = (0, 0);
        assert_eq!(next_window(&clips, &mut idx, &mut seek), Some(250));
        assert_eq!((idx, seek), (0, 100));
        seek = 250; // the window ended at the span's end
        assert_eq!(next_window(&clips, &mut idx, &mut seek), Some(5000));
        assert_eq!((idx, seek), (1, 1000));
        seek = 5000;
        assert_eq!(next_window(&clips, &mut idx, &mut seek), None);
        assert_eq!(idx, 2);
        // an empty span (start past the audio, clamped) is skipped
        let (mut idx, mut seek) = (0, 0);
        assert_eq!(next_window(&[(5000, 5000)], &mut idx, &mut seek), None);
    }

    #[test]
    fn progress_counts_frames_inside_spans() {
        let clips = [(100, 250), (1000, 5000)];
        assert_eq!(progress(&clips, 0, 100), (0, 4150));
        assert_eq!(progress(&clips, 0, 200), (100, 4150));
        assert_eq!(progress(&clips, 1, 1000), (150, 4150));
        assert_eq!(progress(&clips, 2, 5000), (4150, 4150));
    }
}
