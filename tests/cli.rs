//! The `scribe transcribe` command line: whisperx flag names, output files, refusals and bad input.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{model_dir, normalize, reference_text, speech, wer};

fn scribe(dir: &Path, out: &Path, extra: &[&str], audio: &Path) -> Output {
    scribe_env(dir, out, extra, audio, &[])
}

/// `scribe transcribe --model DIR --output_dir OUT EXTRA... AUDIO` with extra environment.
/// These tests pin down sequential decoding, so they add `--vad_method none` unless EXTRA
/// names a VAD method (tests/vad_cli.rs covers the VAD path).
fn scribe_env(dir: &Path, out: &Path, extra: &[&str], audio: &Path, env: &[(&str, &str)]) -> Output {
    let sequential: &[&str] = if extra.contains(&"--vad_method") { &[] } else { &["--vad_method", "none"] };
    Command::new(env!("CARGO_BIN_EXE_scribe"))
        .envs(common::OFFLINE_ALIGNMENT)
        .envs(env.iter().copied())
        .args(["transcribe", "--model"])
        .arg(dir)
        .arg("--output_dir")
        .arg(out)
        .args(sequential)
        .args(extra)
        .arg(audio)
        .output()
        .expect("run scribe")
}

/// As [`scribe`] with `LOG_LEVEL=debug`; returns (stdout, stderr) of a successful run.
fn scribe_debug(dir: &Path, out: &Path, extra: &[&str], audio: &Path) -> (String, String) {
    let o = scribe_env(dir, out, extra, audio, &[("LOG_LEVEL", "debug")]);
    let stdout = ok(&o);
    (stdout, String::from_utf8_lossy(&o.stderr).into_owned())
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "stderr: {}", String::from_utf8_lossy(&o.stderr));
    assert!(!String::from_utf8_lossy(&o.stderr).contains("panicked"));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The stderr of a failed run, checked to be an error and not a panic.
fn failed(o: &Output, what: &str) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!o.status.success(), "{what} accepted: {err}");
    assert!(!err.contains("panicked"), "{what}: {err}");
    err
}

/// 16-bit PCM mono 16 kHz WAV of `samples` in [-1, 1].
fn write_wav(path: &Path, samples: &[f32]) {
    let data_len = (samples.len() * 2) as u32;
    let mut wav = Vec::with_capacity(44 + samples.len() * 2);
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
    for s in samples {
        wav.extend(((s * 32768.0).round().clamp(-32768.0, 32767.0) as i16).to_le_bytes());
    }
    std::fs::write(path, wav).unwrap();
}

/// A 16 kHz recording of the shared speech set.
fn recording(name: &str) -> Vec<f32> {
    scribe::audio::load_audio(&speech(name)).unwrap()
}

fn zeros(seconds: f32) -> Vec<f32> {
    vec![0.0; (seconds * 16000.0) as usize]
}

fn seconds(samples: &[f32]) -> f64 {
    samples.len() as f64 / 16000.0
}

/// The `DecodingOptions:` debug lines (one per decoding attempt; transcribe.rs documents them).
fn attempts(stderr: &str) -> Vec<&str> {
    stderr.lines().filter_map(|l| l.split_once("DecodingOptions: ").map(|(_, rest)| rest)).collect()
}

/// The value of `key=value` in a debug line.
fn field<'a>(line: &'a str, key: &str) -> &'a str {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
        .unwrap_or_else(|| panic!("no {key}= in {line}"))
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

/// Every word of every segment of a whisperX JSON, normalized.
fn json_words(doc: &serde_json::Value) -> Vec<String> {
    let text: String = doc["segments"].as_array().unwrap().iter().map(|s| s["text"].as_str().unwrap()).collect();
    normalize(&text)
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
fn word_timestamps_give_dtw_words_with_or_without_alignment() {
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
    // --no_align turns wav2vec2 alignment off, not DTW.
    assert_eq!(words(&["--word_timestamps", "True", "--no_align"]).len(), with.len());
    // No DTW and no alignment model (offline): no word times.
    assert!(words(&[]).is_empty());
    assert!(words(&["--no_align"]).is_empty());
}

#[test]
fn highlight_words_needs_word_times() {
    let Some(dir) = model_dir("tiny.en") else { return };
    let tmp = tempfile::tempdir().unwrap();
    // No word times at all: refused before anything runs.
    let o = scribe(&dir, tmp.path(), &["--no_align", "--highlight_words", "True"], &speech("spk1_snt1.wav"));
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
        common::cannot_run("espeak-ng not installed (scripts/install-test-deps installs it)");
        return;
    }
    let txt = |extra: &[&str]| {
        ok(&scribe(&dir, tmp.path(), &[&["-f", "txt"], extra].concat(), &wav));
        std::fs::read_to_string(tmp.path().join("numbers.txt")).unwrap()
    };
    let plain = txt(&[]);
    // A bare switch, as whisperx's `action="store_true"`.
    let spelled = txt(&["--suppress_numerals"]);
    assert_eq!(txt(&["--suppress_numerals=True"]), spelled);
    assert_eq!(txt(&["--suppress_numerals=False"]), plain);
    assert!(plain.chars().any(|c| c.is_ascii_digit()), "{plain}");
    assert!(!spelled.chars().any(|c| c.is_ascii_digit() || "$%".contains(c)), "{spelled}");
    assert!(spelled.contains("percent"), "{spelled}");
}

