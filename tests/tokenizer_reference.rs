//! Prompt encoding against openai-whisper's own tokenizer (tiktoken): every string of
//! tests/reference/data/tokenizer_encode.json (hand-written edge cases, the recordings' texts and
//! 200 random mixtures of scripts, digits, punctuation and whitespace) must give the same ids,
//! for the English-only (gpt2) vocabulary of tiny.en and the multilingual one of base.

mod common;

use scribe::models::whisper::tokenizer::WhisperTokenizer;

fn check(model: &str, key: &str, vocab_size: usize) {
    let Some(dir) = common::model_dir(model) else { return };
    let tok = WhisperTokenizer::from_file(&dir.join("tokenizer.json"), vocab_size).unwrap();
    let path = common::root().join("tests/reference/data/tokenizer_encode.json");
    let reference: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let texts = reference["texts"].as_array().unwrap();
    let ids = reference[key].as_array().unwrap();
    assert_eq!(texts.len(), ids.len());
    let mut wrong = Vec::new();
    for (text, want) in texts.iter().zip(ids) {
        let text = text.as_str().unwrap();
        let want: Vec<u32> = want.as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
        let got = tok.encode(text).unwrap();
        if got != want {
            wrong.push(format!("{text:?}: {got:?} vs tiktoken {want:?}"));
        }
    }
    assert!(wrong.is_empty(), "{model}: {} of {} strings differ:\n{}", wrong.len(), texts.len(), wrong.join("\n"));
}

#[test]
fn english_only_vocabulary_matches_tiktoken() {
    check("tiny.en", "gpt2", 51864);
}

#[test]
fn multilingual_vocabulary_matches_tiktoken() {
    check("base", "multilingual", 51865);
}
