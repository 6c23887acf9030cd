//! `bftbench ledger verify` and `bftbench ledger diff`.

use anyhow::Result;
use std::path::PathBuf;

// The subcommand's about text is the doc comment on its `Command` variant.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: LedgerCommand,
}

#[derive(clap::Subcommand)]
enum LedgerCommand {
    /// Re-check one data directory: every checksum, the hash chain from
    /// genesis, no request ordered twice, and (with --cluster) the replica
    /// a member of the cluster and every commit certificate valid under
    /// the cluster's public keys, and (with --requests) every request a
    /// client saw committed present. Exit 1 if anything is wrong.
    Verify {
        dir: PathBuf,
        /// The cluster file the replica ran in
        #[arg(long)]
        cluster: Option<PathBuf>,
        /// Request ids a client saw committed (`bftbench client
        /// --committed`)
        #[arg(long, value_name = "FILE")]
        requests: Option<PathBuf>,
    },
    /// Compare several replicas' data directories: the prefix they all
    /// hold, how far each is behind, and the first slot where two differ.
    /// Exit 1 if two differ.
    Diff {
        #[arg(required = true, num_args = 2..)]
        dirs: Vec<PathBuf>,
    },
}

pub fn run(args: Args) -> Result<std::process::ExitCode> {
    match args.command {
        LedgerCommand::Verify {
            dir,
            cluster,
            requests,
        } => {
            let v = bftbench::ledger::verify(&dir, cluster.as_deref(), requests.as_deref())?;
            println!(
                "{}: {} replica {}, {} slots, {} requests, fsync {}, {}",
                v.dir,
                v.protocol,
                v.node,
                v.slots,
                v.requests,
                v.fsync,
                if v.clean_shutdown {
                    "shut down cleanly"
                } else {
                    "not shut down cleanly (a crash or a kill)"
                }
            );
            println!("  checksums and hash chain: ok");
            match v.certificates {
                Some(c) => println!(
                    "  certificates checked with the cluster's keys: {} by their own quorum, {} by a later certified block",
                    c.quorum, c.by_chain
                ),
                None => println!("  certificates: not checked (no --cluster)"),
            }
            if let Some(n) = v.expected_requests
                && v.problems.is_empty()
            {
                println!("  all {n} requests of the --requests file are in it");
            }
            for p in &v.problems {
                println!("  PROBLEM: {p}");
            }
            Ok(if v.problems.is_empty() {
                std::process::ExitCode::SUCCESS
            } else {
                std::process::ExitCode::from(1)
            })
        }
        LedgerCommand::Diff { dirs } => {
            let paths: Vec<&std::path::Path> = dirs.iter().map(PathBuf::as_path).collect();
            let (ledgers, report) = bftbench::ledger::diff(&paths)?;
            let longest = report.tips.iter().copied().max().unwrap_or(0);
            println!(
                "{} ledgers of {}: all hold the same slots 1..={}",
                ledgers.len(),
                ledgers.first().map_or("?", |l| l.meta.protocol.as_str()),
                report.common
            );
            for (l, tip) in ledgers.iter().zip(&report.tips) {
                println!(
                    "  {} (replica {}): tip {tip}, {} behind the longest",
                    l.dir.display(),
                    l.meta.node,
                    longest - tip
                );
            }
            match &report.fork {
                None => {
                    println!("  no fork: each ledger is a prefix of the longest");
                    Ok(std::process::ExitCode::SUCCESS)
                }
                Some(fork) => {
                    println!("  FORK at slot {}:", fork.slot);
                    for group in &fork.groups {
                        let names: Vec<String> = group
                            .iter()
                            .filter_map(|&i| ledgers.get(i))
                            .map(|l| l.dir.display().to_string())
                            .collect();
                        println!("    one block: {}", names.join(", "));
                    }
                    Ok(std::process::ExitCode::from(1))
                }
            }
        }
    }
}
