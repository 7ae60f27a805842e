//! From `kernels/*.cu` to something the driver loads. build.rs embeds every source (and, when it
//! found nvcc, PTX and cubins compiled ahead of time). At run time a module comes from, in order:
//! a prebuilt cubin for the GPU's exact architecture, prebuilt PTX (JIT-compiled by the driver),
//! the on-disk cache of earlier NVRTC runs, or NVRTC itself (whose PTX then goes to the cache).

use std::path::{Path, PathBuf};

use cudarc::nvrtc::{CompileOptions, Ptx};
use sha2::{Digest, Sha256};

use crate::backend::kernel_sources::{KERNEL_HEADERS, KERNEL_SOURCES, PREBUILT};

/// The virtual architecture NVRTC targets when the GPU's own is unknown (Ampere, the oldest
/// architecture the project supports).
pub const BASELINE_ARCH: (i32, i32) = (8, 0);

/// Environment variable naming the kernel cache directory.
pub const CACHE_ENV: &str = "SCRIBE_KERNEL_CACHE";

/// One kernel file, `#include`s resolved: exactly what NVRTC compiles.
#[derive(Clone, Debug)]
pub struct KernelSource {
    /// File stem, e.g. `attention` for kernels/attention.cu.
    pub name: &'static str,
    pub source: String,
}

/// Every kernel file with its headers inlined.
pub fn kernel_sources() -> Vec<KernelSource> {
    KERNEL_SOURCES.iter().map(|&(name, src)| KernelSource { name, source: inline_headers(src) }).collect()
}

/// Replace each `#include "x.cuh"` of a bundled header by its text (NVRTC gets no include path,
/// and the nvcc build compiles the same files with `-I kernels`).
fn inline_headers(src: &str) -> String {
    let mut out = String::with_capacity(src.len() + 4096);
    for line in src.lines() {
        let header = line
            .trim()
            .strip_prefix("#include \"")
            .and_then(|rest| rest.strip_suffix('"'))
            .and_then(|name| KERNEL_HEADERS.iter().find(|(h, _)| *h == name));
        match header {
            Some((_, text)) => out.push_str(text),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// NVRTC options for a virtual architecture `compute_XY` (PTX output).
pub fn nvrtc_options(name: &str, arch: (i32, i32)) -> CompileOptions {
    CompileOptions {
        name: Some(format!("{name}.cu")),
        // Kernels name their precision explicitly (expf, not __expf); keep the compiler from
        // changing it behind their back.
        ftz: Some(false),
        prec_div: Some(true),
        prec_sqrt: Some(true),
        fmad: Some(true),
        options: vec![format!("--gpu-architecture=compute_{}{}", arch.0, arch.1), "--std=c++17".into()],
        ..Default::default()
    }
}

/// Compile one kernel file to PTX with NVRTC (no GPU needed, only libnvrtc).
pub fn compile_ptx(kernel: &KernelSource, arch: (i32, i32)) -> Result<String, String> {
    // SAFETY: only opens the library by name; cudarc's NVRTC entry points panic without it.
    if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        return Err("the NVRTC library (libnvrtc.so) was not found".into());
    }
    cudarc::nvrtc::compile_ptx_with_opts(&kernel.source, nvrtc_options(kernel.name, arch))
        .map(|ptx| ptx.to_src())
        .map_err(|e| match e {
            cudarc::nvrtc::CompileError::CompileError { log, .. } => {
                format!("kernels/{}.cu does not compile:\n{}", kernel.name, log.to_string_lossy())
            }
            other => format!("kernels/{}.cu: NVRTC failed: {other:?}", kernel.name),
        })
}

/// NVRTC's version, part of the cache key.
pub fn nvrtc_version() -> Option<(i32, i32)> {
    // SAFETY: the library is checked first; the out-pointers are valid for the call.
    unsafe {
        if !cudarc::nvrtc::sys::is_culib_present() {
            return None;
        }
        let (mut major, mut minor) = (0, 0);
        let r = cudarc::nvrtc::sys::nvrtcVersion(&mut major, &mut minor);
        (r == cudarc::nvrtc::sys::nvrtcResult::NVRTC_SUCCESS).then_some((major, minor))
    }
}

/// Where compiled PTX is kept between runs: `$SCRIBE_KERNEL_CACHE`, else
/// `$XDG_CACHE_HOME/scribe/kernels`, else `~/.cache/scribe/kernels`.
pub fn cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(CACHE_ENV) {
        return Some(PathBuf::from(dir));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("scribe").join("kernels"))
}

/// Cache file of one kernel: the key hashes the source, the options and the NVRTC version, so
/// a changed kernel or compiler never reuses stale PTX.
pub fn cache_path(dir: &Path, kernel: &KernelSource, arch: (i32, i32), nvrtc: (i32, i32)) -> PathBuf {
    let mut h = Sha256::new();
    h.update(kernel.source.as_bytes());
    h.update(format!("{:?}|nvrtc {}.{}", nvrtc_options(kernel.name, arch).options, nvrtc.0, nvrtc.1));
    let digest = h.finalize();
    let hex: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
    dir.join(format!("{}-compute_{}{}-{hex}.ptx", kernel.name, arch.0, arch.1))
}

/// Where a module came from, for the start-up log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    PrebuiltCubin,
    PrebuiltPtx,
    DiskCache,
    Nvrtc,
}