#[test]
fn initial_prompt_steers_decoding() {
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
    for flag in ["--segment_resolution", "--device_index"] {
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
        write_wav(&p, &vec![0.0; samples]);
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
        common::cannot_run("espeak-ng not installed (scripts/install-test-deps installs it)");
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

#[test]
fn out_of_range_values_are_refused_by_name() {
    let Some(dir) = model_dir("tiny.en") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["--patience", "0"], "--patience"),
        (&["--patience", "-1"], "--patience"),
        (&["--patience", "NaN"], "--patience"),
        (&["--beam_size", "1", "--patience", "2"], "--patience"),
        (&["--beam_size", "0"], "--beam_size"),
        (&["--best_of", "0"], "--best_of"),
        (&["--length_penalty", "1.5"], "length_penalty"),
        (&["--length_penalty", "nan"], "length_penalty"),
        (&["--length_penalty", "-0.5"], "length_penalty"),
        (&["--temperature", "-0.5"], "--temperature"),
        (&["--temperature", "nan"], "--temperature"),
        (&["--temperature_increment_on_fallback", "0"], "--temperature_increment_on_fallback"),
        (&["--temperature_increment_on_fallback", "-0.2"], "--temperature_increment_on_fallback"),
        (&["--compression_ratio_threshold", "nan"], "--compression_ratio_threshold"),
        (&["--logprob_threshold", "abc"], "--logprob_threshold"),
        (&["--no_speech_threshold", "inf"], "--no_speech_threshold"),
        (&["--hallucination_silence_threshold", "2"], "--word_timestamps"),
        (&["--word_timestamps", "True", "--hallucination_silence_threshold", "-1"], "hallucination_silence_threshold"),
        (&["--word_timestamps", "True", "--hallucination_silence_threshold", "nan"], "hallucination_silence_threshold"),
        (&["--clip_timestamps", "5,2"], "clip_timestamps"),
        (&["--clip_timestamps", "1,abc"], "abc"),
        (&["--clip_timestamps", "-3"], "clip_timestamps"),
        (&["--max_line_width", "0"], "--max_line_width"),
        (&["--word_timestamps", "True", "--max_line_width", "20", "--max_line_count", "0"], "--max_line_count"),
        (&["--max_line_width", "20"], "max_line_width"),
        (&["--compute_type", "bf16"], "bfloat16"),
        (&["--threads", "-2"], "--threads"),
    ];
    for (args, needle) in cases {
        let err = failed(&scribe(&dir, tmp.path(), args, &speech("spk1_snt1.wav")), &format!("{args:?}"));
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

/// Beam-search flags: the `DecodingOptions:` debug line shows what the decoder receives.
#[test]
fn beam_search_flags_reach_the_decoder() {
    let Some(dir) = model_dir("tiny.en") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let wav = speech("spk1_snt1.wav");
    let (_, log) = scribe_debug(
        &dir,
        tmp.path(),
        &["-f", "txt", "--beam_size", "3", "--patience", "2", "--length_penalty", "0.5"],
        &wav,
    );
    let first = attempts(&log)[0];
    assert_eq!(field(first, "temperature"), "0", "{first}");
    assert_eq!(field(first, "beam_size"), "3", "{first}");
    assert_eq!(field(first, "patience"), "2", "{first}");
    assert_eq!(field(first, "best_of"), "None", "best_of is dropped at temperature 0: {first}");
    assert_eq!(field(first, "length_penalty"), "0.5", "{first}");
    // whisperx defaults: beam 5, patience 1, length penalty 1
    let (_, log) = scribe_debug(&dir, tmp.path(), &["-f", "txt"], &wav);
    let first = attempts(&log)[0];
    assert_eq!((field(first, "beam_size"), field(first, "patience")), ("5", "1"), "{first}");
    assert_eq!(field(first, "length_penalty"), "1", "{first}");
    // beam 1 is greedy decoding; `none` is openai's length normalisation
    let (_, log) = scribe_debug(&dir, tmp.path(), &["-f", "txt", "--beam_size", "1", "--length_penalty", "none"], &wav);
    let first = attempts(&log)[0];
    assert_eq!((field(first, "beam_size"), field(first, "patience")), ("None", "None"), "{first}");
    assert_eq!(field(first, "length_penalty"), "None", "{first}");
}

/// A window that fails the log-prob gate is decoded again at each fallback temperature, with
/// best_of samples and the seed advanced per attempt; without the gate it is decoded once.
#[test]
fn fallback_temperatures_follow_the_flags() {
    let Some(dir) = model_dir("tiny.en") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let wav = speech("spk1_snt1.wav");
    let temperatures =
        |log: &str| attempts(log).iter().map(|a| field(a, "temperature").to_string()).collect::<Vec<_>>();
    let (_, log) = scribe_debug(&dir, tmp.path(), &["-f", "txt"], &wav);
    assert_eq!(temperatures(&log), ["0"], "clear speech passes every gate at temperature 0");
    // every average log-prob is below 0: each temperature is tried
    let failing = ["--logprob_threshold", "0", "--no_speech_threshold", "none"];
    let (stdout, log) = scribe_debug(
        &dir,
        tmp.path(),
        &[&["-f", "txt", "--temperature_increment_on_fallback", "0.5", "--best_of", "2", "--seed", "7"], &failing[..]]
            .concat(),
        &wav,
    );
    assert_eq!(temperatures(&log), ["0", "0.5", "1"]);
    let tries = attempts(&log);
    assert_eq!(tries.iter().map(|a| field(a, "best_of")).collect::<Vec<_>>(), ["None", "2", "2"]);
    assert_eq!(tries.iter().map(|a| field(a, "beam_size")).collect::<Vec<_>>(), ["5", "None", "None"]);
    assert_eq!(tries.iter().map(|a| field(a, "seed")).collect::<Vec<_>>(), ["7", "8", "9"]);
    assert!(log.contains("window at 0.00 s: temperature=1 "), "the last attempt is kept: {log}");
    assert!(!stdout.trim().is_empty(), "a failed window is still transcribed");
    // no increment: one attempt at the given temperature, however bad it is
    let (_, log) = scribe_debug(
        &dir,
        tmp.path(),
        &[&["-f", "txt", "--temperature", "0.4", "--temperature_increment_on_fallback", "none"], &failing[..]].concat(),
        &wav,
    );
    assert_eq!(temperatures(&log), ["0.4"]);
    // the default increment 0.2 from 0: openai's (0, 0.2, ..., 1)
    let (_, log) = scribe_debug(&dir, tmp.path(), &[&["-f", "txt", "--beam_size", "1"], &failing[..]].concat(), &wav);
    let ladder = ["0", "0.2", "0.4", "0.6", "0.8", "1"];
    let tried = temperatures(&log);
    assert!(!tried.is_empty() && tried.chunks(ladder.len()).all(|c| c == ladder), "each window: {ladder:?}; {tried:?}");
}

/// Short text compresses badly (gzip ratio < 1): a threshold of 0.5 fails every attempt.
#[test]
fn compression_ratio_threshold_gates_each_attempt() {
    let Some(dir) = model_dir("tiny.en") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (_, log) = scribe_debug(
        &dir,
        tmp.path(),
        &["-f", "txt", "--compression_ratio_threshold", "0.5", "--temperature_increment_on_fallback", "0.5"],
        &speech("spk1_snt1.wav"),
    );
    let tries: Vec<&str> = attempts(&log).iter().map(|a| field(a, "temperature")).collect();
    assert_eq!(tries, ["0", "0.5", "1"], "{log}");
    let window = log.lines().find(|l| l.contains("window at 0.00 s: temperature=")).unwrap();
    assert!(field(window, "compression_ratio").parse::<f64>().unwrap() > 0.5, "{window}");
}

/// With the no-speech gate at 0 and a log-prob gate no window passes, every window is silence.
#[test]
fn no_speech_threshold_skips_windows() {
    let Some(dir) = model_dir("tiny.en") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let wav = speech("spk1_snt1.wav");
    let (stdout, log) =
        scribe_debug(&dir, tmp.path(), &["-f", "txt", "--logprob_threshold", "0", "--no_speech_threshold", "0"], &wav);
    assert!(stdout.trim().is_empty(), "{stdout}");
    assert!(log.contains("skipped as silence"), "{log}");
    assert_eq!(attempts(&log).len(), 1, "a silent window is not retried hotter");
    assert!(std::fs::read_to_string(tmp.path().join("spk1_snt1.txt")).unwrap().trim().is_empty());
    let (stdout, _) = scribe_debug(
        &dir,
        tmp.path(),
        &["-f", "txt", "--logprob_threshold", "0", "--no_speech_threshold", "none", "--beam_size", "1"],
        &wav,
    );
    assert!(!stdout.trim().is_empty(), "without the no-speech gate the window is kept");
}

#[test]
fn temperature_sampling_follows_the_seed() {
    let Some(dir) = model_dir("tiny.en") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let wav = speech("spk2_snt6.wav");
    let sample = |seed: &str| {
        let args = ["-f", "txt", "--temperature", "1", "--temperature_increment_on_fallback", "none", "--best_of", "1"];
        ok(&scribe(&dir, tmp.path(), &[&args[..], &["--seed", seed]].concat(), &wav))
    };
    let first = sample("0");
    assert_eq!(first, sample("0"), "the same seed samples the same text");
    let distinct: std::collections::BTreeSet<String> = ["0", "1", "2", "3"].into_iter().map(sample).collect();
    assert!(distinct.len() >= 2, "four seeds sampled one text at temperature 1: {distinct:?}");
}

#[test]
fn hotwords_steer_decoding() {
    let Some(dir) = model_dir("tiny.en") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let wav = speech("spk2_snt6.wav"); // "Canned pears lack full flavor."
    let (plain, log) = scribe_debug(&dir, tmp.path(), &["-f", "txt"], &wav);
    assert_eq!(field(attempts(&log)[0], "hotword_tokens"), "0");
    let (hot, log) = scribe_debug(&dir, tmp.path(), &["-f", "txt", "--hotwords", "pears"], &wav);
    assert_ne!(field(attempts(&log)[0], "hotword_tokens"), "0");
    assert!(!normalize(&plain).contains(&"pears".to_string()), "{plain}");
    assert!(normalize(&hot).contains(&"pears".to_string()), "{hot}");
}

/// Two windows (> 30 s): only with --condition_on_previous_text True does the second window
/// get the first one's text as its prompt.
#[test]
fn condition_on_previous_text_prompts_the_next_window() {
    let Some(dir) = model_dir("tiny.en") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let mut audio = recording("jfk.flac");
    for i in 1..=6 {
        audio.extend(zeros(1.0));
        audio.extend(recording(&format!("spk1_snt{i}.wav")));
    }
    assert!(seconds(&audio) > 32.0, "{} s", seconds(&audio));
    let wav = tmp.path().join("long.wav");
    write_wav(&wav, &audio);
    let prompts = |flag: &str| {
        let (_, log) = scribe_debug(
            &dir,
            tmp.path(),
            &["-f", "txt", "--beam_size", "1", "--condition_on_previous_text", flag],
            &wav,
        );
        attempts(&log).iter().map(|a| field(a, "prompt_tokens").parse::<usize>().unwrap()).collect::<Vec<_>>()
    };
    let conditioned = prompts("True");
    assert!(conditioned.len() >= 2 && conditioned[0] == 0, "{conditioned:?}");
    assert!(conditioned[1..].iter().all(|&n| n > 0), "later windows are prompted: {conditioned:?}");
    let unconditioned = prompts("False");
    assert!(unconditioned.len() >= 2 && unconditioned.iter().all(|&n| n == 0), "{unconditioned:?}");
}

/// Token ids given to --suppress_tokens are never produced.
#[test]
fn suppress_tokens_removes_those_tokens() {
    let Some(dir) = model_dir("tiny.en") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let model = scribe::models::whisper::Whisper::load(&dir, scribe::backend::Device::cpu()).unwrap();
    let tok = &model.tokenizer;
    let wav = speech("spk1_snt1.wav"); // "The child almost hurt the small dog."
    let plain = ok(&scribe(&dir, tmp.path(), &["-f", "txt"], &wav));
    assert!(normalize(&plain).contains(&"dog".to_string()), "{plain}");
    let mut ids: Vec<String> = vec!["-1".into()];
    for text in [" dog", " dog.", "dog", " Dog"] {
        ids.extend(tok.encode(text).unwrap().iter().map(u32::to_string));
    }
    let suppressed = ok(&scribe(&dir, tmp.path(), &["-f", "txt", "--suppress_tokens", &ids.join(",")], &wav));
    assert!(!normalize(&suppressed).contains(&"dog".to_string()), "{suppressed}");
    assert!(normalize(&suppressed).contains(&"child".to_string()), "{suppressed}");
}

/// --max_line_width / --max_line_count wrap srt and vtt cues (whisperX's writers).
#[test]
fn max_line_width_and_count_wrap_subtitles() {
    let Some(dir) = model_dir("tiny.en") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let wav = speech("jfk.flac");
    // subtitle text lines: not a cue number, a time line, WEBVTT or blank
    let text_lines = |ext: &str| -> Vec<Vec<String>> {
        let doc = std::fs::read_to_string(tmp.path().join(format!("jfk.{ext}"))).unwrap();
        doc.split("\n\n")
            .filter(|cue| cue.contains("-->"))
            .map(|cue| cue.lines().skip_while(|l| !l.contains("-->")).skip(1).map(str::to_owned).collect())
            .collect()
    };
    let base = ["-f", "all", "--word_timestamps", "True"];
    ok(&scribe(&dir, tmp.path(), &base, &wav));
    for ext in ["srt", "vtt"] {
        let longest = text_lines(ext).iter().flatten().map(|l| l.chars().count()).max().unwrap();
        assert!(longest > 20, "{ext}: the segments are longer than 20 characters unwrapped");
    }
    ok(&scribe(&dir, tmp.path(), &[&base[..], &["--max_line_width", "20", "--max_line_count", "2"]].concat(), &wav));
    for ext in ["srt", "vtt"] {
        let cues = text_lines(ext);
        assert!(cues.len() >= 3, "{ext}: {cues:?}");
        for cue in &cues {
            assert!((1..=2).contains(&cue.len()), "{ext}: at most 2 lines per cue: {cue:?}");
            assert!(cue.iter().all(|l| l.chars().count() <= 20), "{ext}: lines of at most 20 characters: {cue:?}");
        }
        let words: Vec<String> = cues.iter().flatten().flat_map(|l| normalize(l)).collect();
        assert!(wer(&reference_text("jfk.flac").unwrap(), &words.join(" ")) <= 0.10, "{ext}: {words:?}");
    }
    // width alone: one cue per segment, its lines wrapped
    ok(&scribe(&dir, tmp.path(), &[&base[..], &["--max_line_width", "20"]].concat(), &wav));
    let cues = text_lines("srt");
    assert!(cues.iter().any(|c| c.len() > 2), "segments keep all their lines: {cues:?}");
    assert!(cues.iter().flatten().all(|l| l.chars().count() <= 20), "{cues:?}");
}

/// A silent file: the run stops before any decoding, which keeps these checks fast.
fn silent_wav(dir: &Path) -> std::path::PathBuf {
    let p = dir.join("quiet.wav");
    write_wav(&p, &zeros(1.0));
    p
}

#[test]
fn threads_sizes_the_thread_pool() {
    let Some(dir) = model_dir("tiny.en") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let wav = silent_wav(tmp.path());
    for n in ["1", "3"] {
        let (_, log) = scribe_debug(&dir, tmp.path(), &["-f", "txt", "--threads", n], &wav);
        let backend = log.lines().find(|l| l.contains("backend: cpu")).unwrap_or_else(|| panic!("{log}"));
        assert_eq!(field(backend, "threads"), n, "{backend}");
    }
}

#[test]
fn compute_type_logs_the_precision_used() {
    let Some(dir) = model_dir("tiny.en") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let wav = silent_wav(tmp.path());
    // float16 has no CPU path: it is warned about, and float32 runs.
    let o = scribe(&dir, tmp.path(), &["-f", "txt", "--compute_type", "float16"], &wav);
    ok(&o);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("compute_type float16 requested"), "{err}");
    assert!(err.contains("compute_type=float32"), "the precision used is logged: {err}");
    assert!(err.contains("cross_kv=float16 "), "float16 keeps the cross-attention's keys in f16: {err}");
    // `default` computes the encoder in bf16 where the CPU has AVX-512 BF16 (CI's do), else in
    // float32, and the decoder in float32; `bfloat16` computes both in bf16; `float32` keeps
    // f32; no warning either way. All but `float32` keep the cross-attention's keys and values
    // in f16.
    let bf16 = common::bf16_products();
    let best = if bf16 { "bfloat16" } else { "float32" };
    for (args, want, decoder, cross_kv) in [
        (&["-f", "txt"][..], best, "float32", "float16"),
        (&["-f", "txt", "--compute_type", "default"][..], best, "float32", "float16"),
        (&["-f", "txt", "--compute_type", "bfloat16"][..], best, best, "float16"),
        (&["-f", "txt", "--compute_type", "float32"][..], "float32", "float32", "float32"),
    ] {
        let o = scribe(&dir, tmp.path(), args, &wav);
        ok(&o);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(&format!("compute_type={want} decoder={decoder} cross_kv={cross_kv} ")),
            "{args:?}: {err}"
        );
        let warned = err.contains("requested");
        assert!(warned == (args.contains(&"bfloat16") && !bf16), "{args:?}: {err}");
    }
}

