//! Sentence spans against NLTK 3.10.4's own punkt (`PunktTokenizer(lang).span_tokenize`, as
//! WhisperX 3.8.6 calls it): every text of tests/reference/data/punkt_spans.json (hand-written
//! edge cases in the 19 WhisperX punkt languages, the recordings' transcripts, Whisper segment
//! texts, seeded random texts built from each model's abbreviations, collocations and sentence
//! starters, and seeded character soup) must give NLTK's character spans, with and without
//! `realign_boundaries`, on the models `models/fetch punkt` wrote (the files the reference was
//! made from).

mod common;

use std::collections::BTreeMap;

use scribe::align::punkt::{punkt_language, Punkt};
use sha2::{Digest, Sha256};

fn reference() -> serde_json::Value {
    let path = common::root().join("tests/reference/data/punkt_spans.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn spans(v: &serde_json::Value) -> Vec<(usize, usize)> {
    v.as_array().unwrap().iter().map(|s| (s[0].as_u64().unwrap() as usize, s[1].as_u64().unwrap() as usize)).collect()
}

#[test]
fn spans_match_nltk() {
    let Some(dir) = common::model_dir("punkt") else { return };
    let reference = reference();
    let mut models: BTreeMap<String, Punkt> = BTreeMap::new();
    let cases = reference["cases"].as_array().unwrap();
    let mut wrong = Vec::new();
    for case in cases {
        let language = case["language"].as_str().unwrap();
        if !models.contains_key(language) {
            models.insert(language.to_owned(), Punkt::load(&dir.join(language)).unwrap());
        }
        let punkt = &models[language];
        let text = case["text"].as_str().unwrap();
        for (key, realign) in [("spans", true), ("spans_unaligned", false)] {
            let want = spans(&case[key]);
            let got = punkt.span_tokenize_with(text, realign);
            if got != want {
                wrong.push(format!("{language} {key} {text:?}: {got:?} vs NLTK {want:?}"));
            }
        }
        // the default and the byte variant agree with the character spans
        let chars = punkt.span_tokenize(text);
        let bytes = punkt.span_tokenize_bytes(text);
        let byte_of = |c: usize| text.char_indices().nth(c).map_or(text.len(), |(b, _)| b);
        assert_eq!(bytes, chars.iter().map(|&(s, e)| (byte_of(s), byte_of(e))).collect::<Vec<_>>(), "{text:?}");
    }
    assert!(cases.len() >= 300, "{} texts", cases.len());
    assert!(wrong.is_empty(), "{} of {} texts differ from NLTK:\n{}", wrong.len(), cases.len(), wrong.join("\n"));
}

/// The reference was made from these exact files: a different punkt_tab would make the
/// comparison above meaningless.
#[test]
fn models_are_the_reference_ones() {
    let Some(dir) = common::model_dir("punkt") else { return };
    let reference = reference();
    let files = reference["punkt_tab_sha256"].as_object().unwrap();
    assert_eq!(files.len(), 19 * 4);
    for (name, want) in files {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        let got: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(got, want.as_str().unwrap(), "{name}");
    }
}

/// WhisperX's `PUNKT_LANGUAGES.get(model_lang, "english")`, and `for_language` loading it.
#[test]
fn language_codes_map_like_whisperx() {
    let reference = reference();
    for (code, name) in reference["language_map"].as_object().unwrap() {
        assert_eq!(punkt_language(code), name.as_str().unwrap(), "{code:?}");
    }
    let Some(dir) = common::model_dir("punkt") else { return };
    let models = dir.parent().unwrap();
    for (code, name) in [("de", "german"), ("ja", "english"), ("ml", "malayalam")] {
        let punkt = Punkt::for_language(models, code).unwrap();
        assert!(punkt.dir().ends_with(name), "{code}: {}", punkt.dir().display());
    }
    // German ordinals: "am 3. Mai" is not a sentence end there, "3." before "Sie" is
    let german = Punkt::for_language(models, "de").unwrap();
    assert_eq!(german.span_tokenize("Am 3. Mai fand sie statt. Sie dauerte."), [(0, 25), (26, 38)]);
}
