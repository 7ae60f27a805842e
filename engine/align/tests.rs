//! [`align`] end to end on crafted emissions: grouping of requests, skipped segments, sentences,
//! both modes.

use std::collections::HashMap;

use super::*;

/// Emissions per span start: a peaky matrix from `peaks` (class per frame, 0.9 on it), or all
/// blank frames (as many as wav2vec2 makes from the span) for a span it does not know.
struct Fake {
    peaks: HashMap<usize, Vec<usize>>,
    calls: Vec<Vec<SampleSpan>>,
}

const CLASSES: usize = 29;

fn peaky(peaks: &[usize]) -> OwnedEmissions {
    let lo = (1.0f32 - 0.9) / (CLASSES - 1) as f32;
    let data =
        peaks.iter().flat_map(|&p| (0..CLASSES).map(move |c| if c == p { 0.9f32.ln() } else { lo.ln() })).collect();
    OwnedEmissions { data, frames: peaks.len(), classes: CLASSES }
}

impl EmissionSource for Fake {
    fn emissions(&mut self, spans: &[SampleSpan]) -> Result<Vec<OwnedEmissions>> {
        self.calls.push(spans.to_vec());
        Ok(spans
            .iter()
            .map(|s| match self.peaks.get(&s.start) {
                Some(p) => peaky(p),
                None => peaky(&vec![0; ((s.end - s.start).max(MIN_SAMPLES) - MIN_SAMPLES) / 320 + 1]),
            })
            .collect())
    }
}

/// Sentences end after `.`, `?` or `!` followed by a space (enough for these texts); offsets
/// skip the whitespace around them, as punkt's do.
struct Stops;

impl SentenceSplitter for Stops {
    fn spans(&self, text: &str) -> Vec<(usize, usize)> {
        let chars: Vec<char> = text.chars().collect();
        let mut out = Vec::new();
        let mut start = None;
        for (i, &c) in chars.iter().enumerate() {
            if start.is_none() && !c.is_whitespace() {
                start = Some(i);
            }
            let last = i + 1 == chars.len() || matches!(c, '.' | '?' | '!') && chars[i + 1] == ' ';
            if let (Some(s), true) = (start, last) {
                let mut end = i + 1;
                while end > s && chars[end - 1].is_whitespace() {
                    end -= 1;
                }
                out.push((s, end));
                start = None;
            }
        }
        out
    }
}

fn segment(start: f64, end: f64, text: &str) -> Segment {
    Segment { start, end, text: text.into(), avg_logprob: Some(-0.5), ..Default::default() }
}

fn config(mode: Mode) -> AlignConfig {
    AlignConfig { mode, language: "en".into(), audio_seconds: 60.0, ..Default::default() }
}

fn run(segments: &[Segment], fake: &mut Fake, cfg: &AlignConfig) -> Result<Aligned> {
    let dict = Dictionary::torchaudio_base_960h();
    align(segments, &dict, fake, &Stops, cfg, &Cancel::new(), &mut |_, _| {})
}

const H: usize = 8;
const E: usize = 2;
const Y: usize = 19;
const O: usize = 5;
const SEP: usize = 1;

#[test]
fn sample_spans_truncate_like_python_int() {
    assert_eq!(SampleSpan::of_segment(1.23456, 2.0), SampleSpan { start: 19752, end: 32000 });
    assert_eq!(SampleSpan::of_segment(2.0, 1.0), SampleSpan { start: 32000, end: 32000 });
}

#[test]
fn emissions_are_requested_sixteen_segments_at_a_time_skipping_those_not_aligned() {
    // 20 segments, of which #3 has no characters and #5 starts past the audio.
    let mut segs: Vec<Segment> = (0..20).map(|i| segment(i as f64, i as f64 + 0.5, " he")).collect();
    segs[3].text = "  ".into();
    segs[5].start = 70.0;
    segs[5].end = 71.0;
    let mut fake = Fake { peaks: HashMap::new(), calls: Vec::new() };
    let mut seen = Vec::new();
    let dict = Dictionary::torchaudio_base_960h();
    let cfg = config(Mode::WhisperxCompat);
    align(&segs, &dict, &mut fake, &Stops, &cfg, &Cancel::new(), &mut |d, n| seen.push((d, n))).unwrap();
    assert_eq!(fake.calls.iter().map(Vec::len).collect::<Vec<_>>(), [16, 2]);
    assert_eq!(fake.calls[0][0], SampleSpan { start: 0, end: 8000 });
    assert!(fake.calls.iter().flatten().all(|s| s.start != 48000 && s.start != 70 * 16000));
    assert_eq!(seen.len(), 20);
    assert_eq!(seen.last(), Some(&(20, 20)));
}

#[test]
fn skipped_segments_come_out_as_they_went_in() {
    // WX L236-244: no characters, or start at/after the audio's end: own times, no words.
    let segs = [segment(1.0, 2.0, "   "), segment(60.0, 61.0, " he")];
    for mode in [Mode::WhisperxCompat, Mode::CtcViterbi] {
        let cfg = AlignConfig { return_char_alignments: true, ..config(mode) };
        let mut fake = Fake { peaks: HashMap::new(), calls: Vec::new() };
        let out = run(&segs, &mut fake, &cfg).unwrap();
        assert!(fake.calls.is_empty());
        let first = &out.segments[0];
        assert_eq!((first.start, first.end, first.text.as_str()), (1.0, 2.0, "   "));
        assert_eq!((&first.words, &first.chars, first.avg_logprob), (&vec![], &Some(vec![]), Some(-0.5)));
        let past_the_end = &out.segments[1];
        match mode {
            Mode::WhisperxCompat => assert_eq!(past_the_end.words, []),
            // The default mode gives words times across the segment, with score 0.
            Mode::CtcViterbi => assert_eq!(
                past_the_end.words,
                [Word { word: "he".into(), start: Some(60.0), end: Some(61.0), score: Some(0.0), speaker: None }]
            ),
        }
    }
}

