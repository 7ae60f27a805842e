//! `scribe-kernels ptx --arch 80,86,89,90 --out DIR`: every kernels/*.cu file compiled by NVRTC,
//! exactly as the engine compiles it at run time, to DIR/compute_XY/<file stem>.ptx. Needs only
//! libnvrtc (no GPU); scripts/check-kernels then assembles the PTX with ptxas.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use scribe::backend::cuda::compile::{compile_ptx, kernel_sources, nvrtc_version};

#[derive(Parser)]
#[command(name = "scribe-kernels", about = "Compile Scribe's CUDA kernels ahead of time")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Compile every kernel file to PTX for each virtual architecture.
    Ptx {
        /// Compute capabilities as digits, major then minor (80 = compute_80, 120 = compute_120).
        #[arg(long, value_delimiter = ',', default_value = "80,86,89,90", value_parser = parse_arch)]
        arch: Vec<(i32, i32)>,
        /// Output directory; PTX goes to OUT/compute_XY/<kernel>.ptx.
        #[arg(long)]
        out: PathBuf,
    },
}

/// "86" → (8, 6): the last digit is the minor version.
fn parse_arch(s: &str) -> Result<(i32, i32), String> {
    let n: i32 = s.trim().parse().map_err(|_| format!("{s:?} is not an architecture such as 80 or 90"))?;
    if n < 10 {
        return Err(format!("{s:?} is not an architecture such as 80 or 90"));
    }
    Ok((n / 10, n % 10))
}

fn main() -> ExitCode {
    let Command::Ptx { arch, out } = Cli::parse().command;
    let Some((major, minor)) = nvrtc_version() else {
        eprintln!(
            "scribe-kernels: libnvrtc.so was not found; run scripts/install-cuda-tools and put the \
             directory it prints in LD_LIBRARY_PATH"
        );
        return ExitCode::FAILURE;
    };
    eprintln!("scribe-kernels: NVRTC {major}.{minor}");
    let kernels = kernel_sources();
    let mut failed = Vec::new();
    for &(maj, min) in &arch {
        let dir = out.join(format!("compute_{maj}{min}"));
        if let Err(e) = std::fs::create_dir_all(&dir) {
            eprintln!("scribe-kernels: cannot create {}: {e}", dir.display());
            return ExitCode::FAILURE;
        }
        for k in &kernels {
            let path = dir.join(format!("{}.ptx", k.name));
            match compile_ptx(k, (maj, min)).and_then(|ptx| std::fs::write(&path, ptx).map_err(|e| e.to_string())) {
                Ok(()) => println!("{}", path.display()),
                Err(log) => {
                    eprintln!("scribe-kernels: {} for compute_{maj}{min} failed:\n{log}", k.name);
                    failed.push(format!("{} (compute_{maj}{min})", k.name));
                }
            }
        }
    }
    if failed.is_empty() {
        return ExitCode::SUCCESS;
    }
    eprintln!("scribe-kernels: {} failed: {}", failed.len(), failed.join(", "));
    ExitCode::FAILURE
}
