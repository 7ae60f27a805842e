//! Stage 6's labels on the transcript: each named speaker's label replaced by its name on the
//! segments, words, turns and embeddings, except in the stretches its turn check did not confirm
//! ([`crate::verify::turn_check`]), which keep the label:
//! - a word keeps the label when its middle lies in such a stretch of its speaker;
//! - a segment keeps it when more than half of it does; a segment whose words now carry both the
//!   name and the label is split at the change (as the diarization stage splits), one whose
//!   words all carry the other of the two takes it;
//! - a speaker turn is cut where such a stretch starts and ends.

use crate::diarize::assign::{split_at_speaker_changes, SpeakerTurn};
use crate::verify::naming::SpeakerMatch;
use crate::verify::turn_check::Stretch;

use super::runner::FileTranscript;

/// The labels of one transcript: named speakers and their unconfirmed stretches.
pub struct Labels<'a> {
    pub matches: &'a [SpeakerMatch],
    pub unconfirmed: &'a [Stretch],
}

/// The name `matches` give `label`, if any.
pub fn name_of<'a>(matches: &'a [SpeakerMatch], label: &str) -> Option<&'a str> {
    matches.iter().find(|m| m.label == label).and_then(|m| m.name.as_deref())
}

impl Labels<'_> {
    fn name_of(&self, label: &str) -> Option<&str> {
        name_of(self.matches, label)
    }

    /// Seconds of `start..end` inside `label`'s unconfirmed stretches.
    fn unconfirmed_within(&self, label: &str, start: f64, end: f64) -> f64 {
        self.unconfirmed
            .iter()
            .filter(|s| s.label == label)
            .map(|s| (s.end.min(end) - s.start.max(start)).max(0.0))
            .sum()
    }

    /// What a span of `label`'s speech is called: its name, unless more than half of it (a
    /// point: the point itself) is unconfirmed.
    fn label_for(&self, label: &str, start: f64, end: f64) -> Option<&str> {
        let name = self.name_of(label)?;
        let unconfirmed = if end > start {
            self.unconfirmed_within(label, start, end) > (end - start) / 2.0
        } else {
            self.unconfirmed.iter().any(|s| s.label == label && s.start <= start && start < s.end)
        };
        (!unconfirmed).then_some(name)
    }
}

/// Named speakers' labels replaced everywhere the transcript carries them (see the module).
pub fn relabel(file: &mut FileTranscript, labels: &Labels) {
    let t = &mut file.transcript;
    let mut touched = false;
    for seg in &mut t.segments {
        let Some(label) = seg.speaker.clone() else { continue };
        if let Some(n) = labels.label_for(&label, seg.start, seg.end) {
            seg.speaker = Some(n.to_string());
        }
        for w in &mut seg.words {
            let (Some(label), Some(start)) = (w.speaker.clone(), w.start) else { continue };
            let middle = (start + w.end.unwrap_or(start)) / 2.0;
            if let Some(n) = labels.label_for(&label, middle, middle) {
                w.speaker = Some(n.to_string());
            } else if labels.name_of(&label).is_some() {
                touched = true;
            }
        }
    }
    if touched {
        let segments = std::mem::take(&mut t.segments);
        t.segments = split_at_speaker_changes(segments, &t.language);
        for seg in &mut t.segments {
            let mut speakers = seg.words.iter().filter_map(|w| w.speaker.as_deref());
            let Some(first) = speakers.next() else { continue };
            let one_speaker = |m: &SpeakerMatch| {
                let (seg, words) = (seg.speaker.as_deref(), Some(first));
                let pair = (Some(m.label.as_str()), m.name.as_deref());
                (seg, words) == pair || (words, seg) == pair
            };
            if speakers.all(|s| s == first) && labels.matches.iter().any(one_speaker) {
                seg.speaker = Some(first.to_string());
            }
        }
    }
    t.collect_word_segments();
    t.speaker_turns = std::mem::take(&mut t.speaker_turns).into_iter().flat_map(|turn| cut(turn, labels)).collect();
    if let Some(embeddings) = t.speaker_embeddings.take() {
        // Two speakers named alike: the first keeps the name, the next its label, so none is lost.
        let mut renamed = std::collections::BTreeMap::new();
        for (label, e) in embeddings {
            let key = labels.name_of(&label).filter(|n| !renamed.contains_key(*n)).map_or(label, String::from);
            renamed.insert(key, e);
        }
        t.speaker_embeddings = Some(renamed);
    }
}

