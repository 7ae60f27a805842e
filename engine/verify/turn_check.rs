//! A named speaker's own stretches of speech checked against its name: a cluster takes a name by
//! its centroid ([`super::naming`]), pooled over all its windows, so a stretch of another voice
//! that the diarization put in the cluster would take the name too. Each stretch long enough to
//! embed is embedded alone and keeps the name only if it still sounds like it; one that does not
//! keeps the cluster's `SPEAKER_xx` label, so a wrong name is never given to it (the issue's
//! target: no time labelled with a wrong name, an unenrolled voice never named).
//!
//! Rules, in order (each has its unit test below):
//! 1. [`stretches`]: a speaker's exclusive turns (the diarization's single-speaker time) closer
//!    than [`JOIN_GAP_SECONDS`] are one stretch, whatever lies between them (the diarization
//!    flickers to another speaker for a few frames); only stretches of named speakers with at
//!    least [`CHECKED_STRETCH_SECONDS`] of their speech are checked (shorter ones are too short to
//!    embed reliably and keep the cluster's name);
//! 2. [`check_stretch`] scores the stretch's embedding against every voiceprint (cosine);
//!    [`TurnDecision::BelowTurnThreshold`]: its score for its own name is under the model's turn
//!    threshold (an utterance-level equal-error point, lower than the centroid's threshold
//!    because one stretch is a noisier embedding than a whole cluster);
//! 3. [`TurnDecision::CloserToAnother`]: another enrolled name scores at least as high as its own;
//! 4. [`TurnDecision::Confirmed`]: otherwise the stretch keeps the name.

use super::cosine;
use super::enrol::Voiceprint;
use crate::diarize::assign::SpeakerTurn;

/// Exclusive turns of one speaker separated by less than this (seconds) are one stretch: the
/// diarization cuts a speaker's speech at short pauses, and a longer stretch embeds better.
pub const JOIN_GAP_SECONDS: f64 = 0.5;
/// Stretches shorter than this (seconds) are not checked.
pub const CHECKED_STRETCH_SECONDS: f64 = 1.0;

/// A stretch of one speaker's single-speaker time: its exclusive turns `parts`, from `start` to
/// `end` (what lies between the parts is not the speaker's).
#[derive(Clone, Debug, PartialEq)]
pub struct Stretch {
    pub label: String,
    pub start: f64,
    pub end: f64,
    pub parts: Vec<(f64, f64)>,
}

impl Stretch {
    /// The speaker's own seconds in it.
    pub fn speech(&self) -> f64 {
        self.parts.iter().map(|(s, e)| e - s).sum()
    }
}

/// Rule 1: the stretches of the speakers `checked` says to check, in time order.
pub fn stretches(exclusive_turns: &[SpeakerTurn], checked: &dyn Fn(&str) -> bool) -> Vec<Stretch> {
    let mut sorted: Vec<&SpeakerTurn> =
        exclusive_turns.iter().filter(|t| t.end > t.start && checked(&t.speaker)).collect();
    sorted.sort_by(|a, b| a.start.total_cmp(&b.start));
    // The open stretch of each speaker.
    let mut open: Vec<Stretch> = Vec::new();
    let mut out: Vec<Stretch> = Vec::new();
    for t in sorted {
        match open.iter_mut().find(|s| s.label == t.speaker) {
            Some(s) if t.start - s.end < JOIN_GAP_SECONDS => {
                s.end = s.end.max(t.end);
                s.parts.push((t.start, t.end));
            }
            Some(s) => {
                let next =
                    Stretch { label: t.speaker.clone(), start: t.start, end: t.end, parts: vec![(t.start, t.end)] };
                out.push(std::mem::replace(s, next));
            }
            None => open.push(Stretch {
                label: t.speaker.clone(),
                start: t.start,
                end: t.end,
                parts: vec![(t.start, t.end)],
            }),
        }
    }
    out.extend(open);
    // Seconds as the diarization's frames sum them: a hair under the bound still counts.
    out.retain(|s| s.speech() >= CHECKED_STRETCH_SECONDS - 1e-6);
    out.sort_by(|a, b| a.start.total_cmp(&b.start));
    out
}

/// What the check decided for one stretch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TurnDecision {
    Confirmed,
    BelowTurnThreshold,
    CloserToAnother,
}

impl TurnDecision {
    pub fn as_str(self) -> &'static str {
        match self {
            TurnDecision::Confirmed => "confirmed",
            TurnDecision::BelowTurnThreshold => "below_turn_threshold",
            TurnDecision::CloserToAnother => "closer_to_another",
        }
    }
}

