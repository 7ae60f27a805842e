//! Per-op wall-time accounting for any backend, switched on with `SCRIBE_PROFILE=1`: an
//! [`OpObserver`] every new [`Device`](super::Device) gets (on a GPU the device synchronises after
//! each op so each op's time is its own). Off, it costs one relaxed atomic load per device. The
//! CLI prints the table at exit. `SCRIBE_PROFILE=shapes` gives each op's input shapes a row of
//! their own.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use super::observe::{OpCall, OpObserver};

/// 0 = not read yet, 1 = off, 2 = on, 3 = on with a row per op and input shapes.
static ENABLED: AtomicU8 = AtomicU8::new(0);
static TABLE: Mutex<BTreeMap<String, (Duration, u64)>> = Mutex::new(BTreeMap::new());

/// `SCRIBE_PROFILE`'s value for rows per op and input shapes.
pub const BY_SHAPE: &str = "shapes";

/// Rows a decoder step has at most (chunks × beams): up to here a product is "skinny" (the CPU
/// reads each weight row once for all of them), above it a GEMM.
pub const STEP_ROWS: usize = 64;

/// `SCRIBE_PROFILE` read once: 1 = off, 2 = on, 3 = on, by shape.
fn setting() -> u8 {
    match ENABLED.load(Ordering::Relaxed) {
        0 => {
            let v = match std::env::var("SCRIBE_PROFILE") {
                Ok(v) if v == BY_SHAPE => 3,
                Ok(v) if !v.is_empty() && v != "0" => 2,
                _ => 1,
            };
            ENABLED.store(v, Ordering::Relaxed);
            v
        }
        v => v,
    }
}

/// Whether `SCRIBE_PROFILE` asks for op timings.
pub fn enabled() -> bool {
    setting() >= 2
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
        let mut key = label(call).to_string();
        if setting() == 3 {
            let shapes: Vec<String> = call.inputs.iter().map(|t| format!("{:?}", t.shape())).collect();
            key = format!("{key} {}", shapes.join(" "));
        }
        let mut table = TABLE.lock().unwrap_or_else(|e| e.into_inner());
        let entry = table.entry(key).or_default();
        entry.0 += elapsed;
        entry.1 += 1;
    }

    fn timed(&self) -> bool {
        true
    }
}

/// The accumulated table, slowest op first: `(op, total, calls)`.
pub fn snapshot() -> Vec<(String, Duration, u64)> {
    let table = TABLE.lock().unwrap_or_else(|e| e.into_inner());
    let mut rows: Vec<_> = table.iter().map(|(k, v)| (k.clone(), v.0, v.1)).collect();
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
            "  {op:<20} {:>9.3} s {:>5.1} % {:>9} calls {:>10.1} µs/call\n",
            t.as_secs_f64(),
            100.0 * t.as_secs_f64() / total.as_secs_f64().max(1e-12),
            n,
            t.as_secs_f64() * 1e6 / n.max(1) as f64
        );
    }
    s
}
