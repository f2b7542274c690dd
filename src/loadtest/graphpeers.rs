//! Reading a `../shared/graphpeers` workload (its README, "Files written"): `meta.json`, NumPy
//! `.npy` arrays (format 1.0, little-endian, C order) and the op trace `ops.jsonl`; and the
//! percentiles its result JSON uses (linear interpolation, as NumPy's default).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::error::LoadtestError;

/// A 2-D (or 1-D, `cols = 1`) array read from `.npy`.
#[derive(Debug, Clone, PartialEq)]
pub struct Array<T> {
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// Row-major values.
    pub data: Vec<T>,
}

impl<T> Array<T> {
    /// Row `r`.
    pub fn row(&self, r: usize) -> Option<&[T]> {
        self.data.get(r * self.cols..(r + 1) * self.cols)
    }
}

/// One op of the trace.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum TraceOp {
    /// Create node `id` with `store_vectors[vec]` and directed edges `[src, dst, w]`.
    Store {
        /// Position in the trace.
        i: u64,
        /// New node id.
        id: u64,
        /// Row of `store_vectors`.
        vec: usize,
        /// Edges `[src, dst, weight]`; one end is `id`.
        edges: Vec<(u64, u64, f64)>,
    },
    /// The `k` nearest nodes to `query_vectors[q]`.
    Recall {
        /// Position in the trace.
        i: u64,
        /// Row of `query_vectors`.
        q: usize,
        /// Hits.
        k: usize,
    },
    /// Spreading activation from `seeds`.
    Spread {
        /// Position in the trace.
        i: u64,
        /// Seed node ids.
        seeds: Vec<u64>,
        /// Hops.
        hops: u32,
        /// Decay per hop.
        decay: f64,
        /// Result threshold.
        threshold: f64,
        /// Hits.
        k: usize,
    },
    /// Completion from `query_vectors[q]`.
    Complete {
        /// Position in the trace.
        i: u64,
        /// Row of `query_vectors`.
        q: usize,
        /// Hits.
        k: usize,
    },
}

impl TraceOp {
    /// The op's kind as the result JSON names it.
    pub fn kind(&self) -> &'static str {
        match self {
            TraceOp::Store { .. } => "store",
            TraceOp::Recall { .. } => "recall",
            TraceOp::Spread { .. } => "spread",
            TraceOp::Complete { .. } => "complete",
        }
    }
}

/// A workload directory, loaded.
#[derive(Debug, Clone)]
pub struct Workload {
    /// Its directory.
    pub dir: PathBuf,
    /// `meta.json` as written.
    pub meta: serde_json::Value,
    /// `base_vectors.npy`, shape (N, D).
    pub base: Array<f32>,
    /// `edges.npy`, shape (E, 2).
    pub edges: Array<i32>,
    /// `weights.npy`, shape (E).
    pub weights: Array<f32>,
    /// `store_vectors.npy`, shape (S, D).
    pub store: Array<f32>,
    /// `query_vectors.npy`, shape (Q, D).
    pub queries: Array<f32>,
    /// `ops.jsonl`.
    pub ops: Vec<TraceOp>,
}

