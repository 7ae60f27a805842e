//! Which diarized speaker takes which enrolled name: a small policy, one rule per step, after
//! ../shared/docs/diarization-behaviour.md §5 ("a cluster takes its best name if cosine ≥ τ and
//! it leads the runner-up by ≥ 0.05; else it keeps SPEAKER_xx. Always emit the score. Allow many
//! clusters per name"). The seed worker (WhisperX worker `src/speaker_processing.py`) matched
//! per segment at cosine ≥ 0.1 and let every label take its best name; here the unit is the
//! diarized speaker's centroid, and a name needs both the threshold and the lead.
//!
//! Rules, in order (each has its unit test below):
//! 1. [`Decision::NoVoiceprints`]: nothing enrolled, or the centroid is all zeros: the label stays.
//! 2. every voiceprint is scored by cosine against the centroid; the best and the runner-up are
//!    kept for the result whatever happens next;
//! 3. [`Decision::BelowThreshold`]: the best score is under the model's threshold: the label stays;
//! 4. [`Decision::Ambiguous`]: the best leads the runner-up by less than the margin: the label
//!    stays (two enrolled voices too alike to tell apart never decide by a hair);
//! 5. [`Decision::Named`]: otherwise the speaker takes the best name. Speakers are decided
//!    independently, so one name may go to several speakers (the diarization may split one
//!    voice), and a speaker never takes two names (two enrolled voices are never merged into
//!    one speaker).

use super::cosine;
use super::enrol::Voiceprint;

/// The lead over the runner-up a name needs (§5: 0.05).
pub const NAME_MARGIN: f64 = 0.05;

/// The thresholds a name must reach.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NamingPolicy {
    /// Cosine similarity the best voiceprint must reach (the model's equal-error point).
    pub threshold: f64,
    /// Lead over the runner-up.
    pub margin: f64,
}

/// Why a speaker has or has not a name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Named,
    NoVoiceprints,
    BelowThreshold,
    Ambiguous,
}

impl Decision {
    /// How the result's `speakers` table says it.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Named => "named",
            Decision::NoVoiceprints => "no_voiceprints",
            Decision::BelowThreshold => "below_threshold",
            Decision::Ambiguous => "ambiguous",
        }
    }
}

/// One diarized speaker's match.
#[derive(Clone, Debug, PartialEq)]
pub struct SpeakerMatch {
    /// The diarization's label (`SPEAKER_00`).
    pub label: String,
    /// The enrolled name it takes, if any.
    pub name: Option<String>,
    /// The best voiceprint and its cosine score.
    pub best: Option<(String, f64)>,
    /// The second best.
    pub runner_up: Option<(String, f64)>,
    pub decision: Decision,
}

impl SpeakerMatch {
    /// What segments and words call this speaker: its name, or its label.
    pub fn display(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.label)
    }
}

/// Each of `speakers` (label, centroid) matched against `voiceprints` under `policy`.
pub fn name_speakers(
    speakers: &[(String, Vec<f32>)],
    voiceprints: &[Voiceprint],
    policy: &NamingPolicy,
) -> Vec<SpeakerMatch> {
    speakers.iter().map(|(label, centroid)| name_one(label, centroid, voiceprints, policy)).collect()
}

