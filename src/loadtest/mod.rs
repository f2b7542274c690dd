//! The load test: scenarios, the open-loop driver, results, plots and the HTML report.
//!
//! A [`Scenario`](scenario::Scenario) (TOML, `scenarios/`) says what load to offer; the
//! [`driver`] offers it to a [`LoadTarget`](target::LoadTarget) on several client threads with
//! latency measured from each op's *intended* start (no coordinated omission) into HDR
//! histograms that never drop a sample; a [`RunResult`](result::RunResult) holds the figures
//! (`result.json`, schema in `docs/loadtest.md`), which [`plot`] and [`report`] draw and
//! `locus compare` checks against an earlier run. [`NoopTarget`](target::NoopTarget) measures the
//! harness itself.
//!
//! ```
//! use locus::loadtest::{driver, scenario, target::NoopTarget};
//! let s = scenario::parse(
//!     "name = \"doc\"\nduration = \"200ms\"\n[arrival]\nkind = \"constant\"\nrate = 1000\n",
//!     "doc.toml",
//! )?;
//! let result = driver::run(&s, &NoopTarget, &driver::RunOptions::default())?;
//! assert!(result.overall.count >= 190);
//! # Ok::<(), locus::loadtest::LoadtestError>(())
//! ```

pub mod analysis;
pub mod builtin;
#[cfg(feature = "gate")]
pub mod compare;
pub mod driver;
pub mod engine_target;
pub mod error;
pub mod graphpeers;
pub mod http;
pub mod http_request;
pub mod live;
pub mod output;
#[cfg(feature = "report")]
pub mod plot;
pub mod procstat;
pub mod recorder;
#[cfg(feature = "report")]
pub mod report;
pub mod result;
pub mod scenario;
pub mod schedule;
#[cfg(feature = "gate")]
pub mod significance;
mod sys_poll;
pub mod target;
pub mod workload;

pub use error::LoadtestError;
