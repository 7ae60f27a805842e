//! Every CUDA op against the CPU reference over many shapes, including sizes that do not divide
//! the block size (tolerance atol + rtol·|ref|; max abs/rel errors printed per case). These need
//! a GPU: they are ignored in `make test` and run by gpu-pack/run.sh (`--include-ignored`),
//! where a missing device fails the run.
#![cfg(feature = "cuda-backend")]

mod common;

use scribe::backend::cuda::self_check::{check_ops, CheckScale};
use scribe::backend::Device;

#[test]
#[ignore = "needs a CUDA GPU: gpu-pack/run.sh runs it"]
fn every_kernel_matches_the_cpu_reference_over_many_shapes() {
    let Some(dev) = common::cuda_device() else { return };
    eprintln!("{}", dev.describe());
    let checks = check_ops(&dev, CheckScale::Thorough).expect("an op failed to run on the GPU");
    for c in &checks {
        eprintln!("{c}");
    }
    let failed: Vec<String> = checks.iter().filter(|c| !c.passed).map(|c| c.to_string()).collect();
    assert!(failed.is_empty(), "{} of {} checks failed:\n{}", failed.len(), checks.len(), failed.join("\n"));
}

#[test]
#[ignore = "needs a CUDA GPU: gpu-pack/run.sh runs it"]
fn the_start_up_self_check_passes_on_every_kernel() {
    let Some(dev) = common::cuda_device() else { return };
    let started = std::time::Instant::now();
    let checks = check_ops(&dev, CheckScale::Startup).unwrap();
    let elapsed = started.elapsed();
    assert!(checks.iter().all(|c| c.passed), "{checks:#?}");
    // Printed, not asserted: speed targets live in benchmarks.
    eprintln!("start-up self-check: {} checks in {:.0} ms", checks.len(), elapsed.as_secs_f64() * 1e3);
}

#[test]
#[ignore = "needs a CUDA GPU: gpu-pack/run.sh runs it"]
fn bad_inputs_are_errors_not_crashes() {
    let Some(dev) = common::cuda_device() else { return };
    let a = dev.upload(&[1.0; 6], &[2, 3]).unwrap();
    let b = dev.upload(&[1.0; 4], &[4]).unwrap();
    assert!(dev.binary(&a, &b, scribe::backend::BinaryOp::Add).is_err());
    assert!(dev.embedding(&[7], &a).is_err(), "id outside the table");
    assert!(dev.slice(&a, 1, 2, 2).is_err());
    assert!(dev.upload(&[1.0; 5], &[2, 3]).is_err());
    let cpu = Device::cpu();
    let on_cpu = cpu.upload(&[1.0; 6], &[2, 3]).unwrap();
    let err = dev.scale(&on_cpu, 2.0).unwrap_err().to_string();
    assert!(err.contains("not on the CUDA backend"), "{err}");
}

/// `compute_type=int8` is CPU-only: on CUDA `quantize_int8` keeps the weight (f16 stays f16) and
/// linear gives exactly what it gave before.
#[test]
#[ignore = "needs a CUDA GPU: gpu-pack/run.sh runs it"]
fn quantize_int8_keeps_cuda_weights_as_they_are() {
    let Some(dev) = common::cuda_device() else { return };
    let w16: Vec<half::f16> = (0..40 * 33).map(|i| half::f16::from_f32(((i * 7 % 13) as f32 - 6.0) / 20.0)).collect();
    let w = dev.upload_f16(&w16, &[40, 33]).unwrap();
    let q = dev.quantize_int8(&w).unwrap();
    assert_eq!((q.dtype(), q.shape()), ("float16", &[40usize, 33][..]));
    let x = dev.upload(&(0..5 * 33).map(|i| (i % 5) as f32 - 2.0).collect::<Vec<_>>(), &[5, 33]).unwrap();
    let before = dev.download(&dev.linear(&x, &w, None).unwrap()).unwrap();
    assert_eq!(dev.download(&dev.linear(&x, &q, None).unwrap()).unwrap(), before);
}

/// bf16 products are the CPU's (`--compute_type default`, `--segmentation_compute_type`,
/// `--embedding_compute_type`, `--align_compute_type bfloat16`): on CUDA `round_bfloat16` keeps
/// the weight, f16 or f32, in its own storage, and linear gives exactly what it gave before.
#[test]
#[ignore = "needs a CUDA GPU: gpu-pack/run.sh runs it"]
fn round_bfloat16_keeps_cuda_weights_as_they_are() {
    let Some(dev) = common::cuda_device() else { return };
    let values: Vec<f32> = (0..40 * 33).map(|i| ((i * 7 % 13) as f32 - 6.0) / 20.0).collect();
    let w16: Vec<half::f16> = values.iter().map(|&v| half::f16::from_f32(v)).collect();
    let x = dev.upload(&(0..5 * 33).map(|i| (i % 5) as f32 - 2.0).collect::<Vec<_>>(), &[5, 33]).unwrap();
    for (w, dtype) in
        [(dev.upload_f16(&w16, &[40, 33]).unwrap(), "float16"), (dev.upload(&values, &[40, 33]).unwrap(), "float32")]
    {
        let r = dev.round_bfloat16(&w).unwrap();
        assert_eq!((r.dtype(), r.shape()), (dtype, &[40usize, 33][..]));
        assert!(std::sync::Arc::ptr_eq(r.storage(), w.storage()), "{dtype}: a new storage");
        let before = dev.download(&dev.linear(&x, &w, None).unwrap()).unwrap();
        assert_eq!(dev.download(&dev.linear(&x, &r, None).unwrap()).unwrap(), before, "{dtype}");
    }
}

/// Column panels are the CPU's form: on CUDA `pack_for_few_rows` keeps the weight (f16 stays f16,
/// the same storage) and linear gives exactly what it gave before.
#[test]
#[ignore = "needs a CUDA GPU: gpu-pack/run.sh runs it"]
fn pack_for_few_rows_keeps_cuda_weights_as_they_are() {
    let Some(dev) = common::cuda_device() else { return };
    let w16: Vec<half::f16> = (0..40 * 33).map(|i| half::f16::from_f32(((i * 7 % 13) as f32 - 6.0) / 20.0)).collect();
    let w = dev.upload_f16(&w16, &[40, 33]).unwrap();
    let p = dev.pack_for_few_rows(&w).unwrap();
    assert_eq!((p.dtype(), p.shape()), ("float16", &[40usize, 33][..]));
    assert!(std::sync::Arc::ptr_eq(p.storage(), w.storage()));
    let x = dev.upload(&(0..5 * 33).map(|i| (i % 5) as f32 - 2.0).collect::<Vec<_>>(), &[5, 33]).unwrap();
    let before = dev.download(&dev.linear(&x, &w, None).unwrap()).unwrap();
    assert_eq!(dev.download(&dev.linear(&x, &p, None).unwrap()).unwrap(), before);
}