fn name_one(label: &str, centroid: &[f32], voiceprints: &[Voiceprint], policy: &NamingPolicy) -> SpeakerMatch {
    let mut m = SpeakerMatch {
        label: label.into(),
        name: None,
        best: None,
        runner_up: None,
        decision: Decision::NoVoiceprints,
    };
    // Rule 1.
    if voiceprints.is_empty() || centroid.iter().all(|&x| x == 0.0) {
        return m;
    }
    // Rule 2: scores, best first (ties keep the enrolment order).
    let mut scored: Vec<(String, f64)> =
        voiceprints.iter().map(|v| (v.name.clone(), cosine(centroid, &v.vector))).collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1));
    m.best = scored.first().cloned();
    m.runner_up = scored.get(1).cloned();
    let best = scored[0].1;
    // Rule 3.
    if best < policy.threshold {
        m.decision = Decision::BelowThreshold;
        return m;
    }
    // Rule 4.
    if let Some((_, second)) = &m.runner_up {
        if best - second < policy.margin {
            m.decision = Decision::Ambiguous;
            return m;
        }
    }
    // Rule 5.
    m.name = Some(scored[0].0.clone());
    m.decision = Decision::Named;
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::enrol::enrol;

    const POLICY: NamingPolicy = NamingPolicy { threshold: 0.5, margin: NAME_MARGIN };

    fn prints(v: &[(&str, [f32; 3])]) -> Vec<Voiceprint> {
        enrol(&v.iter().map(|(n, e)| (n.to_string(), e.to_vec())).collect::<Vec<_>>())
    }

    fn speaker(label: &str, c: [f32; 3]) -> (String, Vec<f32>) {
        (label.into(), c.to_vec())
    }

    #[test]
    fn rule_1_without_voiceprints_or_with_a_zero_centroid_the_label_stays() {
        let m = name_speakers(&[speaker("SPEAKER_00", [1.0, 0.0, 0.0])], &[], &POLICY);
        assert_eq!((m[0].decision, m[0].display()), (Decision::NoVoiceprints, "SPEAKER_00"));
        let alice = prints(&[("alice", [1.0, 0.0, 0.0])]);
        let m = name_speakers(&[speaker("SPEAKER_00", [0.0; 3])], &alice, &POLICY);
        assert_eq!((m[0].decision, m[0].best.clone()), (Decision::NoVoiceprints, None));
    }

    #[test]
    fn rule_2_the_best_and_runner_up_scores_are_kept_whatever_the_decision() {
        let p = prints(&[("alice", [1.0, 0.0, 0.0]), ("bob", [0.0, 1.0, 0.0]), ("carol", [0.0, 0.0, 1.0])]);
        let m = &name_speakers(&[speaker("SPEAKER_01", [0.1, 0.3, 0.0])], &p, &POLICY)[0];
        let (best, second) = (m.best.clone().unwrap(), m.runner_up.clone().unwrap());
        assert_eq!((best.0.as_str(), second.0.as_str()), ("bob", "alice"));
        assert!((best.1 - 0.3 / 0.1f64.hypot(0.3)).abs() < 1e-6);
        assert!((second.1 - 0.1 / 0.1f64.hypot(0.3)).abs() < 1e-6);
    }

    #[test]
    fn rule_3_a_best_score_under_the_threshold_keeps_the_label() {
        let p = prints(&[("alice", [1.0, 0.0, 0.0])]);
        // cos = 0.4 < 0.5.
        let m = &name_speakers(&[speaker("SPEAKER_00", [0.4, 0.916_515_1, 0.0])], &p, &POLICY)[0];
        assert_eq!((m.decision, m.name.clone()), (Decision::BelowThreshold, None));
        assert!(m.best.is_some());
    }

    #[test]
    fn rule_4_a_best_that_leads_by_less_than_the_margin_keeps_the_label() {
        let p = prints(&[("alice", [1.0, 0.0, 0.0]), ("bob", [0.0, 1.0, 0.0])]);
        // cos 0.71 and 0.70: both pass the threshold, 0.01 apart.
        let m = &name_speakers(&[speaker("SPEAKER_00", [0.71, 0.70, 0.0])], &p, &POLICY)[0];
        assert_eq!((m.decision, m.name.clone()), (Decision::Ambiguous, None));
        // A clear lead names.
        let m = &name_speakers(&[speaker("SPEAKER_00", [0.9, 0.3, 0.0])], &p, &POLICY)[0];
        assert_eq!((m.decision, m.name.as_deref()), (Decision::Named, Some("alice")));
    }

    #[test]
    fn rule_5_one_name_may_go_to_several_speakers_and_one_enrolled_name_alone_needs_no_lead() {
        let p = prints(&[("alice", [1.0, 0.0, 0.0]), ("bob", [0.0, 1.0, 0.0])]);
        let speakers = [
            speaker("SPEAKER_00", [1.0, 0.1, 0.0]),
            speaker("SPEAKER_01", [0.0, 1.0, 0.2]),
            speaker("SPEAKER_02", [0.9, 0.0, 0.1]),
        ];
        let m = name_speakers(&speakers, &p, &POLICY);
        let shown: Vec<_> = m.iter().map(|s| s.display()).collect();
        assert_eq!(shown, vec!["alice", "bob", "alice"]);
        let one = prints(&[("alice", [1.0, 0.0, 0.0])]);
        let m = &name_speakers(&[speaker("SPEAKER_00", [0.8, 0.6, 0.0])], &one, &POLICY)[0];
        assert_eq!((m.decision, m.runner_up.clone()), (Decision::Named, None));
    }
}
