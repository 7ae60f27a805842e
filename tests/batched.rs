//! Batched transcription of VAD chunks (engine/pipeline/batched.rs) with tiny.en on the twelve
//! spk*_snt* sentences laid end to end with 1.5 s gaps: the calls it makes (one encoder forward
//! per batch, one decoder forward per step for all live hypotheses of all chunks), fallback per
//! chunk, tokens equal to decoding each chunk alone, and accuracy against the reference text
//! and against sequential decoding.

mod common;
#[path = "common/counting.rs"]
mod counting;

use std::sync::Arc;

use common::{model_dir, normalize, reference_text, speech, wer};
use counting::Counting;
use scribe::audio::{load_audio, log_mel_window};
use scribe::backend::Device;
use scribe::models::pyannote::sliding_window::{speech_scores, BATCH_SIZE as VAD_BATCH};
use scribe::models::pyannote::{checkpoint, PyanNet};
use scribe::models::whisper::decoding::DecodingResult;
use scribe::models::whisper::decoding::{DecodingOptions, DecodingTask};
use scribe::models::whisper::longform::{covered_timestamp, Verdict};
use scribe::models::whisper::transcribe::{transcribe, TranscribeOptions};
use scribe::models::whisper::Whisper;
use scribe::pipeline::batched::{
    chunk_samples, decode_batch_with_fallback, speech_end_index, speech_only, transcribe_chunks, untranscribed_tail,
    BatchStats, MAX_FOLLOW_UPS, REGION_MARGIN,
};
use scribe::pipeline::speech_chunks::{speech_chunks, Chunk, VAD_OFFSET, VAD_ONSET};
use scribe::Cancel;

const GAP_SECONDS: f32 = 1.5;

/// The spk*_snt* recordings in name order with gaps of silence, and their reference text.
fn sentences() -> (Vec<f32>, String) {
    let mut names: Vec<String> = std::fs::read_dir(speech(""))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("spk") && n.ends_with(".wav"))
        .collect();
    names.sort();
    laid_end_to_end(&names)
}

/// Every recording of the manifest with a reference text, in its order (the start of the
/// benchmark's long file: jfk, LJ050-0131, then the sentences).
fn recordings() -> (Vec<f32>, String) {
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(speech("manifest.json")).unwrap()).unwrap();
    let names: Vec<String> = manifest
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e.get("text").is_some_and(|t| t.as_str().is_some_and(|t| !t.is_empty())))
        .map(|e| e["file"].as_str().unwrap().to_string())
        .collect();
    laid_end_to_end(&names)
}

/// `names` with [`GAP_SECONDS`] of silence between them, and their reference texts.
fn laid_end_to_end(names: &[String]) -> (Vec<f32>, String) {
    let gap = vec![0.0f32; (GAP_SECONDS * 16000.0) as usize];
    let (mut audio, mut text) = (Vec::new(), String::new());
    for (i, n) in names.iter().enumerate() {
        if i > 0 {
            audio.extend_from_slice(&gap);
        }
        audio.extend(load_audio(&speech(n)).unwrap());
        text.push_str(&reference_text(n).unwrap());
        text.push(' ');
    }
    (audio, text)
}

fn vad_chunks(audio: &[f32], chunk_size: f64) -> Option<Vec<Chunk>> {
    let dir = model_dir("vad")?;
    let dev = Device::cpu();
    let (store, config) = checkpoint::open(&dir).unwrap();
    let vad = PyanNet::load(&dev, store.as_ref(), &config).unwrap();
    let scores = speech_scores(&vad, &dev, audio, VAD_BATCH, |_, _| {}).unwrap();
    Some(speech_chunks(&scores.scores, &scores.times(), VAD_ONSET, VAD_OFFSET, chunk_size))
}

fn english() -> TranscribeOptions {
    let mut o = TranscribeOptions::default();
    o.decode.language = Some("en".into());
    o.decode.beam_size = Some(5);
    o.condition_on_previous_text = false;
    o
}

