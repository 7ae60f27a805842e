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

/// A real window through the policy: tiny.en on one sentence, the attempts counted by the decoder
/// runs that start (`DecodingTask` feeds its prompt at offset 0 once per attempt).
fn attempts_and_verdict(
    configure: impl FnOnce(&mut scribe::models::whisper::transcribe::TranscribeOptions),
) -> Option<(usize, f32, scribe::models::whisper::longform::Verdict)> {
    use std::sync::Arc;
    #[path = "common/counting.rs"]
    mod counting;
    let dir = common::model_dir("tiny.en")?;
    let counter = Arc::new(counting::Counting::new(80));
    let model = scribe::models::whisper::Whisper::load(&dir, counting::Counting::cpu(&counter)).unwrap();
    let audio = scribe::audio::load_audio(&common::speech("spk1_snt1.wav")).unwrap();
    let mel = scribe::audio::log_mel_window(&audio, 80).unwrap();
    let features = model.encode(&mel.data, 1).unwrap();
    let mut o = scribe::models::whisper::transcribe::TranscribeOptions::default();
    o.decode.language = Some("en".into());
    o.decode.beam_size = None;
    o.decode.patience = None;
    o.decode.best_of = Some(2);
    configure(&mut o);
    let (result, verdict) =
        scribe::models::whisper::transcribe::decode_with_fallback(&model, &features, &o, &[], &scribe::Cancel::new())
            .unwrap();
    let runs = counter.decoder_forwards.lock().unwrap().iter().filter(|f| f.2 == 0).count();
    Some((runs, result.temperature, verdict))
}

#[test]
fn a_real_window_is_retried_at_every_temperature_only_while_it_fails_the_gates() {
    use scribe::models::whisper::longform::Verdict;
    // Clear speech passes every gate at temperature 0: one attempt, kept.
    let Some((runs, t, verdict)) = attempts_and_verdict(|_| {}) else { return };
    assert_eq!((runs, t, verdict), (1, 0.0, Verdict::Emit));
    // Every average log-prob is below 0: each of the three temperatures is tried, the last kept
    // (transcribe.py L189-222).
    let (runs, t, verdict) = attempts_and_verdict(|o| {
        o.logprob_threshold = Some(0.0);
        o.no_speech_threshold = None;
        o.temperatures = vec![0.0, 0.5, 1.0];
    })
    .unwrap();
    assert_eq!((runs, t, verdict), (3, 1.0, Verdict::Emit));
    // Short text compresses badly (gzip ratio < 1): a threshold of 0.5 fails every attempt too.
    let (runs, _, _) = attempts_and_verdict(|o| {
        o.compression_ratio_threshold = Some(0.5);
        o.temperatures = vec![0.0, 0.5];
    })
    .unwrap();
    assert_eq!(runs, 2);
    // With a no-speech gate of 0 the failing window is silence: not retried, skipped
    // (L214-220 and L297-310).
    let (runs, _, verdict) = attempts_and_verdict(|o| {
        o.logprob_threshold = Some(0.0);
        o.no_speech_threshold = Some(0.0);
    })
    .unwrap();
    assert_eq!((runs, verdict), (1, Verdict::Skip));
}
