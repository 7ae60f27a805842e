//! Run-time SIMD selection. The binary is built for baseline x86-64 (no `target-cpu=native`),
//! and hot loops are compiled a second and third time with AVX2+FMA and AVX-512 enabled;
//! which copy runs is decided once per backend from what the CPU reports.
//!
//! `SCRIBE_SIMD=portable|avx2|avx512` forces a level (never above what the CPU has), which is
//! how tests exercise the portable path on an AVX-512 machine.

/// Environment variable that caps the SIMD level.
pub const SIMD_ENV: &str = "SCRIBE_SIMD";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SimdLevel {
    /// Baseline instructions only; GEMM through our own blocked kernel.
    Portable,
    Avx2,
    Avx512,
}

impl SimdLevel {
    /// The best level this CPU supports.
    pub fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            // The AVX-512 kernels also use AVX2, FMA and F16C (`vcvtph2ps`), which every AVX-512
            // CPU has; a virtual machine may hide some, so each is checked.
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
                && std::arch::is_x86_feature_detected!("f16c")
            {
                return SimdLevel::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                return SimdLevel::Avx2;
            }
        }
        SimdLevel::Portable
    }

    /// The detected level, lowered by `SCRIBE_SIMD` when set.
    pub fn from_env() -> Self {
        let best = Self::detect();
        match std::env::var(SIMD_ENV).ok().as_deref().map(str::trim) {
            None | Some("") => best,
            Some(v) => match Self::parse(v) {
                Some(asked) => asked.min(best),
                None => {
                    tracing::warn!("{SIMD_ENV}={v} is not one of portable, avx2, avx512; using {best:?}");
                    best
                }
            },
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "portable" | "scalar" | "none" => Some(SimdLevel::Portable),
            "avx2" => Some(SimdLevel::Avx2),
            "avx512" | "avx512f" => Some(SimdLevel::Avx512),
            _ => None,
        }
    }
}

/// Define `$name(level, args...)` that runs `$body` compiled for the requested SIMD level.
/// The body is an ordinary loop the compiler vectorises for each instruction set.
macro_rules! multiversion {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($arg:ident : $ty:ty),* $(,)?) $body:block) => {
        $(#[$m])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name(level: $crate::backend::cpu::simd::SimdLevel, $($arg: $ty),*) {
            #[inline(always)]
            fn generic($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            unsafe fn avx2($($arg: $ty),*) { generic($($arg),*) }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx2,fma")]
            unsafe fn avx512($($arg: $ty),*) { generic($($arg),*) }
            match level {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: a level above Portable is only ever produced by detection on this CPU.
                $crate::backend::cpu::simd::SimdLevel::Avx512 => unsafe { avx512($($arg),*) },
                #[cfg(target_arch = "x86_64")]
                // SAFETY: as above.
                $crate::backend::cpu::simd::SimdLevel::Avx2 => unsafe { avx2($($arg),*) },
                _ => generic($($arg),*),
            }
        }
    };
}
pub(crate) use multiversion;

/// `$kernel::<N, …>(args…)` for `$rows` = N, one of the listed counts: a register-tile kernel's
/// row count made a constant (`for_rows!(m, [1 2 3 4], tile::<E>(x, k))` runs `tile::<3, E>` for
/// m = 3). Any other count is a bug in the caller's grouping.
macro_rules! for_rows {
    ($rows:expr, [$($n:literal)*], $kernel:ident::<$t:ty> $args:tt) => {
        match $rows {
            $($n => $kernel::<$n, $t> $args,)*
            other => unreachable!("{}: no tile of {} rows", stringify!($kernel), other),
        }
    };
    ($rows:expr, [$($n:literal)*], $kernel:ident $args:tt) => {
        match $rows {
            $($n => $kernel::<$n> $args,)*
            other => unreachable!("{}: no tile of {} rows", stringify!($kernel), other),
        }
    };
}
pub(crate) use for_rows;