/// `--compute_type int8` computes Whisper's products in int8 where the CPU has AVX-512 VNNI (the
/// machines CI runs on do), says so, and still transcribes real speech.
#[test]
fn int8_compute_type_runs_int8_and_transcribes() {
    let Some(dir) = model_dir("tiny.en") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let o = scribe(&dir, tmp.path(), &["-f", "json", "--compute_type", "int8"], &speech("jfk.flac"));
    ok(&o);
    let err = String::from_utf8_lossy(&o.stderr);
    if scribe::backend::cpu::int8::vnni_available() {
        assert!(err.contains("compute_type=int8") && !err.contains("requested"), "{err}");
    } else {
        assert!(std::env::var_os("CI").is_none(), "CI's CPUs have AVX-512 VNNI; this one does not");
        assert!(err.contains("compute_type int8 requested") && err.contains("compute_type=float32"), "{err}");
    }
    assert_jfk_transcribed(tmp.path());
}

/// The JSON written for jfk.flac in `dir` is within 10 % WER of its reference text.
fn assert_jfk_transcribed(dir: &Path) {
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("jfk.json")).unwrap()).unwrap();
    let text: Vec<String> =
        doc["segments"].as_array().unwrap().iter().flat_map(|s| normalize(s["text"].as_str().unwrap())).collect();
    assert!(wer(&reference_text("jfk.flac").unwrap(), &text.join(" ")) <= 0.10, "{text:?}");
}

