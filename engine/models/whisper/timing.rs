//! Word timestamps from cross-attention DTW, as openai/whisper `timing.py` computes them:
//! median filter, DTW with its tie-breaking, word splitting and timing, punctuation merging and
//! the per-window post-processing of `add_word_timestamps`.
//!
//! Everything here is host-side over plain slices. The model supplies the pre-softmax
//! cross-attention scores of the alignment heads and the token probabilities; see
//! [`find_alignment`].

use crate::output::result::{Segment, Word};

/// Audio frames per second of the mel spectrogram (SAMPLE_RATE / HOP_LENGTH).
pub const FRAMES_PER_SECOND: f64 = 100.0;
/// Encoder positions (alignment columns) per second: N_SAMPLES_PER_TOKEN = HOP_LENGTH·2 = 320, 16000/320.
pub const TOKENS_PER_SECOND: f64 = 50.0;
/// openai's default `medfilt_width`.
pub const MEDFILT_WIDTH: usize = 7;
/// Punctuation that attaches to the following word (transcribe.py default).
pub const PREPEND_PUNCTUATIONS: &str = "\"'“¿([{-";
/// Punctuation that attaches to the preceding word (transcribe.py default).
pub const APPEND_PUNCTUATIONS: &str = "\"'.。,，!！?？:：”)]}、";
/// Marks whose over-long words are truncated (add_word_timestamps `sentence_end_marks`).
const SENTENCE_END_MARKS: &str = ".。!！?？";

/// Words and the tokens of each, as `split_to_word_tokens` returns them.
pub type WordSplit = (Vec<String>, Vec<Vec<u32>>);

#[derive(Clone, Debug, PartialEq)]
pub struct WordTiming {
    pub word: String,
    pub tokens: Vec<u32>,
    /// Seconds from the start of the window.
    pub start: f64,
    pub end: f64,
    /// Mean probability of the word's tokens.
    pub probability: f64,
}

/// Median filter of odd `width` along the last axis of a row-major `[rows, cols]` array, in place.
///
/// As openai `median_filter`: rows of at most `width / 2` columns are left unchanged; otherwise
/// each row is padded by `width / 2` on both sides with reflection (`F.pad(mode="reflect")`,
/// the edge sample is not repeated) and each output is element `width / 2` of its sorted window.
/// NaN sorts last, as in `torch.sort`.
///
/// # Panics
/// If `width` is even (openai asserts an odd width after the early return; with an even width
/// the output would have one column more than the input), or if `x.len() != rows * cols`.
pub fn median_filter(x: &mut [f32], rows: usize, cols: usize, width: usize) {
    assert_eq!(x.len(), rows * cols, "median_filter: x has {} values, not {rows}×{cols}", x.len());
    let pad = width / 2;
    if cols <= pad {
        return;
    }
    assert!(width > 0 && width % 2 == 1, "median_filter: width {width} must be odd");
    let mut padded = vec![0f32; cols + 2 * pad];
    let mut window = vec![0f32; width];
    for row in x.chunks_exact_mut(cols) {
        for (k, p) in padded.iter_mut().enumerate() {
            // index into the reflected row: -i → i, cols-1+i → cols-1-i
            let i = k as isize - pad as isize;
            let i = if i < 0 {
                (-i) as usize
            } else if i as usize >= cols {
                2 * (cols - 1) - i as usize
            } else {
                i as usize
            };
            *p = row[i];
        }
        for (c, out) in row.iter_mut().enumerate() {
            window.copy_from_slice(&padded[c..c + width]);
            let (_, m, _) = window.select_nth_unstable_by(pad, torch_sort_order);
            *out = *m;
        }
    }
}

/// Ascending with NaN last (`torch.sort`).
fn torch_sort_order(a: &f32, b: &f32) -> std::cmp::Ordering {
    match (a.is_nan(), b.is_nan()) {
        (false, false) => a.partial_cmp(b).unwrap(),
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
    }
}

