//! The PLDA of pyannote's VBx clustering (pyannote.audio 4.0.7 `core/plda.py` `PLDA` and
//! `utils/vbx.py` `vbx_setup`, lines cited from
//! <https://github.com/pyannote/pyannote-audio/blob/4.0.7/src/pyannote/audio/utils/vbx.py>):
//! two numpy archives, `xvec_transform.npz` (`mean1`, `mean2`, `lda`) and `plda.npz` (`mu`,
//! `tr`, `psi`), read here with a small `.npy` reader (little-endian float32/float64, C order);
//! the x-vector transform (centre, length-normalise, LDA, centre, length-normalise) and the PLDA
//! projection after the generalized symmetric eigenproblem `eigh(B, W)` (L245–253).
//!
//! `eigh(B, W)` is solved here in float64 without LAPACK: Cholesky `W = L·Lᵀ`, the symmetric
//! `C = L⁻¹·B·L⁻ᵀ`, cyclic Jacobi rotations for `C = Y·Λ·Yᵀ`, eigenvectors `X = L⁻ᵀ·Y` (so
//! `Xᵀ·W·X = I`, LAPACK `sygv`'s normalisation). An eigenvector's sign is arbitrary (LAPACK's
//! choice is not specified): each one is made to have a positive largest-magnitude component.
//! A feature dimension then has either pyannote's sign or the opposite; VBx does not depend on
//! it (the features enter only through `‖f‖²` and `ρ·α`, with `α` linear in `ρ`).

use std::io::Read;
use std::path::Path;

use crate::{Error, Result};

/// `PLDA(..., lda_dimension=128)` (`core/plda.py`): the features keep 128 dimensions.
pub const LDA_DIMENSION: usize = 128;
/// Jacobi sweeps before giving up; each sweep squares the off-diagonal mass, a few suffice.
const JACOBI_MAX_SWEEPS: usize = 100;

/// A float64 array from a `.npy` member, with its shape.
#[derive(Clone, Debug, PartialEq)]
pub struct NpyArray {
    pub shape: Vec<usize>,
    pub data: Vec<f64>,
}

/// Reads a `.npy` file's bytes (format 1.0–3.0, `<f4` or `<f8`, C order); `what` names the file
/// and array in errors.
pub fn read_npy(bytes: &[u8], path: &Path, what: &str) -> Result<NpyArray> {
    let fail = |m: String| Error::tensor(path, what, m);
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(fail("not a .npy array (no \\x93NUMPY magic)".into()));
    }
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize, 12),
        v => return Err(fail(format!(".npy format version {v} is not supported"))),
    };
    let header = bytes
        .get(start..start + header_len)
        .and_then(|h| std::str::from_utf8(h).ok())
        .ok_or_else(|| fail("truncated or non-text .npy header".into()))?;
    let field = |key: &str| -> Result<&str> {
        let at =
            header.find(&format!("'{key}'")).ok_or_else(|| fail(format!("no '{key}' in the header {header:?}")))?;
        Ok(header[at + key.len() + 2..].trim_start().trim_start_matches(':').trim_start())
    };
    let descr = field("descr")?;
    let width = if descr.starts_with("'<f8'") {
        8
    } else if descr.starts_with("'<f4'") {
        4
    } else {
        let d = descr.split(',').next().unwrap_or(descr);
        return Err(fail(format!("dtype {d} is not supported (only little-endian float32/float64)")));
    };
    if !field("fortran_order")?.starts_with("False") {
        return Err(fail("Fortran-order arrays are not supported".into()));
    }
    let shape_text = field("shape")?;
    let shape_text = shape_text
        .strip_prefix('(')
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| fail(format!("unreadable shape in {header:?}")))?;
    let shape = shape_text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().map_err(|_| fail(format!("unreadable shape in {header:?}"))))
        .collect::<Result<Vec<_>>>()?;
    let count: usize = shape.iter().product();
    let body = &bytes[start + header_len..];
    if body.len() != count * width {
        return Err(fail(format!("{} data bytes for shape {shape:?} of {width}-byte values", body.len())));
    }
    let data = if width == 8 {
        body.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect()
    } else {
        body.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64).collect()
    };
    Ok(NpyArray { shape, data })
}

