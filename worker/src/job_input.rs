//! A job's `input`, checked field by field before any work starts. Every problem is reported at
//! once, in the words of the RunPod SDK's validator (`rp_validator`): "Unexpected input. X is not
//! a valid input option.", "X is a required input.", "X should be <type> type, not <type>.",
//! "X does not meet the constraints." — each followed by what the constraint is.

use serde_json::{Map, Value};

use scribe::models::whisper::tokenizer::LANGUAGES;
use scribe::pipeline::speech_chunks::MIN_CHUNK_SIZE;

/// whisperx's batch size default; the largest batch a worker accepts.
pub const DEFAULT_BATCH_SIZE: usize = 8;
pub const MAX_BATCH_SIZE: usize = 64;
/// whisperx's beam size default (`asr.py` `default_asr_options`), and the largest accepted.
pub const DEFAULT_BEAM_SIZE: usize = 5;
pub const MAX_BEAM_SIZE: usize = 16;
/// Longest VAD chunk Whisper's 30 s window takes; the shortest is the engine's
/// [`MIN_CHUNK_SIZE`] (whisperx takes whole seconds; each chunk costs a whole 30 s window).
pub const MAX_CHUNK_SIZE: f64 = 30.0;
/// Speaker samples per job, and the longest speaker name kept.
pub const MAX_SPEAKER_SAMPLES: usize = 32;
/// Artifacts a job can ask for (all by default; the JSON result always).
pub const OUTPUT_FORMATS: &[&str] = &["json", "srt", "vtt", "txt"];
/// Formats uploaded only when `output_formats` names them: `rttm`, the diarization's turns.
pub const OPTIONAL_OUTPUT_FORMATS: &[&str] = &["rttm"];

/// One reference recording of a known speaker.
#[derive(Clone, Debug, PartialEq)]
pub struct SpeakerSample {
    pub url: String,
    pub name: Option<String>,
}

/// A validated job input.
#[derive(Clone, Debug, PartialEq)]
pub struct JobInput {
    pub audio_file: String,
    /// None: detect.
    pub language: Option<String>,
    pub task_translate: bool,
    pub align_output: bool,
    /// The alignment model (`--align_model`): a bundle, a hub repo or a directory under
    /// SCRIBE_MODELS_DIR.
    pub align_model: Option<String>,
    /// WhisperX's `interpolate_method` (absent: nearest).
    pub interpolate_method: scribe::align::Interpolate,
    pub return_char_alignments: bool,
    pub diarization: bool,
    pub speaker_verification: bool,
    pub speaker_samples: Vec<SpeakerSample>,
    /// None: the worker's default (DEBUG=1 makes it true).
    pub debug: Option<bool>,
    pub batch_size: usize,
    pub beam_size: usize,
    pub initial_prompt: Option<String>,
    pub temperature: Option<f32>,
    pub vad_onset: f32,
    pub vad_offset: f32,
    pub chunk_size: f64,
    pub min_speakers: Option<usize>,
    pub max_speakers: Option<usize>,
    pub word_timestamps: bool,
    pub output_formats: Vec<String>,
}

/// The JSON type of a value, in the validator's words.
fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_i64() || n.is_u64() => "int",
        Value::Number(_) => "float",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// Reads fields out of the input map, collecting every problem.
struct Fields<'a> {
    map: &'a Map<String, Value>,
    errors: Vec<String>,
}

impl<'a> Fields<'a> {
    /// The value of `key` unless absent or null.
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn wrong_type(&mut self, key: &str, want: &str, v: &Value) {
        self.errors.push(format!("{key} should be {want} type, not {} type.", type_name(v)));
    }

    fn constraint(&mut self, key: &str, what: &str) {
        self.errors.push(format!("{key} does not meet the constraints: {what}."));
    }

    fn bool(&mut self, key: &str, default: bool) -> bool {
        self.opt_bool(key).unwrap_or(default)
    }

    fn opt_bool(&mut self, key: &str) -> Option<bool> {
        match self.get(key)? {
            Value::Bool(b) => Some(*b),
            v => {
                self.wrong_type(key, "bool", v);
                None
            }
        }
    }

    fn string(&mut self, key: &str) -> Option<String> {
        match self.get(key)? {
            Value::String(s) => Some(s.clone()),
            v => {
                self.wrong_type(key, "str", v);
                None
            }
        }
    }

