//! `proofs-check`: walks the written proofs of the paper's Appendix A step by step on concrete
//! random instances and prints, for each numbered step, how many instances were checked, the
//! worst numeric margin and whether it passed. Exits with status 1 if any step fails.
//!
//!   cargo run -p proofs-check -- [--cases N] [--seed S]

mod check;
mod instance;
mod theorem1;
mod theorem2;
mod theorem6;
mod theorem7;

use std::process::ExitCode;

use clap::Parser;

use check::{Proof, Relation};

#[derive(Parser)]
#[command(
    name = "proofs-check",
    about = "Check each step of the paper's proofs on random instances"
)]
struct Args {
    /// Random instances per proof.
    #[arg(long, default_value_t = 200)]
    cases: usize,
    /// Seed of the instances.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

type Walk = (fn() -> Proof, fn(&mut Proof, u64, usize));

fn main() -> ExitCode {
    let args = Args::parse();
    let walks: [Walk; 4] = [
        (theorem1::proof, theorem1::check),
        (theorem2::proof, theorem2::check),
        (theorem6::proof, theorem6::check),
        (theorem7::proof, theorem7::check),
    ];
    let mut failed = 0;
    println!(
        "{:<16} {:<9} {:>9} {:>13} {:>9}  {:<5} statement",
        "proof", "step", "instances", "worst margin", "tolerance", "pass"
    );
    for (declare, check) in walks {
        let mut proof = declare();
        for case in 0..args.cases {
            check(&mut proof, args.seed, case);
        }
        for step in &proof.steps {
            let margin = match step.relation {
                Relation::AtMost => format!("{:.3e}", step.worst_margin),
                Relation::Equal => format!("|Δ|≤{:.1e}", step.worst_margin),
            };
            let pass = if step.passed() { "ok" } else { "FAIL" };
            println!(
                "{:<16} {:<9} {:>9} {:>13} {:>9.1e}  {:<5} {}",
                proof.title,
                step.name,
                step.instances,
                margin,
                step.tolerance,
                pass,
                step.statement
            );
            if let Some(first) = &step.first_failure {
                println!("    {} failures; first: {first}", step.failures);
                failed += 1;
            }
        }
    }
    if failed > 0 {
        eprintln!("error: {failed} proof steps failed");
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