/// The arrays of an `.npz` archive (`np.savez`: stored members; `np.savez_compressed`:
/// deflated members), by name without `.npy`.
pub fn read_npz(path: &Path, names: &[&str]) -> Result<Vec<NpyArray>> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut archive =
        zip::ZipArchive::new(file).map_err(|e| Error::format(path, format!("not a numpy .npz archive: {e}")))?;
    names
        .iter()
        .map(|name| {
            let member = format!("{name}.npy");
            let mut raw = Vec::new();
            let compressed = {
                let index = archive
                    .index_for_name(&member)
                    .ok_or_else(|| Error::tensor(path, *name, format!("no {member} in the archive")))?;
                let mut f = archive
                    .by_index_raw(index)
                    .map_err(|e| Error::tensor(path, *name, format!("unreadable {member}: {e}")))?;
                let method = f.compression();
                f.read_to_end(&mut raw).map_err(|e| Error::io(path, e))?;
                // Read raw: the zip crate is built without its deflate feature, flate2 inflates.
                if method == zip::CompressionMethod::Stored {
                    false
                } else if method == zip::CompressionMethod::DEFLATE {
                    true
                } else {
                    return Err(Error::tensor(path, *name, format!("compression {method:?} is not supported")));
                }
            };
            let bytes = if compressed {
                let mut out = Vec::new();
                flate2::read::DeflateDecoder::new(&raw[..])
                    .read_to_end(&mut out)
                    .map_err(|e| Error::tensor(path, *name, format!("bad deflate data: {e}")))?;
                out
            } else {
                raw
            };
            read_npy(&bytes, path, name)
        })
        .collect()
}

fn expect_shape(a: &NpyArray, shape: &[usize], path: &Path, name: &str) -> Result<()> {
    if a.shape != shape {
        return Err(Error::tensor(path, name, format!("shape {:?}, expected {shape:?}", a.shape)));
    }
    Ok(())
}

/// `vbx_setup`'s transforms and `PLDA.phi`.
#[derive(Clone, Debug)]
pub struct Plda {
    /// Embedding dimension (256) and LDA output dimension (128).
    pub dim: usize,
    pub lda_dim: usize,
    pub mean1: Vec<f64>,
    pub mean2: Vec<f64>,
    /// `[dim][lda_dim]`.
    pub lda: Vec<f64>,
    pub mu: Vec<f64>,
    /// `plda_tr` after the eigen-setup (L252: `wccn.T[::-1]`): `[lda_dim][lda_dim]`, row `i` the
    /// eigenvector of the `i`-th largest eigenvalue.
    pub transform: Vec<f64>,
    /// `plda_psi` after the eigen-setup (L251: `acvar[::-1]`), descending.
    pub psi: Vec<f64>,
    /// `PLDA.lda_dimension`.
    pub lda_dimension: usize,
}

impl Plda {
    /// `PLDA(transform_npz, plda_npz)` from a model directory holding both files (community-1's
    /// `plda/` subfolder).
    pub fn load_dir(dir: &Path) -> Result<Self> {
        Self::load(&dir.join("xvec_transform.npz"), &dir.join("plda.npz"))
    }

    /// `vbx_setup(transform_npz, plda_npz)` (L225–262) with `lda_dimension` [`LDA_DIMENSION`].
    pub fn load(transform_npz: &Path, plda_npz: &Path) -> Result<Self> {
        let [mean1, mean2, lda]: [NpyArray; 3] =
            read_npz(transform_npz, &["mean1", "mean2", "lda"])?.try_into().expect("three arrays");
        let [mu, tr, psi]: [NpyArray; 3] = read_npz(plda_npz, &["mu", "tr", "psi"])?.try_into().expect("three arrays");
        if lda.shape.len() != 2 {
            return Err(Error::tensor(transform_npz, "lda", format!("shape {:?}, expected 2-D", lda.shape)));
        }
        let (dim, lda_dim) = (lda.shape[0], lda.shape[1]);
        expect_shape(&mean1, &[dim], transform_npz, "mean1")?;
        expect_shape(&mean2, &[lda_dim], transform_npz, "mean2")?;
        expect_shape(&mu, &[lda_dim], plda_npz, "mu")?;
        expect_shape(&tr, &[lda_dim, lda_dim], plda_npz, "tr")?;
        expect_shape(&psi, &[lda_dim], plda_npz, "psi")?;
        if LDA_DIMENSION > lda_dim {
            return Err(Error::tensor(
                transform_npz,
                "lda",
                format!("{lda_dim} LDA dimensions, fewer than {LDA_DIMENSION}"),
            ));
        }
        let (values, vectors) = plda_eigen(&tr.data, &psi.data, lda_dim)
            .map_err(|what| Error::tensor(plda_npz, "tr", format!("eigh(B, W) failed: {what}")))?;
        // Descending eigenvalues; eigenvector rows in the same order.
        let mut transform = Vec::with_capacity(lda_dim * lda_dim);
        let mut descending = Vec::with_capacity(lda_dim);
        for k in (0..lda_dim).rev() {
            descending.push(values[k]);
            transform.extend((0..lda_dim).map(|r| vectors[r * lda_dim + k]));
        }
        Ok(Plda {
            dim,
            lda_dim,
            mean1: mean1.data,
            mean2: mean2.data,
            lda: lda.data,
            mu: mu.data,
            transform,
            psi: descending,
            lda_dimension: LDA_DIMENSION,
        })
    }