/// `--compute_type bfloat16` computes the decoder's per-token products in bf16 too where the CPU
/// has AVX-512 BF16 (the machines CI runs on do), says so, and still transcribes real speech.
#[test]
fn bfloat16_compute_type_runs_the_decoder_in_bf16_and_transcribes() {
    let Some(dir) = model_dir("tiny.en") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let o = scribe(&dir, tmp.path(), &["-f", "json", "--compute_type", "bfloat16"], &speech("jfk.flac"));
    ok(&o);
    let err = String::from_utf8_lossy(&o.stderr);
    if common::bf16_products() {
        assert!(err.contains("compute_type=bfloat16 decoder=bfloat16 ") && !err.contains("requested"), "{err}");
    } else {
        assert!(std::env::var_os("CI").is_none(), "CI's CPUs have AVX-512 BF16; this one does not");
        assert!(err.contains("compute_type bfloat16 requested"), "{err}");
    }
    assert_jfk_transcribed(tmp.path());
}

#[test]
fn device_flag_and_env_choose_the_backend() {
    let Some(dir) = model_dir("tiny.en") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let wav = silent_wav(tmp.path());
    let o = scribe(&dir, tmp.path(), &["-f", "txt", "--device", "cpu"], &wav);
    ok(&o);
    assert!(String::from_utf8_lossy(&o.stderr).contains("device=cpu"));
    // Without the `cuda` feature the build says so; with it but no usable GPU, the probe names
    // what is missing and the process exits non-zero; on a GPU host it runs there.
    let cuda_refused = |e: &str| e.contains("no CUDA backend") || e.contains("CUDA is not usable");
    let o = scribe(&dir, tmp.path(), &["-f", "txt", "--device", "cuda"], &wav);
    let gpu_host = o.status.success();
    if gpu_host {
        assert!(String::from_utf8_lossy(&o.stderr).contains("device=cuda"), "{}", String::from_utf8_lossy(&o.stderr));
    } else {
        let err = failed(&o, "--device cuda");
        assert!(err.contains("cuda") && cuda_refused(&err), "{err}");
    }
    let err = failed(&scribe(&dir, tmp.path(), &["--device", "tpu"], &wav), "--device tpu");
    assert!(err.contains("tpu"), "{err}");
    if !gpu_host {
        let err = failed(&scribe_env(&dir, tmp.path(), &[], &wav, &[("WHISPERX_DEVICE", "cuda")]), "WHISPERX_DEVICE");
        assert!(cuda_refused(&err), "{err}");
    }
}

/// `--model NAME` is looked up in --model_dir (and WHISPERX_MODEL is the default --model).
#[test]
fn model_dir_and_whisperx_model_find_the_model() {
    let Some(dir) = model_dir("tiny.en") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let wav = silent_wav(tmp.path());
    let models = tmp.path().join("my-models");
    std::fs::create_dir(&models).unwrap();
    std::os::unix::fs::symlink(&dir, models.join("my-tiny")).unwrap();
    let home = tmp.path().join("hf-home");
    let offline = [("HF_HUB_OFFLINE", "1"), ("HF_HOME", home.to_str().unwrap())];
    let run = |args: &[&str], env: &[(&str, &str)]| {
        Command::new(env!("CARGO_BIN_EXE_scribe"))
            .envs(offline.iter().chain(env).copied())
            .args(["transcribe", "-f", "txt", "--vad_method", "none", "--output_dir"])
            .arg(tmp.path())
            .args(args)
            .arg(&wav)
            .output()
            .expect("run scribe")
    };
    let o = run(&["--model", "my-tiny", "--model_dir", models.to_str().unwrap()], &[]);
    ok(&o);
    assert!(String::from_utf8_lossy(&o.stderr).contains("my-models/my-tiny"));
    // not in the default ./models: the hub is asked, and offline that fails naming the model
    let err = failed(&run(&["--model", "my-tiny"], &[]), "--model my-tiny without --model_dir");
    assert!(err.contains("my-tiny"), "{err}");
    let o = run(&[], &[("WHISPERX_MODEL", dir.to_str().unwrap())]);
    ok(&o);
    assert!(String::from_utf8_lossy(&o.stderr).contains(dir.to_str().unwrap()));
}

/// A hub that answers every request with 401 and records the Authorization headers.
fn recording_hub() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(&stream);
            let mut auth = String::from("(none)");
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line.trim() != "" {
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("authorization:") {
                    auth = line[line.len() - v.len()..].trim().to_string();
                }
                line.clear();
            }
            log.lock().unwrap().push(auth);
            let _ = (&stream).write_all(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    (endpoint, seen)
}

#[test]
fn hf_token_is_sent_to_the_hub_before_hf_token_env() {
    let tmp = tempfile::tempdir().unwrap();
    let (endpoint, seen) = recording_hub();
    let home = tmp.path().join("hf-home");
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_scribe"))
            .env("HF_ENDPOINT", &endpoint)
            .env("HF_HOME", &home)
            .env("HF_TOKEN", "hf_from_env")
            .env_remove("HF_HUB_OFFLINE")
            // Alignment would reach torchaudio's server for the English model.
            .args(["transcribe", "--no_align", "--model", "someone/private-whisper", "--model_dir"])
            .arg(tmp.path())
            .args(extra)
            .arg(speech("spk1_snt1.wav"))
            .output()
            .expect("run scribe")
    };
    let err = failed(&run(&["--hf_token", "hf_from_flag"]), "a 401 hub");
    assert!(err.contains("someone/private-whisper"), "{err}");
    let with_flag: Vec<String> = std::mem::take(&mut *seen.lock().unwrap());
    assert!(!with_flag.is_empty() && with_flag.iter().all(|a| a == "Bearer hf_from_flag"), "{with_flag:?}");
    failed(&run(&[]), "a 401 hub");
    let from_env: Vec<String> = seen.lock().unwrap().clone();
    assert!(!from_env.is_empty() && from_env.iter().all(|a| a == "Bearer hf_from_env"), "{from_env:?}");
}

#[test]
fn model_cache_only_never_asks_the_hub() {
    let tmp = tempfile::tempdir().unwrap();
    let (endpoint, seen) = recording_hub();
    let home = tmp.path().join("hf-home");
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_scribe"))
            .env("HF_ENDPOINT", &endpoint)
            .env("HF_HOME", &home)
            .env_remove("HF_HUB_OFFLINE")
            // Alignment would reach torchaudio's server for the English model.
            .args(["transcribe", "--no_align", "--model", "someone/uncached-whisper", "--model_dir"])
            .arg(tmp.path())
            .args(extra)
            .arg(speech("spk1_snt1.wav"))
            .output()
            .expect("run scribe")
    };
    let err = failed(&run(&["--model_cache_only", "True"]), "an uncached model with --model_cache_only True");
    assert!(err.contains("someone/uncached-whisper"), "{err}");
    assert!(seen.lock().unwrap().is_empty(), "the hub was asked: {:?}", seen.lock().unwrap());
    failed(&run(&["--model_cache_only", "False"]), "a 401 hub");
    assert!(!seen.lock().unwrap().is_empty(), "without the flag the hub is asked");
}