/// One stretch's check: its score for its own name and the best other name's.
#[derive(Clone, Debug, PartialEq)]
pub struct TurnCheck {
    pub decision: TurnDecision,
    pub score: f64,
    pub best_other: Option<(String, f64)>,
}

/// Rules 2-4: does a stretch whose embedding is `embedding` keep `name`?
pub fn check_stretch(name: &str, embedding: &[f32], voiceprints: &[Voiceprint], turn_threshold: f64) -> TurnCheck {
    let score = voiceprints.iter().find(|v| v.name == name).map_or(0.0, |v| cosine(embedding, &v.vector));
    let best_other = voiceprints
        .iter()
        .filter(|v| v.name != name)
        .map(|v| (v.name.clone(), cosine(embedding, &v.vector)))
        .max_by(|a, b| a.1.total_cmp(&b.1));
    let decision = if score < turn_threshold {
        TurnDecision::BelowTurnThreshold
    } else if best_other.as_ref().is_some_and(|(_, s)| *s >= score) {
        TurnDecision::CloserToAnother
    } else {
        TurnDecision::Confirmed
    };
    TurnCheck { decision, score, best_other }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::enrol::enrol;

    fn turn(start: f64, end: f64, speaker: &str) -> SpeakerTurn {
        SpeakerTurn::new(start, end, speaker)
    }

    fn prints() -> Vec<Voiceprint> {
        enrol(&[("alice".to_string(), vec![1.0, 0.0, 0.0]), ("bob".to_string(), vec![0.0, 1.0, 0.0])])
    }

    #[test]
    fn rule_1_close_turns_of_one_speaker_join_and_short_or_unnamed_stretches_are_not_checked() {
        let turns = [
            turn(0.0, 0.6, "A"),
            turn(0.8, 1.3, "A"),    // 0.2 s after A: joins, 0.0-1.3
            turn(2.0, 4.0, "B"),    // its own stretch
            turn(4.1, 4.8, "A"),    // 0.8 s of speech: too short
            turn(4.8, 4.85, "B"),   // a flicker of B...
            turn(4.85, 5.6, "A"),   // ...does not part A's 4.1-5.6
            turn(7.0, 9.0, "C"),    // not checked
            turn(9.4, 10.5, "A"),   // 3.8 s after A: its own stretch
            turn(11.1, 11.95, "A"), // 0.6 s after A: not joined, and too short
        ];
        let checked = |l: &str| l != "C";
        let got: Vec<(f64, f64, String, usize)> =
            stretches(&turns, &checked).into_iter().map(|s| (s.start, s.end, s.label, s.parts.len())).collect();
        let want = [(0.0, 1.3, "A", 2), (2.0, 4.0, "B", 1), (4.1, 5.6, "A", 2), (9.4, 10.5, "A", 1)];
        assert_eq!(got, want.map(|(s, e, l, n)| (s, e, l.to_string(), n)));
        // A part a hair under the bound in floating point still counts.
        let hair = stretches(&[turn(44.02, 45.02, "A")], &checked);
        assert_eq!(hair.len(), 1);
    }

    #[test]
    fn rule_2_a_stretch_under_the_turn_threshold_loses_the_name() {
        // cos(alice) = 0.4 < 0.5, and bob's is lower still.
        let c = check_stretch("alice", &[0.4, 0.3, 0.866], &prints(), 0.5);
        assert_eq!(c.decision, TurnDecision::BelowTurnThreshold);
        assert!((c.score - 0.4).abs() < 1e-3);
        assert_eq!(c.best_other.as_ref().map(|(n, _)| n.as_str()), Some("bob"));
    }

    #[test]
    fn rule_3_a_stretch_that_sounds_at_least_as_much_like_another_name_loses_it() {
        let c = check_stretch("alice", &[0.6, 0.6, 0.2], &prints(), 0.5);
        assert_eq!(c.decision, TurnDecision::CloserToAnother);
        let c = check_stretch("alice", &[0.6, 0.7, 0.2], &prints(), 0.5);
        assert_eq!(c.decision, TurnDecision::CloserToAnother);
    }

    #[test]
    fn rule_4_otherwise_the_stretch_keeps_its_name_even_with_a_single_enrolled_name() {
        let c = check_stretch("alice", &[0.9, 0.3, 0.1], &prints(), 0.5);
        assert_eq!((c.decision, c.best_other.is_some()), (TurnDecision::Confirmed, true));
        let alone = enrol(&[("alice".to_string(), vec![1.0, 0.0, 0.0])]);
        let c = check_stretch("alice", &[0.9, 0.3, 0.1], &alone, 0.5);
        assert_eq!((c.decision, c.best_other), (TurnDecision::Confirmed, None));
    }
}
