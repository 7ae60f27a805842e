//! engine/output: every writer against whisperX's own writers, byte for byte.
//!
//! `tests/data/writers/<case>/` holds a transcript (`input.json`), writer options and what
//! whisperX's `whisperx/utils.py` writes for them (`expected.<ext>`), made by
//! `tests/reference/make_writer_reference.py`. A few transcripts are also built by hand here, to
//! pin the inputs and show the outputs inline.

use std::path::{Path, PathBuf};

use scribe::output::{
    parse_formats, render, write_outputs, OutputFormat, Segment, Transcript, Word, WriterOptions, ALL_FORMATS,
};

fn cases_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/writers")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn load_case(name: &str) -> (Transcript, WriterOptions) {
    let dir = cases_dir().join(name);
    let t: Transcript = serde_json::from_str(&read(&dir.join("input.json"))).expect("input.json");
    let o: serde_json::Value = serde_json::from_str(&read(&dir.join("options.json"))).expect("options.json");
    let opts = WriterOptions {
        max_line_width: o["max_line_width"].as_u64().map(|v| v as usize),
        max_line_count: o["max_line_count"].as_u64().map(|v| v as usize),
        highlight_words: o["highlight_words"].as_bool().unwrap_or(false),
    };
    (t, opts)
}

/// First differing line, for a readable failure.
fn first_difference(want: &str, got: &str) -> String {
    for (i, (w, g)) in want.split('\n').zip(got.split('\n')).enumerate() {
        if w != g {
            return format!("line {}: expected {w:?}, got {g:?}", i + 1);
        }
    }
    format!("lengths differ: expected {} lines, got {}", want.split('\n').count(), got.split('\n').count())
}

#[test]
fn every_case_matches_whisperx_byte_for_byte() {
    let mut dirs: Vec<PathBuf> =
        std::fs::read_dir(cases_dir()).expect("tests/data/writers").map(|e| e.unwrap().path()).collect();
    dirs.sort();
    let mut checked = 0;
    let mut failures = Vec::new();
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_str().unwrap();
        let (t, opts) = load_case(name);
        for format in [
            OutputFormat::Txt,
            OutputFormat::Srt,
            OutputFormat::Vtt,
            OutputFormat::Tsv,
            OutputFormat::Json,
            OutputFormat::Aud,
        ] {
            let expected = dir.join(format!("expected.{}", format.extension()));
            if !expected.exists() {
                continue;
            }
            let want = read(&expected);
            let got = render(&t, format, &opts).unwrap_or_else(|e| panic!("{name}.{format}: {e}"));
            checked += 1;
            if got != want {
                failures.push(format!("{name}.{format}: {}", first_difference(&want, &got)));
            }
        }
    }
    assert!(failures.is_empty(), "{} of {checked} outputs differ:\n{}", failures.len(), failures.join("\n"));
    assert!(checked >= 50, "only {checked} reference outputs found");
}

fn word(w: &str, start: f64, end: f64, score: f64, speaker: Option<&str>) -> Word {
    Word { word: w.into(), start: Some(start), end: Some(end), score: Some(score), speaker: speaker.map(Into::into) }
}

fn segment(start: f64, end: f64, text: &str, words: Vec<Word>, speaker: Option<&str>) -> Segment {
    Segment { start, end, text: text.into(), words, speaker: speaker.map(Into::into), ..Default::default() }
}