/// Dynamic time warping over a row-major `[n, m]` cost matrix: openai `dtw_cpu` + `backtrace`.
/// Returns `(text_indices, time_indices)`, the monotonic path from `(0, 0)` to `(n-1, m-1)`.
///
/// Reproduced exactly: the accumulated cost is a float32 array (each step computed in f64 from
/// the f64 input and the f32 predecessor, then stored as f32); a step comes from the diagonal
/// only if it is strictly smaller than both up and left, from up if strictly smaller than both
/// diagonal and left, and from the left otherwise (so every tie goes left except a diagonal/up
/// tie smaller than left, which also goes left). Backtracking forces row 0 to go left and
/// column 0 to go up. With finite costs the path never leaves the matrix; non-finite costs
/// (which openai would turn into index -1) are clamped to index 0.
pub fn dtw(cost: &[f32], n: usize, m: usize) -> (Vec<usize>, Vec<usize>) {
    assert_eq!(cost.len(), n * m, "dtw: cost has {} values, not {n}×{m}", cost.len());
    if n == 0 || m == 0 {
        return (Vec::new(), Vec::new());
    }
    let w = m + 1;
    let mut acc = vec![f32::INFINITY; (n + 1) * w];
    let mut trace = vec![-1i8; (n + 1) * w];
    acc[0] = 0.0;
    for j in 1..=m {
        for i in 1..=n {
            let c0 = acc[(i - 1) * w + j - 1];
            let c1 = acc[(i - 1) * w + j];
            let c2 = acc[i * w + j - 1];
            let (c, t) = if c0 < c1 && c0 < c2 {
                (c0, 0)
            } else if c1 < c0 && c1 < c2 {
                (c1, 1)
            } else {
                (c2, 2)
            };
            acc[i * w + j] = (cost[(i - 1) * m + j - 1] as f64 + c as f64) as f32;
            trace[i * w + j] = t;
        }
    }
    // backtrace
    trace[..w].fill(2);
    for i in 0..=n {
        trace[i * w] = 1;
    }
    let (mut i, mut j) = (n, m);
    let mut text = Vec::with_capacity(n + m);
    let mut time = Vec::with_capacity(n + m);
    while i > 0 || j > 0 {
        text.push(i.saturating_sub(1));
        time.push(j.saturating_sub(1));
        match trace[i * w + j] {
            0 => {
                i -= 1;
                j -= 1;
            }
            1 => i -= 1,
            _ => j -= 1,
        }
    }
    text.reverse();
    time.reverse();
    (text, time)
}