#[test]
fn one_encoder_forward_per_batch_and_one_decoder_forward_per_step_for_all_chunks() {
    let Some(dir) = model_dir("tiny.en") else { return };
    let (audio, reference) = sentences();
    let Some(chunks) = vad_chunks(&audio, 10.0) else { return };
    assert!(chunks.len() >= 4, "{chunks:?}");
    let backend = Arc::new(Counting::new(80));
    let model = Whisper::load(&dir, Counting::cpu(&backend)).unwrap();
    let batch_size = 2;
    let mut stats = BatchStats::default();
    let mut progress = Vec::new();
    let transcript = transcribe_chunks(
        &model,
        &mut &audio[..],
        &chunks,
        &english(),
        batch_size,
        &mut |d, t| progress.push((d, t)),
        &mut stats,
        &Cancel::new(),
    )
    .unwrap();

    // One forward per batch of chunks; tails decoded again join the next batch, so every batch
    // is full until the queue runs dry.
    let encoder = backend.encoder_forwards.lock().unwrap().clone();
    assert_eq!(encoder.iter().sum::<usize>(), chunks.len() + stats.follow_ups, "every chunk encoded once: {encoder:?}");
    assert_eq!(stats.encoder_calls, encoder.len());
    let first_partial = encoder.iter().position(|&n| n < batch_size).unwrap_or(encoder.len());
    assert!(encoder.iter().all(|&n| (1..=batch_size).contains(&n)), "{encoder:?}");
    assert!(encoder.len() - first_partial <= 1 + MAX_FOLLOW_UPS, "batches after the queue ran dry: {encoder:?}");
    assert!(
        encoder.len() <= (chunks.len() + stats.follow_ups).div_ceil(batch_size) + MAX_FOLLOW_UPS,
        "one encoder forward per batch: {encoder:?}, {stats:?}"
    );

    // Each decoding batch starts with one forward of the whole prompt for beams × chunks rows,
    // then one forward per step whose rows are the live beams of the chunks still decoding.
    let forwards = backend.decoder_forwards.lock().unwrap().clone();
    let starts: Vec<usize> = (0..forwards.len()).filter(|&i| forwards[i].2 == 0).collect();
    assert_eq!(starts.len(), stats.decoder_calls, "{forwards:?}");
    assert!(stats.decoder_calls >= encoder.len());
    for (n, &s) in starts.iter().enumerate() {
        let end = starts.get(n + 1).copied().unwrap_or(forwards.len());
        let rows: Vec<usize> = forwards[s..end].iter().map(|f| f.0).collect();
        assert!(rows.iter().all(|r| r % 5 == 0), "rows are whole beams of chunks: {rows:?}");
        assert!(rows.windows(2).all(|w| w[1] <= w[0]), "finished chunks leave, none come back: {rows:?}");
        assert!(forwards[s + 1..end].iter().all(|f| f.1 == 1), "one token per row after the prompt");
        assert!(forwards[s..end].windows(2).all(|w| w[1].2 == w[0].2 + w[0].1), "one forward per step");
    }
    // The first batch decodes its two chunks together (10 beams), at temperature 0.
    assert_eq!(forwards[starts[0]].0, 5 * batch_size);
    let n = chunks.len() + stats.follow_ups;
    assert_eq!(progress.last(), Some(&(n, n)));

    let got = transcript.text();
    let e = wer(&reference, &got);
    eprintln!("batched WER {:.1} %: {got}", e * 100.0);
    assert!(e < 0.12, "WER {e}: {got}");
    // Segments lie inside the chunks (with the margin decoded around them), in order.
    for s in &transcript.segments {
        assert!(
            chunks.iter().any(|c| s.start >= c.start - REGION_MARGIN - 1e-3 && s.end <= c.end + REGION_MARGIN + 1e-3),
            "{s:?} outside {chunks:?}"
        );
    }
    assert!(transcript.segments.windows(2).all(|w| w[0].start <= w[1].start));
}

#[test]
fn batched_decoding_gives_each_chunk_the_tokens_it_gets_alone() {
    let Some(dir) = model_dir("tiny.en") else { return };
    let (audio, _) = sentences();
    let Some(chunks) = vad_chunks(&audio, 10.0) else { return };
    let model = Whisper::load(&dir, Device::cpu()).unwrap();
    let mut mel = Vec::new();
    for c in &chunks[..3] {
        let (s, e) = chunk_samples(c, audio.len());
        mel.extend(log_mel_window(&audio[s..e], 80).unwrap().data);
    }
    let features = model.encode(&mel, 3).unwrap();
    for options in [
        DecodingOptions { language: Some("en".into()), without_timestamps: true, ..Default::default() },
        DecodingOptions { language: Some("en".into()), beam_size: Some(5), ..Default::default() },
    ] {
        let beams = options.beam_size;
        let together = DecodingTask::new(&model, options.clone()).unwrap().run_batch(&features).unwrap();
        for (k, r) in together.iter().enumerate() {
            let one = model.device.index_select(&features, &[k]).unwrap();
            let alone = DecodingTask::new(&model, options.clone()).unwrap().run(&one).unwrap();
            assert_eq!(r.tokens, alone.tokens, "beam {beams:?}, chunk {k}: {:?} vs {:?}", r.text, alone.text);
            assert!((r.avg_logprob - alone.avg_logprob).abs() < 1e-4);
            assert!((r.no_speech_prob - alone.no_speech_prob).abs() < 1e-4);
        }
    }
}

