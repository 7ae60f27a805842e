//! From `kernels/*.cu` to something the driver loads. build.rs embeds every source (and, when it
//! found nvcc, PTX and cubins compiled ahead of time). At run time a module comes from, in order:
//! a prebuilt cubin for the GPU's exact architecture, prebuilt PTX (JIT-compiled by the driver),
//! the on-disk cache of earlier NVRTC runs, or NVRTC itself (whose PTX then goes to the cache).

use std::path::{Path, PathBuf};

use cudarc::nvrtc::{CompileOptions, Ptx};
use sha2::{Digest, Sha256};

use crate::backend::kernel_sources::{KERNEL_HEADERS, KERNEL_SOURCES, PREBUILT};

/// The virtual architecture the compile checks (and nvcc's PTX) target: Ampere.
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
    KERNEL_SOURCES.iter().map(|&(name, src)| KernelSource { name, source: inline_headers(name, src) }).collect()
}

/// Replace each `#include "x.cuh"` of a bundled header by its text (NVRTC gets no include path,
/// and the nvcc build compiles the same files with `-I kernels`); a `#line` directive after it
/// keeps compiler messages pointing at the kernel file's own lines.
fn inline_headers(name: &str, src: &str) -> String {
    let mut out = String::with_capacity(src.len() + 4096);
    for (number, line) in src.lines().enumerate() {
        let header = line
            .trim()
            .strip_prefix("#include \"")
            .and_then(|rest| rest.strip_suffix('"'))
            .and_then(|name| KERNEL_HEADERS.iter().find(|(h, _)| *h == name));
        match header {
            Some((_, text)) => {
                out.push_str(text);
                out.push_str(&format!("\n#line {} \"{name}.cu\"", number + 2));
            }
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

/// The same options as [`nvrtc_options`] for a real architecture `sm_XY` (cubin output).
fn cubin_option_list(arch: (i32, i32)) -> Vec<String> {
    let mut o: Vec<String> =
        ["--ftz=false", "--prec-div=true", "--prec-sqrt=true", "--fmad=true"].map(String::from).to_vec();
    o.push(format!("--gpu-architecture=sm_{}{}", arch.0, arch.1));
    o.push("--std=c++17".into());
    o
}

/// The architectures this NVRTC compiles for, as (major, minor), ascending.
pub fn nvrtc_archs() -> Vec<(i32, i32)> {
    use cudarc::nvrtc::sys;
    // SAFETY: the library is checked first; the buffer holds as many entries as NVRTC reports.
    unsafe {
        if !sys::is_culib_present() {
            return Vec::new();
        }
        let mut n = 0;
        if sys::nvrtcGetNumSupportedArchs(&mut n) != sys::nvrtcResult::NVRTC_SUCCESS || n <= 0 {
            return Vec::new();
        }
        let mut archs = vec![0i32; n as usize];
        if sys::nvrtcGetSupportedArchs(archs.as_mut_ptr()) != sys::nvrtcResult::NVRTC_SUCCESS {
            return Vec::new();
        }
        let mut out: Vec<(i32, i32)> = archs.into_iter().map(|a| (a / 10, a % 10)).collect();
        out.sort_unstable();
        out
    }
}

/// How NVRTC should compile for a GPU of capability `gpu`: a cubin of the GPU's own architecture
/// when NVRTC knows it (no driver JIT, and no driver newer than NVRTC needed), else PTX of the
/// newest architecture NVRTC knows below it (the driver compiles that PTX for the GPU).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NvrtcTarget {
    Cubin((i32, i32)),
    Ptx((i32, i32)),
}

pub fn nvrtc_target(gpu: (i32, i32), supported: &[(i32, i32)]) -> Option<NvrtcTarget> {
    if supported.contains(&gpu) {
        return Some(NvrtcTarget::Cubin(gpu));
    }
    supported.iter().rev().find(|&&a| a <= gpu).map(|&a| NvrtcTarget::Ptx(a))
}

/// Compile one kernel file to a cubin for `sm_XY` with NVRTC.
pub fn compile_cubin(kernel: &KernelSource, arch: (i32, i32)) -> Result<Vec<u8>, String> {
    use cudarc::nvrtc::sys;
    use std::ffi::{c_char, CString};
    // SAFETY: only opens the library by name.
    if !unsafe { sys::is_culib_present() } {
        return Err("the NVRTC library (libnvrtc.so) was not found".into());
    }
    let src =
        CString::new(kernel.source.as_str()).map_err(|_| format!("kernels/{}.cu holds a NUL byte", kernel.name))?;
    let name = CString::new(format!("{}.cu", kernel.name)).expect("kernel names hold no NUL");
    let options: Vec<CString> =
        cubin_option_list(arch).into_iter().map(|o| CString::new(o).expect("options hold no NUL")).collect();
    let option_ptrs: Vec<*const c_char> = options.iter().map(|o| o.as_ptr()).collect();
    let ok = sys::nvrtcResult::NVRTC_SUCCESS;
    // SAFETY: the program is created, used and destroyed here; every pointer outlives the calls
    // and the output buffers are sized by NVRTC's own size queries.
    unsafe {
        let mut prog = std::ptr::null_mut();
        if sys::nvrtcCreateProgram(&mut prog, src.as_ptr(), name.as_ptr(), 0, std::ptr::null(), std::ptr::null()) != ok
        {
            return Err(format!("kernels/{}.cu: NVRTC could not create the program", kernel.name));
        }
        let compiled = sys::nvrtcCompileProgram(prog, option_ptrs.len() as i32, option_ptrs.as_ptr());
        let result = if compiled != ok {
            let mut size = 0usize;
            sys::nvrtcGetProgramLogSize(prog, &mut size);
            let mut log = vec![0u8; size.max(1)];
            sys::nvrtcGetProgramLog(prog, log.as_mut_ptr() as *mut c_char);
            let log = String::from_utf8_lossy(&log).trim_end_matches('\0').to_string();
            Err(format!("kernels/{}.cu does not compile for sm_{}{}:\n{log}", kernel.name, arch.0, arch.1))
        } else {
            let mut size = 0usize;
            if sys::nvrtcGetCUBINSize(prog, &mut size) != ok || size == 0 {
                Err(format!("kernels/{}.cu: NVRTC produced no cubin for sm_{}{}", kernel.name, arch.0, arch.1))
            } else {
                let mut bin = vec![0u8; size];
                if sys::nvrtcGetCUBIN(prog, bin.as_mut_ptr() as *mut c_char) != ok {
                    Err(format!("kernels/{}.cu: the cubin could not be read", kernel.name))
                } else {
                    Ok(bin)
                }
            }
        };
        sys::nvrtcDestroyProgram(&mut prog);
        result
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
    // Prebuilt PTX of the newest virtual architecture the GPU can run.
    let prebuilt_ptx = PREBUILT
        .iter()
        .filter(|(n, _, _)| *n == kernel.name)
        .filter_map(|(_, a, bytes)| Some((parse_arch(a.strip_prefix("compute_")?)?, bytes)))
        .filter(|(a, _)| *a <= arch)
        .max_by_key(|(a, _)| *a);
    if let Some((_, ptx)) = prebuilt_ptx {
        let text = String::from_utf8_lossy(ptx).trim_end_matches('\0').to_string();
        return Ok((Ptx::from_src(text), Origin::PrebuiltPtx));
    }
    let supported = nvrtc_archs();
    match nvrtc_target(arch, &supported) {
        Some(NvrtcTarget::Cubin(a)) => cubin_via_cache(kernel, a).map(|(b, o)| (Ptx::from_binary(b), o)),
        Some(NvrtcTarget::Ptx(a)) => ptx_via_cache(kernel, a).map(|(p, o)| (Ptx::from_src(p), o)),
        None if supported.is_empty() => {
            Err("the NVRTC library (libnvrtc.so) was not found or lists no architecture".into())
        }
        None => Err(format!(
            "this NVRTC compiles for sm_{}{} and newer, not for this GPU's sm_{}{}",
            supported[0].0, supported[0].1, arch.0, arch.1
        )),
    }
}

/// `"90"` → (9, 0); `"100"` → (10, 0).
fn parse_arch(digits: &str) -> Option<(i32, i32)> {
    let v: i32 = digits.trim_end_matches(|c: char| c.is_ascii_alphabetic()).parse().ok()?;
    Some((v / 10, v % 10))
}

/// A cubin from the disk cache, or compiled with NVRTC and written there.
pub fn cubin_via_cache(kernel: &KernelSource, arch: (i32, i32)) -> Result<(Vec<u8>, Origin), String> {
    let version = nvrtc_version().ok_or("the NVRTC library (libnvrtc.so) was not found")?;
    let path = cache_dir().map(|d| cache_path(&d, kernel, arch, version).with_extension("cubin"));
    if let Some(p) = &path {
        if let Ok(bin) = std::fs::read(p) {
            // An ELF image, not a truncated write.
            if bin.starts_with(b"\x7fELF") {
                return Ok((bin, Origin::DiskCache));
            }
        }
    }
    let bin = compile_cubin(kernel, arch)?;
    if let Some(p) = &path {
        write_atomically(p, &bin);
    }
    Ok((bin, Origin::Nvrtc))
}

/// Write then rename, so a concurrent reader never sees half a file; a cache that cannot be
/// written only costs the next start a compile.
fn write_atomically(p: &Path, bytes: &[u8]) {
    let written = p.parent().map(std::fs::create_dir_all).transpose().and_then(|_| {
        let tmp = p.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, bytes).and_then(|_| std::fs::rename(&tmp, p))
    });
    if let Err(e) = written {
        tracing::debug!("kernel cache {} not written: {e}", p.display());
    }
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
        write_atomically(p, ptx.as_bytes());
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
    fn compiler_messages_keep_the_kernel_files_line_numbers() {
        let src = "// one\n#include \"common.cuh\"\nint x;\n";
        let inlined = inline_headers("demo", src);
        let after = inlined.split("#line ").nth(1).expect("a #line directive");
        assert!(after.starts_with("3 \"demo.cu\"\nint x;"), "{after}");
    }

    #[test]
    fn nvrtc_compiles_the_gpus_own_architecture_else_ptx_of_the_newest_below_it() {
        let supported = [(7, 5), (8, 0), (8, 6), (9, 0)];
        assert_eq!(nvrtc_target((9, 0), &supported), Some(NvrtcTarget::Cubin((9, 0))));
        assert_eq!(nvrtc_target((8, 9), &supported), Some(NvrtcTarget::Ptx((8, 6))));
        assert_eq!(nvrtc_target((12, 0), &supported), Some(NvrtcTarget::Ptx((9, 0))));
        assert_eq!(nvrtc_target((7, 0), &supported), None);
        assert_eq!(parse_arch("90"), Some((9, 0)));
        assert_eq!(parse_arch("100a"), Some((10, 0)));
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
