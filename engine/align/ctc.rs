//! Aligning a known token sequence to CTC emissions (per-frame log-probabilities), two ways.
//!
//! - [`whisperx_trellis`] + [`whisperx_backtrack`] + [`merge_repeats`]: WhisperX's `align()`
//!   (whisperx 3.8.x `alignment.py` `get_trellis`, `backtrack`, `merge_repeats`, from the
//!   torchaudio tutorial), reproduced step for step for `whisperx-compat` mode. It has no blank
//!   states: a token is scored on one frame and the frames after it count as "staying" on it,
//!   so a character runs until the next one is emitted and words absorb the pauses after them.
//! - [`forced_align`]: true CTC Viterbi with blank states (torchaudio `forced_align`: states
//!   `0..2L+1`, even ones blank, odd state `2i+1` token `i`; a skip over a blank only between
//!   different tokens), so a token spans only the frames that emit it. It can search inside a
//!   band around the diagonal, so a long segment needs memory in proportion to its frames times
//!   the band, not to frames times tokens.

use crate::error::{Error, Result};

/// Per-frame log-probabilities `[frames, classes]`, row-major.
#[derive(Clone, Copy, Debug)]
pub struct Emissions<'a> {
    pub data: &'a [f32],
    pub frames: usize,
    pub classes: usize,
}

impl<'a> Emissions<'a> {
    pub fn new(data: &'a [f32], frames: usize, classes: usize) -> Result<Self> {
        if data.len() != frames * classes {
            return Err(Error::Other(format!(
                "emissions: {} values for {frames} frames of {classes} classes",
                data.len()
            )));
        }
        Ok(Emissions { data, frames, classes })
    }

    #[inline]
    pub fn at(&self, t: usize, c: usize) -> f32 {
        self.data[t * self.classes + c]
    }
}

/// WhisperX `get_trellis`: `[frames + 1, tokens + 1]` (row-major) with
/// `tr[t+1][j] = max(tr[t][j] + lp_t(blank), tr[t][j−1] + lp_t(token_j))`. Column 0 is the
/// cumulative blank log-prob (summed as torch's `cumsum` does on the CPU: in f64, each step
/// stored as f32); row 0 is −∞ past column 0; the last `tokens` rows of column 0 are +∞ (as
/// WhisperX sets them; they never reach the last column).
pub fn whisperx_trellis(em: &Emissions<'_>, tokens: &[usize], blank: usize) -> Vec<f32> {
    let (t_n, j_n) = (em.frames, tokens.len());
    let w = j_n + 1;
    let mut tr = vec![0.0f32; (t_n + 1) * w];
    let mut acc = 0.0f64;
    for t in 0..t_n {
        acc += em.at(t, blank) as f64;
        tr[(t + 1) * w] = acc as f32;
    }
    tr[1..w].fill(f32::NEG_INFINITY);
    // trellis[-num_tokens:, 0] = inf
    for t in (t_n + 1).saturating_sub(j_n)..=t_n {
        tr[t * w] = f32::INFINITY;
    }
    for t in 0..t_n {
        let blank_lp = em.at(t, blank);
        for j in 1..w {
            let stay = tr[t * w + j] + blank_lp;
            let change = tr[t * w + j - 1] + em.at(t, tokens[j - 1]);
            // torch.maximum: NaN wins; otherwise the larger.
            tr[(t + 1) * w + j] = if stay.is_nan() || change.is_nan() { f32::NAN } else { stay.max(change) };
        }
    }
    tr
}

/// One frame of WhisperX's path: the token it belongs to and the probability of what it emitted.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    pub token_index: usize,
    pub time_index: usize,
    /// `exp` of the emitted class's log-prob (the token on a change, blank on a stay), as
    /// WhisperX's `.exp().item()` gives it (f32, then a Python float).
    pub score: f64,
}

