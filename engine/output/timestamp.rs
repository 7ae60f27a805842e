//! The one timestamp formatter shared by every writer.
//!
//! Ports `format_timestamp` of openai/whisper `whisper/utils.py` (identical in whisperX
//! `whisperx/utils.py`): milliseconds are `round(seconds * 1000.0)` with Python's
//! round-half-to-even, and a negative time is refused as openai's `assert seconds >= 0` does.

use crate::{Error, Result};

const MS_PER_HOUR: i64 = 3_600_000;
const MS_PER_MINUTE: i64 = 60_000;
const MS_PER_SECOND: i64 = 1_000;

/// How a subtitle format writes its times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimestampStyle {
    /// `HH:MM:SS,mmm`, hours always present.
    Srt,
    /// `MM:SS.mmm`, or `HH:MM:SS.mmm` once the time reaches an hour.
    Vtt,
}

impl TimestampStyle {
    pub fn format(self, seconds: f64) -> Result<String> {
        match self {
            TimestampStyle::Srt => format_timestamp(seconds, true, ','),
            TimestampStyle::Vtt => format_timestamp(seconds, false, '.'),
        }
    }
}

/// `round(seconds * 1000)` as Python rounds (ties to even), for TSV's integer milliseconds.
/// Negative times pass through (openai's TSV writer does not check them); NaN and infinities are
/// refused, as Python's `round` raises on them.
pub fn milliseconds(seconds: f64) -> Result<i64> {
    if !seconds.is_finite() {
        return Err(Error::Other(format!("timestamp {seconds} is not a finite number of seconds")));
    }
    Ok((seconds * 1000.0).round_ties_even() as i64)
}

/// `[HH:]MM:SS<marker>mmm`; the hours field is written when `always_include_hours` or when the
/// time reaches an hour. A negative (or NaN) time is an error.
pub fn format_timestamp(seconds: f64, always_include_hours: bool, decimal_marker: char) -> Result<String> {
    if seconds.is_nan() || seconds < 0.0 {
        return Err(Error::Other(format!("timestamp {seconds} s: a non-negative time is expected")));
    }
    let mut ms = milliseconds(seconds)?;
    let hours = ms / MS_PER_HOUR;
    ms -= hours * MS_PER_HOUR;
    let minutes = ms / MS_PER_MINUTE;
    ms -= minutes * MS_PER_MINUTE;
    let secs = ms / MS_PER_SECOND;
    ms -= secs * MS_PER_SECOND;
    let hours_marker = if always_include_hours || hours > 0 { format!("{hours:02}:") } else { String::new() };
    Ok(format!("{hours_marker}{minutes:02}:{secs:02}{decimal_marker}{ms:03}"))
}

/// Seconds as Python's `repr(float)` writes them (`1.0`, `0.125`, `1e-05`, `1e+16`): the shortest
/// digits that read back to the same value, in fixed notation for 1e-4 <= |x| < 1e16. Used by the
/// Audacity labels (`print(segment["start"])`) and the JSON writer (`json.dump`).
pub fn python_float(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    // Rust's Debug is shortest-round-trip with the same fixed/scientific switch as Python; only
    // the exponent is spelled differently (`1e-5` against `1e-05`, `1e16` against `1e+16`).
    let s = format!("{x:?}");
    match s.split_once('e') {
        None => s,
        Some((mantissa, exp)) => {
            let (sign, digits) = match exp.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', exp),
            };
            format!("{mantissa}e{sign}{digits:0>2}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srt_and_vtt_shapes() {
        assert_eq!(TimestampStyle::Srt.format(0.0).unwrap(), "00:00:00,000");
        assert_eq!(TimestampStyle::Vtt.format(0.0).unwrap(), "00:00.000");
        assert_eq!(TimestampStyle::Srt.format(61.5).unwrap(), "00:01:01,500");
        assert_eq!(TimestampStyle::Vtt.format(61.5).unwrap(), "01:01.500");
        assert_eq!(TimestampStyle::Vtt.format(3599.999).unwrap(), "59:59.999");
        assert_eq!(TimestampStyle::Vtt.format(3600.0).unwrap(), "01:00:00.000");
        assert_eq!(TimestampStyle::Srt.format(36_000.0 * 3.0).unwrap(), "30:00:00,000");
        // Past 99 hours the field just widens, as Python's {:02d} does.
        assert_eq!(TimestampStyle::Vtt.format(360_000.0).unwrap(), "100:00:00.000");
    }

    #[test]
    fn rounding_carries_and_ties_to_even() {
        // Values checked against Python's format_timestamp. 0.9995 * 1000.0 is exactly 999.5,
        // a tie that goes to the even 1000; 1.0005 * 1000.0 is 1000.5, which goes down to 1000.
        assert_eq!(TimestampStyle::Srt.format(0.9995).unwrap(), "00:00:01,000");
        assert_eq!(TimestampStyle::Srt.format(1.0005).unwrap(), "00:00:01,000");
        assert_eq!(TimestampStyle::Srt.format(7325.9995).unwrap(), "02:02:06,000");
        assert_eq!(TimestampStyle::Srt.format(59.9996).unwrap(), "00:01:00,000");
        assert_eq!(TimestampStyle::Vtt.format(3599.9996).unwrap(), "01:00:00.000");
        // Exact ties go to the even millisecond (Python's round), not away from zero.
        assert_eq!(milliseconds(0.0125).unwrap(), 12);
        assert_eq!(milliseconds(0.0135).unwrap(), 14);
        assert_eq!(milliseconds(2.5e-3).unwrap(), 2);
        assert_eq!(milliseconds(-0.0125).unwrap(), -12);
    }

    #[test]
    fn negative_and_non_finite_are_errors() {
        assert!(format_timestamp(-0.001, false, '.').is_err());
        assert!(format_timestamp(f64::NAN, false, '.').is_err());
        assert!(format_timestamp(f64::INFINITY, false, '.').is_err());
        assert!(milliseconds(f64::NAN).is_err());
        // -0.0 >= 0 holds in Python too.
        assert_eq!(format_timestamp(-0.0, false, '.').unwrap(), "00:00.000");
    }

    #[test]
    fn python_float_repr() {
        assert_eq!(python_float(1.0), "1.0");
        assert_eq!(python_float(0.1), "0.1");
        assert_eq!(python_float(12.345), "12.345");
        assert_eq!(python_float(3600.0), "3600.0");
        assert_eq!(python_float(1e-5), "1e-05");
        assert_eq!(python_float(1.5e-7), "1.5e-07");
        assert_eq!(python_float(0.0001), "0.0001");
        assert_eq!(python_float(1e16), "1e+16");
        assert_eq!(python_float(1e15), "1000000000000000.0");
        assert_eq!(python_float(-0.0), "-0.0");
        assert_eq!(python_float(0.1 + 0.2), "0.30000000000000004");
    }
}