/// Word timings of one window from the alignment heads' cross-attention (openai `find_alignment`
/// after the model pass).
///
/// - `qk`: pre-softmax cross-attention scores of the alignment heads as the model computes them
///   (already scaled by `(d_head)^-0.25` on q and k), row-major `[n_heads, n_tokens,
///   n_frames_total]`, for the teacher-forced sequence `sot_sequence + [no_timestamps] +
///   text_tokens + [eot]` (so `n_tokens == sot_len + text_tokens.len() + 2`).
/// - `num_frames`: mel frames of the segment (before the stride-2 conv); `num_frames / 2`
///   attention columns are used.
/// - `token_probs[i]`: probability of `text_tokens[i]` under the softmax over the text ids
///   `[0, eot)` of the logits at the position before it.
/// - `split`: the tokenizer's `split_to_word_tokens`; it is given `text_tokens + [eot]`.
///
/// Returns one [`WordTiming`] per word (the end-of-text word excluded), times relative to the
/// window start; empty if there are no text tokens or only one word (the end-of-text).
#[allow(clippy::too_many_arguments)]
pub fn find_alignment(
    qk: &[f32],
    n_heads: usize,
    n_tokens: usize,
    n_frames_total: usize,
    num_frames: usize,
    sot_len: usize,
    text_tokens: &[u32],
    eot: u32,
    token_probs: &[f32],
    split: &dyn Fn(&[u32]) -> WordSplit,
    medfilt_width: usize,
    qk_scale: f32,
) -> Vec<WordTiming> {
    if text_tokens.is_empty() {
        return Vec::new();
    }
    assert_eq!(qk.len(), n_heads * n_tokens * n_frames_total, "find_alignment: qk shape");
    assert_eq!(n_tokens, sot_len + text_tokens.len() + 2, "find_alignment: n_tokens ≠ sot + notimestamps + text + eot");
    assert_eq!(token_probs.len(), text_tokens.len(), "find_alignment: one probability per text token");

    let matrix = alignment_matrix(qk, n_heads, n_tokens, n_frames_total, num_frames, medfilt_width, qk_scale);
    let frames = (num_frames / 2).min(n_frames_total);
    let rows = &matrix[sot_len * frames..(n_tokens - 1) * frames];
    let n_rows = n_tokens - 1 - sot_len;
    let neg: Vec<f32> = rows.iter().map(|&v| -v).collect();
    let (text_indices, time_indices) = dtw(&neg, n_rows, frames);

    let mut with_eot = text_tokens.to_vec();
    with_eot.push(eot);
    let (words, word_tokens) = split(&with_eot);
    if word_tokens.len() <= 1 {
        return Vec::new();
    }
    // word_boundaries = pad(cumsum(len(t) for t in word_tokens[:-1]), (1, 0))
    let mut boundaries = vec![0usize];
    for t in &word_tokens[..word_tokens.len() - 1] {
        boundaries.push(boundaries.last().unwrap() + t.len());
    }
    // jump_times: time of the first path step in each text row
    let jump_times: Vec<f64> = (0..text_indices.len())
        .filter(|&k| k == 0 || text_indices[k] != text_indices[k - 1])
        .map(|k| time_indices[k] as f64 / TOKENS_PER_SECOND)
        .collect();
    let probs: Vec<f64> = token_probs.iter().map(|&p| p as f64).collect();

    words
        .into_iter()
        .zip(word_tokens)
        .zip(boundaries.windows(2))
        .map(|((word, tokens), b)| WordTiming {
            word,
            tokens,
            start: jump_times[b[0]],
            end: jump_times[b[1]],
            probability: np_mean(&probs[b[0].min(probs.len())..b[1].min(probs.len())]),
        })
        .collect()
}

/// The `[n_tokens, num_frames / 2]` matrix DTW runs on (before row cropping and negation):
/// crop to `num_frames / 2` columns, `softmax(qk · qk_scale)` over time, z-score each column
/// across tokens (population std), median filter over time, mean over heads.
pub fn alignment_matrix(
    qk: &[f32],
    n_heads: usize,
    n_tokens: usize,
    n_frames_total: usize,
    num_frames: usize,
    medfilt_width: usize,
    qk_scale: f32,
) -> Vec<f32> {
    let frames = (num_frames / 2).min(n_frames_total);
    let mut w = vec![0f32; n_heads * n_tokens * frames];
    for (src, dst) in qk.chunks_exact(n_frames_total).zip(w.chunks_exact_mut(frames)) {
        let row = &src[..frames];
        let max = row.iter().map(|&v| v * qk_scale).fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0f64;
        for (d, &v) in dst.iter_mut().zip(row) {
            let e = (v * qk_scale - max).exp();
            *d = e;
            sum += e as f64;
        }
        let sum = sum as f32;
        for d in dst.iter_mut() {
            *d /= sum;
        }
    }
    for head in w.chunks_exact_mut(n_tokens * frames) {
        for f in 0..frames {
            let mean = (0..n_tokens).map(|t| head[t * frames + f] as f64).sum::<f64>() / n_tokens as f64;
            let var =
                (0..n_tokens).map(|t| (head[t * frames + f] as f64 - mean).powi(2)).sum::<f64>() / n_tokens as f64;
            let (mean, std) = (mean as f32, var.sqrt() as f32);
            for t in 0..n_tokens {
                let v = &mut head[t * frames + f];
                *v = (*v - mean) / std;
            }
        }
    }
    median_filter(&mut w, n_heads * n_tokens, frames, medfilt_width);
    let mut matrix = vec![0f32; n_tokens * frames];
    for (k, m) in matrix.iter_mut().enumerate() {
        let s: f64 = (0..n_heads).map(|h| w[h * n_tokens * frames + k] as f64).sum();
        *m = (s / n_heads as f64) as f32;
    }
    matrix
}

/// `np.mean` of a float64 sequence: numpy's pairwise summation, then division by the length.
pub(crate) fn np_mean(a: &[f64]) -> f64 {
    if a.is_empty() {
        return f64::NAN;
    }
    np_pairwise_sum(a) / a.len() as f64
}

