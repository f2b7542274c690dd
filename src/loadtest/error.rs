//! The load test's error type.

use std::path::PathBuf;

/// What can go wrong while reading a scenario, driving a load, or writing its results.
#[derive(Debug, thiserror::Error)]
pub enum LoadtestError {
    /// A scenario file is malformed or holds an impossible value: fix the named field.
    #[error("{file}{}: field `{field}`: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Scenario {
        /// The scenario file (or `<embedded default>`).
        file: String,
        /// 1-based line of the offending key or value, when known.
        line: Option<usize>,
        /// Dotted path of the field (`arrival.rate`), or `-` for a syntax error.
        field: String,
        /// What is wrong and what is allowed.
        message: String,
    },
    /// A file could not be read or written: check the path and permissions.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A JSON document could not be read or written: check that it is a file this tool wrote.
    #[error("{}: {message}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A plot could not be drawn.
    #[error("plot {name}: {message}")]
    Plot {
        /// The figure's file name.
        name: String,
        /// The plotting library's message.
        message: String,
    },
    /// The load target failed outside a timed operation (setup or preload): the run cannot start.
    #[error("target {target}: {message}")]
    Target {
        /// The target's name.
        target: String,
        /// What failed.
        message: String,
    },
    /// The metrics endpoint could not listen: choose another address or port.
    #[error("metrics endpoint {addr}: {source}")]
    MetricsListen {
        /// The address asked for.
        addr: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Two results cannot be compared (different scenarios, or ops missing): compare like with like.
    #[error("cannot compare: {0}")]
    Mismatch(String),
    /// A driver thread could not be started or panicked.
    #[error("driver thread: {0}")]
    Driver(String),
    /// A file named as input is not one this tool reads (a device, FIFO or directory, or far
    /// larger than its format allows): name the right file.
    #[error("{}: {source}", path.display())]
    InputFile {
        /// The path given.
        path: PathBuf,
        /// Why it was refused.
        #[source]
        source: crate::bounded_read::BoundedReadError,
    },
    /// The metrics address is not an `IP:port` address: write e.g. `127.0.0.1:9464`.
    #[error("metrics address `{addr}`: {reason}")]
    MetricsAddr {
        /// The address given.
        addr: String,
        /// What is wrong with it.
        reason: String,
    },
}
