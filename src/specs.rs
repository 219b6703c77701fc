//! Check files: `specs/checks/*.toml`, one configuration each with its expected outcome.
//!
//! ```toml
//! description = "Kafka today (KIP-320) with the safe settings"
//! expect = "holds"               # or the name of the property the check must violate
//!                                # (searched breadth-first: the shortest counterexample)
//! brokers = 3                    # any `gregor check` flag, by its long name
//! simulate = 1                   # optional: look for the violation by random walks, seeded
//! max-depth = 21                 # optional: look for it depth-first, no deeper than this
//! timeout = 600                  # optional: give up after this many seconds
//! ```

use crate::check::{run_check, Report};
use crate::flags::{CheckFlags, RunFlags};
use anyhow::{bail, Context};
use gregor_model::check::properties::ALWAYS;
use std::path::{Path, PathBuf};

struct CheckFile {
    path: PathBuf,
    description: String,
    expect: String,
    /// `simulate = SEED`: look for the violation by seeded random walks (a space too large to
    /// search breadth-first within CI's time).
    simulate: Option<u64>,
    /// `timeout = SECS`: give up after this long (the command line's `--timeout` wins).
    timeout: Option<u64>,
    /// `max-depth = STEPS`: look for the violation depth-first, no deeper than this (a space
    /// too large to search breadth-first in memory).
    max_depth: Option<u64>,
    flags: CheckFlags,
}

/// Checks every file in a folder (or one file); prints a table; true if all outcomes match.
pub fn check_path(path: &Path, run: &RunFlags) -> anyhow::Result<bool> {
    let files = if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("reading {}", path.display()))?
            .map(|entry| entry.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        files.retain(|p| p.extension().is_some_and(|e| e == "toml"));
        files.sort();
        if files.is_empty() {
            bail!("{}: no .toml check files", path.display());
        }
        files
    } else {
        vec![path.to_path_buf()]
    };
    let checks = files
        .iter()
        .map(|file| parse(file))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut rows = Vec::new();
    for check in &checks {
        let config = check
            .flags
            .config()
            .map_err(|e| anyhow::anyhow!("{}: {e}", check.path.display()))?;
        eprintln!("checking {}: {}", check.path.display(), check.description);
        let stop_at = ALWAYS.iter().copied().find(|name| *name == check.expect);
        // A violation is looked for breadth-first, for the shortest counterexample, unless
        // --dfs or random walks are asked for; `holds` needs the whole space, which DFS covers
        // in little memory (random walks cannot show it).
        let simulate = run
            .simulate
            .or(check.simulate)
            .filter(|_| stop_at.is_some() && !run.bfs && !run.dfs);
        let max_depth = run
            .max_depth
            .or(check.max_depth.map(|d| d as usize))
            .filter(|_| stop_at.is_some() && !run.bfs && simulate.is_none());
        let search = RunFlags {
            bfs: run.bfs
                || (stop_at.is_some() && !run.dfs && simulate.is_none() && max_depth.is_none()),
            simulate,
            max_depth,
            // A depth-bounded search that remembers states does not go on below a state it
            // first met deeper than it meets it again: what it finds depends on the order of
            // its steps, which one thread keeps the same from run to run.
            threads: run.threads.or(max_depth.map(|_| 1)),
            timeout: run.timeout.or(check.timeout),
            ..run.clone()
        };
        let report = run_check(config, &search, stop_at)?;
        let (found, matched) = outcome(&report, &check.expect);
        eprintln!(
            "  -> {found} ({})",
            if matched { "as expected" } else { "UNEXPECTED" }
        );
        rows.push((check, report, found, matched));
    }
    println!(
        "{:<28} {:<22} {:<22} {:>6} {:>11} {:>8}",
        "check", "expected", "found", "match", "unique", "seconds"
    );
    for (check, report, found, matched) in &rows {
        let name = check.path.file_stem().unwrap_or_default().to_string_lossy();
        println!(
            "{:<28} {:<22} {:<22} {:>6} {:>11} {:>8.1}",
            name,
            check.expect,
            found,
            if *matched { "yes" } else { "NO" },
            report.unique_states,
            report.seconds
        );
    }
    for (check, report, _, matched) in &rows {
        if *matched && check.expect != "holds" {
            println!("\n{} found, as expected:", check.path.display());
            crate::check::print_violation(report, &check.expect);
        }
        if !matched {
            println!("\n{} did not meet its expectation:", check.path.display());
            crate::check::print_report(report);
        }
    }
    Ok(rows.iter().all(|(_, _, _, matched)| *matched))
}

/// What the check found, and whether that is what the file expects.
fn outcome(report: &Report, expect: &str) -> (String, bool) {
    let violated = report.violated();
    if expect == "holds" {
        let found = if report.passed() {
            "holds".to_string()
        } else if let Some(first) = violated.first() {
            format!("violates {first}")
        } else {
            "incomplete".to_string()
        };
        let matched = report.passed();
        return (found, matched);
    }
    match violated.iter().find(|v| **v == expect) {
        Some(name) => (format!("violates {name}"), true),
        None => match violated.first() {
            Some(other) => (format!("violates {other}"), false),
            None => ("no violation".to_string(), false),
        },
    }
}

fn parse(path: &Path) -> anyhow::Result<CheckFile> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut table: toml::Table =
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let mut take = |key: &str| -> anyhow::Result<String> {
        match table.remove(key) {
            Some(toml::Value::String(value)) => Ok(value),
            Some(_) => bail!("{}: `{key}` must be a string", path.display()),
            None => bail!("{}: missing `{key}`", path.display()),
        }
    };
    let description = take("description")?;
    let expect = take("expect")?;
    if expect != "holds" && !ALWAYS.contains(&expect.as_str()) {
        bail!(
            "{}: expect = {expect:?}: \"holds\" or one of {}",
            path.display(),
            ALWAYS.join(", ")
        );
    }
    let mut take_number = |key: &str| -> anyhow::Result<Option<u64>> {
        match table.remove(key) {
            Some(toml::Value::Integer(value)) if value >= 0 => Ok(Some(value as u64)),
            Some(_) => bail!("{}: `{key}` must be a number >= 0", path.display()),
            None => Ok(None),
        }
    };
    let simulate = take_number("simulate")?;
    let timeout = take_number("timeout")?;
    let max_depth = take_number("max-depth")?;
    if (simulate.is_some() || max_depth.is_some()) && expect == "holds" {
        bail!(
            "{}: `simulate` and `max-depth` find violations but cannot show that a \
             configuration holds",
            path.display()
        );
    }
    let flags: CheckFlags = toml::Value::Table(table)
        .try_into()
        .with_context(|| format!("{}: bad configuration key", path.display()))?;
    Ok(CheckFile {
        path: path.to_path_buf(),
        description,
        expect,
        simulate,
        timeout,
        max_depth,
        flags,
    })
}