/// A named speaker's turn: its pieces outside the unconfirmed stretches take the name, those
/// inside keep the label.
fn cut(turn: SpeakerTurn, labels: &Labels) -> Vec<SpeakerTurn> {
    let Some(name) = labels.name_of(&turn.speaker) else { return vec![turn] };
    let mut inside: Vec<(f64, f64)> = labels
        .unconfirmed
        .iter()
        .filter(|s| s.label == turn.speaker && s.end > turn.start && s.start < turn.end)
        .map(|s| (s.start.max(turn.start), s.end.min(turn.end)))
        .collect();
    inside.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut out = Vec::new();
    let mut at = turn.start;
    for (start, end) in inside {
        if start > at {
            out.push(SpeakerTurn::new(at, start, name));
        }
        out.push(SpeakerTurn::new(start.max(at), end, turn.speaker.clone()));
        at = at.max(end);
    }
    if turn.end > at {
        out.push(SpeakerTurn::new(at, turn.end, name));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::result::{Segment, Word};
    use crate::verify::naming::Decision;

    fn named(label: &str, name: Option<&str>) -> SpeakerMatch {
        SpeakerMatch {
            label: label.into(),
            name: name.map(String::from),
            best: None,
            runner_up: None,
            decision: if name.is_some() { Decision::Named } else { Decision::BelowThreshold },
        }
    }

    fn word(text: &str, start: f64, end: f64, speaker: &str) -> Word {
        Word {
            word: text.into(),
            start: Some(start),
            end: Some(end),
            speaker: Some(speaker.into()),
            ..Default::default()
        }
    }

    fn segment(start: f64, end: f64, speaker: &str, words: Vec<Word>) -> Segment {
        let text = words.iter().map(|w| format!(" {}", w.word)).collect();
        Segment { start, end, text, words, speaker: Some(speaker.into()), ..Default::default() }
    }

    #[test]
    fn turns_are_cut_where_an_unconfirmed_stretch_starts_and_ends() {
        let matches = [named("SPEAKER_00", Some("alice")), named("SPEAKER_01", None)];
        let unconfirmed = [Stretch { label: "SPEAKER_00".into(), start: 2.0, end: 3.0, parts: vec![(2.0, 3.0)] }];
        let labels = Labels { matches: &matches, unconfirmed: &unconfirmed };
        let got = cut(SpeakerTurn::new(1.0, 4.0, "SPEAKER_00"), &labels);
        assert_eq!(
            got,
            vec![
                SpeakerTurn::new(1.0, 2.0, "alice"),
                SpeakerTurn::new(2.0, 3.0, "SPEAKER_00"),
                SpeakerTurn::new(3.0, 4.0, "alice"),
            ]
        );
        assert_eq!(
            cut(SpeakerTurn::new(1.0, 4.0, "SPEAKER_01"), &labels),
            vec![SpeakerTurn::new(1.0, 4.0, "SPEAKER_01")]
        );
        assert_eq!(cut(SpeakerTurn::new(5.0, 6.0, "SPEAKER_00"), &labels), vec![SpeakerTurn::new(5.0, 6.0, "alice")]);
    }

    #[test]
    fn words_in_an_unconfirmed_stretch_keep_the_label_and_their_segment_is_split() {
        let matches = [named("SPEAKER_00", Some("alice"))];
        let unconfirmed = [Stretch { label: "SPEAKER_00".into(), start: 2.0, end: 4.0, parts: vec![(2.0, 4.0)] }];
        let labels = Labels { matches: &matches, unconfirmed: &unconfirmed };
        let mut file = FileTranscript::default();
        file.transcript.language = "en".into();
        file.transcript.segments = vec![
            segment(
                0.0,
                3.0,
                "SPEAKER_00",
                vec![word("one", 0.0, 1.0, "SPEAKER_00"), word("two", 2.2, 2.8, "SPEAKER_00")],
            ),
            segment(2.1, 3.9, "SPEAKER_00", vec![word("three", 2.1, 3.9, "SPEAKER_00")]),
            segment(5.0, 6.0, "SPEAKER_00", vec![word("four", 5.0, 6.0, "SPEAKER_00")]),
        ];
        file.transcript.speaker_turns = vec![SpeakerTurn::new(0.0, 6.0, "SPEAKER_00")];
        relabel(&mut file, &labels);
        let t = &file.transcript;
        let got: Vec<(&str, Option<&str>)> = t.segments.iter().map(|s| (s.text.trim(), s.speaker.as_deref())).collect();
        assert_eq!(
            got,
            vec![
                ("one", Some("alice")),
                ("two", Some("SPEAKER_00")),
                ("three", Some("SPEAKER_00")),
                ("four", Some("alice"))
            ]
        );
        assert_eq!(t.word_segments.len(), 4);
        assert_eq!(t.speaker_turns.len(), 3);
    }

    #[test]
    fn without_unconfirmed_stretches_every_named_label_is_replaced() {
        let matches = [named("SPEAKER_00", Some("alice")), named("SPEAKER_01", None)];
        let labels = Labels { matches: &matches, unconfirmed: &[] };
        let mut file = FileTranscript::default();
        file.transcript.segments = vec![
            segment(0.0, 1.0, "SPEAKER_00", vec![word("hi", 0.0, 1.0, "SPEAKER_00")]),
            segment(1.0, 2.0, "SPEAKER_01", vec![word("yo", 1.0, 2.0, "SPEAKER_01")]),
        ];
        file.transcript.speaker_embeddings =
            Some([("SPEAKER_00".to_string(), vec![1.0]), ("SPEAKER_01".to_string(), vec![2.0])].into());
        relabel(&mut file, &labels);
        let t = &file.transcript;
        let speakers: Vec<_> = t.word_segments.iter().map(|w| w.speaker.as_deref()).collect();
        assert_eq!(speakers, vec![Some("alice"), Some("SPEAKER_01")]);
        let keys: Vec<_> = t.speaker_embeddings.as_ref().unwrap().keys().cloned().collect();
        assert_eq!(keys, vec!["SPEAKER_01", "alice"]);
    }
}
