//! The timed part of `just bench-audit`: audits a shard folder with the same
//! library call as `mcsfau audit` (no JPEG spot check: the bench table has
//! no image bytes) and prints the wall time per phase.
//!
//! `cargo run --release -p mcsfau-pipeline --example audit_bench -- SHARDS REPORT_DIR`

use std::time::Instant;

use pipeline::audit::{self, AuditOptions};
use pipeline::progress::NoProgress;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(shards), Some(out)) = (args.next(), args.next()) else {
        return Err("usage: audit_bench SHARDS REPORT_DIR".into());
    };
    let t = Instant::now();
    let opts = AuditOptions { decode_sample: 0, ..Default::default() };
    let report = audit::run(std::path::Path::new(&shards), &[], &opts, &NoProgress)?;
    let t_run = t.elapsed().as_secs_f64();
    audit::report::write(&report, std::path::Path::new(&out))?;
    let t_all = t.elapsed().as_secs_f64();
    for (phase, secs) in &report.timings {
        println!("phase {phase:<28} {secs:>7.2} s");
    }
    println!("rows {} files {} failed {}", report.rows, report.files, report.failed().len());
    println!(
        "audit {t_run:.2} s, with report {t_all:.2} s, cpus {}",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    Ok(())
}
