//! Per-op wall-time accounting for any backend, switched on with `SCRIBE_PROFILE=1`: an
//! [`OpObserver`] every new [`Device`](super::Device) gets (on a GPU the device synchronises after
//! each op so each op's time is its own). Off, it costs one relaxed atomic load per device. The
//! CLI prints the table at exit.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use super::observe::{OpCall, OpObserver};

/// 0 = not read yet, 1 = off, 2 = on.
static ENABLED: AtomicU8 = AtomicU8::new(0);
static TABLE: Mutex<BTreeMap<&'static str, (Duration, u64)>> = Mutex::new(BTreeMap::new());

/// Rows a decoder step has at most (chunks × beams): up to here a product is "skinny" (the CPU
/// reads each weight row once for all of them), above it a GEMM.
pub const STEP_ROWS: usize = 64;

/// Whether `SCRIBE_PROFILE` asks for op timings.
pub fn enabled() -> bool {
    match ENABLED.load(Ordering::Relaxed) {
        0 => {
            let on = std::env::var("SCRIBE_PROFILE").is_ok_and(|v| !v.is_empty() && v != "0");
            ENABLED.store(if on { 2 } else { 1 }, Ordering::Relaxed);
            on
        }
        v => v == 2,
    }
}

/// The row of the table an op call is charged to: the op, with the products of decoder steps
/// and the attention of single queries apart from the rest.
pub fn label(call: &OpCall<'_>) -> &'static str {
    let first = call.inputs.first();
    match call.op {
        "linear" | "linear_activation" | "linear_residual" => {
            if first.is_some_and(|x| x.rows_cols().0 <= STEP_ROWS) {
                "linear (skinny)"
            } else {
                "linear (gemm)"
            }
        }
        "attention" if first.is_some_and(|q| q.rank() == 3 && q.dim(1) == 1) => "attention (step)",
        op => op,
    }
}

/// The profiler: adds each op's time to the process-wide table.
pub struct Profiler;

impl OpObserver for Profiler {
    fn after(&self, call: &OpCall<'_>, elapsed: Duration) {
        let mut table = TABLE.lock().unwrap_or_else(|e| e.into_inner());
        let entry = table.entry(label(call)).or_default();
        entry.0 += elapsed;
        entry.1 += 1;
    }

    fn timed(&self) -> bool {
        true
    }
}

/// The accumulated table, slowest op first: `(op, total, calls)`.
pub fn snapshot() -> Vec<(&'static str, Duration, u64)> {
    let table = TABLE.lock().unwrap_or_else(|e| e.into_inner());
    let mut rows: Vec<_> = table.iter().map(|(k, v)| (*k, v.0, v.1)).collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.1));
    rows
}

/// The table as text, one op a line.
pub fn report() -> String {
    let rows = snapshot();
    let total: Duration = rows.iter().map(|r| r.1).sum();
    let mut s = format!("op profile (wall time inside device ops, total {:.3} s)\n", total.as_secs_f64());
    for (op, t, n) in rows {
        s += &format!(
            "  {op:<18} {:>9.3} s {:>5.1} % {:>9} calls {:>10.1} µs/call\n",
            t.as_secs_f64(),
            100.0 * t.as_secs_f64() / total.as_secs_f64().max(1e-12),
            n,
            t.as_secs_f64() * 1e6 / n.max(1) as f64
        );
    }
    s
}
