//! The gate's fuzz harness, on stable Rust: mutated fixtures and examples through the whole gate
//! (decoding, YAML, objects, schemas, policies, every report format).
//!
//! ```sh
//! cargo run --release -p tally-validator --example fuzz -- --iterations 1000000 --seed 1
//! ```
//!
//! Iteration `i` of seed `s` is the same input on every machine, so a failure is reproduced
//! with `--seed s --only i`; a failing input is also written to `target/fuzz-failures/`.
//! Exits 1 when any input panics or breaks an invariant (see `tests/support/fuzz.rs`).
//!
//! `--streamed 1` also writes each input to a file and runs the streamed gate on it (what
//! `tally validate FILE` does: two passes, documents read again on their own), which must find
//! exactly what the gate finds on the bytes loaded whole. It is several times slower.

#[path = "../tests/support/fuzz.rs"]
mod fuzz;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use rayon::prelude::*;

fn main() {
    let mut iterations: u64 = 10_000;
    let mut seed: u64 = 1;
    let mut only: Option<u64> = None;
    let mut streamed = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args
            .next()
            .and_then(|v| v.replace('_', "").parse::<u64>().ok());
        match (arg.as_str(), value) {
            ("--iterations", Some(v)) => iterations = v,
            ("--seed", Some(v)) => seed = v,
            ("--only", Some(v)) => only = Some(v),
            ("--streamed", Some(v)) => streamed = v != 0,
            _ => {
                eprintln!("usage: fuzz [--iterations N] [--seed S] [--only I] [--streamed 0|1]");
                std::process::exit(2);
            }
        }
    }
    // Panics are caught and counted per input; keep their default message off the output.
    std::panic::set_hook(Box::new(|_| {}));
    let seeds = fuzz::corpus();
    let (registry, options) = fuzz::setup();
    let failures = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let start = Instant::now();
    let range: Vec<u64> = match only {
        Some(i) => vec![i],
        None => (0..iterations).collect(),
    };
    let out_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/fuzz-failures");
    let scratch = std::env::temp_dir().join(format!("tally-fuzz-{}", std::process::id()));
    if streamed {
        std::fs::create_dir_all(&scratch).expect("a scratch directory");
    }
    range.par_iter().for_each(|&i| {
        let mut rng = fuzz::Rng::new(seed.wrapping_mul(0x1_0000_0001).wrapping_add(i));
        let (name, bytes) = fuzz::mutate(&mut rng, &seeds);
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let report = fuzz::judge(&name, bytes.clone(), &registry, &options);
            fuzz::check(&report, &name, &bytes)?;
            if streamed {
                fuzz::streamed_agrees(&name, &bytes, &report, &options, &scratch, i)?;
            }
            Ok(())
        }));
        let problem = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e),
            Err(panic) => Some(format!(
                "panic: {}",
                panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("?")
            )),
        };
        if let Some(problem) = problem {
            failures.fetch_add(1, Ordering::Relaxed);
            let _ = std::fs::create_dir_all(&out_dir);
            let _ = std::fs::write(out_dir.join(format!("{seed}-{i}-{name}")), &bytes);
            eprintln!("iteration {i} ({name}): {problem}");
        }
        let n = done.fetch_add(1, Ordering::Relaxed) + 1;
        if n.is_multiple_of(100_000) {
            eprintln!("{n} inputs, {:.1} s", start.elapsed().as_secs_f64());
        }
    });
    if streamed {
        let _ = std::fs::remove_dir_all(&scratch);
    }
    let failed = failures.load(Ordering::Relaxed);
    println!(
        "{} inputs (seed {seed}) from {} seeds in {:.1} s: {failed} failures",
        done.load(Ordering::Relaxed),
        seeds.len(),
        start.elapsed().as_secs_f64()
    );
    std::process::exit(i32::from(failed > 0));
}
