//! A small reader for NumPy `.npy` files (format 1.0/2.0, little-endian, C order): just what
//! `bench-spread --trace` needs (int32 and float32 arrays), with every size checked.

use std::path::Path;

type BoxError = Box<dyn std::error::Error>;

/// A loaded array: its shape and raw little-endian bytes.
pub struct Npy {
    pub shape: Vec<usize>,
    descr: String,
    data: Vec<u8>,
}

fn field<'a>(header: &'a str, key: &str) -> Result<&'a str, BoxError> {
    let at = header
        .find(&format!("'{key}'"))
        .ok_or_else(|| format!("npy header has no '{key}': {header}"))?;
    let rest = &header[at + key.len() + 2..];
    let colon = rest.find(':').ok_or("npy header: missing ':'")?;
    Ok(rest[colon + 1..].trim_start())
}

impl Npy {
    /// Reads `path`.
    pub fn read(path: &Path) -> Result<Self, BoxError> {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
            return Err(format!("{}: not an .npy file", path.display()).into());
        }
        let (hlen, start): (usize, usize) = match bytes[6] {
            1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
            2 | 3 if bytes.len() >= 12 => (
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                12,
            ),
            v => return Err(format!("{}: npy version {v} unsupported", path.display()).into()),
        };
        let end = start
            .checked_add(hlen)
            .filter(|&e| e <= bytes.len())
            .ok_or_else(|| format!("{}: truncated header", path.display()))?;
        let header = std::str::from_utf8(&bytes[start..end])?.to_string();
        let descr_field = field(&header, "descr")?;
        let descr = descr_field
            .trim_start_matches('\'')
            .split('\'')
            .next()
            .unwrap_or_default()
            .to_string();
        if field(&header, "fortran_order")?.starts_with("True") {
            return Err(format!("{}: Fortran order unsupported", path.display()).into());
        }
        let shape_field = field(&header, "shape")?;
        let close = shape_field.find(')').ok_or("npy header: bad shape")?;
        let shape = shape_field[1..close]
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<usize>())
            .collect::<Result<Vec<_>, _>>()?;
        let item = match descr.as_str() {
            "<i4" | "<f4" | "|i4" => 4,
            "<i8" | "<f8" => 8,
            d => return Err(format!("{}: dtype {d} unsupported", path.display()).into()),
        };
        let want = shape
            .iter()
            .try_fold(item, |a: usize, &d| a.checked_mul(d))
            .ok_or("npy shape overflows")?;
        let data = bytes[end..].to_vec();
        if data.len() != want {
            return Err(format!(
                "{}: {} data bytes, shape {shape:?} of {descr} needs {want}",
                path.display(),
                data.len()
            )
            .into());
        }
        Ok(Self { shape, descr, data })
    }

    /// The values as i64 (int32 or int64 arrays).
    pub fn ints(&self) -> Result<Vec<i64>, BoxError> {
        match self.descr.as_str() {
            "<i4" | "|i4" => Ok(self
                .data
                .chunks_exact(4)
                .map(|c| i64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])))
                .collect()),
            "<i8" => Ok(self
                .data
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect()),
            d => Err(format!("expected an integer array, got {d}").into()),
        }
    }

    /// The values as f32 (float32 arrays).
    pub fn floats(&self) -> Result<Vec<f32>, BoxError> {
        match self.descr.as_str() {
            "<f4" => Ok(self
                .data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect()),
            d => Err(format!("expected a float32 array, got {d}").into()),
        }
    }
}