#[test]
fn verbose_false_prints_no_segments() {
    let Some(dir) = model_dir("tiny.en") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let wav = speech("spk1_snt1.wav");
    let loud = ok(&scribe(&dir, tmp.path(), &["-f", "txt"], &wav));
    assert!(loud.contains(" --> "), "{loud}");
    let quiet = ok(&scribe(&dir, tmp.path(), &["-f", "txt", "--verbose", "False"], &wav));
    assert!(quiet.trim().is_empty(), "{quiet}");
    // the transcript is still written
    assert!(!std::fs::read_to_string(tmp.path().join("spk1_snt1.txt")).unwrap().trim().is_empty());
}

#[test]
fn print_progress_logs_short_files_too() {
    let Some(dir) = model_dir("tiny.en") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let wav = speech("spk1_snt1.wav");
    let o = scribe(&dir, tmp.path(), &["-f", "txt", "--beam_size", "1"], &wav);
    ok(&o);
    assert!(!String::from_utf8_lossy(&o.stderr).contains("transcription 100%"), "short files are quiet by default");
    let o = scribe(&dir, tmp.path(), &["-f", "txt", "--beam_size", "1", "--print_progress", "True"], &wav);
    ok(&o);
    assert!(String::from_utf8_lossy(&o.stderr).contains("transcription 100%"));
}

/// Three sentences 1 s apart; clips select one, or the two others.
#[test]
fn clip_timestamps_transcribe_only_the_clips() {
    let Some(dir) = model_dir("tiny.en") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let names = ["spk1_snt1.wav", "spk1_snt4.wav", "spk1_snt2.wav"];
    let parts: Vec<Vec<f32>> = names.iter().map(|n| recording(n)).collect();
    let mut audio = Vec::new();
    let mut spans = Vec::new(); // (start, end) of each sentence in seconds
    for part in &parts {
        if !audio.is_empty() {
            audio.extend(zeros(1.0));
        }
        let start = seconds(&audio);
        audio.extend(part);
        spans.push((start, seconds(&audio)));
    }
    let wav = tmp.path().join("three.wav");
    write_wav(&wav, &audio);
    let refs: Vec<Vec<String>> = names.iter().map(|n| normalize(&reference_text(n).unwrap())).collect();
    // words of sentence i that no other sentence has
    let own = |i: usize| -> Vec<String> {
        refs[i].iter().filter(|w| refs.iter().enumerate().all(|(j, r)| j == i || !r.contains(w))).cloned().collect()
    };

    // the middle sentence, with half a second of silence either side
    let (from, to) = (spans[1].0 - 0.5, spans[1].1 + 0.5);
    let clip = format!("{from:.2},{to:.2}");
    ok(&scribe(&dir, tmp.path(), &["-f", "json", "--clip_timestamps", &clip], &wav));
    let doc = json(&tmp.path().join("three.json"));
    let words = json_words(&doc);
    assert!(wer(&refs[1].join(" "), &words.join(" ")) <= 0.25, "{clip}: {words:?}");
    for w in own(0).iter().chain(&own(2)) {
        assert!(!words.contains(w), "{clip}: `{w}` is outside the clip: {words:?}");
    }
    for s in doc["segments"].as_array().unwrap() {
        let (start, end) = (s["start"].as_f64().unwrap(), s["end"].as_f64().unwrap());
        assert!(start >= from - 0.01 && end <= to + 0.01, "{clip}: segment {start}-{end}");
    }

    // first and last sentence: an odd count runs to the end of the file; word times too
    let clips = format!("0,{:.2},{:.2}", spans[0].1 + 0.5, spans[2].0 - 0.5);
    ok(&scribe(&dir, tmp.path(), &["-f", "json", "--word_timestamps", "True", "--clip_timestamps", &clips], &wav));
    let doc = json(&tmp.path().join("three.json"));
    let words = json_words(&doc);
    let expected = [refs[0].clone(), refs[2].clone()].concat().join(" ");
    assert!(wer(&expected, &words.join(" ")) <= 0.25, "{clips}: {words:?}");
    for w in own(1) {
        assert!(!words.contains(&w), "{clips}: `{w}` is outside the clips: {words:?}");
    }
    let (gap_start, gap_end) = (spans[0].1 + 0.5, spans[2].0 - 0.5);
    for w in doc["word_segments"].as_array().unwrap() {
        let (start, end) = (w["start"].as_f64().unwrap(), w["end"].as_f64().unwrap());
        assert!(end <= gap_start + 0.01 || start >= gap_end - 0.01, "{clips}: word {w} inside the skipped span");
    }
}

/// A burst of reversed speech between long silences makes tiny.en add words nobody said; with
/// --hallucination_silence_threshold only the spoken sentences remain. In float32: whether tiny.en
/// hallucinates here hangs on rounding, and `vdpbf16ps` rounds differently from one CPU to another
/// (with the default bf16 encoder, Zen 4 hallucinates on this input and Zen 5 does not), while f32
/// arithmetic is the same on every CPU.
#[test]
fn hallucination_silence_threshold_drops_words_around_silences() {
    let Some(dir) = model_dir("tiny.en") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let names = ["spk1_snt1.wav", "spk1_snt4.wav", "spk1_snt2.wav"];
    let [a, c, b] = names.map(recording);
    let mut burst = recording("spk2_snt1.wav");
    burst.reverse();
    burst.truncate(8000);
    let audio = [a, zeros(1.0), c, zeros(6.0), burst, zeros(6.0), b].concat();
    let wav = tmp.path().join("bursts.wav");
    write_wav(&wav, &audio);
    let spoken: Vec<String> = names.iter().flat_map(|n| normalize(&reference_text(n).unwrap())).collect();
    let unspoken = |words: &[String]| words.iter().filter(|w| !spoken.contains(w)).cloned().collect::<Vec<_>>();

    let base = ["-f", "json", "--word_timestamps", "True", "--compute_type", "float32"];
    ok(&scribe(&dir, tmp.path(), &base, &wav));
    let words = json_words(&json(&tmp.path().join("bursts.json")));
    assert!(!unspoken(&words).is_empty(), "this input should provoke a hallucination: {words:?}");

    let (_, log) =
        scribe_debug(&dir, tmp.path(), &[&base[..], &["--hallucination_silence_threshold", "2"]].concat(), &wav);
    assert!(log.contains("possible hallucination"), "{log}");
    let words = json_words(&json(&tmp.path().join("bursts.json")));
    assert!(unspoken(&words).is_empty(), "{:?} in {words:?}", unspoken(&words));
    assert!(wer(&spoken.join(" "), &words.join(" ")) <= 0.15, "{words:?}");
}

