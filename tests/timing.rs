//! Word timestamps from cross-attention DTW against openai/whisper's timing.py, through the
//! fixtures of tests/reference/make_timing_reference.py (tests/data/timing/*.json).

mod common;

use std::path::{Path, PathBuf};

use scribe::models::whisper::timing::{self, WordTiming};
use scribe::models::whisper::WhisperTokenizer;
use scribe::output::result::Segment;
use serde_json::Value;

fn fixture(name: &str) -> Value {
    let path = common::root().join("tests/data/timing").join(format!("{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn f32s(v: &Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

fn usizes(v: &Value) -> Vec<usize> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect()
}

fn u32s(v: &Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_string()).collect()
}

fn nested_u32s(v: &Value) -> Vec<Vec<u32>> {
    v.as_array().unwrap().iter().map(u32s).collect()
}

fn us(v: &Value) -> usize {
    v.as_u64().unwrap() as usize
}

/// tokenizer.json of a fetched model (the tokenizer alone is enough), or None with a note.
fn tokenizer(model: &str) -> Option<WhisperTokenizer> {
    let path: PathBuf = common::root().join("models").join(model).join("tokenizer.json");
    if !path.is_file() {
        common::cannot_run(&format!("run models/fetch {model}"));
        return None;
    }
    let vocab = if model == "tiny.en" { 51864 } else { 51865 };
    Some(WhisperTokenizer::from_file(Path::new(&path), vocab).unwrap())
}

#[test]
fn median_filter_matches_reference() {
    for case in fixture("median_filter").as_array().unwrap() {
        let (rows, cols, width) = (us(&case["rows"]), us(&case["cols"]), us(&case["width"]));
        let mut x = f32s(&case["x"]);
        timing::median_filter(&mut x, rows, cols, width);
        assert_eq!(x, f32s(&case["y"]), "rows {rows} cols {cols} width {width}");
    }
}

#[test]
fn dtw_matches_reference() {
    for case in fixture("dtw").as_array().unwrap() {
        let (n, m) = (us(&case["n"]), us(&case["m"]));
        let (text, time) = timing::dtw(&f32s(&case["cost"]), n, m);
        assert_eq!(text, usizes(&case["text"]), "{n}×{m} text");
        assert_eq!(time, usizes(&case["time"]), "{n}×{m} time");
    }
}

#[test]
fn split_to_word_tokens_matches_openai() {
    let split = fixture("split");
    for model in ["tiny.en", "base"] {
        let Some(tok) = tokenizer(model) else { continue };
        for case in split[model].as_array().unwrap() {
            let lang = case["language"].as_str().unwrap();
            let text = case["text"].as_str().unwrap();
            let tokens = u32s(&case["tokens"]);
            // tokenizer.json's BPE does not always give tiktoken's ids (base splits `" text` as
            // `"`, ` `, `text`); the split is checked on tiktoken's tokens
            let mut ours = tok.encode(text).unwrap();
            ours.push(tok.special.eot);
            if ours != tokens {
                eprintln!("note: {model} encodes {text:?} as {ours:?}, tiktoken as {tokens:?}");
            }
            let (words, word_tokens) = tok.split_to_word_tokens(&tokens, lang).unwrap();
            assert_eq!(words, strings(&case["words"]), "{model} {lang} {text:?}");
            assert_eq!(word_tokens, nested_u32s(&case["word_tokens"]), "{model} {lang} {text:?}");
        }
    }
}

#[test]
fn partial_utf8_tokens_decode_to_replacement_chars() {
    let Some(tok) = tokenizer("base") else { return };
    // "！" (U+FF01) is three byte tokens in the multilingual vocabulary
    let ids = tok.encode("！").unwrap();
    assert_eq!(ids.len(), 3, "{ids:?}");
    assert_eq!(tok.decode_with_timestamps(&ids).unwrap(), "！");
    assert_eq!(tok.decode_with_timestamps(&ids[..1]).unwrap(), "\u{fffd}");
    assert_eq!(tok.decode_with_timestamps(&ids[..2]).unwrap(), "\u{fffd}");
    assert_eq!(tok.decode_with_timestamps(&ids[1..]).unwrap(), "\u{fffd}\u{fffd}");
    // the `tokenizers` ByteLevel decoder (used by `decode`) is lossy over the joined bytes too
    assert_eq!(tok.decode(&ids[..1]).unwrap(), "\u{fffd}");
    assert_eq!(tok.decode(&ids).unwrap(), "！");
    // special and timestamp tokens keep their text
    let ts = tok.special.timestamp_begin + 54;
    assert_eq!(tok.decode_with_timestamps(&[ts, tok.special.eot]).unwrap(), "<|1.08|><|endoftext|>");
    // the three byte tokens make one word
    let (words, word_tokens) = tok.split_tokens_on_unicode(&[ids[0], ids[1], ids[2], tok.special.eot]).unwrap();
    assert_eq!(words, vec!["！".to_string(), "<|endoftext|>".to_string()]);
    assert_eq!(word_tokens, vec![ids.clone(), vec![tok.special.eot]]);
    // an incomplete character at the end: the first token is a word "\u{fffd}" (its U+FFFD is
    // U+FFFD in the full text too); the second finds no character left in the full text, where
    // openai raises IndexError, and is dropped here
    let (words, _) = tok.split_tokens_on_unicode(&[ids[0], ids[1]]).unwrap();
    assert_eq!(words, vec!["\u{fffd}".to_string()]);
}

fn word_timing(v: &Value) -> WordTiming {
    WordTiming {
        word: v["word"].as_str().unwrap().into(),
        tokens: u32s(&v["tokens"]),
        start: v["start"].as_f64().unwrap(),
        end: v["end"].as_f64().unwrap(),
        probability: v["probability"].as_f64().unwrap(),
    }
}

#[test]
fn find_alignment_matches_reference() {
    let Some(tok) = tokenizer("tiny.en") else { return };
    for case in fixture("find_alignment").as_array().unwrap() {
        let text_tokens = u32s(&case["text_tokens"]);
        let split = |t: &[u32]| tok.split_to_word_tokens(t, "en").unwrap();
        let got = timing::find_alignment(
            &f32s(&case["qk"]),
            us(&case["n_heads"]),
            us(&case["n_tokens"]),
            us(&case["n_frames_total"]),
            us(&case["num_frames"]),
            case["sot"].as_array().unwrap().len(),
            &text_tokens,
            case["eot"].as_u64().unwrap() as u32,
            &f32s(&case["token_probs"]),
            &split,
            timing::MEDFILT_WIDTH,
            1.0,
        );
        let want: Vec<WordTiming> = case["words"].as_array().unwrap().iter().map(word_timing).collect();
        assert_eq!(got.len(), want.len(), "{}", case["text"]);
        for (g, w) in got.iter().zip(&want) {
            assert_eq!((&g.word, &g.tokens, g.start, g.end), (&w.word, &w.tokens, w.start, w.end), "{}", case["text"]);
            assert!((g.probability - w.probability).abs() < 1e-12, "{} {} vs {}", g.word, g.probability, w.probability);
        }
        // the synthetic diagonal: each word after the first starts at its first token's anchor
        // frame and ends where the next word's first token starts; the path starts at (0, 0)
        let anchors = usizes(&case["anchors"]);
        assert_eq!(got[0].start, 0.0);
        let mut k = 0;
        for w in &got {
            if k > 0 {
                assert_eq!(w.start, anchors[k] as f64 / 50.0, "{:?}", w.word);
            }
            k += w.tokens.len();
            assert_eq!(w.end, anchors[k] as f64 / 50.0, "{:?}", w.word);
        }
    }
}

fn segment(v: &Value) -> Segment {
    Segment {
        start: v["start"].as_f64().unwrap(),
        end: v["end"].as_f64().unwrap(),
        tokens: u32s(&v["tokens"]),
        ..Default::default()
    }
}

#[test]
fn add_word_timestamps_matches_reference() {
    for case in fixture("add_word_timestamps").as_array().unwrap() {
        let mut segments: Vec<Segment> = case["segments"].as_array().unwrap().iter().map(segment).collect();
        let alignment: Vec<WordTiming> = case["alignment"].as_array().unwrap().iter().map(word_timing).collect();
        timing::add_word_timestamps(
            &mut segments,
            alignment,
            case["eot"].as_u64().unwrap() as u32,
            case["time_offset"].as_f64().unwrap(),
            case["last_speech_timestamp"].as_f64().unwrap(),
            timing::PREPEND_PUNCTUATIONS,
            timing::APPEND_PUNCTUATIONS,
        );
        let want = case["result"].as_array().unwrap();
        assert_eq!(segments.len(), want.len());
        for (s, w) in segments.iter().zip(want) {
            assert_eq!((s.start, s.end), (w["start"].as_f64().unwrap(), w["end"].as_f64().unwrap()), "{s:?}");
            let ww = w["words"].as_array().unwrap();
            assert_eq!(s.words.len(), ww.len(), "{s:?}");
            for (g, e) in s.words.iter().zip(ww) {
                assert_eq!(g.word, e["word"].as_str().unwrap());
                assert_eq!(g.start, e["start"].as_f64(), "{}", g.word);
                assert_eq!(g.end, e["end"].as_f64(), "{}", g.word);
                assert!((g.score.unwrap() - e["probability"].as_f64().unwrap()).abs() < 1e-12);
            }
        }
    }
}

#[test]
fn last_word_end_is_get_end() {
    let mut segs = vec![Segment { end: 3.0, ..Default::default() }, Segment { end: 5.0, ..Default::default() }];
    assert_eq!(timing::last_word_end(&segs), Some(5.0));
    segs[0].words.push(scribe::output::result::Word { word: " a".into(), end: Some(2.5), ..Default::default() });
    assert_eq!(timing::last_word_end(&segs), Some(2.5));
    assert_eq!(timing::last_word_end(&[]), None);
}