    /// `PLDA.phi`: the first `lda_dimension` eigenvalues.
    pub fn phi(&self) -> &[f64] {
        &self.psi[..self.lda_dimension]
    }

    /// `xvec_tf` (L255–258): √lda_dim·l2n(ldaᵀ·√dim·l2n(x − mean1) − mean2), one row.
    pub fn xvec_transform(&self, x: &[f32]) -> Vec<f64> {
        let centred: Vec<f64> = x.iter().zip(&self.mean1).map(|(&v, &m)| v as f64 - m).collect();
        let scale = (self.dim as f64).sqrt() / norm(&centred);
        let mut y = vec![0.0f64; self.lda_dim];
        for (i, &c) in centred.iter().enumerate() {
            let c = c * scale;
            for (yj, &l) in y.iter_mut().zip(&self.lda[i * self.lda_dim..(i + 1) * self.lda_dim]) {
                *yj += l * c;
            }
        }
        for (yj, &m) in y.iter_mut().zip(&self.mean2) {
            *yj -= m;
        }
        let scale = (self.lda_dim as f64).sqrt() / norm(&y);
        y.iter_mut().for_each(|v| *v *= scale);
        y
    }

    /// `PLDA.__call__`: `plda_tf(xvec_tf(x), lda_dim=lda_dimension)` (L260–262), the rows of
    /// `embeddings` (`[n][dim]`) to `[n][lda_dimension]` features.
    pub fn features(&self, embeddings: &[f32]) -> Vec<f64> {
        let mut out = Vec::with_capacity(embeddings.len() / self.dim * self.lda_dimension);
        for x in embeddings.chunks_exact(self.dim) {
            let x0: Vec<f64> = self.xvec_transform(x).iter().zip(&self.mu).map(|(v, m)| v - m).collect();
            for row in self.transform.chunks_exact(self.lda_dim).take(self.lda_dimension) {
                out.push(x0.iter().zip(row).map(|(a, b)| a * b).sum());
            }
        }
        out
    }
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// `W = inv(trᵀ·tr)`, `B = inv((trᵀ/psi)·tr)`, `eigh(B, W)` (L243–249): ascending eigenvalues
/// and the eigenvectors as columns of an `n × n` row-major matrix, `Xᵀ·W·X = I`.
pub fn plda_eigen(tr: &[f64], psi: &[f64], n: usize) -> std::result::Result<(Vec<f64>, Vec<f64>), String> {
    let mut wi = vec![0.0f64; n * n];
    let mut bi = vec![0.0f64; n * n];
    for i in 0..n {
        for j in 0..n {
            let (mut w, mut b) = (0.0, 0.0);
            for k in 0..n {
                let p = tr[k * n + i] * tr[k * n + j];
                w += p;
                b += p / psi[k];
            }
            wi[i * n + j] = w;
            bi[i * n + j] = b;
        }
    }
    let w = spd_inverse(&wi, n).ok_or("trᵀ·tr is not positive definite")?;
    let b = spd_inverse(&bi, n).ok_or("(trᵀ/psi)·tr is not positive definite")?;
    generalized_eigh(&b, &w, n)
}

/// Lower Cholesky factor of a symmetric positive definite matrix, or None.
pub fn cholesky(a: &[f64], n: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0f64; n * n];
    for i in 0..n {
        for j in 0..=i {
            let s: f64 = a[i * n + j] - (0..j).map(|k| l[i * n + k] * l[j * n + k]).sum::<f64>();
            if i == j {
                if s <= 0.0 || !s.is_finite() {
                    return None;
                }
                l[i * n + i] = s.sqrt();
            } else {
                l[i * n + j] = s / l[j * n + j];
            }
        }
    }
    Some(l)
}