/// `--help` shows the default of every flag that has one (whisperx's values), and every flag it
/// lists is one of these or a flag without default.
#[test]
fn help_prints_every_default() {
    let out = Command::new(env!("CARGO_BIN_EXE_scribe")).args(["transcribe", "--help"]).output().unwrap();
    let help = ok(&out);
    let defaults: &[(&str, &str)] = &[
        ("--model", "tiny.en"),
        ("--model_dir", "models"),
        ("--vad_method", "pyannote"),
        ("--vad_onset", "0.5"),
        ("--vad_offset", "0.363"),
        ("--chunk_size", "30"),
        ("--batch_size", "8"),
        ("--vad_step", "auto"),
        ("--vad_coarse_to_fine", "True"),
        ("--device", "auto"),
        ("--compute_type", "default"),
        ("--segmentation_compute_type", "default"),
        ("--embedding_compute_type", "default"),
        ("--align_compute_type", "default"),
        ("--output_dir", "."),
        ("--output_format", "all"),
        ("--task", "transcribe"),
        ("--temperature", "0"),
        ("--temperature_increment_on_fallback", "0.2"),
        ("--best_of", "5"),
        ("--beam_size", "5"),
        ("--patience", "1"),
        ("--length_penalty", "1.0"),
        ("--suppress_tokens", "-1"),
        ("--suppress_numerals", "False"),
        ("--model_cache_only", "False"),
        ("--verbose", "True"),
        ("--condition_on_previous_text", "False"),
        ("--compression_ratio_threshold", "2.4"),
        ("--logprob_threshold", "-1.0"),
        ("--no_speech_threshold", "0.6"),
        ("--word_timestamps", "False"),
        ("--clip_timestamps", "0"),
        ("--hallucination_silence_threshold", "none"),
        ("--highlight_words", "False"),
        ("--threads", "0"),
        ("--print_progress", "False"),
        ("--seed", "0"),
        ("--interpolate_method", "nearest"),
        ("--align_mode", "ctc-viterbi"),
    ];
    let without_default = [
        "--align_model",
        "--return_char_alignments",
        "--language",
        "--initial_prompt",
        "--hotwords",
        "--no_align",
        "--max_line_width",
        "--max_line_count",
        "--hf_token",
        "--diarize",
        "--min_speakers",
        "--max_speakers",
        "--diarize_model",
        "--speaker_embeddings",
        "--diarize_threshold",
        "--diarize_after_transcription",
        "--speaker_sample",
        "--speaker_model",
        "--speaker_threshold",
    ];
    // each option's block: from its `--name` line to the next option line
    let mut blocks: Vec<(String, String)> = Vec::new();
    for line in help.lines() {
        let t = line.trim_start();
        if t.starts_with('-') {
            // `--name <VALUE>`, `-o, --name <VALUE>` or `--name[=<VALUE>]` (optional value)
            let word = t.split([',', ' ']).map(str::trim).find(|w| w.starts_with("--")).unwrap_or("");
            let name = word.split(['[', '=']).next().unwrap_or("").to_string();
            blocks.push((name, String::new()));
        }
        if let Some((_, text)) = blocks.last_mut() {
            text.push_str(line);
            text.push('\n');
        }
    }
    for (flag, default) in defaults {
        let block = blocks.iter().find(|(n, _)| n == flag).unwrap_or_else(|| panic!("{flag} missing:\n{help}"));
        assert!(block.1.contains(&format!("[default: {default}]")), "{flag}: {}", block.1);
    }
    for (name, _) in blocks.iter().filter(|(n, _)| n != "--help" && n != "--version") {
        assert!(
            defaults.iter().any(|(f, _)| f == name) || without_default.contains(&name.as_str()),
            "{name} is new: add it (and a test of it) here"
        );
    }
}

/// wav2vec2 alignment from the command line, with the reference's small random-initialised
/// model (its times show the mechanics, not accuracy): words and characters in the JSON, both
/// modes, the subtitle options that need word times, and the refusals.
#[test]
fn align_model_gives_words_and_chars_in_both_modes() {
    let Some(dir) = model_dir("tiny.en") else { return };
    if model_dir("punkt").is_none() {
        return;
    }
    let model = common::root().join("tests/reference/data/wav2vec2/base_group");
    let model = model.to_str().unwrap();
    for mode in ["ctc-viterbi", "whisperx-compat"] {
        let out = tempfile::tempdir().unwrap();
        let extra = [
            "--align_model",
            model,
            "--align_mode",
            mode,
            "--return_char_alignments",
            "--interpolate_method",
            "linear",
            "--output_format",
            "all",
            "--highlight_words",
            "True",
            "--model_dir",
        ];
        let models_dir = common::root().join("models");
        let mut args: Vec<&str> = extra.to_vec();
        args.push(models_dir.to_str().unwrap());
        let o = scribe(&dir, out.path(), &args, &speech("spk1_snt1.wav"));
        ok(&o);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(!stderr.contains("align_output:"), "{mode}: {stderr}");
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.path().join("spk1_snt1.json")).unwrap()).unwrap();
        let seg = &json["segments"][0];
        let words = seg["words"].as_array().unwrap();
        assert!(words.len() >= 5, "{mode}: {json:#}");
        assert!(
            words.iter().all(|w| w["start"].is_number() && w["end"].is_number() && w["score"].is_number()),
            "{mode}: {json:#}"
        );
        let chars = seg["chars"].as_array().expect("chars with --return_char_alignments");
        assert!(chars.len() >= seg["text"].as_str().unwrap().trim().chars().count(), "{mode}: {json:#}");
        assert_eq!(json["word_segments"].as_array().unwrap().len(), words.len());
        // Highlighted subtitles come from the aligned words.
        let srt = std::fs::read_to_string(out.path().join("spk1_snt1.srt")).unwrap();
        assert!(srt.contains("<u>"), "{mode}: {srt}");
    }
    let out = tempfile::tempdir().unwrap();
    let e = failed(&scribe(&dir, out.path(), &["--interpolate_method", "cubic"], &speech("spk1_snt1.wav")), "cubic");
    assert!(e.contains("interpolate_method"), "{e}");
    let e = failed(&scribe(&dir, out.path(), &["--align_mode", "fast"], &speech("spk1_snt1.wav")), "fast");
    assert!(e.contains("align_mode"), "{e}");
}

/// `--align_compute_type` (env ALIGN_COMPUTE_TYPE) chooses the alignment model's precision and
/// the log says which ran: float32 by default, bfloat16 where asked and the CPU has bf16
/// products; other values are refused by name.
#[test]
fn align_compute_type_chooses_the_aligners_precision_and_says_so() {
    let Some(dir) = model_dir("tiny.en") else { return };
    let model = common::root().join("tests/reference/data/wav2vec2/base_group");
    let models_dir = common::root().join("models");
    let base = ["--align_model", model.to_str().unwrap(), "--model_dir", models_dir.to_str().unwrap()];
    let bf16 = common::bf16_products();
    for (flag, want) in
        [(None, "float32"), (Some("float32"), "float32"), (Some("bfloat16"), if bf16 { "bfloat16" } else { "float32" })]
    {
        let out = tempfile::tempdir().unwrap();
        let mut args: Vec<&str> = base.to_vec();
        args.extend(flag.map(|f| ["--align_compute_type", f]).into_iter().flatten());
        args.extend(["--output_format", "json"]);
        let o = scribe(&dir, out.path(), &args, &speech("spk1_snt1.wav"));
        ok(&o);
        let stderr = String::from_utf8_lossy(&o.stderr);
        let line = stderr.lines().find(|l| l.contains("alignment model")).unwrap_or_else(|| panic!("{stderr}"));
        assert!(line.contains(&format!("(compute_type={want})")), "{flag:?}: {line}");
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.path().join("spk1_snt1.json")).unwrap()).unwrap();
        assert!(json["word_segments"].as_array().unwrap().len() >= 5, "{flag:?}: {json:#}");
    }
    let out = tempfile::tempdir().unwrap();
    let mut args: Vec<&str> = base.to_vec();
    args.extend(["--align_compute_type", "int8"]);
    let e = failed(&scribe(&dir, out.path(), &args, &speech("spk1_snt1.wav")), "int8");
    assert!(e.contains("align_compute_type") && e.contains("bfloat16"), "{e}");
}