/// The `speakers` case, built by hand.
fn speakers() -> Transcript {
    let (s0, s1) = (Some("SPEAKER_00"), Some("SPEAKER_01"));
    let mut t = Transcript {
        segments: vec![
            segment(
                0.5,
                2.0,
                " Good morning everyone.",
                vec![
                    word("Good", 0.5, 0.8, 0.9, s0),
                    word("morning", 0.85, 1.3, 0.88, s0),
                    word("everyone.", 1.35, 2.0, 0.93, s0),
                ],
                s0,
            ),
            segment(
                2.4,
                4.1,
                " Morning!\tHow are you?",
                vec![
                    word("Morning!", 2.4, 2.9, 0.91, s1),
                    word("How", 3.1, 3.3, 0.95, s1),
                    word("are", 3.35, 3.5, 0.97, s1),
                    word("you?", 3.55, 4.1, 0.99, s1),
                ],
                s1,
            ),
            segment(4.5, 5.0, " Hm.", vec![word("Hm.", 4.5, 5.0, 0.4, None)], None),
        ],
        word_segments: vec![],
        language: "en".into(),
        ..Default::default()
    };
    t.collect_word_segments();
    t
}

#[test]
fn speakers_by_hand() {
    let t = speakers();
    assert_eq!(t, load_case("speakers").0, "hand-built transcript differs from tests/data/writers/speakers");
    let opts = WriterOptions::default();
    assert_eq!(
        render(&t, OutputFormat::Txt, &opts).unwrap(),
        "[SPEAKER_00]: Good morning everyone.\n[SPEAKER_01]: Morning!\tHow are you?\nHm.\n"
    );
    assert_eq!(
        render(&t, OutputFormat::Srt, &opts).unwrap(),
        "1\n00:00:00,500 --> 00:00:02,000\n[SPEAKER_00]: Good morning everyone.\n\n\
         2\n00:00:02,400 --> 00:00:04,100\n[SPEAKER_01]: Morning! How are you?\n\n\
         3\n00:00:04,500 --> 00:00:05,000\nHm.\n\n"
    );
    assert_eq!(
        render(&t, OutputFormat::Tsv, &opts).unwrap(),
        "start\tend\ttext\n500\t2000\tGood morning everyone.\n2400\t4100\tMorning! How are you?\n4500\t5000\tHm.\n"
    );
    assert_eq!(
        render(&t, OutputFormat::Aud, &opts).unwrap(),
        "0.5\t2.0\t[[SPEAKER_00]]Good morning everyone.\n2.4\t4.1\t[[SPEAKER_01]]Morning! How are you?\n4.5\t5.0\tHm.\n"
    );
}

#[test]
fn hours_long_times() {
    let t = Transcript {
        segments: vec![segment(3599.9996, 7322.0125, " Long.", vec![], None)],
        word_segments: vec![],
        language: "en".into(),
        ..Default::default()
    };
    let opts = WriterOptions::default();
    assert_eq!(render(&t, OutputFormat::Vtt, &opts).unwrap(), "WEBVTT\n\n01:00:00.000 --> 02:02:02.012\nLong.\n\n");
    assert_eq!(render(&t, OutputFormat::Srt, &opts).unwrap(), "1\n01:00:00,000 --> 02:02:02,012\nLong.\n\n");
    assert_eq!(render(&t, OutputFormat::Tsv, &opts).unwrap(), "start\tend\ttext\n3600000\t7322012\tLong.\n");
}

