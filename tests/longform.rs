//! The long-form policy's segment rules (engine/models/whisper/longform.rs `split_segments`,
//! openai transcribe.py L339-399) on tiny.en's real tokenizer: where segments are cut and how
//! far `seek` moves. The policy's other rules have unit tests beside it.

mod common;

use std::path::Path;

use scribe::models::whisper::decoding::DecodingResult;
use scribe::models::whisper::longform::{split_segments, INPUT_STRIDE};
use scribe::models::whisper::tokenizer::WhisperTokenizer;

fn tokenizer() -> Option<WhisperTokenizer> {
    let dir = common::model_dir("tiny.en")?;
    Some(WhisperTokenizer::from_file(Path::new(&dir.join("tokenizer.json")), 51864).unwrap())
}

fn result(tokens: Vec<u32>) -> DecodingResult {
    DecodingResult {
        tokens,
        text: String::new(),
        avg_logprob: -0.2,
        no_speech_prob: 0.01,
        temperature: 0.0,
        compression_ratio: 1.1,
    }
}

#[test]
fn l344_377_consecutive_timestamps_cut_segments_and_seek_goes_to_the_last_one() {
    let Some(tok) = tokenizer() else { return };
    let tb = tok.special.timestamp_begin;
    let hello = tok.encode(" Hello").unwrap();
    let world = tok.encode(" world").unwrap();
    // <0.00> Hello <1.00><1.00> world <2.00><2.00> Hello  (the last segment unfinished)
    let mut tokens = vec![tb];
    tokens.extend(&hello);
    tokens.extend([tb + 50, tb + 50]);
    tokens.extend(&world);
    tokens.extend([tb + 100, tb + 100]);
    tokens.extend(&hello);
    let (segments, advance) = split_segments(&tok, &result(tokens), 10.0, 3000).unwrap();
    assert_eq!(segments.len(), 2, "{segments:?}");
    assert_eq!((segments[0].start, segments[0].end, segments[0].text.as_str()), (10.0, 11.0, " Hello"));
    assert_eq!((segments[1].start, segments[1].end, segments[1].text.as_str()), (11.0, 12.0, " world"));
    // "ignore the unfinished segment and seek to the last timestamp": <2.00> is position 100.
    assert_eq!(advance, 100 * INPUT_STRIDE);
}

#[test]
fn l347_371_a_single_timestamp_ending_keeps_the_last_segment_and_skips_the_window() {
    let Some(tok) = tokenizer() else { return };
    let tb = tok.special.timestamp_begin;
    let hello = tok.encode(" Hello").unwrap();
    // <0.00> Hello <1.00><1.00> Hello <2.00>  (ends on a single timestamp)
    let mut tokens = vec![tb];
    tokens.extend(&hello);
    tokens.extend([tb + 50, tb + 50]);
    tokens.extend(&hello);
    tokens.push(tb + 100);
    let (segments, advance) = split_segments(&tok, &result(tokens), 0.0, 2500).unwrap();
    assert_eq!(segments.len(), 2);
    assert_eq!((segments[1].start, segments[1].end), (1.0, 2.0));
    assert_eq!(advance, 2500, "single timestamp at the end: no speech after it, seek past the window");
}

#[test]
fn l381_399_without_consecutive_timestamps_one_segment_spans_to_the_last_timestamp() {
    let Some(tok) = tokenizer() else { return };
    let tb = tok.special.timestamp_begin;
    let hello = tok.encode(" Hello").unwrap();
    // <0.00> Hello <1.50>: one segment to the last timestamp, seek past the window.
    let mut tokens = vec![tb];
    tokens.extend(&hello);
    tokens.push(tb + 75);
    let (segments, advance) = split_segments(&tok, &result(tokens), 4.0, 2000).unwrap();
    assert_eq!(segments.len(), 1);
    assert_eq!((segments[0].start, segments[0].end), (4.0, 5.5));
    assert_eq!(advance, 2000);
    // No timestamp at all (or only <0.00>): the segment spans the window's content.
    let (segments, advance) = split_segments(&tok, &result(hello.clone()), 4.0, 2000).unwrap();
    assert_eq!((segments[0].start, segments[0].end, advance), (4.0, 24.0, 2000));
    let mut only_zero = vec![tb];
    only_zero.extend(&hello);
    let (segments, _) = split_segments(&tok, &result(only_zero), 0.0, 1000).unwrap();
    assert_eq!(segments[0].end, 10.0);
}
