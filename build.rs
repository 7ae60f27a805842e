//! Build script. With the `cuda` or `cuda13` feature (both enable `cuda-backend`) it writes
//! `OUT_DIR/kernel_sources.rs`, which the library includes:
//!
//! - `KERNEL_SOURCES`, `KERNEL_HEADERS`: every `kernels/*.cu` and `kernels/*.cuh`, embedded, so a
//!   build with no CUDA toolkit still compiles them at run time with NVRTC;
//! - `PREBUILT`: (file stem, target, bytes) compiled ahead of time by nvcc, empty without one.
//!
//! nvcc is looked for in `$NVCC`, then `$CUDA_HOME/bin/nvcc`, `$CUDA_PATH/bin/nvcc`, then `PATH`.
//! When found, each kernel file becomes PTX for `compute_80` (`nvcc --ptx -arch=compute_80
//! -I kernels`, JIT-compiled by the driver on any newer GPU) and a cubin for every architecture
//! of `SCRIBE_CUDA_ARCHS` (default `80,86,89,90`; `nvcc --cubin -arch=sm_XY`), with the precision
//! options NVRTC gets at run time. If nvcc fails on any file, the build goes on with a
//! `cargo:warning` and no prebuilt kernels at all (NVRTC then compiles every kernel), never a
//! failed build. The GPU is never queried: no nvidia-smi, no driver call.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Architectures that get a cubin when `SCRIBE_CUDA_ARCHS` is unset: Ampere (A100, RTX 30),
/// Ada (L4, RTX 40), Hopper.
const DEFAULT_ARCHS: &str = "80,86,89,90";
/// The virtual architecture of the prebuilt PTX: the oldest the project supports.
const PTX_ARCH: &str = "compute_80";
/// The same precision choices as `nvrtc_options` in engine/backend/cuda/compile.rs.
const NVCC_FLAGS: &[&str] = &["-std=c++17", "-ftz=false", "-prec-div=true", "-prec-sqrt=true", "-fmad=true"];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=kernels");
    if std::env::var_os("CARGO_FEATURE_CUDA_BACKEND").is_none() {
        return;
    }
    for var in ["NVCC", "CUDA_HOME", "CUDA_PATH", "SCRIBE_CUDA_ARCHS", "PATH"] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let sources = kernel_files("cu");
    let headers = kernel_files("cuh");
    let mut code = String::from(
        "/// (file stem, CUDA source) of every kernels/*.cu file.\npub const KERNEL_SOURCES: &[(&str, &str)] = &[\n",
    );
    for p in &sources {
        println!("cargo:rerun-if-changed={}", p.display());
        code.push_str(&format!("    ({:?}, include_str!({:?})),\n", stem(p), manifest.join(p).display().to_string()));
    }
    code.push_str(
        "];\n/// (file name, text) of every kernels/*.cuh header.\npub const KERNEL_HEADERS: &[(&str, &str)] = &[\n",
    );
    for p in &headers {
        println!("cargo:rerun-if-changed={}", p.display());
        let name = p.file_name().and_then(|s| s.to_str()).expect("kernel file names are UTF-8");
        code.push_str(&format!("    ({name:?}, include_str!({:?})),\n", manifest.join(p).display().to_string()));
    }
    let prebuilt = match find_nvcc() {
        Some(nvcc) => nvcc_build(&nvcc, &manifest, &sources, &out.join("nvcc")).unwrap_or_else(|e| {
            println!(
                "cargo:warning=no kernels prebuilt with {}, NVRTC will compile them at run time: {e}",
                nvcc.display()
            );
            Vec::new()
        }),
        None => Vec::new(),
    };
    code.push_str("];\n/// (file stem, `sm_XY` cubin or `compute_XY` PTX, bytes) compiled ahead of time by nvcc.\n");
    code.push_str("pub const PREBUILT: &[(&str, &str, &[u8])] = &[\n");
    for (stem, target, path) in &prebuilt {
        code.push_str(&format!("    ({stem:?}, {target:?}, include_bytes!({:?})),\n", path.display().to_string()));
    }
    code.push_str("];\n");
    std::fs::write(out.join("kernel_sources.rs"), code).expect("write kernel_sources.rs");
}

/// `kernels/*.<ext>`, sorted.
fn kernel_files(ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir("kernels")
        .map(|d| {
            d.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == ext)).collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

fn stem(p: &Path) -> &str {
    p.file_stem().and_then(|s| s.to_str()).expect("kernel file names are UTF-8")
}

/// `$NVCC`, `$CUDA_HOME/bin/nvcc`, `$CUDA_PATH/bin/nvcc`, or the first `nvcc` on `PATH`.
fn find_nvcc() -> Option<PathBuf> {
    if let Some(nvcc) = std::env::var_os("NVCC").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(nvcc));
    }
    let homes =
        ["CUDA_HOME", "CUDA_PATH"].into_iter().filter_map(std::env::var_os).map(|h| PathBuf::from(h).join("bin"));
    let path = std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect::<Vec<_>>()).unwrap_or_default();
    homes.chain(path).map(|dir| dir.join("nvcc")).find(|nvcc| nvcc.is_file())
}

/// Compile every kernel file with nvcc into `dir`: (stem, target, file) of each output.
fn nvcc_build(
    nvcc: &Path,
    manifest: &Path,
    sources: &[PathBuf],
    dir: &Path,
) -> Result<Vec<(String, String, PathBuf)>, String> {
    let archs = std::env::var("SCRIBE_CUDA_ARCHS").unwrap_or_else(|_| DEFAULT_ARCHS.into());
    let mut targets = vec![("--ptx", PTX_ARCH.to_string(), "ptx")];
    for a in archs.split(',').map(str::trim).filter(|a| !a.is_empty()) {
        if !a.chars().all(|c| c.is_ascii_digit()) || a.len() < 2 {
            return Err(format!("SCRIBE_CUDA_ARCHS={archs:?}: {a:?} is not an architecture such as 80 or 90"));
        }
        targets.push(("--cubin", format!("sm_{a}"), "cubin"));
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let include = manifest.join("kernels");
    let mut built = Vec::new();
    for src in sources {
        for (mode, target, ext) in &targets {
            let file = dir.join(format!("{}.{target}.{ext}", stem(src)));
            let output = Command::new(nvcc)
                .arg(mode)
                .arg(format!("-arch={target}"))
                .args(NVCC_FLAGS)
                .arg("-I")
                .arg(&include)
                .arg("-o")
                .arg(&file)
                .arg(manifest.join(src))
                .output()
                .map_err(|e| format!("cannot run it: {e}"))?;
            if !output.status.success() || !file.is_file() {
                let log = String::from_utf8_lossy(&output.stderr);
                let first: Vec<_> = log.lines().take(8).collect();
                return Err(format!("{} for {target}: {} {}", src.display(), output.status, first.join(" | ")));
            }
            built.push((stem(src).to_string(), target.clone(), file));
        }
    }
    Ok(built)
}