/// The inverse of a lower-triangular matrix.
fn lower_inverse(l: &[f64], n: usize) -> Vec<f64> {
    let mut inv = vec![0.0f64; n * n];
    for col in 0..n {
        // Solve L·x = e_col by forward substitution.
        for i in col..n {
            let rhs = if i == col { 1.0 } else { 0.0 };
            let s: f64 = (col..i).map(|k| l[i * n + k] * inv[k * n + col]).sum();
            inv[i * n + col] = (rhs - s) / l[i * n + i];
        }
    }
    inv
}

/// The inverse of a symmetric positive definite matrix through its Cholesky factor.
fn spd_inverse(a: &[f64], n: usize) -> Option<Vec<f64>> {
    let li = lower_inverse(&cholesky(a, n)?, n);
    // A⁻¹ = L⁻ᵀ·L⁻¹.
    let mut out = vec![0.0f64; n * n];
    for i in 0..n {
        for j in 0..=i {
            let s: f64 = (i..n).map(|k| li[k * n + i] * li[k * n + j]).sum();
            out[i * n + j] = s;
            out[j * n + i] = s;
        }
    }
    Some(out)
}

/// Cyclic Jacobi eigen-decomposition of a symmetric matrix: ascending eigenvalues and the
/// eigenvectors as columns.
pub fn jacobi_eigh(a: &[f64], n: usize) -> std::result::Result<(Vec<f64>, Vec<f64>), String> {
    let mut a = a.to_vec();
    let mut v = vec![0.0f64; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    // Off-diagonal entries below this are rounding noise: set to zero instead of rotated away.
    let tiny = f64::EPSILON * 1e-3 * a.iter().map(|x| x * x).sum::<f64>().sqrt() / n.max(1) as f64;
    let mut converged = false;
    for _ in 0..JACOBI_MAX_SWEEPS {
        let mut rotations = 0;
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq.abs() <= tiny {
                    a[p * n + q] = 0.0;
                    a[q * n + p] = 0.0;
                    continue;
                }
                rotations += 1;
                let (app, aqq) = (a[p * n + p], a[q * n + q]);
                let theta = (aqq - app) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (akp, akq) = (a[k * n + p], a[k * n + q]);
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[p * n + k], a[q * n + k]);
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
                for k in 0..n {
                    let (vkp, vkq) = (v[k * n + p], v[k * n + q]);
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
        if rotations == 0 {
            converged = true;
            break;
        }
    }
    if !converged {
        return Err(format!("Jacobi did not converge in {JACOBI_MAX_SWEEPS} sweeps"));
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| a[i * n + i].total_cmp(&a[j * n + j]));
    let values = order.iter().map(|&i| a[i * n + i]).collect();
    let mut vectors = vec![0.0f64; n * n];
    for (new, &old) in order.iter().enumerate() {
        for r in 0..n {
            vectors[r * n + new] = v[r * n + old];
        }
    }
    Ok((values, vectors))
}

/// `scipy.linalg.eigh(a, b)` for symmetric `a` and symmetric positive definite `b`: ascending
/// eigenvalues and eigenvectors (columns) with `Xᵀ·b·X = I`, each with a positive
/// largest-magnitude component (see the module documentation).
pub fn generalized_eigh(a: &[f64], b: &[f64], n: usize) -> std::result::Result<(Vec<f64>, Vec<f64>), String> {
    let l = cholesky(b, n).ok_or("the right-hand matrix is not positive definite")?;
    let li = lower_inverse(&l, n);
    // C = L⁻¹·A·L⁻ᵀ, symmetrised against rounding.
    let mut la = vec![0.0f64; n * n];
    for i in 0..n {
        for j in 0..n {
            la[i * n + j] = (0..=i).map(|k| li[i * n + k] * a[k * n + j]).sum();
        }
    }
    let mut c = vec![0.0f64; n * n];
    for i in 0..n {
        for j in 0..=i {
            let s: f64 = (0..=j).map(|k| la[i * n + k] * li[j * n + k]).sum();
            c[i * n + j] = s;
            c[j * n + i] = s;
        }
    }
    let (values, y) = jacobi_eigh(&c, n)?;
    // X = L⁻ᵀ·Y.
    let mut x = vec![0.0f64; n * n];
    for i in 0..n {
        for j in 0..n {
            x[i * n + j] = (i..n).map(|k| li[k * n + i] * y[k * n + j]).sum();
        }
    }
    for j in 0..n {
        let largest = (0..n).max_by(|&p, &q| x[p * n + j].abs().total_cmp(&x[q * n + j].abs())).unwrap_or(0);
        if x[largest * n + j] < 0.0 {
            (0..n).for_each(|i| x[i * n + j] = -x[i * n + j]);
        }
    }
    Ok((values, x))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(descr: &str, shape: &str, body: &[u8]) -> Vec<u8> {
        let header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend_from_slice(&(header.len() as u16).to_le_bytes());
        b.extend_from_slice(header.as_bytes());
        b.extend_from_slice(body);
        b
    }

    #[test]
    fn npy_reads_f4_and_f8_and_names_bad_arrays() {
        let p = Path::new("x.npz");
        let f4: Vec<u8> = [1.5f32, -2.0, 3.0, 4.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let a = read_npy(&npy("<f4", "(2, 2)", &f4), p, "lda").unwrap();
        assert_eq!(a, NpyArray { shape: vec![2, 2], data: vec![1.5, -2.0, 3.0, 4.0] });
        let f8: Vec<u8> = [0.25f64, 7.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(read_npy(&npy("<f8", "(2,)", &f8), p, "mu").unwrap().data, vec![0.25, 7.0]);
        let err = read_npy(&npy("<i8", "(2,)", &f8), p, "psi").unwrap_err().to_string();
        assert!(err.contains("x.npz") && err.contains("psi") && err.contains("<i8"), "{err}");
        let err = read_npy(&npy("<f8", "(3,)", &f8), p, "mu").unwrap_err().to_string();
        assert!(err.contains("shape [3]"), "{err}");
        assert!(read_npy(b"not numpy at all", p, "mu").is_err());
    }

    #[test]
    fn generalized_eigh_solves_and_normalises() {
        let n = 4;
        let a = [4.0, 1.0, 0.5, 0.0, 1.0, 3.0, 0.2, 0.1, 0.5, 0.2, 2.0, 0.3, 0.0, 0.1, 0.3, 1.0];
        let b = [2.0, 0.3, 0.0, 0.1, 0.3, 1.5, 0.2, 0.0, 0.0, 0.2, 1.0, 0.1, 0.1, 0.0, 0.1, 0.8];
        let (values, x) = generalized_eigh(&a, &b, n).unwrap();
        assert!(values.windows(2).all(|w| w[0] <= w[1]));
        let mul =
            |m: &[f64], v: &[f64]| -> Vec<f64> { (0..n).map(|i| (0..n).map(|k| m[i * n + k] * v[k]).sum()).collect() };
        for j in 0..n {
            let col: Vec<f64> = (0..n).map(|i| x[i * n + j]).collect();
            let (ax, bx) = (mul(&a, &col), mul(&b, &col));
            for i in 0..n {
                assert!((ax[i] - values[j] * bx[i]).abs() < 1e-12, "A·x = λ·B·x");
            }
            let xbx: f64 = col.iter().zip(&bx).map(|(p, q)| p * q).sum();
            assert!((xbx - 1.0).abs() < 1e-12, "xᵀ·B·x = 1");
        }
    }

    #[test]
    fn plda_eigenvalues_are_psi() {
        // With W = (trᵀtr)⁻¹ and B = (trᵀ·diag(1/psi)·tr)⁻¹, B·x = λ·W·x has λ = psi and x = trᵀ·e.
        let n = 3;
        let tr = [1.0, 0.2, -0.3, 0.1, 0.9, 0.4, -0.2, 0.3, 1.1];
        let psi = [2.0, 0.5, 7.0];
        let (values, x) = plda_eigen(&tr, &psi, n).unwrap();
        for (v, e) in values.iter().zip([0.5, 2.0, 7.0]) {
            assert!((v - e).abs() < 1e-12 * e);
        }
        // The eigenvector of 0.5 is ±(row 1 of tr).
        let col: Vec<f64> = (0..n).map(|i| x[i * n]).collect();
        let sign = col[1].signum() * tr[n + 1].signum();
        for i in 0..n {
            assert!((col[i] - sign * tr[n + i]).abs() < 1e-12);
        }
    }
}
