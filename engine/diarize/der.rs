//! Diarization error rate as pyannote.metrics 4.2 `DiarizationErrorRate` computes it
//! (`metrics/diarization.py`, `identification.py`, `matcher.py`, `utils.py`, on pyannote.core 6.1
//! segments and timelines), checked against it in tests/der_reference.rs.
//!
//! 1. The evaluation map (UEM) is the one given, else the union of the reference's and the
//!    hypothesis' extents (one segment from the earliest start to the latest end).
//! 2. `extrude`: with a collar, a segment of total width `collar` centred on every reference
//!    boundary is removed from the UEM (pyannote's collar is the *total* width: NIST/dscore's
//!    ±0.25 s is `collar = 0.5`); with `skip_overlap`, every region where two reference turns
//!    overlap is removed too.
//! 3. Reference and hypothesis are cropped to that UEM.
//! 4. Hypothesis labels are mapped one-to-one onto reference labels maximising the total
//!    co-occurrence duration (pyannote: `HungarianMapper`, scipy's `linear_sum_assignment`); only
//!    pairs that co-occur are mapped. Any optimal mapping gives the same error.
//! 5. On every piece of the common segmentation (all boundaries of both), of duration `d`, with
//!    `N_ref` reference and `N_hyp` hypothesis turns active and `correct` turns with equal
//!    (mapped) labels: total += d·N_ref, missed += d·max(0, N_ref − N_hyp),
//!    false alarm += d·max(0, N_hyp − N_ref), confusion += d·(min(N_ref, N_hyp) − correct).
//!    Overlapped speech counts once per reference speaker.
//!
//! DER = (missed + false alarm + confusion) / total; 0 when nothing is scored, 1 when only errors
//! are (pyannote's convention for an empty reference).
//!
//! pyannote.core treats a segment no longer than 1 µs (`SEGMENT_PRECISION`) as empty and merges
//! segments whose gap is no longer; this module does the same, and adds the pieces up in the same
//! order with the same operations, so the components agree with pyannote's to the last bits.

use super::hungarian::linear_sum_assignment;
use super::rttm::Turn;

/// pyannote.core's `SEGMENT_PRECISION` (segment.py): a segment whose duration is not above it is
/// empty.
pub const SEGMENT_PRECISION: f64 = 1e-6;

/// How the error is scored. `Default` is pyannote's default and the published numbers' setting:
/// no collar, overlap scored, UEM from the extents.
#[derive(Debug, Clone, Default)]
pub struct DerOptions {
    /// Total width (seconds) of the no-score zone centred on each reference boundary
    /// (pyannote's `collar`; NIST's ±0.25 s is 0.5 here).
    pub collar: f64,
    /// Leave regions where reference speakers overlap out of the scoring.
    pub skip_overlap: bool,
    /// The evaluation map as (start, end) segments; `None`: the union of both extents.
    pub uem: Option<Vec<(f64, f64)>>,
}

/// Durations in seconds (speaker-weighted: overlapped speech counts once per reference speaker).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DerComponents {
    pub total: f64,
    pub correct: f64,
    pub missed: f64,
    pub false_alarm: f64,
    pub confusion: f64,
}

impl DerComponents {
    pub fn errors(&self) -> f64 {
        self.confusion + self.false_alarm + self.missed
    }

    /// pyannote's `compute_metric`: errors / total, with 0/0 = 0 and x/0 = 1.
    pub fn der(&self) -> f64 {
        let numerator = self.errors();
        if self.total == 0.0 {
            if numerator == 0.0 {
                0.0
            } else {
                1.0
            }
        } else {
            numerator / self.total
        }
    }

    /// Accumulates another file's components (pyannote's `abs(metric)` over files: the totals
    /// are summed, not the rates averaged).
    pub fn add(&mut self, other: &DerComponents) {
        self.total += other.total;
        self.correct += other.correct;
        self.missed += other.missed;
        self.false_alarm += other.false_alarm;
        self.confusion += other.confusion;
    }
}

