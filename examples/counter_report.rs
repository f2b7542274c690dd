//! Checks a machine's counters: counts a small known workload with every event and prints one
//! line per event — its count and scaling factor, or why it cannot be counted here.
//!
//! ```text
//! cargo run --release --example counter_report
//! ```
//! Exits 0 whenever it could ask the kernel (missing events are an answer, not a failure).

use std::process::ExitCode;

use locus::counters::{CpuModel, Event, measure};

fn main() -> ExitCode {
    // A workload with a known shape: 16 MiB written then summed twice.
    let work = || {
        let mut v = vec![0u64; 2 << 20];
        for (i, x) in v.iter_mut().enumerate() {
            *x = i as u64;
        }
        let a: u64 = v.iter().sum();
        let b: u64 = v.iter().rev().sum();
        std::hint::black_box(a ^ b)
    };
    println!("cpu: {}", CpuModel::detect());
    match measure(&Event::ALL, work) {
        Ok((_, report)) => {
            for line in report.lines() {
                println!("{line}");
            }
            for note in &report.notes {
                println!("note: {note}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("counter_report: {e}");
            ExitCode::FAILURE
        }
    }
}