/// By default the language's model is looked for; offline and not cached it cannot be had: a
/// warning, the transcript without word times (or with DTW ones under --word_timestamps True).
#[test]
fn default_alignment_without_its_model_is_a_warning() {
    let Some(dir) = model_dir("tiny.en") else { return };
    for (extra, words) in [
        (&["--output_format", "json"][..], false),
        (&["--output_format", "json", "--word_timestamps", "True"][..], true),
    ] {
        let out = tempfile::tempdir().unwrap();
        let o = scribe(&dir, out.path(), extra, &speech("spk1_snt1.wav"));
        ok(&o);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(stderr.contains("align_output:") && stderr.contains("WAV2VEC2_ASR_BASE_960H"), "{stderr}");
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.path().join("spk1_snt1.json")).unwrap()).unwrap();
        let n = json["word_segments"].as_array().unwrap().len();
        assert_eq!(n > 0, words, "{json:#}");
    }
}

/// `--diarize` on the two-speaker recording: every segment and timed word has a speaker, the
/// two speakers both appear, the subtitles carry the prefixes, `--speaker_embeddings` writes a
/// centroid per speaker, and `--max_speakers 1` leaves one speaker. On the CPU the speakers are
/// found alongside the transcription; `--diarize_after_transcription` gives the same JSON.
#[test]
fn diarize_labels_segments_and_words_with_two_speakers() {
    let (Some(dir), Some(_), Some(_)) = (model_dir("tiny.en"), model_dir("segmentation-3.0"), model_dir("campplus"))
    else {
        return;
    };
    let models = common::root().join("models");
    let models = models.to_str().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let extra = ["--diarize", "--speaker_embeddings", "--model_dir", models, "--word_timestamps", "True", "-f", "all"];
    ok(&scribe(&dir, tmp.path(), &extra, &speech("two_speakers.wav")));
    let written = std::fs::read_to_string(tmp.path().join("two_speakers.json")).unwrap();
    let after = tempfile::tempdir().unwrap();
    let extra_after = [&extra[..], &["--diarize_after_transcription"]].concat();
    ok(&scribe(&dir, after.path(), &extra_after, &speech("two_speakers.wav")));
    assert_eq!(
        std::fs::read_to_string(after.path().join("two_speakers.json")).unwrap(),
        written,
        "diarization alongside the transcription and after it differ"
    );
    let json: serde_json::Value = serde_json::from_str(&written).unwrap();
    let segments = json["segments"].as_array().unwrap();
    let speakers: std::collections::BTreeSet<&str> =
        segments.iter().map(|s| s["speaker"].as_str().expect("a segment without a speaker")).collect();
    assert_eq!(speakers.len(), 2, "{speakers:?}");
    let (mut timed, mut labelled) = (0, 0);
    for s in segments {
        for w in s["words"].as_array().unwrap().iter().filter(|w| w.get("start").is_some()) {
            timed += 1;
            // A word no turn overlaps for a positive time keeps no speaker (WhisperX's rule);
            // the others have their segment's: a segment is split where its words change speaker.
            if let Some(speaker) = w.get("speaker") {
                labelled += 1;
                assert_eq!(speaker, &s["speaker"], "{s}");
            }
        }
    }
    assert!(labelled * 10 >= timed * 9, "{labelled} of {timed} timed words have a speaker");
    let embeddings = json["speaker_embeddings"].as_object().unwrap();
    assert_eq!(embeddings.keys().map(String::as_str).collect::<std::collections::BTreeSet<_>>(), speakers);
    assert!(embeddings.values().all(|e| e.as_array().unwrap().len() == 192));
    let srt = std::fs::read_to_string(tmp.path().join("two_speakers.srt")).unwrap();
    assert!(srt.contains("[SPEAKER_00]: ") && srt.contains("[SPEAKER_01]: "), "{srt}");

    let one = tempfile::tempdir().unwrap();
    let extra = ["--diarize", "--max_speakers", "1", "--model_dir", models, "-f", "json"];
    ok(&scribe(&dir, one.path(), &extra, &speech("two_speakers.wav")));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(one.path().join("two_speakers.json")).unwrap()).unwrap();
    assert!(json["segments"].as_array().unwrap().iter().all(|s| s["speaker"] == "SPEAKER_00"), "{json}");
}

/// `--embedding_compute_type` (EMBEDDING_COMPUTE_TYPE): the default runs CAM++'s FCM, TDNN and 1×1
/// convs in bf16 where the CPU has AVX-512 BF16 (CI's do) and says so with the diarization model;
/// float32 keeps them in f32; an unknown value is refused.
#[test]
fn embedding_compute_type_chooses_campplus_precision_and_says_so() {
    let (Some(dir), Some(_), Some(_)) = (model_dir("tiny.en"), model_dir("segmentation-3.0"), model_dir("campplus"))
    else {
        return;
    };
    let models = common::root().join("models");
    let models = models.to_str().unwrap();
    let bf16 = common::bf16_products();
    for (flag, env, want) in [
        (None, None, if bf16 { "bfloat16" } else { "float32" }),
        (Some("float32"), None, "float32"),
        (None, Some("float32"), "float32"),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let mut extra = vec!["--diarize", "--model_dir", models, "-f", "json"];
        extra.extend(flag.map(|f| ["--embedding_compute_type", f]).into_iter().flatten());
        let vars: Vec<(&str, &str)> = env.map(|v| ("EMBEDDING_COMPUTE_TYPE", v)).into_iter().collect();
        let o = scribe_env(&dir, tmp.path(), &extra, &speech("spk1_snt1.wav"), &vars);
        ok(&o);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(&format!("CAM++ embeddings (compute_type={want})")), "{flag:?} {env:?}: {err}");
    }
    let tmp = tempfile::tempdir().unwrap();
    let bad = ["--diarize", "--embedding_compute_type", "int8"];
    let err = failed(&scribe(&dir, tmp.path(), &bad, &speech("spk1_snt1.wav")), "int8");
    assert!(err.contains("embedding_compute_type") && err.contains("bfloat16"), "{err}");
}

/// Diarization models that cannot be had are a warning: the transcript still comes back, without
/// speakers. Speaker counts below one are refused.
#[test]
fn diarize_without_its_models_is_a_warning_and_bad_counts_are_errors() {
    let Some(dir) = model_dir("tiny.en") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nowhere");
    let o = scribe(
        &dir,
        tmp.path(),
        &["--diarize", "--diarize_model", missing.to_str().unwrap(), "-f", "json"],
        &speech("spk1_snt1.wav"),
    );
    ok(&o);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("diarization") && err.contains("nowhere") && err.contains("segments carry no speaker"),
        "{err}"
    );
    let json = std::fs::read_to_string(tmp.path().join("spk1_snt1.json")).unwrap();
    assert!(!json.contains("speaker"), "{json}");
    for bad in [["--min_speakers", "0"], ["--max_speakers", "0"]] {
        let err = failed(&scribe(&dir, tmp.path(), &["--diarize", bad[0], bad[1]], &speech("spk1_snt1.wav")), bad[0]);
        assert!(err.contains(&bad[0][2..]), "{err}");
    }
    let err = failed(
        &scribe(
            &dir,
            tmp.path(),
            &["--diarize", "--min_speakers", "3", "--max_speakers", "2"],
            &speech("spk1_snt1.wav"),
        ),
        "min above max",
    );
    assert!(err.contains("min_speakers 3"), "{err}");
    for t in ["0", "2", "nan", "-0.5"] {
        let err =
            failed(&scribe(&dir, tmp.path(), &["--diarize", "--diarize_threshold", t], &speech("spk1_snt1.wav")), t);
        assert!(err.contains("diarize_threshold"), "{err}");
    }
}

