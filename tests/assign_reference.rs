//! Speakers on words and segments in Rust against WhisperX 3.8.6's own `assign_word_speakers`
//! (tests/reference/make_assign_reference.py): 40 seeded transcripts with overlapping and
//! zero-length turns, untimed and zero-length words, ties, `fill_nearest` off and on; every
//! segment's and word's speaker identical.

mod common;

use common::root;
use scribe::diarize::assign::{assign_word_speakers, SpeakerTurn};
use scribe::output::result::Segment;
use serde_json::Value;

fn speakers(segments: &Value) -> Vec<(Option<String>, Vec<Option<String>>)> {
    segments
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let speaker = |v: &Value| v.get("speaker").and_then(Value::as_str).map(str::to_string);
            (speaker(s), s["words"].as_array().unwrap().iter().map(speaker).collect())
        })
        .collect()
}

#[test]
fn speakers_match_whisperx_on_every_case() {
    let path = root().join("tests/reference/data/assign_speakers.json");
    let data: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut words = 0;
    for (i, case) in data["cases"].as_array().unwrap().iter().enumerate() {
        let turns: Vec<SpeakerTurn> = case["turns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| SpeakerTurn {
                start: t["start"].as_f64().unwrap(),
                end: t["end"].as_f64().unwrap(),
                speaker: t["speaker"].as_str().unwrap().into(),
            })
            .collect();
        let input: Vec<Segment> = serde_json::from_value(case["input"]["segments"].clone()).unwrap();
        for (key, fill) in [("plain", false), ("fill_nearest", true)] {
            let mut segments = input.clone();
            assign_word_speakers(&turns, &mut segments, fill);
            let ours = speakers(&serde_json::to_value(&segments).unwrap());
            let theirs = speakers(&case[key]["segments"]);
            assert_eq!(ours, theirs, "case {i} {key}");
            words += ours.iter().map(|s| s.1.len()).sum::<usize>();
        }
    }
    eprintln!("{words} word assignments identical to WhisperX's");
    assert!(words > 500);
}