/// The module image of `kernel` for a GPU of compute capability `arch`.
pub fn module_image(kernel: &KernelSource, arch: (i32, i32)) -> Result<(Ptx, Origin), String> {
    let sm = format!("sm_{}{}", arch.0, arch.1);
    if let Some((_, _, bin)) = PREBUILT.iter().find(|(n, a, _)| *n == kernel.name && *a == sm) {
        return Ok((Ptx::from_binary(bin.to_vec()), Origin::PrebuiltCubin));
    }
    if let Some((_, _, ptx)) = PREBUILT.iter().find(|(n, a, _)| *n == kernel.name && a.starts_with("compute_")) {
        let text = String::from_utf8_lossy(ptx).trim_end_matches('\0').to_string();
        return Ok((Ptx::from_src(text), Origin::PrebuiltPtx));
    }
    // NVRTC targets at most the architectures it knows; the driver JIT-compiles PTX of an older
    // virtual architecture for a newer GPU.
    let target = if arch >= BASELINE_ARCH { arch } else { BASELINE_ARCH };
    ptx_via_cache(kernel, target).map(|(p, o)| (Ptx::from_src(p), o))
}

/// PTX from the disk cache, or compiled with NVRTC and written there (a cache that cannot be
/// written only costs the next start a compile).
pub fn ptx_via_cache(kernel: &KernelSource, arch: (i32, i32)) -> Result<(String, Origin), String> {
    let version = nvrtc_version().ok_or("the NVRTC library (libnvrtc.so) was not found")?;
    let path = cache_dir().map(|d| cache_path(&d, kernel, arch, version));
    if let Some(p) = &path {
        if let Ok(text) = std::fs::read_to_string(p) {
            if text.contains(".entry") {
                return Ok((text, Origin::DiskCache));
            }
        }
    }
    let ptx = compile_ptx(kernel, arch)?;
    if let Some(p) = &path {
        let written = p.parent().map(std::fs::create_dir_all).transpose().and_then(|_| {
            // Write then rename, so a concurrent reader never sees half a file.
            let tmp = p.with_extension(format!("tmp{}", std::process::id()));
            std::fs::write(&tmp, &ptx).and_then(|_| std::fs::rename(&tmp, p))
        });
        if let Err(e) = written {
            tracing::debug!("kernel cache {} not written: {e}", p.display());
        }
    }
    Ok((ptx, Origin::Nvrtc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kernel_has_its_headers_inlined() {
        let sources = kernel_sources();
        assert!(sources.len() >= 10, "{} kernel files", sources.len());
        for k in &sources {
            assert!(!k.source.contains("#include \""), "{} still includes a header", k.name);
            assert!(k.source.contains("extern \"C\" __global__"), "{} defines no kernel", k.name);
        }
    }

    #[test]
    fn the_cache_key_follows_source_arch_and_compiler() {
        let k = kernel_sources().remove(0);
        let dir = Path::new("/cache");
        let base = cache_path(dir, &k, (9, 0), (12, 8));
        assert_ne!(base, cache_path(dir, &k, (8, 0), (12, 8)));
        assert_ne!(base, cache_path(dir, &k, (9, 0), (13, 0)));
        let mut changed = k.clone();
        changed.source.push_str("\n// edit\n");
        assert_ne!(base, cache_path(dir, &changed, (9, 0), (12, 8)));
        assert_eq!(base, cache_path(dir, &k, (9, 0), (12, 8)));
    }
}