    /// A whole number in `[min, max]`.
    fn uint(&mut self, key: &str, min: usize, max: usize) -> Option<usize> {
        let v = self.get(key)?;
        let Some(n) = v.as_u64().or_else(|| v.as_i64().map(|_| u64::MAX)) else {
            self.wrong_type(key, "int", v);
            return None;
        };
        if n < min as u64 || n > max as u64 {
            self.constraint(key, &format!("a whole number from {min} to {max}, got {v}"));
            return None;
        }
        Some(n as usize)
    }

    /// A number in `(low, high]` (`low_open`) or `[low, high]`.
    fn number(&mut self, key: &str, low: f64, high: f64, low_open: bool) -> Option<f64> {
        let v = self.get(key)?;
        let Some(x) = v.as_f64() else {
            self.wrong_type(key, "float", v);
            return None;
        };
        let above = if low_open { x > low } else { x >= low };
        if !(above && x <= high) {
            let from = if low_open { format!("more than {low}") } else { format!("from {low}") };
            self.constraint(key, &format!("a number {from} up to {high}, got {v}"));
            return None;
        }
        Some(x)
    }
}

/// Fields a job may carry.
pub const INPUT_FIELDS: &[&str] = &[
    "audio_file",
    "language",
    "task",
    "align_output",
    "align_model",
    "interpolate_method",
    "return_char_alignments",
    "diarization",
    "speaker_verification",
    "speaker_samples",
    "debug",
    "batch_size",
    "beam_size",
    "initial_prompt",
    "temperature",
    "vad_onset",
    "vad_offset",
    "chunk_size",
    "min_speakers",
    "max_speakers",
    "word_timestamps",
    "output_formats",
];

/// `http` or `https` URL with a host, or what is wrong with it.
pub fn check_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("not a URL ({e})"))?;
    match parsed.scheme() {
        "http" | "https" => {}
        other => return Err(format!("scheme {other}:// is not allowed (only http and https)")),
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("the URL has no host".into());
    }
    Ok(())
}

impl JobInput {
    /// Check a job's `input`; Err lists every problem found.
    pub fn parse(input: &Value) -> Result<JobInput, Vec<String>> {
        let Value::Object(map) = input else {
            return Err(vec![format!("input should be dict type, not {} type.", type_name(input))]);
        };
        let mut f = Fields { map, errors: Vec::new() };
        for key in map.keys() {
            if !INPUT_FIELDS.contains(&key.as_str()) {
                f.errors.push(format!("Unexpected input. {key} is not a valid input option."));
            }
        }
        let audio_file = match f.get("audio_file") {
            None => {
                f.errors.push("audio_file is a required input.".into());
                None
            }
            Some(_) => f.string("audio_file"),
        };
        if let Some(url) = &audio_file {
            if let Err(e) = check_url(url) {
                f.constraint("audio_file", &e);
            }
        }
        let language = f.string("language").map(|l| l.to_lowercase());
        if let Some(l) = &language {
            if !LANGUAGES.contains(&l.as_str()) {
                f.constraint("language", &format!("a Whisper language code such as en or de, got {l:?}"));
            }
        }
        let task_translate = match f.string("task").as_deref() {
            None | Some("transcribe") => false,
            Some("translate") => true,
            Some(other) => {
                f.constraint("task", &format!("transcribe or translate, got {other:?}"));
                false
            }
        };
        let speaker_samples = speaker_samples(&mut f);
        let output_formats = match f.get("output_formats") {
            None => OUTPUT_FORMATS.iter().map(|f| f.to_string()).collect(),
            Some(Value::Array(items)) => {
                let mut out = Vec::new();
                for item in items {
                    match item.as_str() {
                        Some(s) if OUTPUT_FORMATS.contains(&s) || OPTIONAL_OUTPUT_FORMATS.contains(&s) => {
                            out.push(s.to_string())
                        }
                        _ => f.constraint(
                            "output_formats",
                            &format!(
                                "each one of {}, {}, got {item}",
                                OUTPUT_FORMATS.join(", "),
                                OPTIONAL_OUTPUT_FORMATS.join(", ")
                            ),
                        ),
                    }
                }
                // The full JSON result is always kept.
                if !out.iter().any(|f| f == "json") {
                    out.insert(0, "json".into());
                }
                out.dedup();
                out
            }
            Some(v) => {
                f.wrong_type("output_formats", "list", v);
                Vec::new()
            }
        };
        let vad_onset = f.number("vad_onset", 0.0, 1.0, true).map_or(0.5, |x| x as f32);
        let vad_offset = f.number("vad_offset", 0.0, 1.0, true).map_or(0.363, |x| x as f32);
        let min_speakers = f.uint("min_speakers", 1, 64);
        let max_speakers = f.uint("max_speakers", 1, 64);
        if let (Some(lo), Some(hi)) = (min_speakers, max_speakers) {
            if lo > hi {
                f.constraint("min_speakers", &format!("at most max_speakers ({hi}), got {lo}"));
            }
        }
        let input = JobInput {
            audio_file: audio_file.unwrap_or_default(),
            language,
            task_translate,
            align_output: f.bool("align_output", false),
            align_model: align_model(&mut f),
            interpolate_method: interpolate_method(&mut f),
            return_char_alignments: f.bool("return_char_alignments", false),
            diarization: f.bool("diarization", false),
            speaker_verification: f.bool("speaker_verification", false),
            speaker_samples,
            debug: f.opt_bool("debug"),
            batch_size: f.uint("batch_size", 1, MAX_BATCH_SIZE).unwrap_or(DEFAULT_BATCH_SIZE),
            beam_size: f.uint("beam_size", 1, MAX_BEAM_SIZE).unwrap_or(DEFAULT_BEAM_SIZE),
            initial_prompt: f.string("initial_prompt"),
            temperature: f.number("temperature", 0.0, 1.0, false).map(|t| t as f32),
            vad_onset,
            vad_offset,
            chunk_size: f.number("chunk_size", MIN_CHUNK_SIZE, MAX_CHUNK_SIZE, false).unwrap_or(MAX_CHUNK_SIZE),
            min_speakers,
            max_speakers,
            word_timestamps: f.bool("word_timestamps", false),
            output_formats,
        };
        if f.errors.is_empty() {
            Ok(input)
        } else {
            Err(f.errors)
        }
    }
}