#[test]
fn compat_cuts_a_segment_at_sentences_with_words_and_chars() {
    // " He. Yo" from 1.0 to 1.4 s: 20 frames, so 0.02 s a frame.
    // Tokens h e . | y o ('.' is a wildcard): h@2 e@3 .@4 |@8 y@10 o@11.
    let peaks = vec![0, 0, H, E, 3, 0, 0, 0, SEP, 0, Y, O, 0, 0, 0, 0, 0, 0, 0, 0];
    let mut fake = Fake { peaks: HashMap::from([(16000, peaks)]), calls: Vec::new() };
    let mut cfg = config(Mode::WhisperxCompat);
    cfg.return_char_alignments = true;
    let out = run(&[segment(1.0, 1.4, " He. Yo")], &mut fake, &cfg).unwrap();
    assert_eq!(out.segments.len(), 2);
    let (a, b) = (&out.segments[0], &out.segments[1]);
    assert_eq!((a.text.as_str(), a.start, a.end), ("He.", 1.04, 1.16));
    assert_eq!(
        a.words,
        [Word { word: "He.".into(), start: Some(1.04), end: Some(1.16), score: Some(0.9), speaker: None }]
    );
    // '|' keeps the frames until 'y' (8, 9); 'o' runs to the trellis's best end (12).
    assert_eq!((b.text.as_str(), b.start, b.end), ("Yo", 1.2, 1.24));
    // Sentence 0's characters run to index 4 inclusive: " He. " less the leading space.
    let chars: String = a.chars.as_ref().unwrap().iter().map(|c| c.char.as_str()).collect();
    assert_eq!(chars, "He. ");
    assert_eq!(a.chars.as_ref().unwrap()[3].start, Some(1.16), "the space is '|'");
    assert_eq!(out.word_segments.len(), 2);
    assert_eq!((a.avg_logprob, b.avg_logprob), (Some(-0.5), Some(-0.5)));
}

#[test]
fn the_default_mode_ends_words_at_their_last_letter() {
    // The same emissions: "He." ends at 'e' (frame 3, end 1.08); '.' is unspoken.
    let peaks = vec![0, 0, H, E, 3, 0, 0, 0, SEP, 0, Y, O, 0, 0, 0, 0, 0, 0, 0, 0];
    let mut fake = Fake { peaks: HashMap::from([(16000, peaks)]), calls: Vec::new() };
    let out = run(&[segment(1.0, 1.4, " He. Yo")], &mut fake, &config(Mode::CtcViterbi)).unwrap();
    let words: Vec<(&str, Option<f64>, Option<f64>)> =
        out.word_segments.iter().map(|w| (w.word.as_str(), w.start, w.end)).collect();
    assert_eq!(words, [("He.", Some(1.04), Some(1.08)), ("Yo", Some(1.2), Some(1.24))]);
}

#[test]
fn cancelling_stops_before_the_next_segment_and_a_short_answer_is_an_error() {
    let cancel = Cancel::new();
    cancel.cancel();
    let dict = Dictionary::torchaudio_base_960h();
    let mut fake = Fake { peaks: HashMap::new(), calls: Vec::new() };
    let r =
        align(&[segment(0.0, 1.0, "he")], &dict, &mut fake, &Stops, &config(Mode::CtcViterbi), &cancel, &mut |_, _| {});
    assert!(matches!(r, Err(Error::Cancelled)));

    struct Short;
    impl EmissionSource for Short {
        fn emissions(&mut self, _: &[SampleSpan]) -> Result<Vec<OwnedEmissions>> {
            Ok(vec![])
        }
    }
    let r = align(
        &[segment(0.0, 1.0, "he")],
        &dict,
        &mut Short,
        &Stops,
        &config(Mode::CtcViterbi),
        &Cancel::new(),
        &mut |_, _| {},
    );
    assert!(r.unwrap_err().to_string().contains("0 emissions for 1 segments"));
}

#[test]
fn ja_words_are_single_characters() {
    // A dictionary with 日 and 本 only; "日本" aligned, every character its own word.
    let dict = Dictionary::from_vocab([("<pad>".to_string(), 0), ("日".into(), 1), ("本".into(), 2)]);
    let mut data = Vec::new();
    for p in [0usize, 1, 2, 0] {
        data.extend((0..3).map(|c| if c == p { 0.9f32.ln() } else { 0.05f32.ln() }));
    }
    struct One(Vec<f32>);
    impl EmissionSource for One {
        fn emissions(&mut self, spans: &[SampleSpan]) -> Result<Vec<OwnedEmissions>> {
            Ok(spans.iter().map(|_| OwnedEmissions { data: self.0.clone(), frames: 4, classes: 3 }).collect())
        }
    }
    let cfg =
        AlignConfig { mode: Mode::WhisperxCompat, language: "ja".into(), audio_seconds: 10.0, ..Default::default() };
    let out = align(&[segment(0.0, 0.4, "日本")], &dict, &mut One(data), &Stops, &cfg, &Cancel::new(), &mut |_, _| {})
        .unwrap();
    let words: Vec<(&str, Option<f64>)> = out.word_segments.iter().map(|w| (w.word.as_str(), w.start)).collect();
    assert_eq!(words, [("日", Some(0.1)), ("本", Some(0.2))]);
}
