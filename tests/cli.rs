//! The `scribe transcribe` command line: whisperx flag names, output files, refusals and bad input.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{model_dir, speech};

fn scribe(dir: &Path, out: &Path, extra: &[&str], audio: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_scribe"))
        .args(["transcribe", "--model"])
        .arg(dir)
        .arg("--output_dir")
        .arg(out)
        .args(extra)
        .arg(audio)
        .output()
        .expect("run scribe")
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "stderr: {}", String::from_utf8_lossy(&o.stderr));
    assert!(!String::from_utf8_lossy(&o.stderr).contains("panicked"));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn all_formats_are_written_by_default() {
    let Some(dir) = model_dir("tiny.en") else { return };
    let tmp = tempfile::tempdir().unwrap();
    ok(&scribe(&dir, tmp.path(), &["--beam_size", "1"], &speech("spk1_snt1.wav")));
    for ext in ["txt", "vtt", "srt", "tsv", "json"] {
        let p = tmp.path().join(format!("spk1_snt1.{ext}"));
        let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert!(text.to_lowercase().contains("small dog"), "{ext}: {text}");
    }
    assert!(!tmp.path().join("spk1_snt1.aud").exists(), "aud is only written when asked for");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("spk1_snt1.json")).unwrap()).unwrap();
    assert_eq!(json["language"], "en");
    assert!(json["segments"][0]["start"].is_number());
}

#[test]
fn word_timestamps_fill_words_and_no_align_removes_them() {
    let Some(dir) = model_dir("tiny.en") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let words = |extra: &[&str]| {
        ok(&scribe(&dir, tmp.path(), &[&["-f", "json"], extra].concat(), &speech("jfk.flac")));
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(tmp.path().join("jfk.json")).unwrap()).unwrap();
        json["word_segments"].as_array().unwrap().clone()
    };
    let with = words(&["--word_timestamps", "True"]);
    assert!(with.len() >= 20, "{with:?}");
    let w = &with[0];
    assert!(w["start"].as_f64().unwrap() < w["end"].as_f64().unwrap());
    assert!(words(&["--word_timestamps", "True", "--no_align"]).is_empty());
    assert!(words(&[]).is_empty());
}

#[test]
fn highlight_words_needs_word_times() {
    let Some(dir) = model_dir("tiny.en") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let o = scribe(&dir, tmp.path(), &["--highlight_words", "True"], &speech("spk1_snt1.wav"));
    assert!(!o.status.success());
    let out = scribe(
        &dir,
        tmp.path(),
        &["-f", "srt", "--word_timestamps", "True", "--highlight_words", "True"],
        &speech("spk1_snt1.wav"),
    );
    ok(&out);
    let srt = std::fs::read_to_string(tmp.path().join("spk1_snt1.srt")).unwrap();
    assert!(srt.contains("<u>"), "{srt}");
}

#[test]
fn suppress_numerals_spells_numbers() {
    let Some(dir) = model_dir("tiny.en") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let wav = tmp.path().join("numbers.wav");
    let status = Command::new("espeak-ng")
        .args(["-v", "en-us", "-w"])
        .arg(&wav)
        .arg("It costs 25 percent more, about 40 dollars.")
        .status();
    if !matches!(status, Ok(s) if s.success()) {
        eprintln!("skipped: espeak-ng not installed");
        return;
    }
    let txt = |extra: &[&str]| {
        ok(&scribe(&dir, tmp.path(), &[&["-f", "txt"], extra].concat(), &wav));
        std::fs::read_to_string(tmp.path().join("numbers.txt")).unwrap()
    };
    let plain = txt(&[]);
    let spelled = txt(&["--suppress_numerals", "True"]);
    assert!(plain.chars().any(|c| c.is_ascii_digit()), "{plain}");
    assert!(!spelled.chars().any(|c| c.is_ascii_digit() || "$%".contains(c)), "{spelled}");
    assert!(spelled.contains("percent"), "{spelled}");
}

#[test]
fn initial_prompt_and_temperature_flags_are_accepted_and_change_decoding() {
    let Some(dir) = model_dir("tiny.en") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let base = ok(&scribe(&dir, tmp.path(), &["-f", "txt"], &speech("spk2_snt6.wav")));
    let prompted = ok(&scribe(
        &dir,
        tmp.path(),
        &["-f", "txt", "--initial_prompt", "Canned pears lack full flavor."],
        &speech("spk2_snt6.wav"),
    ));
    assert_ne!(base, prompted, "the prompt should steer this ambiguous clip");
    assert!(prompted.to_lowercase().contains("pears"), "{prompted}");
}