#[test]
fn only_the_chunks_that_fail_a_gate_are_decoded_again() {
    let Some(dir) = model_dir("tiny.en") else { return };
    let (audio, _) = sentences();
    let Some(chunks) = vad_chunks(&audio, 10.0) else { return };
    let model = Whisper::load(&dir, Device::cpu()).unwrap();
    let mut mel = Vec::new();
    for c in &chunks {
        let (s, e) = chunk_samples(c, audio.len());
        mel.extend(log_mel_window(&audio[s..e], 80).unwrap().data);
    }
    let features = model.encode(&mel, chunks.len()).unwrap();
    let mut o = english();
    // Without gates: every chunk once, at temperature 0.
    o.logprob_threshold = None;
    o.compression_ratio_threshold = None;
    let mut calls = 0;
    let first = decode_batch_with_fallback(&model, &features, &o, &[], &[], &mut calls, &Cancel::new()).unwrap();
    assert_eq!(calls, 1);
    // A log-prob gate between the best and the worst chunk: the worse ones fall back to 0.2.
    let mut lp: Vec<f64> = first.iter().map(|(r, _)| r.avg_logprob).collect();
    lp.sort_by(f64::total_cmp);
    let threshold = (lp[0] + lp[lp.len() - 1]) / 2.0;
    o.logprob_threshold = Some(threshold);
    o.no_speech_threshold = None;
    o.temperatures = vec![0.0, 0.2];
    let mut calls = 0;
    let gated = decode_batch_with_fallback(&model, &features, &o, &[], &[], &mut calls, &Cancel::new()).unwrap();
    assert_eq!(calls, 2);
    for ((a, _), (b, verdict)) in first.iter().zip(&gated) {
        assert_eq!(*verdict, Verdict::Emit, "without the no-speech gate every chunk is kept");
        if a.avg_logprob < threshold {
            assert_eq!(b.temperature, 0.2, "a failing chunk is decoded again");
        } else {
            assert_eq!((b.temperature, &b.tokens), (0.0, &a.tokens), "a passing chunk keeps its first result");
        }
    }
}

/// Where a decoded window's tokens cover it to, seconds into the audio: the end of the last
/// segment the split keeps (`covered_timestamp`), or the window's end.
fn covered_until(model: &Whisper, tokens: &[u32], time_offset: f64) -> f64 {
    covered_timestamp(tokens, model.tokenizer.special.timestamp_begin)
        .map_or(time_offset + 30.0, |t| time_offset + t as f64 * 0.02)
}

#[test]
fn a_window_keeps_decoding_while_a_second_of_its_speech_is_left() {
    let Some(dir) = model_dir("tiny.en") else { return };
    let (audio, reference) = recordings();
    let Some(chunks) = vad_chunks(&audio, 30.0) else { return };
    let model = Whisper::load(&dir, Device::cpu()).unwrap();
    let mut mel = Vec::new();
    for c in &chunks {
        mel.extend(log_mel_window(&speech_only(c, &mut &audio[..]).unwrap(), 80).unwrap().data);
    }
    let features = model.encode(&mel, chunks.len()).unwrap();
    let o = english();
    let offsets: Vec<f64> = chunks.iter().map(|c| chunk_samples(c, audio.len()).0 as f64 / 16_000.0).collect();
    let until: Vec<Option<u32>> = chunks.iter().zip(&offsets).map(|(c, &t)| speech_end_index(c, t)).collect();
    let decode = |until: &[Option<u32>]| {
        decode_batch_with_fallback(&model, &features, &o, &[], until, &mut 0, &Cancel::new()).unwrap()
    };
    let (free, kept) = (decode(&[]), decode(&until));
    let left = |results: &[(DecodingResult, Verdict)], k: usize| {
        untranscribed_tail(&chunks[k], covered_until(&model, &results[k].0.tokens, offsets[k]))
    };
    // Left to itself, Whisper ends some window with seconds of its speech undecoded (the
    // speech near a window's end taken for a sentence the window cuts).
    let early: Vec<usize> = (0..chunks.len()).filter(|&k| left(&free, k).is_some()).collect();
    assert!(!early.is_empty(), "no window ended early: {:?}", free.iter().map(|r| &r.0.text).collect::<Vec<_>>());
    // With the rule, every window decodes until less than a second of its speech is left, and
    // the words it had left out are there.
    for k in 0..chunks.len() {
        assert!(kept[k].1 == Verdict::Emit && left(&kept, k).is_none(), "chunk {k}: {}", kept[k].0.text);
    }
    let text = |r: &[(DecodingResult, Verdict)]| r.iter().map(|(d, _)| d.text.as_str()).collect::<Vec<_>>().join(" ");
    let (w_free, w_kept) = (wer(&reference, &text(&free)), wer(&reference, &text(&kept)));
    eprintln!("windows ending early {early:?}; WER {:.1} % → {:.1} %", w_free * 100.0, w_kept * 100.0);
    assert!(w_kept + 0.05 < w_free, "WER {w_free} without the rule, {w_kept} with it");
    // Through the whole batched path: no tail left to decode again.
    let mut stats = BatchStats::default();
    let t =
        transcribe_chunks(&model, &mut &audio[..], &chunks, &o, 8, &mut |_, _| {}, &mut stats, &Cancel::new()).unwrap();
    assert_eq!(stats.follow_ups, 0, "{stats:?}");
    assert!(wer(&reference, &t.text()) <= w_kept + 0.01, "{}", t.text());
}