/// The longest `align_model` name accepted.
pub const MAX_ALIGN_MODEL_CHARS: usize = 96;

/// `align_model`: a torchaudio bundle name, a hub repo id (`owner/name`) or the name of a
/// directory under SCRIBE_MODELS_DIR; never a path (no `..`, no leading `/` or `.`).
fn align_model(f: &mut Fields<'_>) -> Option<String> {
    let name = f.string("align_model")?;
    let plain = |part: &str| {
        !part.is_empty()
            && !part.starts_with('.')
            && part.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    };
    let parts: Vec<&str> = name.split('/').collect();
    if name.len() > MAX_ALIGN_MODEL_CHARS || parts.len() > 2 || !parts.iter().all(|p| plain(p)) {
        f.constraint(
            "align_model",
            &format!(
                "a torchaudio bundle name, a hub repo id (owner/name) or a model directory name of at most \
                 {MAX_ALIGN_MODEL_CHARS} characters (letters, digits, _ - .), got {:?}",
                name.chars().take(MAX_ALIGN_MODEL_CHARS).collect::<String>()
            ),
        );
        return None;
    }
    Some(name)
}

/// `interpolate_method`: WhisperX's nearest, linear or ignore (absent: nearest).
fn interpolate_method(f: &mut Fields<'_>) -> scribe::align::Interpolate {
    let Some(m) = f.string("interpolate_method") else {
        return Default::default();
    };
    m.parse().unwrap_or_else(|_| {
        f.constraint(
            "interpolate_method",
            &format!(
                "one of {}, got {:?}",
                scribe::align::Interpolate::NAMES.join(", "),
                m.chars().take(32).collect::<String>()
            ),
        );
        Default::default()
    })
}

