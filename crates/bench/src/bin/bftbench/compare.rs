//! `bftbench compare`: the whole suite, its sim-vs-QUIC section and the report.

use crate::common::{exit_for, threads};
use crate::saturate::saturate_command;
use crate::sweep::sweep_command;
use anyhow::{Context, Result};
use bftbench::scenario::{Overrides, Scenario, display_path};
use std::path::{Path, PathBuf};
use std::time::Instant;

// The subcommand's about text is the doc comment on its `Command` variant.
#[derive(clap::Args)]
pub struct Args {
    /// The suite file
    #[arg(default_value = "bench-configs/compare.toml")]
    suite: PathBuf,
    /// Overrides the suite's out_dir
    #[arg(long)]
    out_dir: Option<PathBuf>,
    #[arg(long)]
    threads: Option<usize>,
}

pub fn run(args: Args) -> Result<std::process::ExitCode> {
    let Args {
        suite,
        out_dir,
        threads,
    } = args;
    compare_command(&suite, out_dir, threads)
}

fn compare_command(
    suite_path: &Path,
    out_dir: Option<PathBuf>,
    threads_arg: Option<usize>,
) -> Result<std::process::ExitCode> {
    use bftbench::suite::Suite;
    let started = Instant::now();
    let load_average = bftbench::calibrate::load_average();
    let suite = Suite::load(&display_path(suite_path))?;
    let out = out_dir.unwrap_or_else(|| suite.out_dir.clone());
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut sections = Vec::new();
    let mut all = Vec::new();
    let mut knees = Vec::new();
    for sweep in &suite.sweeps {
        let scenario = Scenario::load(&display_path(&sweep.scenario), &Overrides::default())?;
        eprintln!(
            "== {}: {}",
            sweep.name,
            display_path(&sweep.scenario).display()
        );
        let dir = out.join(&sweep.name);
        bftbench::suite::clear_section(&dir)?;
        let file = display_path(&sweep.scenario);
        let records = match &sweep.saturate {
            Some(cfg) => {
                let (k, records) = saturate_command(&scenario, &file, cfg, &dir, threads_arg)?;
                knees.extend(k);
                records
            }
            None => sweep_command(&scenario, &file, &dir, threads_arg)?,
        };
        for (file, r) in &records {
            all.push((format!("{}/{file}", sweep.name), r.clone()));
        }
        sections.push((sweep.clone(), records));
    }
    bftbench::sweep::write_csv(&out, &all)?;
    let mut plots = bftbench::plot::plot(&all, &knees, &out)?;
    let agreement = match &suite.sim_vs_quic {
        None => None,
        Some(v) => {
            let (rows, more) = sim_vs_quic_command(v, &out, threads_arg)?;
            plots.extend(more);
            Some((v, rows))
        }
    };
    let timelines = match &suite.timeline {
        None => Vec::new(),
        Some(t) => {
            let file = display_path(&t.scenario);
            eprintln!("== timeline: {}", file.display());
            let s = Scenario::load(&file, &Overrides::default())?;
            let dir = out.join("timeline");
            bftbench::suite::clear_section(&dir)?;
            bftbench::timeline::draw(&s, &file, t.from, t.to, t.after_recovery, &dir)?
        }
    };
    bftbench::html::copy_scenarios(&out, &sections)?;
    let html = bftbench::html::write(&bftbench::html::Page {
        out_dir: &out,
        plots: &plots,
        sections: &sections,
        knees: &knees,
        agreement: agreement.as_ref().map(|(v, rows)| (*v, rows.as_slice())),
        timelines: suite.timeline.as_ref().map(|t| (t, timelines.as_slice())),
        commit: &bftbench::record::git_rev(),
        load_average,
        elapsed_s: started.elapsed().as_secs_f64(),
    })?;
    print!("{}", bftbench::report::table(&all));
    if !knees.is_empty() {
        print!("\n{}", bftbench::saturate::table(&knees));
    }
    println!(
        "\nrecords, summary.csv and plots in {}/; open {}",
        out.display(),
        html.display()
    );
    println!("finished in {:.1}s", started.elapsed().as_secs_f64());
    Ok(exit_for(&all))
}

/// The sim-vs-QUIC section: the sweep in both runtimes, then both at half
/// the QUIC saturation; writes the records, the CSV and the plot.
fn sim_vs_quic_command(
    v: &bftbench::suite::SimVsQuic,
    out: &Path,
    threads_arg: Option<usize>,
) -> Result<(Vec<bftbench::agreement::Row>, Vec<PathBuf>)> {
    use bftbench::agreement;
    let file = display_path(&v.scenario);
    eprintln!("== sim-vs-quic: {}", file.display());
    let base = Scenario::load(&file, &Overrides::default())?;
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let dir = out.join("sim-vs-quic");
    bftbench::suite::clear_section(&dir)?;
    let points = agreement::points(&base, &file, cores)?;
    let mut records = bftbench::sweep::run_points(&points, &dir, threads(threads_arg), &|p, _| {
        tracing::info!(point = %p.name, "done");
    })?;
    let half = agreement::half_points(&base, &file, cores, &records)?;
    records.extend(bftbench::sweep::run_points(
        &half,
        &dir,
        threads(threads_arg),
        &|p, _| {
            tracing::info!(point = %p.name, "done");
        },
    )?);
    bftbench::sweep::write_csv(&dir, &records)?;
    let rows = agreement::rows(&records);
    let csv = agreement::write_csv(out, &rows)?;
    print!("{}", agreement::csv(&rows));
    println!("sim-vs-QUIC comparison in {}", csv.display());
    let plots = bftbench::plot::plot_agreement(&records, out, cores)?;
    Ok((rows, plots))
}