#[test]
fn a_window_cut_short_has_its_tail_decoded_again() {
    let Some(dir) = model_dir("tiny.en") else { return };
    let (audio, reference) = sentences();
    let Some(chunks) = vad_chunks(&audio, 30.0) else { return };
    let model = Whisper::load(&dir, Device::cpu()).unwrap();
    // At most 24 tokens a window: a window of several sentences stops short, and only its tail
    // decoded again (up to MAX_FOLLOW_UPS times) brings the rest.
    let mut o = english();
    o.decode.sample_len = Some(24);
    let mut stats = BatchStats::default();
    let t =
        transcribe_chunks(&model, &mut &audio[..], &chunks, &o, 8, &mut |_, _| {}, &mut stats, &Cancel::new()).unwrap();
    assert!(stats.follow_ups >= 1, "{stats:?}");
    let speech_end = chunks.last().and_then(|c| c.regions.last()).unwrap().end;
    let text_end = t.segments.last().unwrap().end;
    assert!(text_end > speech_end - 3.0, "text ends at {text_end} s, speech at {speech_end} s: {stats:?}");
    eprintln!("{} follow-ups, WER {:.1} %", stats.follow_ups, wer(&reference, &t.text()) * 100.0);
}

#[test]
fn batched_is_as_accurate_as_sequential_decoding() {
    let Some(dir) = model_dir("tiny.en") else { return };
    let (audio, reference) = sentences();
    let Some(chunks) = vad_chunks(&audio, 30.0) else { return };
    let model = Whisper::load(&dir, Device::cpu()).unwrap();
    let o = english();
    let mut stats = BatchStats::default();
    let batched =
        transcribe_chunks(&model, &mut &audio[..], &chunks, &o, 8, &mut |_, _| {}, &mut stats, &Cancel::new()).unwrap();
    let sequential = transcribe(&model, &audio, &o, &mut |_, _| {}).unwrap();
    let (b, s) = (wer(&reference, &batched.text()), wer(&reference, &sequential.text()));
    eprintln!("WER batched {:.1} %, sequential {:.1} %", b * 100.0, s * 100.0);
    // Three words of these 86 (Whisper's choices shift with the window's content); a dropped
    // sentence costs seven or more.
    assert!(b <= s + 0.04, "batched {b} vs sequential {s}: {}", batched.text());
    assert!(!normalize(&batched.text()).is_empty());
}

#[test]
fn no_words_are_written_inside_a_stretch_of_noise() {
    let Some(dir) = model_dir("tiny.en") else { return };
    let (speech_audio, reference) = sentences();
    // 8 s of white noise at about −30 dBFS after the third sentence's gap.
    let (noise_start, noise_len) = (3 * 16_000 * 4, 8 * 16_000);
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let noise: Vec<f32> = (0..noise_len)
        .map(|_| {
            // Sum of uniforms: roughly normal, RMS ≈ 0.0316.
            let mut s = 0.0f32;
            for _ in 0..4 {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                s += (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
            }
            s * 0.0548
        })
        .collect();
    let mut audio = speech_audio[..noise_start].to_vec();
    audio.extend_from_slice(&noise);
    audio.extend_from_slice(&speech_audio[noise_start..]);
    let (t0, t1) = (noise_start as f64 / 16000.0, (noise_start + noise_len) as f64 / 16000.0);
    let Some(chunks) = vad_chunks(&audio, 30.0) else { return };
    let model = Whisper::load(&dir, Device::cpu()).unwrap();
    let mut stats = BatchStats::default();
    let t =
        transcribe_chunks(&model, &mut &audio[..], &chunks, &english(), 8, &mut |_, _| {}, &mut stats, &Cancel::new())
            .unwrap();
    for s in &t.segments {
        let mid = (s.start + s.end) / 2.0;
        assert!(!(t0..t1).contains(&mid), "{s:?} inside the noise {t0:.2}-{t1:.2}");
    }
    let e = wer(&reference, &t.text());
    assert!(e < 0.12, "WER {e}: {}", t.text());
}
