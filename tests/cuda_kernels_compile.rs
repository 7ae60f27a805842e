//! With the `cuda` (or `cuda13`) feature and libnvrtc loadable (no GPU needed): every kernel file
//! compiles with NVRTC exactly as the engine compiles it, for the baseline architecture and for
//! Hopper, its PTX defines every `extern "C" __global__` function of the source, and the on-disk
//! kernel cache is written by the first compile and read by the next. Without NVRTC each test
//! says so and fails under CI (scripts/install-cuda-tools fetches it; put the directory it prints
//! in LD_LIBRARY_PATH, as `make test` does).
#![cfg(feature = "cuda-backend")]

mod common;

use scribe::backend::cuda::compile::{
    cache_path, compile_cubin, compile_ptx, cubin_via_cache, kernel_sources, nvrtc_archs, nvrtc_target, nvrtc_version,
    ptx_via_cache, NvrtcTarget, Origin, BASELINE_ARCH, CACHE_ENV,
};

/// Hopper: the newest architecture the project ships cubins for.
const HOPPER: (i32, i32) = (9, 0);

fn nvrtc() -> Option<(i32, i32)> {
    let version = nvrtc_version();
    if version.is_none() {
        common::cannot_run(
            "NVRTC not found (scripts/install-cuda-tools fetches it; make test puts it on LD_LIBRARY_PATH)",
        );
    }
    version
}

/// Names of the `extern "C" __global__` functions defined in a kernel source.
fn kernel_functions(source: &str) -> Vec<String> {
    source
        .split("extern \"C\" __global__")
        .skip(1)
        .map(|rest| {
            let mut after = rest.split_once("void").expect("a kernel returns void").1.trim_start();
            if let Some(bounds) = after.strip_prefix("__launch_bounds__") {
                after = bounds.split_once(')').expect("__launch_bounds__(...)").1.trim_start();
            }
            after.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect()
        })
        .collect()
}

#[test]
fn kernel_functions_are_read_from_the_source() {
    let src = "extern \"C\" __global__ void a_1(int x) {}\nextern \"C\" __global__ void __launch_bounds__(256) b(\n";
    assert_eq!(kernel_functions(src), ["a_1", "b"]);
}

#[test]
fn every_kernel_compiles_for_the_baseline_and_hopper_with_every_entry() {
    let Some(version) = nvrtc() else { return };
    let kernels = kernel_sources();
    let mut failures = Vec::new();
    let mut entries = 0;
    for arch in [BASELINE_ARCH, HOPPER] {
        for k in &kernels {
            let ptx = match compile_ptx(k, arch) {
                Ok(ptx) => ptx,
                Err(log) => {
                    failures.push(format!("compute_{}{}: {log}", arch.0, arch.1));
                    continue;
                }
            };
            let target = format!(".target sm_{}{}", arch.0, arch.1);
            if !ptx.contains(&target) {
                failures.push(format!("{} for compute_{}{}: PTX lacks `{target}`", k.name, arch.0, arch.1));
            }
            let functions = kernel_functions(&k.source);
            if functions.is_empty() {
                failures.push(format!("kernels/{}.cu defines no extern \"C\" __global__ function", k.name));
            }
            for f in functions {
                entries += 1;
                if !ptx.contains(&format!(".entry {f}(")) {
                    failures.push(format!("{} for compute_{}{}: PTX has no .entry {f}", k.name, arch.0, arch.1));
                }
            }
        }
    }
    assert!(failures.is_empty(), "NVRTC {version:?}:\n{}", failures.join("\n"));
    eprintln!("NVRTC {version:?}: {} kernel files, {entries} entries over 2 architectures", kernels.len());
}

/// The only test of this file that sets the (process-wide) cache variable.
#[test]
fn the_disk_cache_is_written_by_the_first_compile_and_read_by_the_next() {
    let Some(version) = nvrtc() else { return };
    let dir = tempfile::tempdir().expect("temporary directory");
    std::env::set_var(CACHE_ENV, dir.path());
    let kernel = kernel_sources().into_iter().min_by_key(|k| k.source.len()).expect("at least one kernel");
    let file = cache_path(dir.path(), &kernel, BASELINE_ARCH, version);

    let (first, origin) = ptx_via_cache(&kernel, BASELINE_ARCH).expect("NVRTC compiles it");
    assert_eq!(origin, Origin::Nvrtc, "an empty cache cannot answer");
    assert!(file.is_file(), "{} was not written", file.display());
    assert_eq!(std::fs::read_to_string(&file).expect("cache file"), first);

    let (second, origin) = ptx_via_cache(&kernel, BASELINE_ARCH).expect("cache read");
    assert_eq!(origin, Origin::DiskCache, "the second compile should come from {}", file.display());
    assert_eq!(second, first);

    // The run-time path: a cubin for the GPU's own architecture, cached the same way.
    let cubin_file = cache_path(dir.path(), &kernel, HOPPER, version).with_extension("cubin");
    let (bin, origin) = cubin_via_cache(&kernel, HOPPER).expect("NVRTC compiles a cubin");
    assert_eq!(origin, Origin::Nvrtc);
    assert!(bin.starts_with(b"\x7fELF") && cubin_file.is_file(), "{}", cubin_file.display());
    let (again, origin) = cubin_via_cache(&kernel, HOPPER).expect("cache read");
    assert_eq!((origin, again), (Origin::DiskCache, bin));
    std::env::remove_var(CACHE_ENV);
}

#[test]
fn every_kernel_compiles_to_a_cubin_for_each_shipped_architecture() {
    let Some(version) = nvrtc() else { return };
    let archs = nvrtc_archs();
    for gpu in [(8, 0), (8, 6), (8, 9), (9, 0)] {
        assert_eq!(nvrtc_target(gpu, &archs), Some(NvrtcTarget::Cubin(gpu)), "NVRTC {version:?} lists {archs:?}");
        for k in kernel_sources() {
            let bin = compile_cubin(&k, gpu).unwrap_or_else(|e| panic!("{e}"));
            assert!(bin.starts_with(b"\x7fELF"), "{} for sm_{}{} is not an ELF cubin", k.name, gpu.0, gpu.1);
        }
    }
}