fn bad(path: &Path, message: impl Into<String>) -> LoadtestError {
    LoadtestError::Json {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

fn read(path: &Path) -> Result<Vec<u8>, LoadtestError> {
    std::fs::read(path).map_err(|source| LoadtestError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Element types `.npy` files here hold.
pub trait NpyElement: Sized + Copy {
    /// The `descr` this type reads (`<f4`, `<i4`).
    const DESCR: &'static str;
    /// From 4 little-endian bytes.
    fn from_le(b: [u8; 4]) -> Self;
}

impl NpyElement for f32 {
    const DESCR: &'static str = "<f4";
    fn from_le(b: [u8; 4]) -> Self {
        f32::from_le_bytes(b)
    }
}

impl NpyElement for i32 {
    const DESCR: &'static str = "<i4";
    fn from_le(b: [u8; 4]) -> Self {
        i32::from_le_bytes(b)
    }
}

/// Parses `.npy` bytes (format 1.0 or 2.0, C order, 1-D or 2-D). The shape is checked against
/// the byte count before anything is allocated.
///
/// # Errors
/// A message naming what is wrong.
pub fn parse_npy<T: NpyElement>(bytes: &[u8]) -> Result<Array<T>, String> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err("not a .npy file (no \\x93NUMPY magic)".into());
    }
    let (header_len, start): (usize, usize) = match bytes[6] {
        1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(format!("unsupported .npy version {v}")),
    };
    let header = bytes
        .get(start..start.saturating_add(header_len))
        .ok_or("truncated .npy header")?;
    let header = std::str::from_utf8(header).map_err(|_| "header is not text")?;
    let field = |name: &str| -> Option<&str> {
        let at = header.find(&format!("'{name}'"))? + name.len() + 2;
        let rest = header[at..].trim_start().strip_prefix(':')?.trim_start();
        Some(rest)
    };
    let descr = field("descr").ok_or("no descr")?;
    if !descr.starts_with(&format!("'{}'", T::DESCR)) {
        return Err(format!(
            "dtype {} is not {}",
            &descr[..descr.find(',').unwrap_or(descr.len())],
            T::DESCR
        ));
    }
    if !field("fortran_order")
        .ok_or("no fortran_order")?
        .starts_with("False")
    {
        return Err("Fortran order is not supported".into());
    }
    let shape = field("shape").ok_or("no shape")?;
    let inner = shape
        .strip_prefix('(')
        .and_then(|s| s.split(')').next())
        .ok_or("malformed shape")?;
    let dims: Vec<usize> = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(|_| format!("bad shape entry `{s}`")))
        .collect::<Result<_, _>>()?;
    let (rows, cols) = match dims[..] {
        [n] => (n, 1),
        [n, d] => (n, d),
        _ => return Err(format!("shape {dims:?} is not 1-D or 2-D")),
    };
    let body = &bytes[start + header_len..];
    let want = rows
        .checked_mul(cols)
        .and_then(|n| n.checked_mul(4))
        .ok_or("shape overflows")?;
    if body.len() != want {
        return Err(format!(
            "shape ({rows}, {cols}) needs {want} bytes, the file has {}",
            body.len()
        ));
    }
    let data = body
        .chunks_exact(4)
        .map(|c| T::from_le([c[0], c[1], c[2], c[3]]))
        .collect();
    Ok(Array { rows, cols, data })
}

fn npy<T: NpyElement>(dir: &Path, name: &str) -> Result<Array<T>, LoadtestError> {
    let path = dir.join(name);
    parse_npy(&read(&path)?).map_err(|m| bad(&path, m))
}

impl Workload {
    /// Loads a workload directory written by `gen_workload.py`.
    ///
    /// # Errors
    /// [`LoadtestError::Io`] for a missing file, [`LoadtestError::Json`] for a malformed one
    /// (the message names the line of `ops.jsonl`).
    pub fn load(dir: &Path) -> Result<Self, LoadtestError> {
        let meta_path = dir.join("meta.json");
        let meta: serde_json::Value =
            serde_json::from_slice(&read(&meta_path)?).map_err(|e| bad(&meta_path, e.to_string()))?;
        let ops_path = dir.join("ops.jsonl");
        let text = String::from_utf8(read(&ops_path)?).map_err(|_| bad(&ops_path, "not UTF-8"))?;
        let ops = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(n, l)| serde_json::from_str(l).map_err(|e| bad(&ops_path, format!("line {}: {e}", n + 1))))
            .collect::<Result<Vec<TraceOp>, _>>()?;
        let w = Workload {
            dir: dir.to_path_buf(),
            base: npy(dir, "base_vectors.npy")?,
            edges: npy(dir, "edges.npy")?,
            weights: npy(dir, "weights.npy")?,
            store: npy(dir, "store_vectors.npy")?,
            queries: npy(dir, "query_vectors.npy")?,
            meta,
            ops,
        };
        if w.edges.cols != 2 || w.weights.rows != w.edges.rows {
            return Err(bad(
                &dir.join("edges.npy"),
                "edges must be [E, 2] with one weight each",
            ));
        }
        if w.store.cols != w.base.cols || w.queries.cols != w.base.cols {
            return Err(bad(&dir.join("query_vectors.npy"), "vector dimensions differ"));
        }
        Ok(w)
    }
}

/// The `q`-quantile (0..=1) of sorted values by linear interpolation (NumPy's default).
pub fn percentile_linear(sorted: &[f64], q: f64) -> f64 {
    match sorted.len() {
        0 => 0.0,
        1 => sorted[0],
        n => {
            let pos = q.clamp(0.0, 1.0) * (n - 1) as f64;
            let lo = pos.floor() as usize;
            let hi = (lo + 1).min(n - 1);
            sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy_bytes(descr: &str, shape: &str, body: &[u8]) -> Vec<u8> {
        let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn reads_npy_and_checks_sizes() {
        let body: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let a: Array<f32> = parse_npy(&npy_bytes("<f4", "(2, 3)", &body)).unwrap();
        assert_eq!((a.rows, a.cols), (2, 3));
        assert_eq!(a.row(1), Some(&[4.0, 5.0, 6.0][..]));
        let e: Array<f32> = parse_npy(&npy_bytes("<f4", "(6,)", &body)).unwrap();
        assert_eq!((e.rows, e.cols), (6, 1));
        assert!(parse_npy::<f32>(&npy_bytes("<f4", "(1000000000, 3)", &body)).is_err());
        assert!(parse_npy::<i32>(&npy_bytes("<f4", "(2, 3)", &body)).is_err());
        assert!(parse_npy::<f32>(b"garbage").is_err());
    }

    #[test]
    fn trace_lines_parse() {
        let s: TraceOp = serde_json::from_str(
            r#"{"i":1,"op":"store","id":100,"vec":0,"edges":[[100,27,0.44],[10,100,0.98]]}"#,
        )
        .unwrap();
        assert_eq!(s.kind(), "store");
        let p: TraceOp = serde_json::from_str(
            r#"{"i":3,"op":"spread","seeds":[1707],"hops":3,"decay":0.5,"threshold":0.01,"k":10}"#,
        )
        .unwrap();
        assert!(matches!(p, TraceOp::Spread { hops: 3, .. }));
    }

    #[test]
    fn percentiles_interpolate_like_numpy() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile_linear(&v, 0.5), 2.5);
        assert!((percentile_linear(&v, 0.99) - 3.97).abs() < 1e-12);
        assert_eq!(percentile_linear(&v, 1.0), 4.0);
    }
}