/// `--speaker_sample` on the two-speaker recording (it turns --diarize on and says so): each
/// reference speaker enrolled with one of its own turns (cut from the file: the reference RTTM's
/// speaker90 at 10.57-14.70 s, speaker91 at 21.78-28.50 s) names the diarized speakers, the
/// segments inside those turns carry the names, and the JSON's `speakers` table says why. With
/// one voice enrolled and an unrelated one (spk1), the other speaker keeps its label. An
/// undecodable sample and a silent one are warnings naming them.
#[test]
fn speaker_samples_name_the_diarized_speakers() {
    let (Some(dir), Some(_), Some(_)) = (model_dir("tiny.en"), model_dir("segmentation-3.0"), model_dir("campplus"))
    else {
        return;
    };
    let models = common::root().join("models");
    let models = models.to_str().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let audio = scribe::audio::Audio::decode(
        &speech("two_speakers.wav"),
        &Default::default(),
        &scribe::Cancel::new(),
        &mut |_| {},
    )
    .unwrap();
    let cut = |name: &str, start: f64, end: f64| {
        let path = tmp.path().join(name);
        write_wav(&path, &audio.span((start * 16_000.0) as usize, (end * 16_000.0) as usize));
        path.to_str().unwrap().to_string()
    };
    let anna = format!("anna={}", cut("anna.wav", 10.57, 14.70));
    let ben = format!("ben={}", cut("ben.wav", 21.78, 28.50));
    let silent = tmp.path().join("silent.wav");
    write_wav(&silent, &vec![0.0; 16_000 * 3]);
    let garbage = tmp.path().join("garbage.wav");
    std::fs::write(&garbage, b"RIFF not really a wave file at all").unwrap();
    let silent = format!("quiet={}", silent.display());
    let garbage = format!("broken={}", garbage.display());
    let out = tmp.path().join("out");
    let extra = [
        "--model_dir",
        models,
        "-f",
        "json",
        "--speaker_sample",
        &anna,
        "--speaker_sample",
        &ben,
        "--speaker_sample",
        &silent,
        "--speaker_sample",
        &garbage,
    ];
    let o = scribe(&dir, &out, &extra, &speech("two_speakers.wav"));
    ok(&o);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("diarization turned on"), "{stderr}");
    assert!(stderr.contains("speaker_samples: quiet") && stderr.contains("speech"), "{stderr}");
    assert!(stderr.contains("speaker_samples: broken"), "{stderr}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("two_speakers.json")).unwrap()).unwrap();
    let table = json["speakers"].as_array().expect("a speakers table");
    eprintln!("{table:#?}");
    let names: std::collections::BTreeSet<&str> = table.iter().filter_map(|s| s["name"].as_str()).collect();
    assert_eq!(names, ["anna", "ben"].into_iter().collect(), "{table:#?}");
    // A segment centred in a turn carries its speaker's name.
    let centred = |s: &serde_json::Value, a: f64, b: f64| {
        let mid = (s["start"].as_f64().unwrap() + s["end"].as_f64().unwrap()) / 2.0;
        (a..=b).contains(&mid)
    };
    let segments = json["segments"].as_array().unwrap();
    let (mut in_anna, mut in_ben) = (0, 0);
    for s in segments {
        if centred(s, 10.57, 14.70) {
            assert_eq!(s["speaker"], "anna", "{s}");
            in_anna += 1;
        }
        if centred(s, 21.78, 28.50) {
            assert_eq!(s["speaker"], "ben", "{s}");
            in_ben += 1;
        }
    }
    assert!(in_anna > 0 && in_ben > 0, "{segments:#?}");

    // ben not enrolled, an unrelated voice instead: ben's speaker keeps its SPEAKER_xx label.
    let carol = format!("carol={}", speech("spk1_snt1.wav").display());
    let out = tmp.path().join("out2");
    let extra =
        ["--model_dir", models, "-f", "json", "--diarize", "--speaker_sample", &anna, "--speaker_sample", &carol];
    ok(&scribe(&dir, &out, &extra, &speech("two_speakers.wav")));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("two_speakers.json")).unwrap()).unwrap();
    let table = json["speakers"].as_array().unwrap();
    eprintln!("{table:#?}");
    let mut names: Vec<Option<&str>> = table.iter().map(|s| s["name"].as_str()).collect();
    names.sort();
    assert_eq!(names, vec![None, Some("anna")], "{table:#?}");
    let kept = table.iter().find(|s| s["name"].is_null()).unwrap();
    assert_eq!(kept["decision"], "below_threshold", "{kept}");
    for s in json["segments"].as_array().unwrap().iter().filter(|s| centred(s, 21.78, 28.50)) {
        assert_eq!(s["speaker"], kept["label"], "{s}");
    }
}

/// `--speaker_model` with a SpeechBrain ECAPA directory (the small random-initialised reference
/// model: its scores mean nothing, the path is what is tested): samples and diarized speakers
/// are both embedded by it, every speaker gets a score. A model that cannot be had is a warning
/// and the transcript comes back with its labels.
#[test]
fn speaker_model_embeds_samples_and_speakers_alike_and_a_missing_one_is_a_warning() {
    let (Some(dir), Some(_), Some(_)) = (model_dir("tiny.en"), model_dir("segmentation-3.0"), model_dir("campplus"))
    else {
        return;
    };
    let models = common::root().join("models");
    let models = models.to_str().unwrap();
    let ecapa = common::root().join("tests/reference/data/ecapa/small");
    let sample = format!("carol={}", speech("spk1_snt1.wav").display());
    let tmp = tempfile::tempdir().unwrap();
    let extra =
        ["--model_dir", models, "-f", "json", "--speaker_sample", &sample, "--speaker_model", ecapa.to_str().unwrap()];
    ok(&scribe(&dir, tmp.path(), &extra, &speech("two_speakers.wav")));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("two_speakers.json")).unwrap()).unwrap();
    let table = json["speakers"].as_array().expect("a speakers table");
    assert!(!table.is_empty());
    for row in table {
        let score = row["score"].as_f64().unwrap_or_else(|| panic!("no score: {row}"));
        assert!((-1.0..=1.0).contains(&score), "{row}");
        assert_eq!(row["best"], "carol", "{row}");
    }

    let missing = tmp.path().join("no-such-model");
    let out = tmp.path().join("out2");
    let extra = [
        "--model_dir",
        models,
        "-f",
        "json",
        "--speaker_sample",
        &sample,
        "--speaker_model",
        missing.to_str().unwrap(),
    ];
    let o = scribe(&dir, &out, &extra, &speech("two_speakers.wav"));
    ok(&o);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("speaker_verification:") && stderr.contains("no-such-model"), "{stderr}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("two_speakers.json")).unwrap()).unwrap();
    assert!(json.get("speakers").is_none(), "{json}");
    assert!(json["segments"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["speaker"].as_str().unwrap().starts_with("SPEAKER_")));
}

/// `--speaker_sample` needs NAME=PATH with a name and an existing file; `--speaker_threshold` a
/// cosine in [-1, 1]. Each error names the flag's value.
#[test]
fn speaker_sample_and_threshold_are_checked() {
    let Some(dir) = model_dir("tiny.en") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let audio = speech("spk1_snt1.wav");
    let e = failed(&scribe(&dir, tmp.path(), &["--speaker_sample", "no-equals-sign"], &audio), "no =");
    assert!(e.contains("NAME=PATH"), "{e}");
    let e = failed(&scribe(&dir, tmp.path(), &["--speaker_sample", "=/etc/hostname"], &audio), "no name");
    assert!(e.contains("name is empty"), "{e}");
    let e = failed(&scribe(&dir, tmp.path(), &["--speaker_sample", "ann=/no/such/file.wav"], &audio), "no file");
    assert!(e.contains("/no/such/file.wav"), "{e}");
    let sample = format!("ann={}", audio.display());
    let e = failed(
        &scribe(&dir, tmp.path(), &["--speaker_sample", &sample, "--speaker_threshold", "1.5"], &audio),
        "threshold",
    );
    assert!(e.contains("speaker_threshold"), "{e}");
}