#[test]
fn json_is_the_whisperx_schema_only() {
    let mut t = speakers();
    t.segments[0].avg_logprob = Some(-0.25);
    t.segments[0].compression_ratio = Some(1.5);
    t.segments[0].no_speech_prob = Some(0.01);
    t.segments[0].temperature = Some(0.0);
    t.segments[0].tokens = vec![1, 2, 3];
    let json = render(&t, OutputFormat::Json, &WriterOptions::default()).unwrap();
    assert!(json.starts_with(
        r#"{"segments": [{"start": 0.5, "end": 2.0, "text": " Good morning everyone.", "words": [{"word": "Good", "start": 0.5, "end": 0.8, "score": 0.9, "speaker": "SPEAKER_00"}"#
    ));
    // whisperX writes avg_logprob (after words, before speaker) but none of the other diagnostics.
    assert!(json.contains(r#"}], "avg_logprob": -0.25, "speaker": "SPEAKER_00"}"#), "{json}");
    for field in ["compression_ratio", "no_speech_prob", "temperature", "tokens"] {
        assert!(!json.contains(field), "{field} written: {json}");
    }
    assert!(json.ends_with(r#"], "language": "en"}"#));
    let back: Transcript = serde_json::from_str(&json).unwrap();
    assert_eq!(back.segments[1], t.segments[1]);
}

#[test]
fn words_without_times() {
    let untimed = |w: &str| Word { word: w.into(), ..Default::default() };
    let t = Transcript {
        segments: vec![
            segment(
                1.0,
                3.0,
                " In 1999 it",
                vec![word("In", 1.0, 1.2, 0.9, None), untimed("1999"), word("it", 2.5, 3.0, 0.9, None)],
                None,
            ),
            segment(4.0, 5.0, " 42", vec![untimed("42")], None),
        ],
        word_segments: vec![],
        language: "en".into(),
        ..Default::default()
    };
    let opts = WriterOptions { highlight_words: true, ..Default::default() };
    assert_eq!(
        render(&t, OutputFormat::Vtt, &opts).unwrap(),
        "WEBVTT\n\n\
         00:01.000 --> 00:01.200\n<u>In</u> 1999 it\n\n\
         00:01.200 --> 00:02.500\nIn 1999 it\n\n\
         00:02.500 --> 00:03.000\nIn 1999 <u>it</u>\n\n\
         00:04.000 --> 00:05.000\n42\n\n"
    );
}

#[test]
fn segment_without_words_keeps_its_text() {
    // whisperX would drop this segment from the subtitles; we keep it, over its segment times.
    let t = Transcript {
        segments: vec![
            segment(0.0, 1.0, " Hello.", vec![word("Hello.", 0.1, 0.9, 0.9, None)], None),
            segment(2.0, 3.0, " Unalignable ♪", vec![], Some("SPEAKER_01")),
        ],
        word_segments: vec![],
        language: "en".into(),
        ..Default::default()
    };
    assert_eq!(
        render(&t, OutputFormat::Srt, &WriterOptions::default()).unwrap(),
        "1\n00:00:00,100 --> 00:00:00,900\nHello.\n\n2\n00:00:02,000 --> 00:00:03,000\n[SPEAKER_01]: Unalignable ♪\n\n"
    );
}

#[test]
fn negative_time_is_an_error() {
    let t = Transcript {
        segments: vec![segment(-0.5, 1.0, " x", vec![], None)],
        word_segments: vec![],
        language: "en".into(),
        ..Default::default()
    };
    let err = render(&t, OutputFormat::Srt, &WriterOptions::default()).unwrap_err().to_string();
    assert!(err.contains("non-negative"), "{err}");
    // TSV has no such check in whisperX: it writes the rounded milliseconds.
    assert_eq!(render(&t, OutputFormat::Tsv, &WriterOptions::default()).unwrap(), "start\tend\ttext\n-500\t1000\tx\n");
}

#[test]
fn formats_parse_like_the_whisperx_cli() {
    assert_eq!(
        parse_formats("all").unwrap(),
        vec![OutputFormat::Txt, OutputFormat::Vtt, OutputFormat::Srt, OutputFormat::Tsv, OutputFormat::Json]
    );
    assert_eq!(parse_formats("aud").unwrap(), vec![OutputFormat::Aud]);
    assert!(parse_formats("pdf").is_err());
    assert_eq!("vtt".parse::<OutputFormat>().unwrap(), OutputFormat::Vtt);
}

#[test]
fn write_outputs_names_files_after_the_audio() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out/nested");
    let t = speakers();
    let mut formats = ALL_FORMATS.to_vec();
    formats.push(OutputFormat::Aud);
    let written =
        write_outputs(&t, Path::new("/data/talk.final.wav"), &out, &formats, &WriterOptions::default()).unwrap();
    let names: Vec<String> = written.iter().map(|p| p.file_name().unwrap().to_str().unwrap().to_string()).collect();
    assert_eq!(
        names,
        ["talk.final.txt", "talk.final.vtt", "talk.final.srt", "talk.final.tsv", "talk.final.json", "talk.final.aud"]
    );
    for (path, format) in written.iter().zip(&formats) {
        assert_eq!(read(path), render(&t, *format, &WriterOptions::default()).unwrap());
    }
    // Nothing but the outputs is left in the directory (no temporary files).
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), formats.len());
}

#[test]
fn write_outputs_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    // A directory where the .srt file should go makes the rename fail.
    std::fs::create_dir(dir.path().join("a.srt")).unwrap();
    std::fs::write(dir.path().join("a.srt/keep"), "x").unwrap();
    let err =
        write_outputs(&speakers(), Path::new("a.flac"), dir.path(), &[OutputFormat::Srt], &WriterOptions::default())
            .unwrap_err()
            .to_string();
    assert!(err.contains("a.srt"), "{err}");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers, ["a.srt"], "temporary file left behind");
}

