//! Characters → words → sentences, as WhisperX's `align()` assembles them (`alignment.py`
//! L304-417 and `utils.py` `interpolate_nans`), with the semantics of the pandas and numpy calls
//! it makes: `min`/`max` skip NaN, `mean` sums pairwise (numpy's `add.reduce`), a numpy float
//! rounds by `rint(x·1000)/1000` while a Python float rounds correctly, `interpolate` then
//! `ffill`/`bfill`, and `groupby` drops NaN keys and sorts.

use std::str::FromStr;

use super::text::{py_isspace, without_spaces};
use crate::error::{Error, Result};
use crate::output::result::{CharAlignment, Segment, Word};

/// How missing word and sentence times are filled (WhisperX `interpolate_method`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Interpolate {
    /// pandas `interpolate(method="nearest")` (scipy `interp1d(kind="nearest")`: the nearest
    /// valid neighbour by position, the earlier one on a tie), then `ffill().bfill()`.
    #[default]
    Nearest,
    /// pandas `interpolate(method="linear")` (numpy `interp` over positions), then
    /// `ffill().bfill()`.
    Linear,
    /// Leave them missing.
    Ignore,
}

impl Interpolate {
    /// WhisperX's names for the methods (`--interpolate_method`), in this order.
    pub const NAMES: [&'static str; 3] = ["nearest", "linear", "ignore"];
}

impl FromStr for Interpolate {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "nearest" => Ok(Interpolate::Nearest),
            "linear" => Ok(Interpolate::Linear),
            "ignore" => Ok(Interpolate::Ignore),
            _ => Err(Error::Other(format!(
                "interpolate_method {:?}: expected one of {}",
                s.chars().take(32).collect::<String>(),
                Interpolate::NAMES.join(", ")
            ))),
        }
    }
}

/// One aligned character: times in seconds and score, already rounded as WhisperX rounds them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CharTime {
    pub start: f64,
    pub end: f64,
    pub score: f64,
}

/// Python's `round(x, 3)` on a float: the decimal with 3 places nearest to the exact binary
/// value (ties to even), read back as the nearest double. Rust's fixed-precision formatting is
/// exact with the same tie rule, and parsing is correctly rounded.
pub fn py_round3(x: f64) -> f64 {
    if !x.is_finite() {
        return x;
    }
    format!("{x:.3}").parse().unwrap_or(x)
}

/// `round(x, 3)` on a numpy float64 (what pandas' `mean()` returns): numpy multiplies by 1000,
/// rounds half to even, and divides, which is not always the correctly rounded value.
pub fn np_round3(x: f64) -> f64 {
    (x * 1000.0).round_ties_even() / 1000.0
}

