//! A WAV file that exists only as a byte stream: a 44-byte header followed by 16-bit stereo PCM
//! generated on the fly, so hours of audio can be decoded without hours of audio on disk.

use std::io::{Read, Seek, SeekFrom};

use symphonia::core::io::MediaSource;

/// Bytes of a canonical RIFF/WAVE header (RIFF + `fmt ` + `data` chunk headers).
const HEADER_LEN: u64 = 44;
const CHANNELS: u16 = 2;
const BYTES_PER_SAMPLE: u16 = 2;
const BYTES_PER_FRAME: u64 = (CHANNELS * BYTES_PER_SAMPLE) as u64;
/// Frames in the repeating waveform table (a prime, so the pattern does not line up with hops).
const TABLE_FRAMES: usize = 99_991;
/// Peak of the generated signal, in 16-bit units (about -6 dBFS).
const AMPLITUDE: f32 = 16_000.0;

/// A seekable source of a `seconds`-long 16-bit stereo WAV at `rate` Hz: a chirp on the left, the
/// chirp plus noise on the right (so down-mixing matters), repeating every [`TABLE_FRAMES`] frames.
pub struct SynthWav {
    header: [u8; HEADER_LEN as usize],
    /// Interleaved little-endian stereo frames of one period, as bytes.
    table: Vec<u8>,
    len: u64,
    pos: u64,
}

impl SynthWav {
    pub fn new(rate: u32, seconds: u64) -> Self {
        let data_len = rate as u64 * seconds * BYTES_PER_FRAME;
        assert!(data_len + HEADER_LEN - 8 <= u32::MAX as u64, "too long for a RIFF size field");
        SynthWav { header: header(rate, data_len as u32), table: table(rate), len: HEADER_LEN + data_len, pos: 0 }
    }

    /// Sample frames (per channel) the stream holds.
    pub fn frames(&self) -> u64 {
        (self.len - HEADER_LEN) / BYTES_PER_FRAME
    }
}

fn header(rate: u32, data_len: u32) -> [u8; HEADER_LEN as usize] {
    let mut h = Vec::with_capacity(HEADER_LEN as usize);
    h.extend_from_slice(b"RIFF");
    h.extend_from_slice(&(data_len + HEADER_LEN as u32 - 8).to_le_bytes());
    h.extend_from_slice(b"WAVEfmt ");
    h.extend_from_slice(&16u32.to_le_bytes()); // fmt chunk size
    h.extend_from_slice(&1u16.to_le_bytes()); // PCM
    h.extend_from_slice(&CHANNELS.to_le_bytes());
    h.extend_from_slice(&rate.to_le_bytes());
    h.extend_from_slice(&(rate * BYTES_PER_FRAME as u32).to_le_bytes()); // byte rate
    h.extend_from_slice(&(BYTES_PER_FRAME as u16).to_le_bytes()); // block align
    h.extend_from_slice(&(BYTES_PER_SAMPLE * 8).to_le_bytes());
    h.extend_from_slice(b"data");
    h.extend_from_slice(&data_len.to_le_bytes());
    h.try_into().expect("44-byte header")
}

fn table(rate: u32) -> Vec<u8> {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    (0..TABLE_FRAMES)
        .flat_map(|i| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let t = i as f32 / rate as f32;
            let chirp = (2.0 * std::f32::consts::PI * (150.0 + 400.0 * t) * t).sin();
            let noise = (seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
            let left = (AMPLITUDE * chirp) as i16;
            let right = (AMPLITUDE * (0.7 * chirp + 0.6 * noise)) as i16;
            let (l, r) = (left.to_le_bytes(), right.to_le_bytes());
            [l[0], l[1], r[0], r[1]]
        })
        .collect()
}

impl Read for SynthWav {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = (buf.len() as u64).min(self.len - self.pos) as usize;
        let mut done = 0;
        while done < n {
            // The rest of the header, or of the current period of the table.
            let from: &[u8] = if self.pos < HEADER_LEN {
                &self.header[self.pos as usize..]
            } else {
                let k = (self.pos - HEADER_LEN) % self.table.len() as u64;
                &self.table[k as usize..]
            };
            let take = from.len().min(n - done);
            buf[done..done + take].copy_from_slice(&from[..take]);
            done += take;
            self.pos += take as u64;
        }
        Ok(n)
    }
}

impl Seek for SynthWav {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let target = match to {
            SeekFrom::Start(p) => p as i128,
            SeekFrom::End(d) => self.len as i128 + d as i128,
            SeekFrom::Current(d) => self.pos as i128 + d as i128,
        };
        if target < 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before the start"));
        }
        self.pos = (target as u64).min(self.len);
        Ok(self.pos)
    }
}

impl MediaSource for SynthWav {
    fn is_seekable(&self) -> bool {
        true
    }
    fn byte_len(&self) -> Option<u64> {
        Some(self.len)
    }
}
