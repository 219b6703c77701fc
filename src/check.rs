//! Runs the model checker on one configuration and reports: progress on stderr about once a
//! second, then one line per property, counterexamples as numbered protocol steps, and totals.

use crate::flags::RunFlags;
use crate::shorten::shorten;
use gregor_model::check::describe::describe_path;
use gregor_model::check::properties::{hint, ALWAYS};
use gregor_model::check::{representative, CheckConfig, Model};
use serde::Serialize;
use stateright::{Checker, HasDiscoveries, Model as _, UniformChooser};
use std::collections::BTreeSet;
use std::io::Write;
use std::time::{Duration, Instant};

/// What the checker found for one property.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum Outcome {
    /// An `Always` property held in every state of an exhausted space.
    Holds,
    /// An `Always` property failed; the steps lead from the initial state to the failure.
    Violated { steps: Vec<String> },
    /// A `Sometimes` property held in some state; the steps lead there.
    Reached { steps: Vec<String> },
    /// A `Sometimes` property held in no state of an exhausted space.
    NotReached,
    /// The search stopped (timeout, or its question was answered) before deciding this one.
    Undecided,
}

#[derive(Clone, Debug, Serialize)]
pub struct PropertyReport {
    pub name: &'static str,
    pub expectation: &'static str,
    #[serde(flatten)]
    pub outcome: Outcome,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub config: CheckConfig,
    pub search: &'static str,
    pub properties: Vec<PropertyReport>,
    /// Whether the whole state space was explored.
    pub exhaustive: bool,
    pub states: usize,
    pub unique_states: usize,
    pub depth: usize,
    pub seconds: f64,
    pub states_per_second: f64,
}

impl Report {
    /// Every `Always` property holds and every `Sometimes` one is reached.
    pub fn passed(&self) -> bool {
        self.properties
            .iter()
            .all(|p| matches!(p.outcome, Outcome::Holds | Outcome::Reached { .. }))
    }

    pub fn violated(&self) -> Vec<&'static str> {
        self.properties
            .iter()
            .filter(|p| matches!(p.outcome, Outcome::Violated { .. }))
            .map(|p| p.name)
            .collect()
    }
}

/// Checks one configuration, printing progress and the report.
pub fn check_one(config: CheckConfig, run: &RunFlags) -> anyhow::Result<Report> {
    let report = run_check(config, run, None)?;
    if run.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_report(&report);
    }
    Ok(report)
}

/// Runs the checker; with `stop_at`, it stops as soon as that property has a discovery.
pub fn run_check(
    config: CheckConfig,
    run: &RunFlags,
    stop_at: Option<&'static str>,
) -> anyhow::Result<Report> {
    let mut threads = run
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if run.timeout.is_some() && run.simulate.is_none() {
        // stateright 0.31's exhaustive searches look at their deadline only when they share
        // work between threads: with one thread they would ignore the timeout.
        threads = threads.max(2);
    }
    let model = match run.simulate {
        Some(_) => config.clone().into_model().with_no_op_steps(),
        None => config.clone().into_model(),
    };
    let mut builder = model.checker().threads(threads);
    if let Some(seconds) = run.timeout {
        builder = builder.timeout(Duration::from_secs(seconds));
    }
    if let Some(depth) = run.max_depth {
        builder = builder.target_max_depth(depth);
    }
    if let Some(name) = stop_at {
        builder = builder.finish_when(HasDiscoveries::AnyOf(BTreeSet::from([name])));
    }
    let started = Instant::now();
    let (search, report) = if let Some(seed) = run.simulate {
        (
            "simulation",
            wait(
                builder.spawn_simulation(seed, UniformChooser),
                &config,
                started,
                run,
                stop_at,
            ),
        )
    } else if run.bfs {
        (
            "bfs",
            wait(builder.spawn_bfs(), &config, started, run, stop_at),
        )
    } else {
        (
            "dfs",
            wait(
                builder.symmetry_fn(representative).spawn_dfs(),
                &config,
                started,
                run,
                stop_at,
            ),
        )
    };
    Ok(Report { search, ..report })
}