#[test]
fn word_options_need_word_times() {
    let dir = tempfile::tempdir().unwrap();
    let t = Transcript {
        segments: vec![segment(0.0, 1.0, " x", vec![], None)],
        word_segments: vec![],
        language: "en".into(),
        ..Default::default()
    };
    let opts = WriterOptions { highlight_words: true, ..Default::default() };
    let err = write_outputs(&t, Path::new("a.wav"), dir.path(), &[OutputFormat::Srt], &opts).unwrap_err().to_string();
    assert!(err.contains("highlight_words"), "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

/// `--speaker_embeddings`: WhisperX adds `speaker_embeddings` to the result after the language;
/// without it the key is absent.
#[test]
fn speaker_embeddings_follow_the_language_in_the_json() {
    let mut t = speakers();
    let plain = render(&t, OutputFormat::Json, &WriterOptions::default()).unwrap();
    assert!(plain.ends_with(r#""language": "en"}"#), "{plain}");
    t.speaker_embeddings =
        Some([("SPEAKER_00".to_string(), vec![0.5, -1.0]), ("SPEAKER_01".into(), vec![0.25, 2.0])].into());
    let json = render(&t, OutputFormat::Json, &WriterOptions::default()).unwrap();
    assert!(
        json.ends_with(
            r#""language": "en", "speaker_embeddings": {"SPEAKER_00": [0.5, -1.0], "SPEAKER_01": [0.25, 2.0]}}"#
        ),
        "{json}"
    );
}

/// `-f rttm`: the diarization's turns as pyannote's RTTM lines, named after the audio file; not
/// part of `all`.
#[test]
fn rttm_writes_the_speaker_turns_under_the_audio_name() {
    use scribe::diarize::assign::SpeakerTurn;
    let mut t = speakers();
    t.speaker_turns = vec![SpeakerTurn::new(0.5, 2.0, "SPEAKER_00"), SpeakerTurn::new(1.75, 4.125, "SPEAKER_01")];
    let dir = tempfile::tempdir().unwrap();
    let formats = scribe::output::parse_formats("rttm").unwrap();
    let written = scribe::output::write_outputs(
        &t,
        std::path::Path::new("my talk.wav"),
        dir.path(),
        &formats,
        &WriterOptions::default(),
    )
    .unwrap();
    assert_eq!(written, vec![dir.path().join("my talk.rttm")]);
    assert_eq!(
        std::fs::read_to_string(&written[0]).unwrap(),
        "SPEAKER my_talk 1 0.500 1.500 <NA> <NA> SPEAKER_00 <NA> <NA>\n\
         SPEAKER my_talk 1 1.750 2.375 <NA> <NA> SPEAKER_01 <NA> <NA>\n"
    );
    assert!(!scribe::output::parse_formats("all").unwrap().contains(&OutputFormat::Rttm));
}