/// numpy `pairwise_sum` (umath loops): sequential below 8 values, 8 accumulators up to 128,
/// halves (at a multiple of 8) above.
fn np_pairwise_sum(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 8 {
        let mut res = -0.0;
        for &v in a {
            res += v;
        }
        res
    } else if n <= 128 {
        let mut r = [0f64; 8];
        r.copy_from_slice(&a[..8]);
        let full = n - n % 8;
        let mut i = 8;
        while i < full {
            for k in 0..8 {
                r[k] += a[i + k];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for &v in &a[full..] {
            res += v;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        np_pairwise_sum(&a[..n2]) + np_pairwise_sum(&a[n2..])
    }
}

/// `np.median`: the middle value, or the mean of the two middle values.
fn np_median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(torch_sort_order_f64);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        np_mean(&s[n / 2 - 1..n / 2 + 1])
    }
}

fn torch_sort_order_f64(a: &f64, b: &f64) -> std::cmp::Ordering {
    a.partial_cmp(b).unwrap_or_else(|| a.is_nan().cmp(&b.is_nan()))
}

/// Python's `str.strip()` whitespace (`str.isspace`): Unicode White_Space plus the
/// information separators U+001C..U+001F.
fn py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

pub(crate) fn py_strip(s: &str) -> &str {
    s.trim_matches(py_space)
}

/// Merge punctuation words into their neighbours (openai `merge_punctuations`). Merged-away
/// entries stay in the list with an empty word and no tokens, keeping their times.
///
/// Python's `in` on strings is a substring test, reproduced here: an empty (or all-space)
/// word counts as punctuation of either kind, and so do runs such as `"("`.
pub fn merge_punctuations(words: &mut [WordTiming], prepended: &str, appended: &str) {
    if words.len() >= 2 {
        // prepended punctuation, right to left
        let mut j = words.len() - 1;
        for i in (0..words.len() - 1).rev() {
            let prev = &words[i];
            if prev.word.starts_with(' ') && prepended.contains(py_strip(&prev.word)) {
                let (word, tokens) = (std::mem::take(&mut words[i].word), std::mem::take(&mut words[i].tokens));
                let following = &mut words[j];
                following.word = word + &following.word;
                following.tokens.splice(0..0, tokens);
            } else {
                j = i;
            }
        }
    }
    // appended punctuation, left to right
    let mut i = 0;
    for j in 1..words.len() {
        if !words[i].word.ends_with(' ') && appended.contains(words[j].word.as_str()) {
            let (word, tokens) = (std::mem::take(&mut words[j].word), std::mem::take(&mut words[j].tokens));
            words[i].word.push_str(&word);
            words[i].tokens.extend(tokens);
        } else {
            i = j;
        }
    }
}

/// Python's `round(x, 2)`: the correctly rounded decimal with ties to even, via Rust's exact
/// float formatting.
pub(crate) fn round2(x: f64) -> f64 {
    format!("{x:.2}").parse().unwrap()
}

/// The text tokens (`< eot`) of each segment, as `add_word_timestamps` concatenates them for
/// [`find_alignment`].
pub fn segment_text_tokens(segments: &[Segment], eot: u32) -> Vec<Vec<u32>> {
    segments.iter().map(|s| s.tokens.iter().copied().filter(|&t| t < eot).collect()).collect()
}

/// The per-window post-processing of openai `add_word_timestamps`, after `find_alignment`.
///
/// - `segments`: the segments decoded from one window (`start`/`end` in absolute seconds,
///   `tokens` as decoded; tokens `>= eot` are ignored);
/// - `alignment`: [`find_alignment`] over the concatenation of their text tokens, times
///   relative to the window (not offset);
/// - `time_offset`: the window start in seconds (`seek * HOP_LENGTH / SAMPLE_RATE`);
/// - `last_speech_timestamp`: end of the last speech before this window (transcribe.py keeps
///   it as the last word end, see [`last_word_end`]).
///
/// Sets each segment's `words` (`score` = word probability; times offset and rounded to
/// 2 decimals) and adjusts segment `start`/`end` as openai does: sentence-mark truncation at
/// 2× the median word duration (median of nonzero durations, at most 0.7 s), punctuation
/// merging, the first/second word after a pause of 4× median, and the 0.5 s rules that prefer
/// the segment's own start/end over a too-long first/last word.
#[allow(clippy::too_many_arguments)]
pub fn add_word_timestamps(
    segments: &mut [Segment],
    mut alignment: Vec<WordTiming>,
    eot: u32,
    time_offset: f64,
    mut last_speech_timestamp: f64,
    prepended: &str,
    appended: &str,
) {
    if segments.is_empty() {
        return;
    }
    let text_tokens_per_segment = segment_text_tokens(segments, eot);
    let durations: Vec<f64> = alignment.iter().map(|t| t.end - t.start).filter(|&d| d != 0.0).collect();
    let median_duration = if durations.is_empty() { 0.0 } else { np_median(&durations) };
    let median_duration = py_min(0.7, median_duration);
    let max_duration = median_duration * 2.0;

    if !durations.is_empty() {
        for i in 1..alignment.len() {
            if alignment[i].end - alignment[i].start > max_duration {
                if SENTENCE_END_MARKS.contains(alignment[i].word.as_str()) {
                    alignment[i].end = alignment[i].start + max_duration;
                } else if SENTENCE_END_MARKS.contains(alignment[i - 1].word.as_str()) {
                    alignment[i].start = alignment[i].end - max_duration;
                }
            }
        }
    }

    merge_punctuations(&mut alignment, prepended, appended);

    let mut word_index = 0;
    for (segment, text_tokens) in segments.iter_mut().zip(&text_tokens_per_segment) {
        let mut saved_tokens = 0;
        let mut words: Vec<Word> = Vec::new();
        while word_index < alignment.len() && saved_tokens < text_tokens.len() {
            let timing = &alignment[word_index];
            if !timing.word.is_empty() {
                words.push(Word {
                    word: timing.word.clone(),
                    start: Some(round2(time_offset + timing.start)),
                    end: Some(round2(time_offset + timing.end)),
                    score: Some(timing.probability),
                    speaker: None,
                });
            }
            saved_tokens += timing.tokens.len();
            word_index += 1;
        }

        if !words.is_empty() {
            let (s0, e0) = (words[0].start.unwrap(), words[0].end.unwrap());
            // the first and second word after a pause are at most twice the median duration
            if e0 - last_speech_timestamp > median_duration * 4.0
                && (e0 - s0 > max_duration || (words.len() > 1 && words[1].end.unwrap() - s0 > max_duration * 2.0))
            {
                if words.len() > 1 && words[1].end.unwrap() - words[1].start.unwrap() > max_duration {
                    let e1 = words[1].end.unwrap();
                    let boundary = py_max(e1 / 2.0, e1 - max_duration);
                    words[0].end = Some(boundary);
                    words[1].start = Some(boundary);
                }
                words[0].start = Some(py_max(0.0, words[0].end.unwrap() - max_duration));
            }

            // prefer the segment-level start timestamp if the first word is too long
            let (s0, e0) = (words[0].start.unwrap(), words[0].end.unwrap());
            if segment.start < e0 && segment.start - 0.5 > s0 {
                words[0].start = Some(py_max(0.0, py_min(e0 - median_duration, segment.start)));
            } else {
                segment.start = s0;
            }

            // prefer the segment-level end timestamp if the last word is too long
            let last = words.len() - 1;
            let (sl, el) = (words[last].start.unwrap(), words[last].end.unwrap());
            if segment.end > sl && segment.end + 0.5 < el {
                words[last].end = Some(py_max(sl + median_duration, segment.end));
            } else {
                segment.end = el;
            }
            last_speech_timestamp = segment.end;
        }
        segment.words = words;
    }
}

/// Python `max(a, b)`: `a` unless `b > a`.
fn py_max(a: f64, b: f64) -> f64 {
    if b > a {
        b
    } else {
        a
    }
}

/// Python `min(a, b)`: `a` unless `b < a`.
fn py_min(a: f64, b: f64) -> f64 {
    if b < a {
        b
    } else {
        a
    }
}

/// openai utils `get_end`: the end of the last word of the segments, else the last segment's
/// end, else None. transcribe.py sets `last_speech_timestamp` to it after each window.
pub fn last_word_end(segments: &[Segment]) -> Option<f64> {
    segments
        .iter()
        .rev()
        .flat_map(|s| s.words.iter().rev())
        .find_map(|w| w.end)
        .or_else(|| segments.last().map(|s| s.end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_median(x: &[f32], width: usize) -> Vec<f32> {
        let n = x.len() as isize;
        let p = (width / 2) as isize;
        (0..n)
            .map(|c| {
                let mut w: Vec<f32> = (c - p..=c + p)
                    .map(|i| {
                        let i = if i < 0 {
                            -i
                        } else if i >= n {
                            2 * (n - 1) - i
                        } else {
                            i
                        };
                        x[i as usize]
                    })
                    .collect();
                w.sort_by(|a, b| a.partial_cmp(b).unwrap());
                w[width / 2]
            })
            .collect()
    }

    #[test]
    fn median_filter_matches_naive() {
        let mut seed = 12345u64;
        let mut rnd = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((seed >> 33) % 7) as f32 - 3.0 // small range → many ties
        };
        for &(cols, width) in &[(1, 1), (2, 3), (3, 3), (4, 7), (7, 7), (10, 7), (31, 5), (50, 7), (5, 9)] {
            let rows = 3;
            let x: Vec<f32> = (0..rows * cols).map(|_| rnd()).collect();
            let mut y = x.clone();
            median_filter(&mut y, rows, cols, width);
            for r in 0..rows {
                let row = &x[r * cols..(r + 1) * cols];
                let want = if cols <= width / 2 { row.to_vec() } else { naive_median(row, width) };
                assert_eq!(&y[r * cols..(r + 1) * cols], &want[..], "cols {cols} width {width}");
            }
        }
    }

    #[test]
    fn median_filter_reflects_edges() {
        // [1 5 2 8 3], width 5: padded 2 5 | 1 5 2 8 3 | 8 2
        let mut x = vec![1.0, 5.0, 2.0, 8.0, 3.0];
        median_filter(&mut x, 1, 5, 5);
        assert_eq!(x, vec![2.0, 5.0, 3.0, 5.0, 3.0]);
        // too short for the padding: unchanged, even for an even width (openai returns first)
        let mut short = vec![3.0, 1.0];
        median_filter(&mut short, 1, 2, 4);
        assert_eq!(short, vec![3.0, 1.0]);
    }

    #[test]
    #[should_panic(expected = "must be odd")]
    fn median_filter_rejects_even_width() {
        let mut x = vec![0.0; 8];
        median_filter(&mut x, 1, 8, 4);
    }

    #[test]
    fn dtw_diagonal() {
        // 3×3 with zeros on the diagonal: straight down the diagonal
        let c = [0.0, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0];
        assert_eq!(dtw(&c, 3, 3), (vec![0, 1, 2], vec![0, 1, 2]));
    }

    #[test]
    fn dtw_all_ties_go_left_first() {
        // all-zero cost: every choice ties. From (1,1) the diagonal (0) beats inf; elsewhere in
        // row 1 "left" wins; in column 1 "up" is the only finite one; in the interior all of
        // c0, c1, c2 are 0 → left. Backtrace from (2,3) goes left to (2,1), then up to (1,1).
        let c = [0.0f32; 6];
        let (text, time) = dtw(&c, 2, 3);
        assert_eq!(text, vec![0, 1, 1, 1]);
        assert_eq!(time, vec![0, 0, 1, 2]);
    }

    #[test]
    fn dtw_diagonal_up_tie_goes_left() {
        // cost rows [0 5] [0 0]: at (2,2) c0 = acc(1,1) = 0, c1 = acc(1,2) = 5, c2 = acc(2,1) = 0.
        // c0 == c2 so neither is strictly smallest → left: path (0,0) (1,0) (1,1).
        let c = [0.0, 5.0, 0.0, 0.0];
        assert_eq!(dtw(&c, 2, 2), (vec![0, 1, 1], vec![0, 0, 1]));
        // make the diagonal strictly better: [0 5] [1 0] → c0 = 0 < c2 = 1 → diagonal.
        let c = [0.0, 5.0, 1.0, 0.0];
        assert_eq!(dtw(&c, 2, 2), (vec![0, 1], vec![0, 1]));
        // diagonal and up tie below left: [0 0] [5 0]. At (2,2): c0 = 0, c1 = acc(1,2) = 0,
        // c2 = acc(2,1) = 5; neither c0 nor c1 is strictly smallest → left, although left is
        // the most expensive: path (0,0) (1,0) (1,1).
        let c = [0.0, 0.0, 5.0, 0.0];
        assert_eq!(dtw(&c, 2, 2), (vec![0, 1, 1], vec![0, 0, 1]));
    }

    #[test]
    fn dtw_tall_matrix_goes_up() {
        let c = [0.0f32; 3];
        assert_eq!(dtw(&c, 3, 1), (vec![0, 1, 2], vec![0, 0, 0]));
    }

    #[test]
    fn np_sum_and_median() {
        let v: Vec<f64> = (0..20).map(|i| 0.1 * i as f64).collect();
        // eight accumulators: sum differs from the naive left fold in the last bits
        let mut r = [0f64; 8];
        for (k, x) in v[..16].iter().enumerate() {
            r[k % 8] += x;
        }
        let want = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7])) + v[16] + v[17] + v[18] + v[19];
        assert_eq!(np_pairwise_sum(&v), want);
        assert_eq!(np_median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(np_median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[test]
    fn round2_is_python_round() {
        assert_eq!(round2(0.125), 0.12); // exact tie → even
        assert_eq!(round2(0.375), 0.38);
        assert_eq!(round2(2.675), 2.67); // 2.67499999… in binary
        assert_eq!(round2(1.005), 1.0);
        assert_eq!(round2(0.3 + 0.02), 0.32);
        assert_eq!(round2(-0.0), 0.0);
    }

    fn wt(word: &str, tokens: &[u32]) -> WordTiming {
        WordTiming { word: word.into(), tokens: tokens.to_vec(), start: 0.0, end: 0.0, probability: 1.0 }
    }

    fn words(v: &[WordTiming]) -> Vec<&str> {
        v.iter().map(|w| w.word.as_str()).collect()
    }

    #[test]
    fn merge_punctuations_cases() {
        let mut a = vec![wt(" \"", &[1]), wt(" Hello", &[2]), wt(",", &[3]), wt(" world", &[4]), wt(".\"", &[5])];
        merge_punctuations(&mut a, PREPEND_PUNCTUATIONS, APPEND_PUNCTUATIONS);
        // ".\"" is not a substring of the appended set, so it stays separate
        assert_eq!(words(&a), vec!["", " \" Hello,", "", " world", ".\""]);
        assert_eq!(a[1].tokens, vec![1, 2, 3]);

        let mut a = vec![wt(" (", &[1]), wt(" a", &[2]), wt(")", &[3]), wt(".", &[4]), wt(" b", &[5]), wt("?", &[6])];
        merge_punctuations(&mut a, PREPEND_PUNCTUATIONS, APPEND_PUNCTUATIONS);
        assert_eq!(words(&a), vec!["", " ( a).", "", "", " b?", ""]);
        assert_eq!(a[1].tokens, vec![1, 2, 3, 4]);

        // a prepended mark without a leading space is not merged forward; two in a row chain
        let mut a = vec![wt("(", &[1]), wt(" \"", &[2]), wt(" (", &[3]), wt(" x", &[4])];
        merge_punctuations(&mut a, PREPEND_PUNCTUATIONS, APPEND_PUNCTUATIONS);
        assert_eq!(words(&a), vec!["(", "", "", " \" ( x"]);
        assert_eq!(a[3].tokens, vec![2, 3, 4]);
        // a word ending with a space keeps following punctuation apart
        let mut a = vec![wt(" a ", &[1]), wt(",", &[2])];
        merge_punctuations(&mut a, PREPEND_PUNCTUATIONS, APPEND_PUNCTUATIONS);
        assert_eq!(words(&a), vec![" a ", ","]);
    }
}
