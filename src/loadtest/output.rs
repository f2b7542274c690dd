//! Writing a run's files (`result.json`, the SVG figures, `report.html`) and reading results back.

use std::path::Path;

use super::error::LoadtestError;
use super::result::RunResult;

fn io(path: &Path) -> impl Fn(std::io::Error) -> LoadtestError + '_ {
    move |source| LoadtestError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `result.json`, the figures (also inline in the page) and `report.html` into `dir`
/// (created if missing); returns the paths written.
///
/// # Errors
/// [`LoadtestError::Io`], [`LoadtestError::Json`] or [`LoadtestError::Plot`].
#[cfg(feature = "report")]
pub fn write_all(r: &RunResult, dir: &Path) -> Result<Vec<std::path::PathBuf>, LoadtestError> {
    use super::{plot, report};
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let json_path = dir.join("result.json");
    let json = serde_json::to_string_pretty(r).map_err(|e| LoadtestError::Json {
        path: json_path.clone(),
        message: e.to_string(),
    })?;
    std::fs::write(&json_path, json).map_err(io(&json_path))?;
    let mut written = vec![json_path];
    let figures = plot::render(r)?;
    written.extend(plot::write_figures(&figures, dir)?);
    let html_path = dir.join("report.html");
    std::fs::write(&html_path, report::html(r, &figures)).map_err(io(&html_path))?;
    written.push(html_path);
    Ok(written)
}

/// Reads a `result.json`.
///
/// # Errors
/// [`LoadtestError::Io`] if unreadable, [`LoadtestError::Json`] if it is not a result of a
/// known schema.
pub fn read_result(path: &Path) -> Result<RunResult, LoadtestError> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    let r: RunResult = serde_json::from_str(&text).map_err(|e| LoadtestError::Json {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    if r.schema != super::result::SCHEMA {
        return Err(LoadtestError::Json {
            path: path.to_path_buf(),
            message: format!(
                "schema `{}` is not `{}` (written by another version)",
                r.schema,
                super::result::SCHEMA
            ),
        });
    }
    Ok(r)
}
