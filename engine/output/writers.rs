//! The output files: txt, srt, vtt, tsv, json and Audacity labels, as whisperX's
//! `whisperx/utils.py` writers (m-bain/whisperX 2cfd7b7) produce them, byte for byte.
//!
//! `all` is whisperX's `all`: txt, vtt, srt, tsv and json; the Audacity labels are written only
//! when asked for by name, as in whisperX (`optional_writers`), and so is `rttm` (the speaker
//! turns of `--diarize`, pyannote's `write_rttm` lines).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Serialize;

use super::result::{Segment, Transcript, Word};
use super::subtitles::{cues, has_words, WriterOptions};
use super::timestamp::{milliseconds, python_float, TimestampStyle};
use crate::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OutputFormat {
    Txt,
    Srt,
    Vtt,
    Tsv,
    Json,
    Aud,
    /// The diarization's speaker turns as RTTM (`--diarize`; written only when asked for by name).
    Rttm,
}

/// What `all` writes, in whisperX's order.
pub const ALL_FORMATS: [OutputFormat; 5] =
    [OutputFormat::Txt, OutputFormat::Vtt, OutputFormat::Srt, OutputFormat::Tsv, OutputFormat::Json];

impl OutputFormat {
    pub fn extension(self) -> &'static str {
        match self {
            OutputFormat::Txt => "txt",
            OutputFormat::Srt => "srt",
            OutputFormat::Vtt => "vtt",
            OutputFormat::Tsv => "tsv",
            OutputFormat::Json => "json",
            OutputFormat::Aud => "aud",
            OutputFormat::Rttm => "rttm",
        }
    }
}

impl FromStr for OutputFormat {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "txt" => OutputFormat::Txt,
            "srt" => OutputFormat::Srt,
            "vtt" => OutputFormat::Vtt,
            "tsv" => OutputFormat::Tsv,
            "json" => OutputFormat::Json,
            "aud" => OutputFormat::Aud,
            "rttm" => OutputFormat::Rttm,
            other => {
                return Err(Error::Other(format!(
                    "output format `{other}`: expected one of all, srt, vtt, txt, tsv, json, aud, rttm"
                )))
            }
        })
    }
}

impl std::fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.extension())
    }
}

/// `-f/--output_format`: `all` or one format name.
pub fn parse_formats(s: &str) -> Result<Vec<OutputFormat>> {
    if s == "all" {
        return Ok(ALL_FORMATS.to_vec());
    }
    Ok(vec![s.parse()?])
}

impl WriterOptions {
    /// whisperX's checks on the word options (`transcribe.py`): they need word times, so they are
    /// refused for a transcript that was not aligned; `max_line_count` without `max_line_width`
    /// draws a warning (and, as in whisperX, only matters at the 1000-character default width).
    pub fn validate(&self, aligned: bool) -> Result<()> {
        if !aligned {
            let set = [
                ("highlight_words", self.highlight_words),
                ("max_line_count", self.max_line_count.is_some()),
                ("max_line_width", self.max_line_width.is_some()),
            ];
            if let Some((name, _)) = set.iter().find(|(_, on)| *on) {
                return Err(Error::Other(format!("--{name} needs word timestamps (not possible with --no_align)")));
            }
        }
        if self.max_line_count.is_some() && self.max_line_width.is_none() {
            tracing::warn!("--max_line_count has no effect without --max_line_width");
        }
        Ok(())
    }
}

/// The file contents of `t` in `format`.
pub fn render(t: &Transcript, format: OutputFormat, opts: &WriterOptions) -> Result<String> {
    match format {
        OutputFormat::Txt => Ok(render_txt(t)),
        OutputFormat::Srt => render_srt(t, opts),
        OutputFormat::Vtt => render_vtt(t, opts),
        OutputFormat::Tsv => render_tsv(t),
        OutputFormat::Json => render_json(t),
        OutputFormat::Aud => Ok(render_aud(t)),
        OutputFormat::Rttm => Ok(crate::diarize::rttm::format(RTTM_FILE_ID, &t.speaker_turns)),
    }
}

/// The file id of RTTM rendered without a file name ([`write_outputs`] uses the audio's stem).
pub const RTTM_FILE_ID: &str = "audio";