fn speaker_samples(f: &mut Fields<'_>) -> Vec<SpeakerSample> {
    let items = match f.get("speaker_samples") {
        None => return Vec::new(),
        Some(Value::Array(items)) => items,
        Some(v) => {
            f.wrong_type("speaker_samples", "list", v);
            return Vec::new();
        }
    };
    if items.len() > MAX_SPEAKER_SAMPLES {
        f.constraint("speaker_samples", &format!("at most {MAX_SPEAKER_SAMPLES} samples, got {}", items.len()));
        return Vec::new();
    }
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let key = format!("speaker_samples[{i}]");
        let Value::Object(sample) = item else {
            f.wrong_type(&key, "dict", item);
            continue;
        };
        for k in sample.keys().filter(|k| !["url", "name"].contains(&k.as_str())) {
            f.errors.push(format!("Unexpected input. {key}.{k} is not a valid input option."));
        }
        let url = match sample.get("url") {
            Some(Value::String(u)) => match check_url(u) {
                Ok(()) => Some(u.clone()),
                Err(e) => {
                    f.constraint(&format!("{key}.url"), &e);
                    None
                }
            },
            None | Some(Value::Null) => {
                f.errors.push(format!("{key}.url is a required input."));
                None
            }
            Some(v) => {
                f.wrong_type(&format!("{key}.url"), "str", v);
                None
            }
        };
        let name = match sample.get("name") {
            None | Some(Value::Null) => None,
            Some(Value::String(n)) => Some(n.clone()),
            Some(v) => {
                f.wrong_type(&format!("{key}.name"), "str", v);
                None
            }
        };
        if let Some(url) = url {
            out.push(SpeakerSample { url, name });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errors(input: Value) -> Vec<String> {
        JobInput::parse(&input).unwrap_err()
    }

    #[test]
    fn a_minimal_job_takes_the_defaults() {
        let job = JobInput::parse(&json!({"audio_file": "https://example.com/a.mp3"})).unwrap();
        assert_eq!(job.audio_file, "https://example.com/a.mp3");
        assert_eq!((job.language, job.batch_size, job.beam_size), (None, DEFAULT_BATCH_SIZE, DEFAULT_BEAM_SIZE));
        assert_eq!((job.vad_onset, job.vad_offset, job.chunk_size), (0.5, 0.363, 30.0));
        assert_eq!(job.output_formats, vec!["json", "srt", "vtt", "txt"]);
        let job = JobInput::parse(&json!({"audio_file": "https://e.com/a", "output_formats": ["srt"]})).unwrap();
        assert_eq!(job.output_formats, vec!["json", "srt"], "the JSON result is always kept");
        assert!(!job.align_output && !job.diarization && job.debug.is_none());
    }

    #[test]
    fn the_customers_job_shape_parses() {
        let job = JobInput::parse(&json!({
            "audio_file": "https://x.example/a.wav", "language": null, "align_output": true,
            "diarization": true, "speaker_verification": true, "debug": true,
            "speaker_samples": [{"url": "https://x.example/alice.wav", "name": "Alice"}, {"url": "https://x.example/b.wav"}]
        }))
        .unwrap();
        assert!(job.align_output && job.diarization && job.speaker_verification && job.debug == Some(true));
        assert_eq!(job.speaker_samples[0].name.as_deref(), Some("Alice"));
        assert_eq!(job.speaker_samples[1].name, None);
    }

    #[test]
    fn missing_audio_and_unknown_keys_are_reported_in_the_sdks_words() {
        let e = errors(json!({"audio": "x"}));
        assert!(e.contains(&"Unexpected input. audio is not a valid input option.".to_string()), "{e:?}");
        assert!(e.contains(&"audio_file is a required input.".to_string()), "{e:?}");
    }

    #[test]
    fn every_wrong_type_is_listed_at_once() {
        let e = errors(json!({
            "audio_file": 3, "language": 1, "align_output": "yes", "diarization": 0, "debug": [],
            "batch_size": "8", "beam_size": 2.5, "initial_prompt": {}, "vad_onset": "0.5",
            "chunk_size": true, "min_speakers": "2", "word_timestamps": 1, "output_formats": "srt",
            "speaker_samples": {"url": "x"}, "speaker_verification": "true", "temperature": "hot",
            "task": 1, "vad_offset": [], "max_speakers": 2.0, "align_model": 7, "interpolate_method": false,
            "return_char_alignments": "no"
        }));
        for want in [
            "audio_file should be str type, not int type.",
            "language should be str type, not int type.",
            "align_output should be bool type, not str type.",
            "diarization should be bool type, not int type.",
            "debug should be bool type, not list type.",
            "batch_size should be int type, not str type.",
            "beam_size should be int type, not float type.",
            "initial_prompt should be str type, not dict type.",
            "vad_onset should be float type, not str type.",
            "chunk_size should be float type, not bool type.",
            "min_speakers should be int type, not str type.",
            "word_timestamps should be bool type, not int type.",
            "output_formats should be list type, not str type.",
            "speaker_samples should be list type, not dict type.",
            "speaker_verification should be bool type, not str type.",
            "temperature should be float type, not str type.",
            "task should be str type, not int type.",
            "vad_offset should be float type, not list type.",
            "max_speakers should be int type, not float type.",
            "align_model should be str type, not int type.",
            "interpolate_method should be str type, not bool type.",
            "return_char_alignments should be bool type, not str type.",
        ] {
            assert!(e.iter().any(|x| x == want), "missing {want:?} in {e:#?}");
        }
        // Every field was given a wrong type, and each is reported.
        assert_eq!(e.len(), INPUT_FIELDS.len(), "{e:#?}");
    }

    #[test]
    fn out_of_range_values_name_the_constraint() {
        let e = errors(json!({
            "audio_file": "ftp://example.com/a.wav", "batch_size": 0, "beam_size": 99, "vad_onset": 1.5,
            "vad_offset": 0, "chunk_size": 45, "language": "xx", "task": "summarize",
            "min_speakers": 3, "max_speakers": 2, "output_formats": ["docx"], "temperature": -1
        }));
        let has = |field: &str, part: &str| {
            e.iter().any(|x| x.starts_with(&format!("{field} does not meet the constraints")) && x.contains(part))
        };
        assert!(has("audio_file", "ftp"), "{e:#?}");
        assert!(has("batch_size", "1 to 64"), "{e:#?}");
        assert!(has("beam_size", "got 99"), "{e:#?}");
        assert!(has("vad_onset", "got 1.5"), "{e:#?}");
        assert!(has("vad_offset", "more than 0"), "{e:#?}");
        assert!(has("chunk_size", "got 45"), "{e:#?}");
        // A chunk size that multiplies the work (each chunk is a 30 s window): 1e-9 made 170
        // chunks of a 2.9 s clip.
        for tiny in [1e-9, 0.5, 0.999] {
            let e = errors(json!({"audio_file": "https://e.com/a.wav", "chunk_size": tiny}));
            assert_eq!(e.len(), 1, "{e:?}");
            assert!(e[0].starts_with("chunk_size does not meet the constraints: a number from 1 up to 30"), "{e:?}");
        }
        assert!(JobInput::parse(&json!({"audio_file": "https://e.com/a.wav", "chunk_size": 1})).is_ok());
        assert!(has("language", "\"xx\""), "{e:#?}");
        assert!(has("task", "summarize"), "{e:#?}");
        assert!(has("min_speakers", "max_speakers (2)"), "{e:#?}");
        assert!(has("output_formats", "docx"), "{e:#?}");
        assert!(has("temperature", "got -1"), "{e:#?}");
        assert_eq!(e.len(), 11, "{e:#?}");
    }

    #[test]
    fn file_urls_negative_numbers_and_bad_samples_are_refused() {
        let e = errors(json!({
            "audio_file": "file:///etc/passwd", "batch_size": -3,
            "speaker_samples": [{"name": "x"}, {"url": "gopher://h/x"}, {"url": "https://h/x", "voice": 1}, 7]
        }));
        assert!(e.iter().any(|x| x.contains("audio_file") && x.contains("file://")), "{e:#?}");
        assert!(e.iter().any(|x| x.contains("batch_size") && x.contains("got -3")), "{e:#?}");
        assert!(e.contains(&"speaker_samples[0].url is a required input.".to_string()), "{e:#?}");
        assert!(e.iter().any(|x| x.starts_with("speaker_samples[1].url does not meet")), "{e:#?}");
        assert!(e.contains(&"Unexpected input. speaker_samples[2].voice is not a valid input option.".to_string()));
        assert!(e.contains(&"speaker_samples[3] should be dict type, not int type.".to_string()), "{e:#?}");
    }

    #[test]
    fn an_input_that_is_not_an_object_is_one_error() {
        assert_eq!(errors(json!("https://a/b.wav")), vec!["input should be dict type, not str type."]);
        assert_eq!(errors(Value::Null), vec!["input should be dict type, not null type."]);
    }
}