/// numpy's pairwise summation of float64 (`add.reduce` on a contiguous array, which pandas'
/// `sum` and `mean` use): under 8 values in order; up to 128 in 8 interleaved partial sums;
/// above that halves (cut at a multiple of 8), summed recursively.
pub fn pairwise_sum(a: &[f64]) -> f64 {
    const BLOCK: usize = 128;
    let n = a.len();
    if n < 8 {
        a.iter().fold(0.0, |s, &x| s + x)
    } else if n <= BLOCK {
        let mut r = [0.0f64; 8];
        r.copy_from_slice(&a[..8]);
        let whole = n - n % 8;
        for chunk in a[8..whole].chunks_exact(8) {
            for (acc, &x) in r.iter_mut().zip(chunk) {
                *acc += x;
            }
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for &x in &a[whole..] {
            res += x;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        pairwise_sum(&a[..n2]) + pairwise_sum(&a[n2..])
    }
}

/// pandas `Series.mean()` of float64 (skipna): NaN counted as 0 in a pairwise sum, divided by the
/// number of valid values; NaN when there are none.
pub fn nanmean(values: &[f64]) -> f64 {
    let filled: Vec<f64> = values.iter().map(|v| if v.is_nan() { 0.0 } else { *v }).collect();
    let count = values.iter().filter(|v| !v.is_nan()).count();
    pairwise_sum(&filled) / count as f64
}

/// pandas `min()` (skipna): NaN when no value is valid.
fn nanmin(values: impl Iterator<Item = f64>) -> f64 {
    values.filter(|v| !v.is_nan()).fold(f64::NAN, |m, v| if m.is_nan() || v < m { v } else { m })
}

fn nanmax(values: impl Iterator<Item = f64>) -> f64 {
    values.filter(|v| !v.is_nan()).fold(f64::NAN, |m, v| if m.is_nan() || v > m { v } else { m })
}

/// WhisperX `utils.interpolate_nans` (`utils.py` L470-476): with `ignore` nothing; with more than
/// one valid value, pandas `interpolate(method)` (which leaves leading NaNs), then `ffill()`
/// and `bfill()`; with one or none, only `ffill().bfill()`.
pub fn interpolate_nans(x: &[f64], method: Interpolate) -> Vec<f64> {
    let mut out = x.to_vec();
    if method == Interpolate::Ignore {
        return out;
    }
    let valid: Vec<usize> = (0..x.len()).filter(|&i| !x[i].is_nan()).collect();
    if valid.len() > 1 {
        for pair in valid.windows(2) {
            let (p, q) = (pair[0], pair[1]);
            for (i, slot) in out.iter_mut().enumerate().take(q).skip(p + 1) {
                *slot = match method {
                    // scipy's bounds are the midpoints p/2 + q/2, searched with side="left": a
                    // position on a midpoint takes the earlier value.
                    Interpolate::Nearest => {
                        if (i as f64) <= p as f64 / 2.0 + q as f64 / 2.0 {
                            x[p]
                        } else {
                            x[q]
                        }
                    }
                    Interpolate::Linear => np_interp(i as f64, p as f64, q as f64, x[p], x[q]),
                    Interpolate::Ignore => unreachable!(),
                };
            }
        }
    }
    // ffill, then bfill.
    let mut last = f64::NAN;
    for v in out.iter_mut() {
        if v.is_nan() {
            *v = last;
        } else {
            last = *v;
        }
    }
    let mut next = f64::NAN;
    for v in out.iter_mut().rev() {
        if v.is_nan() {
            *v = next;
        } else {
            next = *v;
        }
    }
    out
}

/// numpy `interp` between two points (`compiled_base.c` `arr_interp`): `slope·(x − x0) + y0`,
/// from the other end if that is NaN, `y0` if both are NaN and the ends are equal.
fn np_interp(x: f64, x0: f64, x1: f64, y0: f64, y1: f64) -> f64 {
    let slope = (y1 - y0) / (x1 - x0);
    let mut r = slope * (x - x0) + y0;
    if r.is_nan() {
        r = slope * (x - x1) + y1;
        if r.is_nan() && y0 == y1 {
            r = y0;
        }
    }
    r
}

/// WhisperX's word index of each character (WX L306-329): it increments after every character
/// in ja/zh, and elsewhere after a character followed by `' '` (so a space belongs to the word
/// after it) and after the last character.
pub fn word_indices(chars: &[char], language: &str) -> Vec<usize> {
    let mut idx = 0;
    let mut out = Vec::with_capacity(chars.len());
    for cdx in 0..chars.len() {
        out.push(idx);
        if without_spaces(language) || cdx + 1 == chars.len() || chars[cdx + 1] == ' ' {
            idx += 1;
        }
    }
    out
}

/// What [`assemble`] needs besides the characters.
#[derive(Clone, Copy, Debug)]
pub struct Assembly<'a> {
    pub language: &'a str,
    pub interpolate: Interpolate,
    pub return_chars: bool,
    /// The segment's `avg_logprob`, carried into each sentence (WX L229-230, L390-391, L410-411).
    pub avg_logprob: Option<f64>,
}

/// A sentence before the merge.
struct Sentence {
    text: String,
    start: f64,
    end: f64,
    words: Vec<Word>,
    chars: Vec<CharAlignment>,
}

fn to_option(v: f64) -> Option<f64> {
    (!v.is_nan()).then_some(v)
}

/// One aligned segment's characters (`times[i]` for `chars[i]`) → its sentences with words
/// (WX L304-417):
/// - each sentence `(start, end)` of `sentences` (character offsets from the sentence splitter,
///   on the raw text) takes the characters with index in `[start, end]`, the end INCLUDED
///   (L336-338), and the text `chars[start..end]` (L340);
/// - sentence start = min over its characters, end = max over those that are not `' '`
///   (L341-343);
/// - each word (by [`word_indices`], in order) with non-empty stripped text: start = min, end =
///   max over its characters that are not `' '`, score = numpy-rounded mean; NaN fields left
///   out (L346-369);
/// - missing word times filled by [`interpolate_nans`] when some word of the sentence has times
///   (L371-382);
/// - sentence starts and ends filled the same way across the segment (L401-403);
/// - sentences with the same (start, end) merged (texts joined by a space, or nothing in ja/zh;
///   words and chars concatenated), ordered by (start, end), and those without times DROPPED
///   (pandas `groupby`, L404-412).
pub fn assemble(
    chars: &[char],
    times: &[Option<CharTime>],
    sentences: &[(usize, usize)],
    a: &Assembly<'_>,
) -> Vec<Segment> {
    let word_idx = word_indices(chars, a.language);
    let field = |i: usize, f: fn(&CharTime) -> f64| times[i].as_ref().map_or(f64::NAN, f);
    let mut rows = Vec::with_capacity(sentences.len());
    for &(s_start, s_end) in sentences {
        let curr: Vec<usize> = (s_start..=s_end).take_while(|&i| i < chars.len()).collect();
        let text: String = chars[s_start.min(chars.len())..s_end.min(chars.len())].iter().collect();
        let start = nanmin(curr.iter().map(|&i| field(i, |t| t.start)));
        let end = nanmax(curr.iter().filter(|&&i| chars[i] != ' ').map(|&i| field(i, |t| t.end)));
        let mut words = Vec::new();
        let mut w = 0;
        while w < curr.len() {
            // `unique()` in order of appearance; word indices only grow along the text.
            let group: Vec<usize> =
                curr[w..].iter().copied().take_while(|&i| word_idx[i] == word_idx[curr[w]]).collect();
            w += group.len();
            let raw: String = group.iter().map(|&i| chars[i]).collect();
            let word_text = raw.trim_matches(py_isspace).to_string();
            if word_text.is_empty() {
                continue;
            }
            let spoken: Vec<usize> = group.into_iter().filter(|&i| chars[i] != ' ').collect();
            let scores: Vec<f64> = spoken.iter().map(|&i| field(i, |t| t.score)).collect();
            words.push(Word {
                word: word_text,
                start: to_option(nanmin(spoken.iter().map(|&i| field(i, |t| t.start)))),
                end: to_option(nanmax(spoken.iter().map(|&i| field(i, |t| t.end)))),
                score: to_option(np_round3(nanmean(&scores))),
                speaker: None,
            });
        }
        fill_word_times(&mut words, a.interpolate);
        let chars_out = if a.return_chars {
            curr.iter()
                .map(|&i| CharAlignment {
                    char: chars[i].to_string(),
                    start: times[i].map(|t| t.start),
                    end: times[i].map(|t| t.end),
                    score: times[i].map(|t| t.score),
                })
                .collect()
        } else {
            Vec::new()
        };
        rows.push(Sentence { text, start, end, words, chars: chars_out });
    }
    let starts = interpolate_nans(&rows.iter().map(|r| r.start).collect::<Vec<_>>(), a.interpolate);
    let ends = interpolate_nans(&rows.iter().map(|r| r.end).collect::<Vec<_>>(), a.interpolate);
    for (r, (s, e)) in rows.iter_mut().zip(starts.into_iter().zip(ends)) {
        r.start = s;
        r.end = e;
    }
    merge_sentences(rows, a)
}

/// WX L371-382: when some words of a sentence have a start and some do not, starts and ends are
/// interpolated over the sentence's words and written into the words that lack them.
fn fill_word_times(words: &mut [Word], method: Interpolate) {
    let starts: Vec<f64> = words.iter().map(|w| w.start.unwrap_or(f64::NAN)).collect();
    if !(starts.iter().any(|v| v.is_nan()) && starts.iter().any(|v| !v.is_nan())) {
        return;
    }
    let ends: Vec<f64> = words.iter().map(|w| w.end.unwrap_or(f64::NAN)).collect();
    let (starts, ends) = (interpolate_nans(&starts, method), interpolate_nans(&ends, method));
    for (w, (s, e)) in words.iter_mut().zip(starts.into_iter().zip(ends)) {
        w.start = w.start.or(to_option(s));
        w.end = w.end.or(to_option(e));
    }
}

/// pandas `groupby(["start", "end"], as_index=False).agg(...)` (WX L404-413): rows with a NaN key
/// are dropped, groups come out sorted by (start, end), rows within a group in their order.
fn merge_sentences(rows: Vec<Sentence>, a: &Assembly<'_>) -> Vec<Segment> {
    let mut rows: Vec<Sentence> = rows.into_iter().filter(|r| !r.start.is_nan() && !r.end.is_nan()).collect();
    rows.sort_by(|x, y| x.start.total_cmp(&y.start).then(x.end.total_cmp(&y.end)).then(std::cmp::Ordering::Equal));
    // total_cmp orders -0.0 before 0.0, which pandas groups together; merge by ==.
    let joiner = if without_spaces(a.language) { "" } else { " " };
    let mut out: Vec<Segment> = Vec::new();
    for r in rows {
        match out.last_mut() {
            Some(last) if last.start == r.start && last.end == r.end => {
                last.text.push_str(joiner);
                last.text.push_str(&r.text);
                last.words.extend(r.words);
                if let Some(c) = last.chars.as_mut() {
                    c.extend(r.chars);
                }
            }
            _ => out.push(Segment {
                start: r.start,
                end: r.end,
                text: r.text,
                words: r.words,
                chars: a.return_chars.then_some(r.chars),
                avg_logprob: a.avg_logprob,
                ..Default::default()
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const N: f64 = f64::NAN;

    fn same(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y || x.is_nan() && y.is_nan())
    }

    #[test]
    fn python_round_is_correct_rounding_and_numpy_round_is_rint_of_the_product() {
        // Values checked with Python 3.11 / numpy 2.2.6.
        assert_eq!(py_round3(0.0625), 0.062); // an exact tie: half to even
        assert_eq!(py_round3(0.1875), 0.188);
        assert_eq!(py_round3(1.0005), 1.0); // 1.0005 is 1.000499999... in binary
        assert_eq!(py_round3(0.0005), 0.001); // 0.0005 is 0.000500000...01 in binary
        assert_eq!(py_round3(2.675), 2.675);
        assert_eq!(py_round3(12.3456), 12.346);
        assert!(py_round3(f64::NAN).is_nan());
        // round(np.float64(x), 3) is rint(x·1000)/1000: it parts from Python's round near ties.
        assert_eq!((py_round3(0.1235), np_round3(0.1235)), (0.123, 0.124));
        assert_eq!((py_round3(0.0005), np_round3(0.0005)), (0.001, 0.0));
        assert_eq!((py_round3(1.0005), np_round3(1.0005)), (1.0, 1.0));
        assert_eq!((py_round3(0.0015), np_round3(0.0015)), (0.002, 0.002));
    }

    #[test]
    fn pandas_mean_sums_pairwise() {
        // The mean of 0.1·i + 0.001·i² for i in 1..20: Python's sum/len gives
        // 1.1299999999999997, pandas (numpy's pairwise add.reduce) gives 1.13.
        let v: Vec<f64> = (1..20).map(|i| 0.1 * i as f64 + 0.001 * (i * i) as f64).collect();
        assert_eq!(nanmean(&v), 1.13);
        assert_eq!(v.iter().sum::<f64>() / 19.0, 1.1299999999999997);
        assert_eq!(nanmean(&[0.5, N, 1.0]), 0.75);
        assert!(nanmean(&[N, N]).is_nan());
    }

    #[test]
    fn interpolate_nearest_takes_the_earlier_neighbour_on_a_tie_and_fills_the_ends() {
        // pandas 2.2.3: Series([nan,1,nan,3,nan,nan,nan,7,nan]).interpolate("nearest").ffill().bfill()
        let x = [N, 1.0, N, 3.0, N, N, N, 7.0, N];
        assert!(same(&interpolate_nans(&x, Interpolate::Nearest), &[1.0, 1.0, 1.0, 3.0, 3.0, 3.0, 7.0, 7.0, 7.0]));
        assert!(same(&interpolate_nans(&x, Interpolate::Linear), &[1.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 7.0]));
        assert!(same(&interpolate_nans(&x, Interpolate::Ignore), &x));
    }

    #[test]
    fn interpolate_with_one_valid_value_only_fills_and_with_none_leaves_nan() {
        let x = [N, N, 5.0, N];
        for m in [Interpolate::Nearest, Interpolate::Linear] {
            assert!(same(&interpolate_nans(&x, m), &[5.0; 4]));
            assert!(same(&interpolate_nans(&[N, N], m), &[N, N]));
        }
    }

    #[test]
    fn linear_interpolation_is_numpy_interp_arithmetic() {
        // slope·(x − x0) + y0 with slope = (y1 − y0)/(x1 − x0): 1/3 steps.
        let x = [0.1, N, N, 0.2];
        let out = interpolate_nans(&x, Interpolate::Linear);
        let slope = (0.2 - 0.1) / 3.0;
        assert_eq!(out[1], slope * 1.0 + 0.1);
        assert_eq!(out[2], slope * 2.0 + 0.1);
    }

    #[test]
    fn word_indices_increment_after_a_character_followed_by_a_space() {
        let chars: Vec<char> = "ab cd  e".chars().collect();
        // a b │ ' ' c d │ ' ' │ ' ' e
        assert_eq!(word_indices(&chars, "en"), [0, 0, 1, 1, 1, 2, 3, 3]);
        let chars: Vec<char> = "日本 語".chars().collect();
        assert_eq!(word_indices(&chars, "ja"), [0, 1, 2, 3]);
    }

    fn t(start: f64, end: f64, score: f64) -> Option<CharTime> {
        Some(CharTime { start, end, score })
    }

    fn asm(interpolate: Interpolate, return_chars: bool) -> Assembly<'static> {
        Assembly { language: "en", interpolate, return_chars, avg_logprob: Some(-0.25) }
    }

    #[test]
    fn words_take_min_start_max_end_over_non_space_chars_and_the_numpy_rounded_mean_score() {
        let chars: Vec<char> = "hi yo".chars().collect();
        let times = [t(1.0, 1.1, 0.5), t(1.1, 1.3, 0.8), t(1.3, 1.5, 0.9), t(1.5, 1.6, 0.123), t(1.6, 1.9, 0.124)];
        let segs = assemble(&chars, &times, &[(0, 5)], &asm(Interpolate::Nearest, false));
        assert_eq!(segs.len(), 1);
        let s = &segs[0];
        assert_eq!((s.start, s.end, s.text.as_str(), s.avg_logprob), (1.0, 1.9, "hi yo", Some(-0.25)));
        assert_eq!(s.words.len(), 2);
        assert_eq!((s.words[0].start, s.words[0].end, s.words[0].score), (Some(1.0), Some(1.3), Some(0.65)));
        // "yo": the space (1.3-1.5) is not counted; mean(0.123, 0.124) = 0.1235, which numpy
        // rounds to 0.124 (Python's round would give 0.123).
        assert_eq!((s.words[1].start, s.words[1].end, s.words[1].score), (Some(1.5), Some(1.9), Some(0.124)));
        assert!(s.chars.is_none());
    }

    #[test]
    fn sentence_ranges_include_their_end_index_and_merge_when_times_are_identical() {
        // Two sentences "A." and "B." whose characters all have the same times: one segment.
        let chars: Vec<char> = "A. B.".chars().collect();
        let times = [t(2.0, 3.0, 1.0); 5];
        let segs = assemble(&chars, &times, &[(0, 2), (3, 5)], &asm(Interpolate::Nearest, true));
        assert_eq!(segs.len(), 1);
        assert_eq!(segs[0].text, "A. B.");
        assert_eq!(segs[0].words.iter().map(|w| w.word.as_str()).collect::<Vec<_>>(), ["A.", "B."]);
        // Chars of the first sentence run to index 2 inclusive (the space), then 3..=5.
        let chars_out: String = segs[0].chars.as_ref().unwrap().iter().map(|c| c.char.as_str()).collect();
        assert_eq!(chars_out, "A. B.");
    }

    #[test]
    fn sentences_are_sorted_by_time_and_those_without_times_dropped_unless_interpolated() {
        // Sentence 1 has no times; sentence 2 is earlier than sentence 0.
        let chars: Vec<char> = "a. b. c.".chars().collect();
        let mut times = vec![t(5.0, 6.0, 1.0), t(6.0, 6.5, 1.0), None];
        times.extend([None, None, None]);
        times.extend([t(1.0, 1.5, 1.0), t(1.5, 2.0, 1.0)]);
        let spans = [(0, 2), (3, 5), (6, 8)];
        let ignore = assemble(&chars, &times, &spans, &asm(Interpolate::Ignore, false));
        assert_eq!(ignore.iter().map(|s| s.text.as_str()).collect::<Vec<_>>(), ["c.", "a."]);
        // nearest: sentence 1 takes sentence 0's start (5.0, a tie goes to the earlier) and end;
        // it then merges with sentence 0.
        let nearest = assemble(&chars, &times, &spans, &asm(Interpolate::Nearest, false));
        assert_eq!(nearest.iter().map(|s| s.text.as_str()).collect::<Vec<_>>(), ["c.", "a. b."]);
        // linear: (5 + 1)/2 = 3 and (6.5 + 2)/2 = 4.25.
        let linear = assemble(&chars, &times, &spans, &asm(Interpolate::Linear, false));
        assert_eq!(
            linear.iter().map(|s| (s.text.as_str(), s.start, s.end)).collect::<Vec<_>>(),
            [("c.", 1.0, 2.0), ("b.", 3.0, 4.25), ("a.", 5.0, 6.5)]
        );
        // "b." has no times of its own and no timed word in its sentence: no keys.
        assert_eq!(linear[1].words[0], Word { word: "b.".into(), ..Default::default() });
    }

    #[test]
    fn words_without_times_are_interpolated_within_their_sentence() {
        // "x | y z": '|' untimed (a dictionary without '|' drops it), so word "|" has no times.
        let chars: Vec<char> = "x | y".chars().collect();
        let times = [t(1.0, 1.2, 0.9), t(1.2, 1.4, 0.9), None, t(1.8, 2.0, 0.9), t(2.0, 2.2, 0.7)];
        // Linear: numpy's (2.2 − 1.2)/2 + 1.2 is 1.7000000000000002 (pandas 2.2.3 agrees).
        for (m, start, end) in [(Interpolate::Nearest, 1.0, 1.2), (Interpolate::Linear, 1.5, 1.7000000000000002)] {
            let segs = assemble(&chars, &times, &[(0, 5)], &asm(m, false));
            let w = &segs[0].words[1];
            assert_eq!((w.word.as_str(), w.start, w.end, w.score), ("|", Some(start), Some(end), None), "{m:?}");
        }
        let segs = assemble(&chars, &times, &[(0, 5)], &asm(Interpolate::Ignore, false));
        assert_eq!(segs[0].words[1].start, None);
    }

    #[test]
    fn char_alignments_leave_out_missing_fields() {
        let chars: Vec<char> = "a b".chars().collect();
        let times = [t(0.0, 0.1, 0.5), None, t(0.2, 0.3, 0.25)];
        let segs = assemble(&chars, &times, &[(0, 3)], &asm(Interpolate::Nearest, true));
        let c = segs[0].chars.as_ref().unwrap();
        assert_eq!(c[1], CharAlignment { char: " ".into(), start: None, end: None, score: None });
        assert_eq!(c[2].start, Some(0.2));
        assert_eq!(
            serde_json::to_string(&c[1]).unwrap(),
            r#"{"char":" "}"#,
            "missing values are left out as WhisperX's fillna(-1) + filter does"
        );
    }

    #[test]
    fn ja_and_zh_every_character_is_a_word_and_sentences_join_without_spaces() {
        let chars: Vec<char> = "日本。語".chars().collect();
        let times = [t(0.0, 0.1, 1.0), t(0.1, 0.2, 1.0), t(0.2, 0.3, 1.0), t(0.0, 0.1, 1.0)];
        let a = Assembly { language: "ja", interpolate: Interpolate::Nearest, return_chars: false, avg_logprob: None };
        let segs = assemble(&chars, &times, &[(0, 2), (3, 4)], &a);
        let words: Vec<&str> = segs.iter().flat_map(|s| s.words.iter().map(|w| w.word.as_str())).collect();
        // Sentence 0 covers indices 0..=2, sentence 1 index 3; sorted by start they come out
        // [語] (0.0, 0.1) before [日本。] (0.0, 0.3).
        assert_eq!(words, ["語", "日", "本", "。"]);
        assert_eq!(segs[1].text, "日本");
    }
}