/// Prints progress until the checker is done, then gathers its findings.
fn wait(
    checker: impl Checker<Model>,
    config: &CheckConfig,
    started: Instant,
    run: &RunFlags,
    stop_at: Option<&'static str>,
) -> Report {
    let mut last_report = Instant::now();
    while !checker.is_done() {
        std::thread::sleep(Duration::from_millis(50));
        if last_report.elapsed() >= Duration::from_secs(1) {
            last_report = Instant::now();
            let seconds = started.elapsed().as_secs_f64();
            eprintln!(
                "states={} unique={} depth={} states/s={:.0}",
                checker.state_count(),
                checker.unique_state_count(),
                checker.max_depth(),
                checker.state_count() as f64 / seconds.max(1e-9),
            );
        }
    }
    let checker = checker.join();
    let seconds = started.elapsed().as_secs_f64();
    let discoveries = checker.discoveries();
    let model = checker.model();
    let timed_out = run
        .timeout
        .is_some_and(|limit| seconds >= limit as f64 - 0.5);
    // The search ends early on a timeout, when every property has a discovery, or when the
    // one property asked for has one; otherwise the space was exhausted. Random walks never
    // exhaust it.
    let all_found = discoveries.len() == model.properties().len();
    let answered = stop_at.is_some_and(|name| discoveries.contains_key(name));
    let exhaustive =
        !timed_out && !all_found && !answered && run.simulate.is_none() && run.max_depth.is_none();
    let properties = model
        .properties()
        .iter()
        .map(|property| {
            let always = ALWAYS.contains(&property.name);
            let steps = discoveries.get(property.name).map(|path| {
                let path = path.clone().into_vec();
                // Breadth-first paths are already the shortest.
                let path = match run.bfs {
                    true => path,
                    false => shorten(model, property, path),
                };
                describe_path(config, &path)
            });
            let outcome = match (always, steps) {
                (true, Some(steps)) => Outcome::Violated { steps },
                (false, Some(steps)) => Outcome::Reached { steps },
                (true, None) if exhaustive => Outcome::Holds,
                (false, None) if exhaustive => Outcome::NotReached,
                (_, None) => Outcome::Undecided,
            };
            PropertyReport {
                name: property.name,
                expectation: if always { "always" } else { "sometimes" },
                outcome,
            }
        })
        .collect();
    Report {
        config: config.clone(),
        search: "",
        properties,
        exhaustive,
        states: checker.state_count(),
        unique_states: checker.unique_state_count(),
        depth: checker.max_depth(),
        seconds,
        states_per_second: checker.state_count() as f64 / seconds.max(1e-9),
    }
}

/// Prints one property's counterexample, as `print_report` does.
pub fn print_violation(report: &Report, name: &str) {
    let mut out = std::io::stdout().lock();
    for property in report.properties.iter().filter(|p| p.name == name) {
        if let Outcome::Violated { steps } = &property.outcome {
            write_violation(&mut out, property.name, steps);
        }
    }
}

fn write_violation(out: &mut impl Write, name: &str, steps: &[String]) {
    let _ = writeln!(out, "{name}: VIOLATED");
    for (index, step) in steps.iter().enumerate() {
        let _ = writeln!(out, "  {}. {step}", index + 1);
    }
}

pub fn print_report(report: &Report) {
    let mut out = std::io::stdout().lock();
    for property in &report.properties {
        let _ = match &property.outcome {
            Outcome::Holds => writeln!(out, "{}: holds", property.name),
            Outcome::Reached { .. } => writeln!(out, "{}: reached", property.name),
            Outcome::NotReached => writeln!(
                out,
                "{}: not reached ({})",
                property.name,
                hint(property.name)
            ),
            Outcome::Undecided => writeln!(out, "{}: undecided (search incomplete)", property.name),
            Outcome::Violated { steps } => {
                write_violation(&mut out, property.name, steps);
                Ok(())
            }
        };
    }
    let _ = writeln!(
        out,
        "states={} unique={} depth={} seconds={:.1} states/s={:.0}{}",
        report.states,
        report.unique_states,
        report.depth,
        report.seconds,
        report.states_per_second,
        if report.exhaustive {
            ""
        } else {
            " (search incomplete)"
        }
    );
}

/// Serves stateright's Explorer on `addr` until interrupted.
pub fn explore(config: CheckConfig, addr: &str) -> anyhow::Result<()> {
    // The Explorer panics if it cannot bind: try first, for a clear error.
    drop(
        std::net::TcpListener::bind(addr)
            .map_err(|e| anyhow::anyhow!("--addr {addr}: cannot listen: {e}"))?,
    );
    let _checker = config.into_model().checker().serve(addr);
    eprintln!("Explorer on http://{addr}/ (Ctrl-C to stop)");
    loop {
        std::thread::park();
    }
}