/// Write `{audio stem}.{ext}` for each format into `output_dir` (created if missing). Each file is
/// written to a temporary name beside it and renamed into place. Returns the paths written.
pub fn write_outputs(
    t: &Transcript,
    audio_path: &Path,
    output_dir: &Path,
    formats: &[OutputFormat],
    opts: &WriterOptions,
) -> Result<Vec<PathBuf>> {
    let stem = audio_path
        .file_stem()
        .ok_or_else(|| Error::Other(format!("{}: no file name to name the outputs after", audio_path.display())))?;
    std::fs::create_dir_all(output_dir).map_err(|e| Error::io(output_dir, e))?;
    // Check the options once before any file is touched (whisperX checks them at start-up).
    opts.validate(t.segments.is_empty() || has_words(t))?;
    let mut written = Vec::with_capacity(formats.len());
    for &format in formats {
        let mut name = stem.to_os_string();
        name.push(".");
        name.push(format.extension());
        let path = output_dir.join(name);
        let contents = match format {
            OutputFormat::Rttm => crate::diarize::rttm::format(&stem.to_string_lossy(), &t.speaker_turns),
            _ => render(t, format, opts).map_err(|e| Error::Other(format!("{}: {e}", path.display())))?,
        };
        write_atomic(&path, contents.as_bytes())?;
        written.push(path);
    }
    Ok(written)
}

/// Write `bytes` to `path` through a temporary file in the same directory and a rename.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(path.file_name().unwrap_or_default());
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(path, e));
    }
    Ok(())
}

/// One line per segment, stripped, `[SPEAKER]: ` first when the segment has a speaker.
fn render_txt(t: &Transcript) -> String {
    let mut out = String::new();
    for s in &t.segments {
        if let Some(speaker) = &s.speaker {
            out.push('[');
            out.push_str(speaker);
            out.push_str("]: ");
        }
        out.push_str(s.text.trim());
        out.push('\n');
    }
    out
}

/// Numbered cues: `N\nHH:MM:SS,mmm --> HH:MM:SS,mmm\ntext\n\n`.
fn render_srt(t: &Transcript, opts: &WriterOptions) -> Result<String> {
    let mut out = String::new();
    for (i, cue) in cues(t, opts, TimestampStyle::Srt)?.iter().enumerate() {
        let _ = write!(out, "{}\n{} --> {}\n{}\n\n", i + 1, cue.start, cue.end, cue.text);
    }
    Ok(out)
}

/// `WEBVTT` then `MM:SS.mmm --> MM:SS.mmm\ntext\n\n` per cue.
fn render_vtt(t: &Transcript, opts: &WriterOptions) -> Result<String> {
    let mut out = String::from("WEBVTT\n\n");
    for cue in cues(t, opts, TimestampStyle::Vtt)? {
        let _ = write!(out, "{} --> {}\n{}\n\n", cue.start, cue.end, cue.text);
    }
    Ok(out)
}

/// `start\tend\ttext` header, then integer milliseconds and the stripped text (tabs → spaces).
/// No speaker column, as in whisperX.
fn render_tsv(t: &Transcript) -> Result<String> {
    let mut out = String::from("start\tend\ttext\n");
    for s in &t.segments {
        let text = s.text.trim().replace('\t', " ");
        let _ = writeln!(out, "{}\t{}\t{}", milliseconds(s.start)?, milliseconds(s.end)?, text);
    }
    Ok(out)
}

/// Audacity labels: `start\tend\ttext` in seconds as Python prints a float, no header,
/// `[[SPEAKER]]` glued before the text when the segment has a speaker.
fn render_aud(t: &Transcript) -> String {
    let mut out = String::new();
    for s in &t.segments {
        let speaker = s.speaker.as_ref().map(|sp| format!("[[{sp}]]")).unwrap_or_default();
        let text = s.text.trim().replace('\t', " ");
        let _ = writeln!(out, "{}\t{}\t{speaker}{text}", python_float(s.start), python_float(s.end));
    }
    out
}