#[test]
fn unimplemented_whisperx_flags_are_refused_by_name() {
    let Some(dir) = model_dir("tiny.en") else { return };
    let tmp = tempfile::tempdir().unwrap();
    for flag in ["--diarize", "--vad_onset=0.5", "--batch_size", "--align_model"] {
        let o = scribe(&dir, tmp.path(), &[flag], &speech("spk1_snt1.wav"));
        assert!(!o.status.success(), "{flag} accepted");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(flag.split('=').next().unwrap()) && err.contains("not supported yet"), "{err}");
    }
}

#[test]
fn bad_options_are_clear_errors() {
    let Some(dir) = model_dir("tiny.en") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["--language", "xx"], "xx"),
        (&["--task", "translate"], "English-only"),
        (&["--suppress_tokens", "1,abc"], "abc"),
        (&["-f", "docx"], "docx"),
    ];
    for (args, needle) in cases {
        let o = scribe(&dir, tmp.path(), args, &speech("spk1_snt1.wav"));
        assert!(!o.status.success(), "{args:?} accepted");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(needle) && !err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn silent_and_tiny_audio_give_an_empty_transcript() {
    let Some(dir) = model_dir("tiny.en") else { return };
    let tmp = tempfile::tempdir().unwrap();
    for (name, samples) in [("silence.wav", 16000 * 5), ("tiny.wav", 10)] {
        let p = tmp.path().join(name);
        let mut wav = Vec::new();
        let data_len = (samples * 2) as u32;
        wav.extend(b"RIFF");
        wav.extend((36 + data_len).to_le_bytes());
        wav.extend(b"WAVEfmt ");
        wav.extend(16u32.to_le_bytes());
        wav.extend(1u16.to_le_bytes());
        wav.extend(1u16.to_le_bytes());
        wav.extend(16000u32.to_le_bytes());
        wav.extend(32000u32.to_le_bytes());
        wav.extend(2u16.to_le_bytes());
        wav.extend(16u16.to_le_bytes());
        wav.extend(b"data");
        wav.extend(data_len.to_le_bytes());
        wav.resize(wav.len() + samples * 2, 0);
        std::fs::write(&p, wav).unwrap();
        let stdout = ok(&scribe(&dir, tmp.path(), &["-f", "json"], &p));
        assert!(stdout.trim().is_empty(), "{name}: {stdout}");
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(tmp.path().join(name.replace(".wav", ".json"))).unwrap())
                .unwrap();
        assert!(
            json["segments"].as_array().unwrap().iter().all(|s| s["text"].as_str().unwrap().trim().is_empty()),
            "{json}"
        );
    }
}

#[test]
fn zero_byte_file_is_an_error_naming_it() {
    let Some(dir) = model_dir("tiny.en") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("empty.wav");
    std::fs::write(&p, b"").unwrap();
    let o = scribe(&dir, tmp.path(), &[], &p);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("empty.wav") && !err.contains("panicked"), "{err}");
}

/// espeak-ng speech in `voice` at `path`, or false when espeak-ng is missing.
fn speak(voice: &str, text: &str, path: &Path) -> bool {
    let status = Command::new("espeak-ng").args(["-v", voice, "-w"]).arg(path).arg(text).status();
    matches!(status, Ok(s) if s.success())
}

#[test]
fn base_detects_other_languages_and_translates() {
    let Some(dir) = model_dir("base") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let de = tmp.path().join("de.wav");
    let es = tmp.path().join("es.wav");
    if !speak("de", "Guten Morgen. Heute ist das Wetter sehr schön, und wir gehen in den Park.", &de)
        || !speak("es", "Buenos días. Hoy hace muy buen tiempo y vamos a caminar por el parque.", &es)
    {
        eprintln!("skipped: espeak-ng not installed");
        return;
    }
    let language = |wav: &Path, extra: &[&str]| {
        ok(&scribe(&dir, tmp.path(), &[&["-f", "json"], extra].concat(), wav));
        let stem = wav.file_stem().unwrap().to_str().unwrap();
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(tmp.path().join(format!("{stem}.json"))).unwrap()).unwrap();
        (json["language"].as_str().unwrap().to_string(), json["segments"][0]["text"].as_str().unwrap().to_lowercase())
    };
    let (lang, text) = language(&de, &[]);
    assert_eq!(lang, "de", "{text}");
    assert!(text.contains("morgen") && text.contains("park"), "{text}");
    let (lang, text) = language(&es, &[]);
    assert_eq!(lang, "es", "{text}");
    assert!(text.contains("buenos días"), "{text}");
    // --language overrides detection; --task translate gives English.
    let (lang, text) = language(&de, &["--language", "de", "--task", "translate"]);
    assert_eq!(lang, "de");
    assert!(text.contains("good morning"), "{text}");
}