/// WhisperX `backtrack`: from the first maximum of the last column back to column 0, moving to
/// the previous token only when that scores strictly better. None when the frames run out first
/// (WhisperX then leaves the segment unaligned).
pub fn whisperx_backtrack(tr: &[f32], em: &Emissions<'_>, tokens: &[usize], blank: usize) -> Option<Vec<Point>> {
    let w = tokens.len() + 1;
    let rows = em.frames + 1;
    let mut j = tokens.len();
    // torch.argmax: the first index of the maximum (NaN counts as the maximum).
    let mut t_start = 0;
    for t in 0..rows {
        let (v, best) = (tr[t * w + j], tr[t_start * w + j]);
        if v.is_nan() && !best.is_nan() || v > best {
            t_start = t;
        }
    }
    let mut path = Vec::new();
    let mut completed = false;
    for t in (1..=t_start).rev() {
        let stayed = tr[(t - 1) * w + j] + em.at(t - 1, blank);
        let changed = tr[(t - 1) * w + j - 1] + em.at(t - 1, tokens[j - 1]);
        let emitted = if changed > stayed { tokens[j - 1] } else { blank };
        path.push(Point { token_index: j - 1, time_index: t - 1, score: em.at(t - 1, emitted).exp() as f64 });
        if changed > stayed {
            j -= 1;
            if j == 0 {
                completed = true;
                break;
            }
        }
    }
    if !completed {
        return None;
    }
    path.reverse();
    Some(path)
}

/// A token's span of frames `[start, end)` and its score.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TokenSpan {
    pub token_index: usize,
    pub start: usize,
    pub end: usize,
    pub score: f64,
}

/// WhisperX `merge_repeats`: consecutive points of one token become one span, scored by their
/// mean probability.
pub fn merge_repeats(path: &[Point]) -> Vec<TokenSpan> {
    let mut out = Vec::new();
    let mut i1 = 0;
    while i1 < path.len() {
        let mut i2 = i1;
        while i2 < path.len() && path[i1].token_index == path[i2].token_index {
            i2 += 1;
        }
        let score = path[i1..i2].iter().map(|p| p.score).sum::<f64>() / (i2 - i1) as f64;
        out.push(TokenSpan {
            token_index: path[i1].token_index,
            start: path[i1].time_index,
            end: path[i2 - 1].time_index + 1,
            score,
        });
        i1 = i2;
    }
    out
}

/// What [`forced_align`] found: per token, its frames and mean emission probability.
#[derive(Clone, Debug, PartialEq)]
pub struct CtcAlignment {
    pub spans: Vec<TokenSpan>,
    /// Log-probability of the best path.
    pub log_prob: f32,
}

/// Backpointer choices, two bits each.
const STAY: u8 = 0;
const FROM_PREVIOUS: u8 = 1;
const SKIP_BLANK: u8 = 2;

/// The smallest number of frames CTC needs for `tokens`: one per token, plus a blank between
/// each pair of equal neighbours.
pub fn min_frames(tokens: &[usize]) -> usize {
    tokens.len() + tokens.windows(2).filter(|w| w[0] == w[1]).count()
}

/// CTC Viterbi alignment of `tokens` to `em` (torchaudio `forced_align` semantics): states
/// `0..2L+1`, even states blank, state `2i+1` token `i`; `α_t(s) = max(α_{t−1}(s),
/// α_{t−1}(s−1), α_{t−1}(s−2)) + lp_t(label(s))`, the skip over a blank only into a token that
/// differs from the one before; ties keep the state (a skip only when strictly best, the step from
/// `s−1` only when it strictly beats staying); the path ends on the last token unless the final
/// blank is strictly better.
///
/// `band`: with `Some(w)`, only states within `w` of a guide path are searched (the backpointers
/// then take `T·(2w+1)` two-bit cells, and a 2-hour segment a few hundred MB whatever its text).
/// The guide follows the emissions' greedy decoding (see `guide_path`), so it waits through
/// silences and hurries through speech. When the best
/// path touches the band's edge the search runs again with the band doubled. This finds the
/// unbanded path whenever that path keeps within the final band of the guide, which holds for
/// speech (the tests check it on emissions drawn from known alignments); on emissions without
/// that structure the banded path may score lower. Errors when there are fewer frames than the
/// tokens need.
pub fn forced_align(em: &Emissions<'_>, tokens: &[usize], blank: usize, band: Option<usize>) -> Result<CtcAlignment> {
    let (t_n, l) = (em.frames, tokens.len());
    if l == 0 {
        return Ok(CtcAlignment { spans: Vec::new(), log_prob: (0..t_n).map(|t| em.at(t, blank)).sum() });
    }
    let need = min_frames(tokens);
    if t_n < need {
        return Err(Error::Other(format!("{l} tokens need at least {need} frames, the audio has {t_n}")));
    }
    if tokens.iter().chain([&blank]).any(|&c| c >= em.classes) {
        return Err(Error::Other(format!("a token id is not below the model's {} classes", em.classes)));
    }
    let s_n = 2 * l + 1;
    let guide = guide_path(em, blank, s_n);
    let mut width = band.unwrap_or(s_n);
    loop {
        let full = width >= s_n;
        let (result, touched) = viterbi(em, tokens, blank, if full { None } else { Some((width, &guide)) });
        match result {
            Some(a) if full || !touched => return Ok(a),
            _ if full => return Err(Error::Other("no CTC path fits the frames".into())),
            _ => width = (width * 2).min(s_n),
        }
    }
}