#[derive(Debug, Clone)]
pub struct DerResult {
    pub components: DerComponents,
    /// Hypothesis label → reference label, for the pairs the optimal assignment kept (those that
    /// co-occur), sorted by hypothesis label.
    pub mapping: Vec<(String, String)>,
    /// Distinct reference / hypothesis labels in the inputs (before any cropping).
    pub reference_speakers: usize,
    pub hypothesis_speakers: usize,
}

impl DerResult {
    pub fn der(&self) -> f64 {
        self.components.der()
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Seg {
    start: f64,
    end: f64,
}

impl Seg {
    fn new(start: f64, end: f64) -> Self {
        Seg { start, end }
    }
    /// pyannote.core `Segment.__bool__`.
    fn non_empty(&self) -> bool {
        self.end - self.start > SEGMENT_PRECISION
    }
    /// `Segment.__and__`.
    fn and(&self, o: &Seg) -> Seg {
        Seg::new(self.start.max(o.start), self.end.min(o.end))
    }
    /// `Segment.duration`: 0 for an empty segment.
    fn duration(&self) -> f64 {
        if self.non_empty() {
            self.end - self.start
        } else {
            0.0
        }
    }
}

/// `Timeline.support()`: the sorted, distinct, non-empty segments merged wherever the gap between
/// them is empty (overlapping, touching, or apart by at most `SEGMENT_PRECISION`).
fn support(segments: &[Seg]) -> Vec<Seg> {
    let mut s: Vec<Seg> = segments.iter().copied().filter(Seg::non_empty).collect();
    s.sort_by(|a, b| a.start.total_cmp(&b.start).then(a.end.total_cmp(&b.end)));
    s.dedup();
    let mut out = Vec::new();
    let mut iter = s.into_iter();
    let Some(mut cur) = iter.next() else { return out };
    for seg in iter {
        // `Segment.__xor__`: the gap between the two.
        let gap = Seg::new(seg.end.min(cur.end), seg.start.max(cur.start));
        if !gap.non_empty() {
            cur = Seg::new(cur.start.min(seg.start), cur.end.max(seg.end));
        } else {
            out.push(cur);
            cur = seg;
        }
    }
    out.push(cur);
    out
}

/// `timeline.gaps(support=uem)`: the parts of each `uem` support segment not covered by
/// `timeline`.
fn gaps(timeline: &[Seg], uem: &[Seg]) -> Vec<Seg> {
    let mut out = Vec::new();
    for u in support(uem) {
        let cropped: Vec<Seg> = timeline.iter().filter(|s| intersects(s, &u)).map(|s| s.and(&u)).collect();
        let mut end = u.start;
        for s in support(&cropped) {
            let gap = Seg::new(end, s.start);
            if gap.non_empty() {
                out.push(gap);
            }
            end = s.end;
        }
        let gap = Seg::new(end, u.end);
        if gap.non_empty() {
            out.push(gap);
        }
    }
    out
}

/// pyannote.core `Segment.intersects`.
fn intersects(a: &Seg, b: &Seg) -> bool {
    (a.start < b.start && b.start < a.end - SEGMENT_PRECISION)
        || (a.start > b.start && a.start < b.end - SEGMENT_PRECISION)
        || a.start == b.start
}

/// A turn with its label as an index.
#[derive(Debug, Clone, Copy)]
struct Track {
    seg: Seg,
    label: usize,
}

/// Distinct labels in order of first appearance, and the non-empty turns with label indices.
fn tracks(turns: &[Turn]) -> (Vec<String>, Vec<Track>) {
    let mut labels: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for t in turns {
        let label = match labels.iter().position(|l| *l == t.speaker) {
            Some(i) => i,
            None => {
                labels.push(t.speaker.clone());
                labels.len() - 1
            }
        };
        let seg = Seg::new(t.start, t.end);
        if seg.non_empty() {
            out.push(Track { seg, label });
        }
    }
    (labels, out)
}

/// `Timeline.extent()` of the tracks' segments, `None` when there are none.
fn extent(tracks: &[Track]) -> Option<Seg> {
    let start = tracks.iter().map(|t| t.seg.start).min_by(f64::total_cmp)?;
    let end = tracks.iter().map(|t| t.seg.end).max_by(f64::total_cmp)?;
    Some(Seg::new(start, end))
}

/// `Annotation.crop(uem, mode="intersection")`.
fn crop(tracks: &[Track], uem: &[Seg]) -> Vec<Track> {
    let uem = support(uem);
    let mut out = Vec::new();
    for t in tracks {
        for u in &uem {
            if intersects(&t.seg, u) {
                let seg = t.seg.and(u);
                if seg.non_empty() {
                    out.push(Track { seg, label: t.label });
                }
            }
        }
    }
    out
}

/// pyannote.metrics `UEMSupportMixin.extrude`.
fn extrude(uem: Vec<Seg>, reference: &[Track], collar: f64, skip_overlap: bool) -> Vec<Seg> {
    if collar == 0.0 && !skip_overlap {
        return uem;
    }
    let mut removed = Vec::new();
    if collar > 0.0 {
        for t in reference {
            for b in [t.seg.start, t.seg.end] {
                removed.push(Seg::new(b - 0.5 * collar, b + 0.5 * collar));
            }
        }
    }
    if skip_overlap {
        for (i, a) in reference.iter().enumerate() {
            for b in &reference[i + 1..] {
                if intersects(&a.seg, &b.seg) || intersects(&b.seg, &a.seg) {
                    removed.push(a.seg.and(&b.seg));
                }
            }
        }
    }
    gaps(&support(&removed), &uem)
}

/// Maximum-weight one-to-one assignment between rows and columns of `weight` (rows × cols,
/// finite), as a column index (or `None`) per row: scipy's `linear_sum_assignment(maximize)`
/// ([`crate::diarize::hungarian`]), as pyannote.metrics' `HungarianMapper` calls it.
pub fn max_weight_assignment(weight: &[Vec<f64>]) -> Vec<Option<usize>> {
    let rows = weight.len();
    let cols = weight.first().map_or(0, Vec::len);
    let mut out = vec![None; rows];
    if rows == 0 || cols == 0 {
        return out;
    }
    let flat: Vec<f64> = weight.concat();
    // Finite weights always have a complete assignment of min(rows, cols) pairs.
    if let Ok(pairs) = linear_sum_assignment(&flat, rows, cols, true) {
        for (r, c) in pairs {
            out[r] = Some(c);
        }
    }
    out
}

/// The diarization error rate of `hypothesis` against `reference` (pyannote.metrics
/// `DiarizationErrorRate(collar, skip_overlap)(reference, hypothesis, uem, detailed=True)`).
pub fn diarization_error_rate(reference: &[Turn], hypothesis: &[Turn], options: &DerOptions) -> DerResult {
    let (ref_labels, reference) = tracks(reference);
    let (hyp_labels, hypothesis) = tracks(hypothesis);

    let uem: Vec<Seg> = match &options.uem {
        Some(u) => u.iter().map(|&(s, e)| Seg::new(s, e)).filter(Seg::non_empty).collect(),
        None => {
            // `r_extent | h_extent` (Segment.__or__: an empty side yields the other).
            let extent = match (extent(&reference), extent(&hypothesis)) {
                (Some(r), Some(h)) => Some(Seg::new(r.start.min(h.start), r.end.max(h.end))),
                (r, h) => r.or(h),
            };
            extent.into_iter().filter(Seg::non_empty).collect()
        }
    };
    let uem = extrude(uem, &reference, options.collar, options.skip_overlap);
    let reference = crop(&reference, &uem);
    let hypothesis = crop(&hypothesis, &uem);

    // Co-occurrence (hypothesis × reference) on the cropped turns (`Annotation.__mul__`).
    let mut cooccurrence = vec![vec![0.0f64; ref_labels.len()]; hyp_labels.len()];
    for h in &hypothesis {
        for r in &reference {
            if intersects(&h.seg, &r.seg) || intersects(&r.seg, &h.seg) {
                cooccurrence[h.label][r.label] += h.seg.and(&r.seg).duration();
            }
        }
    }
    let assignment = max_weight_assignment(&cooccurrence);
    let mapped: Vec<Option<usize>> =
        assignment.iter().enumerate().map(|(h, r)| r.filter(|&r| cooccurrence[h][r] > 0.0)).collect();

    let components = score_pieces(&reference, &hypothesis, &mapped, ref_labels.len());
    let mut mapping: Vec<(String, String)> = mapped
        .iter()
        .enumerate()
        .filter_map(|(h, r)| r.map(|r| (hyp_labels[h].clone(), ref_labels[r].clone())))
        .collect();
    mapping.sort();
    DerResult { components, mapping, reference_speakers: ref_labels.len(), hypothesis_speakers: hyp_labels.len() }
}

/// pyannote.metrics `IdentificationErrorRate.compute_components` on the cropped turns, the
/// hypothesis labels translated by `mapped` (an unmapped label never matches a reference one).
fn score_pieces(
    reference: &[Track],
    hypothesis: &[Track],
    mapped: &[Option<usize>],
    n_ref_labels: usize,
) -> DerComponents {
    let all: Vec<Seg> = reference.iter().chain(hypothesis).map(|t| t.seg).collect();
    let covered = support(&all);
    // `Timeline.segmentation()`: consecutive distinct boundaries; a piece is kept when it is not
    // empty and its middle lies in the support.
    let mut stamps: Vec<f64> = all.iter().flat_map(|s| [s.start, s.end]).collect();
    stamps.sort_by(f64::total_cmp);
    stamps.dedup();

    let mut d = DerComponents::default();
    let mut ref_count = vec![0usize; n_ref_labels];
    let mut hyp_count = vec![0usize; n_ref_labels];
    for w in stamps.windows(2) {
        let piece = Seg::new(w[0], w[1]);
        if !piece.non_empty() {
            continue;
        }
        let middle = 0.5 * (piece.start + piece.end);
        if !covered.iter().any(|s| s.start <= middle && middle <= s.end) {
            continue;
        }
        let inside = |t: &&Track| t.seg.start <= piece.start && piece.end <= t.seg.end;
        ref_count.iter_mut().for_each(|c| *c = 0);
        hyp_count.iter_mut().for_each(|c| *c = 0);
        let mut n_ref = 0usize;
        let mut n_hyp = 0usize;
        for t in reference.iter().filter(inside) {
            ref_count[t.label] += 1;
            n_ref += 1;
        }
        for t in hypothesis.iter().filter(inside) {
            if let Some(r) = mapped[t.label] {
                hyp_count[r] += 1;
            }
            n_hyp += 1;
        }
        if n_ref + n_hyp == 0 {
            continue;
        }
        let correct: usize = ref_count.iter().zip(&hyp_count).map(|(&r, &h)| r.min(h)).sum();
        let duration = piece.duration();
        d.total += duration * n_ref as f64;
        d.correct += duration * correct as f64;
        d.confusion += duration * (n_ref.min(n_hyp) - correct) as f64;
        d.missed += duration * n_ref.saturating_sub(n_hyp) as f64;
        d.false_alarm += duration * n_hyp.saturating_sub(n_ref) as f64;
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turns(spec: &[(f64, f64, &str)]) -> Vec<Turn> {
        spec.iter().map(|&(s, e, l)| Turn::new(s, e, l)).collect()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn perfect_hypothesis_with_other_names_scores_zero() {
        let r = turns(&[(0.0, 2.0, "A"), (2.0, 5.0, "B"), (4.0, 6.0, "A")]);
        let h = turns(&[(0.0, 2.0, "x"), (2.0, 5.0, "y"), (4.0, 6.0, "x")]);
        let res = diarization_error_rate(&r, &h, &DerOptions::default());
        assert_eq!(res.der(), 0.0);
        assert!(close(res.components.total, 7.0));
        assert_eq!(res.mapping, vec![("x".into(), "A".into()), ("y".into(), "B".into())]);
    }

    #[test]
    fn miss_false_alarm_and_confusion() {
        // A speaks 0–10, B 10–20. Hypothesis: s1 0–8, s2 8–20, s3 20–22 (outside the reference).
        let r = turns(&[(0.0, 10.0, "A"), (10.0, 20.0, "B")]);
        let h = turns(&[(0.0, 8.0, "s1"), (8.0, 20.0, "s2"), (20.0, 22.0, "s3")]);
        let c = diarization_error_rate(&r, &h, &DerOptions::default()).components;
        assert!(close(c.total, 20.0));
        assert!(close(c.confusion, 2.0));
        assert!(close(c.false_alarm, 2.0));
        assert!(close(c.missed, 0.0));
        assert!(close(c.der(), 0.2));
    }

    #[test]
    fn overlap_counts_per_reference_speaker() {
        let r = turns(&[(0.0, 4.0, "A"), (2.0, 6.0, "B")]);
        let h = turns(&[(0.0, 6.0, "x")]);
        let c = diarization_error_rate(&r, &h, &DerOptions::default()).components;
        assert!(close(c.total, 8.0));
        assert!(close(c.missed, 2.0));
        assert!(close(c.confusion, 2.0)); // x ↦ A (4 s) or B (4 s): 2 s of the other is confused
        let skip = DerOptions { skip_overlap: true, ..Default::default() };
        let c = diarization_error_rate(&r, &h, &skip).components;
        assert!(close(c.total, 4.0));
        assert!(close(c.confusion, 2.0));
    }

    #[test]
    fn collar_is_total_width() {
        let r = turns(&[(1.0, 5.0, "A")]);
        let h = turns(&[(1.2, 4.7, "x")]);
        let c = diarization_error_rate(&r, &h, &DerOptions { collar: 0.5, ..Default::default() }).components;
        // Scored: 1.25–4.75 of the reference; the hypothesis misses 4.7–4.75.
        assert!(close(c.total, 3.5));
        assert!((c.missed - 0.05).abs() < 1e-9);
    }

    #[test]
    fn empty_inputs() {
        let r = turns(&[(0.0, 3.0, "A")]);
        let res = diarization_error_rate(&r, &[], &DerOptions::default());
        assert_eq!(res.der(), 1.0);
        assert!(res.mapping.is_empty());
        let res = diarization_error_rate(&[], &r, &DerOptions::default());
        assert_eq!((res.components.total, res.components.false_alarm, res.der()), (0.0, 3.0, 1.0));
        assert_eq!(diarization_error_rate(&[], &[], &DerOptions::default()).der(), 0.0);
    }

    fn brute_force(w: &[Vec<f64>]) -> f64 {
        fn go(w: &[Vec<f64>], i: usize, used: &mut Vec<bool>) -> f64 {
            if i == w.len() {
                return 0.0;
            }
            let mut best = go(w, i + 1, used);
            for j in 0..used.len() {
                if !used[j] {
                    used[j] = true;
                    best = best.max(w[i][j] + go(w, i + 1, used));
                    used[j] = false;
                }
            }
            best
        }
        let cols = w.first().map_or(0, Vec::len);
        go(w, 0, &mut vec![false; cols])
    }

    #[test]
    fn assignment_is_optimal_on_random_matrices() {
        let mut state = 0x2545f4914f6cdd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        for rows in 0..6 {
            for cols in 0..6 {
                for _ in 0..20 {
                    let w: Vec<Vec<f64>> = (0..rows)
                        .map(|_| (0..cols).map(|_| if next() < 0.3 { 0.0 } else { (next() * 8.0).floor() }).collect())
                        .collect();
                    let a = max_weight_assignment(&w);
                    let mut seen = vec![false; cols];
                    let mut total = 0.0;
                    for (i, j) in a.iter().enumerate() {
                        if let Some(j) = *j {
                            assert!(!seen[j]);
                            seen[j] = true;
                            total += w[i][j];
                        }
                    }
                    assert_eq!(total, brute_force(&w), "{w:?} {a:?}");
                }
            }
        }
    }
}
