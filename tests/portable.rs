//! The portable (no-AVX) CPU path: a binary built on AVX-512 machines must give the same
//! answers on CPUs without it. Runs tiny.en through both paths.

mod common;

use std::process::Command;
use std::sync::Arc;

use common::{model_dir, speech};
use scribe::audio::{load_audio, log_mel_window};
use scribe::backend::cpu::{CpuBackend, SimdLevel};
use scribe::backend::Device;
use scribe::models::whisper::{Task, Whisper};

/// The SIMD levels this CPU has above the portable path.
fn simd_levels() -> Vec<SimdLevel> {
    [SimdLevel::Avx2, SimdLevel::Avx512].into_iter().filter(|&l| l <= SimdLevel::detect()).collect()
}

#[test]
fn portable_and_simd_paths_agree_on_tiny_en() {
    let Some(dir) = model_dir("tiny.en") else { return };
    let levels = simd_levels();
    if levels.is_empty() {
        // The portable path compared with itself would prove nothing.
        common::cannot_run("this CPU has no AVX2: there is no SIMD path to compare the portable one with");
        return;
    }
    let audio = load_audio(&speech("jfk.flac")).unwrap();
    let mel = log_mel_window(&audio, 80).unwrap();
    let run = |level: SimdLevel| {
        let dev = Device::new(Arc::new(CpuBackend::with_simd(level)));
        let model = Whisper::load(&dir, dev.clone()).unwrap();
        let features = model.encode(&mel.data, 1).unwrap();
        let tokens = model.greedy(&features, None, Task::Transcribe).unwrap();
        (dev.download(&features).unwrap(), tokens)
    };
    let portable = run(SimdLevel::Portable);
    for level in levels {
        let simd = run(level);
        let max = portable.0.iter().zip(&simd.0).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
        eprintln!("portable vs {level:?}: encoder outputs within {max:.2e}");
        assert!(max < 1e-3, "portable vs {level:?}: encoder outputs differ by {max}");
        assert_eq!(portable.1, simd.1, "greedy tokens differ between the portable and {level:?} paths");
    }
}

#[test]
fn scribe_simd_env_selects_the_portable_path() {
    let Some(dir) = model_dir("tiny.en") else { return };
    let out_dir = tempfile::tempdir().unwrap();
    let run = |simd: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_scribe"))
            .envs(common::OFFLINE_ALIGNMENT)
            .env("SCRIBE_SIMD", simd)
            .env("LOG_LEVEL", "debug")
            .args(["transcribe", "--output_format", "txt", "--output_dir"])
            .arg(out_dir.path())
            .arg("--model")
            .arg(&dir)
            .arg(speech("spk1_snt1.wav"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (portable, log) = run("portable");
    assert!(log.contains("simd=Portable"), "{log}");
    let (native, log) = run("");
    if SimdLevel::detect() == SimdLevel::Portable {
        common::cannot_run("this CPU has no AVX2: the native path is the portable one");
    } else {
        assert!(!log.contains("simd=Portable"), "{log}");
    }
    assert_eq!(portable, native);
}
