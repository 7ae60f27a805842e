//! Build script. With the `cuda` or `cuda13` feature it embeds every `kernels/*.cu` source into the
//! library (`OUT_DIR/kernel_sources.rs`: `KERNEL_SOURCES: &[(&str, &str)]`), so a build with no
//! CUDA toolkit can still compile them at run time with NVRTC. Offline compilation to PTX and
//! cubins with nvcc, when one is found, comes with the CUDA backend. Never calls nvidia-smi.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=kernels");
    if std::env::var_os("CARGO_FEATURE_CUDA_BACKEND").is_none() {
        return;
    }
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let manifest =
        std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let sources = kernel_files("cu");
    let headers = kernel_files("cuh");
    let mut code = String::from(
        "/// (file stem, CUDA source) of every kernels/*.cu file.\npub const KERNEL_SOURCES: &[(&str, &str)] = &[\n",
    );
    for p in &sources {
        println!("cargo:rerun-if-changed={}", p.display());
        let stem = p.file_stem().and_then(|s| s.to_str()).expect("kernel file names are UTF-8");
        code.push_str(&format!("    ({stem:?}, include_str!({:?})),\n", manifest.join(p).display().to_string()));
    }
    code.push_str(
        "];\n/// (file name, text) of every kernels/*.cuh header.\npub const KERNEL_HEADERS: &[(&str, &str)] = &[\n",
    );
    for p in &headers {
        println!("cargo:rerun-if-changed={}", p.display());
        let name = p.file_name().and_then(|s| s.to_str()).expect("kernel file names are UTF-8");
        code.push_str(&format!("    ({name:?}, include_str!({:?})),\n", manifest.join(p).display().to_string()));
    }
    code.push_str("];\n/// (file stem, `sm_XY` cubin or `compute_XY` PTX, bytes) compiled ahead of time by nvcc.\n");
    code.push_str("pub const PREBUILT: &[(&str, &str, &[u8])] = &[\n");
    code.push_str("];\n");
    std::fs::write(out.join("kernel_sources.rs"), code).expect("write kernel_sources.rs");
}

/// `kernels/*.<ext>`, sorted.
fn kernel_files(ext: &str) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir("kernels")
        .map(|d| {
            d.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == ext)).collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}
