//! Per-op wall-time accounting for the CPU backend, switched on with `SCRIBE_PROFILE=1`.
//! Off, it costs one relaxed atomic load per op. The CLI prints the table at exit.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// 0 = not read yet, 1 = off, 2 = on.
static ENABLED: AtomicU8 = AtomicU8::new(0);
static TABLE: Mutex<BTreeMap<&'static str, (Duration, u64)>> = Mutex::new(BTreeMap::new());

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

/// Run `f`, charging its wall time to `op` when profiling is on.
#[inline]
pub fn timed<T>(op: &'static str, f: impl FnOnce() -> T) -> T {
    if !enabled() {
        return f();
    }
    let start = Instant::now();
    let out = f();
    let spent = start.elapsed();
    let mut table = TABLE.lock().unwrap_or_else(|e| e.into_inner());
    let entry = table.entry(op).or_default();
    entry.0 += spent;
    entry.1 += 1;
    out
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
    let mut s = format!("CPU op profile (wall time inside backend ops, total {:.3} s)\n", total.as_secs_f64());
    for (op, t, n) in rows {
        s += &format!(
            "  {op:<16} {:>9.3} s {:>5.1} % {:>9} calls {:>10.1} µs/call\n",
            t.as_secs_f64(),
            100.0 * t.as_secs_f64() / total.as_secs_f64().max(1e-12),
            n,
            t.as_secs_f64() * 1e6 / n.max(1) as f64
        );
    }
    s
}