/// The JSON whisperX writes: `{"segments": [{start, end, text, words, avg_logprob?, speaker?}],
/// "word_segments": [...], "language": ...}`, formatted as Python's `json.dump(result,
/// ensure_ascii=False)` (`", "` and `": "` separators, Python float repr). Our other decoding
/// diagnostics (compression ratio, no-speech probability, temperature, tokens) are not written:
/// whisperX does not write them. (whisperX does write `avg_logprob`, after `words`.)
fn render_json(t: &Transcript) -> Result<String> {
    #[derive(Serialize)]
    struct JsonSegment<'a> {
        start: f64,
        end: f64,
        text: &'a str,
        words: &'a [Word],
        #[serde(skip_serializing_if = "Option::is_none")]
        avg_logprob: Option<f64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        speaker: Option<&'a str>,
        /// `return_char_alignments` (WhisperX writes them per sentence segment).
        #[serde(skip_serializing_if = "Option::is_none")]
        chars: Option<&'a [crate::output::result::CharAlignment]>,
    }
    #[derive(Serialize)]
    struct JsonTranscript<'a> {
        segments: Vec<JsonSegment<'a>>,
        word_segments: &'a [Word],
        language: &'a str,
        /// `--speaker_embeddings` (WhisperX adds `speaker_embeddings` to the result).
        #[serde(skip_serializing_if = "Option::is_none")]
        speaker_embeddings: Option<&'a std::collections::BTreeMap<String, Vec<f32>>>,
        /// Speaker verification's table (not in WhisperX's JSON).
        #[serde(skip_serializing_if = "Option::is_none")]
        speakers: Option<&'a [crate::output::result::SpeakerIdentity]>,
    }
    fn segment(s: &Segment) -> JsonSegment<'_> {
        JsonSegment {
            start: s.start,
            end: s.end,
            text: &s.text,
            words: &s.words,
            avg_logprob: s.avg_logprob,
            speaker: s.speaker.as_deref(),
            chars: s.chars.as_deref(),
        }
    }
    let doc = JsonTranscript {
        segments: t.segments.iter().map(segment).collect(),
        word_segments: &t.word_segments,
        language: &t.language,
        speaker_embeddings: t.speaker_embeddings.as_ref(),
        speakers: t.speakers.as_deref(),
    };
    let mut buf = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, PythonJsonFormatter);
    doc.serialize(&mut ser).map_err(|e| Error::Other(format!("json: {e}")))?;
    String::from_utf8(buf).map_err(|e| Error::Other(format!("json: {e}")))
}

/// serde_json formatting that matches Python's `json.dump` defaults.
struct PythonJsonFormatter;

impl serde_json::ser::Formatter for PythonJsonFormatter {
    fn begin_array_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W, first: bool) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }
    fn begin_object_key<W: ?Sized + std::io::Write>(&mut self, w: &mut W, first: bool) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }
    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        w.write_all(b": ")
    }
    fn write_f64<W: ?Sized + std::io::Write>(&mut self, w: &mut W, value: f64) -> std::io::Result<()> {
        w.write_all(python_float(value).as_bytes())
    }
    fn write_f32<W: ?Sized + std::io::Write>(&mut self, w: &mut W, value: f32) -> std::io::Result<()> {
        w.write_all(python_float(f64::from(value)).as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_formats_all_and_names() {
        assert_eq!(parse_formats("all").unwrap(), ALL_FORMATS.to_vec());
        assert_eq!(parse_formats("aud").unwrap(), vec![OutputFormat::Aud]);
        assert_eq!(parse_formats("srt").unwrap(), vec![OutputFormat::Srt]);
        let err = parse_formats("docx").unwrap_err().to_string();
        assert!(err.contains("docx"), "{err}");
    }

    #[test]
    fn word_options_need_alignment() {
        let hl = WriterOptions { highlight_words: true, ..Default::default() };
        assert!(hl.validate(false).unwrap_err().to_string().contains("highlight_words"));
        assert!(hl.validate(true).is_ok());
        let count_only = WriterOptions { max_line_count: Some(2), ..Default::default() };
        assert!(count_only.validate(true).is_ok());
        assert!(WriterOptions::default().validate(false).is_ok());
    }
}