/// The guide of a banded search: for each frame, the state a path would be in if it moved through
/// the tokens as the greedy (argmax) decoding of the emissions does, scaled to the number of
/// tokens: each new non-blank label it emits moves the guide on. It waits through silences and
/// hurries through speech; without any non-blank argmax it is the straight diagonal.
fn guide_path(em: &Emissions<'_>, blank: usize, s_n: usize) -> Vec<usize> {
    let mut emitted = Vec::with_capacity(em.frames);
    let (mut count, mut previous) = (0usize, blank);
    for t in 0..em.frames {
        let row = &em.data[t * em.classes..(t + 1) * em.classes];
        let label = crate::backend::token_choice::argmax(row) as usize;
        if label != blank && label != previous {
            count += 1;
        }
        previous = label;
        emitted.push(count);
    }
    let tokens = (s_n - 1) / 2;
    if count == 0 {
        let last = em.frames.saturating_sub(1).max(1);
        return (0..em.frames).map(|t| t * (s_n - 1) / last).collect();
    }
    // After k of `count` emissions the path is about k·L/count tokens in: the blank after them.
    emitted.iter().map(|&k| ((2 * k * tokens) as f64 / count as f64).round() as usize).map(|s| s.min(s_n - 1)).collect()
}

/// One Viterbi pass, within `band` (width, guide) when given; returns the alignment (None when
/// no path fits the band) and whether the chosen path touched the band's edge.
fn viterbi(
    em: &Emissions<'_>,
    tokens: &[usize],
    blank: usize,
    band: Option<(usize, &[usize])>,
) -> (Option<CtcAlignment>, bool) {
    let (t_n, l) = (em.frames, tokens.len());
    let s_n = 2 * l + 1;
    let label = |s: usize| if s.is_multiple_of(2) { blank } else { tokens[s / 2] };
    let skip_ok = |s: usize| s % 2 == 1 && s >= 3 && tokens[s / 2] != tokens[s / 2 - 1];
    // The states each frame can be in: reachable from the start (s ≤ 2t + 1) and able to reach
    // the end (s ≥ S − 2 − 2(T − 1 − t)), within the band around the diagonal.
    let range = |t: usize| -> (usize, usize) {
        let lo_reach = (s_n as isize - 2 - 2 * (t_n as isize - 1 - t as isize)).max(0) as usize;
        let hi_reach = (2 * t + 1).min(s_n - 1);
        match band {
            None => (lo_reach, hi_reach),
            Some((w, guide)) => (lo_reach.max(guide[t].saturating_sub(w)), hi_reach.min(guide[t] + w)),
        }
    };
    let cells: Vec<(usize, usize)> = (0..t_n).map(range).collect();
    if cells.iter().any(|&(lo, hi)| lo > hi) {
        return (None, false);
    }
    // Backpointers, two bits per state of each frame's range.
    let offsets: Vec<usize> = cells
        .iter()
        .scan(0usize, |acc, &(lo, hi)| {
            let at = *acc;
            *acc += hi - lo + 1;
            Some(at)
        })
        .collect();
    let total = offsets.last().map_or(0, |&o| o + cells[t_n - 1].1 - cells[t_n - 1].0 + 1);
    let mut back = vec![0u8; total.div_ceil(4)];
    let set = |back: &mut [u8], i: usize, v: u8| back[i / 4] |= v << ((i % 4) * 2);
    let get = |back: &[u8], i: usize| (back[i / 4] >> ((i % 4) * 2)) & 3;
    let neg = f32::NEG_INFINITY;
    let mut prev = vec![neg; s_n];
    let mut cur = vec![neg; s_n];
    let (lo0, hi0) = cells[0];
    for (s, p) in prev.iter_mut().enumerate().take(hi0.min(1) + 1).skip(lo0) {
        *p = em.at(0, label(s));
    }
    for t in 1..t_n {
        let (lo, hi) = cells[t];
        cur.fill(neg);
        for s in lo..=hi {
            let stay = prev[s];
            let from_prev = if s >= 1 { prev[s - 1] } else { neg };
            let skip = if skip_ok(s) { prev[s - 2] } else { neg };
            let (best, choice) = if skip > stay.max(from_prev) {
                (skip, SKIP_BLANK)
            } else if from_prev > stay {
                (from_prev, FROM_PREVIOUS)
            } else {
                (stay, STAY)
            };
            if best == neg {
                continue;
            }
            cur[s] = best + em.at(t, label(s));
            set(&mut back, offsets[t] + s - lo, choice);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    let (last_token, final_blank) = (prev[s_n - 2], prev[s_n - 1]);
    let mut s = if final_blank > last_token { s_n - 1 } else { s_n - 2 };
    let log_prob = prev[s];
    if log_prob == neg {
        return (None, false);
    }
    // Walk back, recording the state of every frame.
    let mut states = vec![0usize; t_n];
    let mut touched = false;
    for t in (0..t_n).rev() {
        states[t] = s;
        let (lo, hi) = cells[t];
        if band.is_some()
            && (s == lo && lo > range_unbanded(t, t_n, s_n).0 || s == hi && hi < range_unbanded(t, t_n, s_n).1)
        {
            touched = true;
        }
        if t > 0 {
            match get(&back, offsets[t] + s - lo) {
                SKIP_BLANK => s -= 2,
                FROM_PREVIOUS => s -= 1,
                _ => {}
            }
        }
    }
    // Token spans: the frames spent in each token's state, scored by their mean probability.
    let mut spans: Vec<TokenSpan> = Vec::with_capacity(l);
    for (t, &s) in states.iter().enumerate() {
        if s % 2 == 0 {
            continue;
        }
        let i = s / 2;
        let p = em.at(t, tokens[i]).exp() as f64;
        match spans.last_mut() {
            Some(span) if span.token_index == i => {
                span.end = t + 1;
                span.score += p;
            }
            _ => spans.push(TokenSpan { token_index: i, start: t, end: t + 1, score: p }),
        }
    }
    for span in &mut spans {
        span.score /= (span.end - span.start) as f64;
    }
    (Some(CtcAlignment { spans, log_prob }), touched)
}

/// The states frame `t` can be in without a band.
fn range_unbanded(t: usize, t_n: usize, s_n: usize) -> (usize, usize) {
    let lo = (s_n as isize - 2 - 2 * (t_n as isize - 1 - t as isize)).max(0) as usize;
    (lo, (2 * t + 1).min(s_n - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLANK: usize = 0;

    /// Emissions over `classes` where frame t puts probability `hi` on `peaks[t]` and spreads the
    /// rest evenly.
    fn peaky(peaks: &[usize], classes: usize, hi: f32) -> Vec<f32> {
        let lo = (1.0 - hi) / (classes - 1) as f32;
        peaks.iter().flat_map(|&p| (0..classes).map(move |c| if c == p { hi.ln() } else { lo.ln() })).collect()
    }

    /// "hello" as tokens h=1 e=2 l=3 o=4, spoken with blanks around, over `classes` 5.
    fn hello() -> Vec<usize> {
        vec![1, 2, 3, 3, 4]
    }

    #[test]
    fn ctc_viterbi_gives_each_letter_only_its_own_frames() {
        // Frames: 10 blanks, then h, blank, e, blank, l, blank, l, blank, o, then 6 blanks.
        let mut peaks = vec![BLANK; 10];
        peaks.extend([1, 0, 2, 0, 3, 0, 3, 0, 4]);
        peaks.extend([BLANK; 6]);
        let data = peaky(&peaks, 5, 0.9);
        let em = Emissions::new(&data, peaks.len(), 5).unwrap();
        let a = forced_align(&em, &hello(), BLANK, None).unwrap();
        let spans: Vec<(usize, usize)> = a.spans.iter().map(|s| (s.start, s.end)).collect();
        assert_eq!(spans, [(10, 11), (12, 13), (14, 15), (16, 17), (18, 19)]);
        assert!(a.spans.iter().all(|s| (s.score - 0.9).abs() < 1e-6));
    }

    #[test]
    fn whisperx_trellis_runs_each_letter_to_the_next_one() {
        // The same emissions through WhisperX's trellis: a letter keeps the blank frames after it
        // (h [10, 12), e [12, 14), ...), and the last letter the frames that remain up to the
        // trellis's best end.
        let mut peaks = vec![BLANK; 10];
        peaks.extend([1, 0, 2, 0, 3, 0, 3, 0, 4]);
        peaks.extend([BLANK; 6]);
        let data = peaky(&peaks, 5, 0.9);
        let em = Emissions::new(&data, peaks.len(), 5).unwrap();
        let tr = whisperx_trellis(&em, &hello(), BLANK);
        let path = whisperx_backtrack(&tr, &em, &hello(), BLANK).unwrap();
        let spans: Vec<(usize, usize)> = merge_repeats(&path).iter().map(|s| (s.start, s.end)).collect();
        assert_eq!(&spans[..4], [(10, 12), (12, 14), (14, 16), (16, 18)]);
        assert_eq!(spans[4].0, 18);
    }

    #[test]
    fn letters_held_over_several_frames_keep_them_under_ctc_and_collapse_under_whisperx() {
        // Each letter held 3 frames, a blank between them (the shared doc's second experiment).
        let mut peaks = vec![BLANK; 10];
        for (i, tok) in hello().into_iter().enumerate() {
            if i > 0 {
                peaks.push(BLANK);
            }
            peaks.extend([tok; 3]);
        }
        peaks.extend([BLANK; 4]);
        let data = peaky(&peaks, 5, 0.9);
        let em = Emissions::new(&data, peaks.len(), 5).unwrap();
        let ctc: Vec<(usize, usize)> =
            forced_align(&em, &hello(), BLANK, None).unwrap().spans.iter().map(|s| (s.start, s.end)).collect();
        assert_eq!(ctc, [(10, 13), (14, 17), (18, 21), (22, 25), (26, 29)]);
        let tr = whisperx_trellis(&em, &hello(), BLANK);
        let wx: Vec<(usize, usize)> = merge_repeats(&whisperx_backtrack(&tr, &em, &hello(), BLANK).unwrap())
            .iter()
            .map(|s| (s.start, s.end))
            .collect();
        // WhisperX's letters crowd into the first letter's frames: the text is pulled early.
        assert!(wx[4].0 < 26, "{wx:?}");
    }

    #[test]
    fn repeated_letters_need_a_blank_between_them_and_too_few_frames_are_an_error() {
        assert_eq!(min_frames(&hello()), 6);
        let data = peaky(&[1, 2, 3, 3, 4], 5, 0.9);
        let em = Emissions::new(&data, 5, 5).unwrap();
        let e = forced_align(&em, &hello(), BLANK, None).unwrap_err().to_string();
        assert!(e.contains("at least 6 frames"), "{e}");
        // WhisperX's trellis has no such rule: it aligns "ll" on adjacent frames.
        let tr = whisperx_trellis(&em, &hello(), BLANK);
        assert!(whisperx_backtrack(&tr, &em, &hello(), BLANK).is_some());
    }

    #[test]
    fn whisperx_backtrack_fails_when_the_frames_run_out() {
        // Fewer frames than tokens: the trellis never reaches the first token going back.
        let data = peaky(&[1, 2], 5, 0.9);
        let em = Emissions::new(&data, 2, 5).unwrap();
        let tr = whisperx_trellis(&em, &hello(), BLANK);
        assert!(whisperx_backtrack(&tr, &em, &hello(), BLANK).is_none());
    }

    #[test]
    fn ties_keep_the_state_and_the_last_token_wins_a_tie_with_the_final_blank() {
        // Uniform emissions: every path has the same score; the tie rules pick the one that stays
        // as long as possible in each state, ending on the last token, not the final blank.
        let data = vec![(0.2f32).ln(); 6 * 5];
        let em = Emissions::new(&data, 6, 5).unwrap();
        let a = forced_align(&em, &[1, 2], BLANK, None).unwrap();
        assert_eq!(a.spans.last().unwrap().end, 6, "{:?}", a.spans);
    }

    /// Deterministic pseudo-random log-softmax rows.
    fn random_emissions(frames: usize, classes: usize, seed: u64) -> Vec<f32> {
        let mut x = seed | 1;
        let mut out = Vec::with_capacity(frames * classes);
        for _ in 0..frames {
            let row: Vec<f32> = (0..classes)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x % 1000) as f32 / 100.0
                })
                .collect();
            let m = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
            let lse = m + row.iter().map(|v| (v - m).exp()).sum::<f32>().ln();
            out.extend(row.iter().map(|v| v - lse));
        }
        out
    }

    /// Emissions drawn from a known alignment of `tokens`: speech-like, with long silences and
    /// uneven rates; each frame peaks on its true label under random noise.
    fn speech_like(tokens: &[usize], classes: usize, seed: u64) -> (Vec<f32>, usize) {
        let mut x = seed | 1;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut labels = vec![BLANK; 30 + (next() % 200) as usize];
        for (i, &tok) in tokens.iter().enumerate() {
            if i > 0 && (tokens[i - 1] == tok || next() % 3 == 0) {
                labels.extend(std::iter::repeat_n(BLANK, 1 + (next() % 4) as usize));
            }
            if next() % 17 == 0 {
                labels.extend(std::iter::repeat_n(BLANK, 50 + (next() % 300) as usize));
                // a pause
            }
            labels.extend(std::iter::repeat_n(tok, 1 + (next() % 3) as usize));
        }
        labels.extend(std::iter::repeat_n(BLANK, 20 + (next() % 100) as usize));
        let frames = labels.len();
        let mut data = Vec::with_capacity(frames * classes);
        for &lab in &labels {
            let row: Vec<f32> =
                (0..classes).map(|c| (next() % 1000) as f32 / 250.0 + if c == lab { 5.0 } else { 0.0 }).collect();
            let m = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
            let lse = m + row.iter().map(|v| (v - m).exp()).sum::<f32>().ln();
            data.extend(row.iter().map(|v| v - lse));
        }
        (data, frames)
    }

    #[test]
    fn a_band_around_the_guide_finds_the_unbanded_path_on_speech() {
        let classes = 12;
        for seed in 1..25u64 {
            let tokens: Vec<usize> = (0..150).map(|i| 1 + (i * 7 + seed as usize * 3) % (classes - 1)).collect();
            let (data, frames) = speech_like(&tokens, classes, seed);
            let em = Emissions::new(&data, frames, classes).unwrap();
            let full = forced_align(&em, &tokens, BLANK, None).unwrap();
            for w in [8, 32, 128] {
                let banded = forced_align(&em, &tokens, BLANK, Some(w)).unwrap();
                assert_eq!(banded, full, "seed {seed} band {w}");
            }
        }
    }

    #[test]
    fn on_structureless_emissions_a_band_gives_a_valid_path_no_better_than_the_best() {
        for seed in 1..20u64 {
            let (frames, classes) = (400, 12);
            let data = random_emissions(frames, classes, seed);
            let em = Emissions::new(&data, frames, classes).unwrap();
            let tokens: Vec<usize> = (0..60).map(|i| 1 + (i * 7 + seed as usize) % (classes - 1)).collect();
            let full = forced_align(&em, &tokens, BLANK, None).unwrap();
            let banded = forced_align(&em, &tokens, BLANK, Some(4)).unwrap();
            assert!(banded.log_prob <= full.log_prob + 1e-3, "seed {seed}");
            // Every token, in order, on frames of its own.
            assert_eq!(banded.spans.len(), tokens.len());
            for (i, pair) in banded.spans.windows(2).enumerate() {
                assert!(pair[0].token_index == i && pair[0].end <= pair[1].start && pair[0].start < pair[0].end);
            }
        }
    }

    #[test]
    fn ctc_spans_match_a_brute_force_search_on_small_cases() {
        // Every state sequence of a short input, scored exhaustively: Viterbi's log-prob is the best.
        for seed in 1..30u64 {
            let (frames, classes) = (6, 4);
            let data = random_emissions(frames, classes, seed);
            let em = Emissions::new(&data, frames, classes).unwrap();
            let tokens = [1 + seed as usize % 3, 1 + (seed as usize / 3) % 3];
            let a = forced_align(&em, &tokens, BLANK, None).unwrap();
            let best = brute_force(&em, &tokens);
            assert!((a.log_prob - best).abs() < 1e-4, "seed {seed}: {} vs {best}", a.log_prob);
        }
    }

    /// The best CTC path score of `tokens`, by enumerating every label sequence over the frames.
    fn brute_force(em: &Emissions<'_>, tokens: &[usize]) -> f32 {
        let classes = em.classes;
        let mut best = f32::NEG_INFINITY;
        let n = classes.pow(em.frames as u32);
        for code in 0..n {
            let mut c = code;
            let labels: Vec<usize> = (0..em.frames)
                .map(|_| {
                    let v = c % classes;
                    c /= classes;
                    v
                })
                .collect();
            // Collapse: merge repeats, drop blanks.
            let mut collapsed = Vec::new();
            let mut last = None;
            for &lab in &labels {
                if Some(lab) != last && lab != BLANK {
                    collapsed.push(lab);
                }
                last = Some(lab);
            }
            if collapsed == tokens {
                let score: f32 = labels.iter().enumerate().map(|(t, &lab)| em.at(t, lab)).sum();
                best = best.max(score);
            }
        }
        best
    }
}
