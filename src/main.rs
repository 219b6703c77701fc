//! `gregor`: the one command-line program, a thin front over the crates.
//!
//! - `gregor check [flags]` checks one configuration of the protocol model;
//! - `gregor check specs/checks` checks every configuration file there against its expectation;
//! - `gregor explore [flags]` serves stateright's Explorer for the configuration;
//! - `gregor controller`, `gregor broker`, `gregor cluster up`: the runtime's processes;
//! - `gregor topics create|describe|delete`, `gregor produce`, `gregor consume`: Kafka's
//!   command-line tools over a small async client (`client`, `tools`);
//! - `gregor bench produce|consume`: a load generator and the brokers' CPU per record.

mod bench;
mod check;
mod client;
mod cluster;
mod flags;
mod groups;
mod shorten;
mod specs;
mod tools;

use clap::{Parser, Subcommand};

/// The checker clones and drops millions of small states: mimalloc's thread-local free lists
/// make that about a third cheaper than the system allocator (README, "Measured").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "gregor",
    version,
    about = "A Kafka broker whose replication protocol is model-checked"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check the protocol model exhaustively: one configuration (flags), or every check file
    /// in a folder (or one file) against its expected outcome.
    Check {
        /// A folder of check files (`specs/checks`) or one `.toml` check file.
        path: Option<PathBuf>,
        #[command(flatten)]
        flags: flags::CheckFlags,
        #[command(flatten)]
        run: flags::RunFlags,
    },
    /// Run the controller: `--config controller.properties` (Kafka's setting names).
    Controller {
        #[arg(long)]
        config: PathBuf,
        /// Write every step of the actor as a JSON line (actor, event in, commands out).
        #[arg(long)]
        trace: Option<PathBuf>,
    },
    /// Run a broker: `--config broker.properties` (node.id, listeners, log.dirs, the
    /// controller's address, ... with Kafka's names and defaults).
    Broker {
        #[arg(long)]
        config: PathBuf,
        /// Write every step of the actor as a JSON line (actor, event in, commands out).
        #[arg(long)]
        trace: Option<PathBuf>,
    },
    /// A local cluster: `gregor cluster up`.
    Cluster {
        #[command(subcommand)]
        command: ClusterCommand,
    },
    /// Create, describe or delete topics on a Kafka cluster.
    Topics {
        #[command(subcommand)]
        command: tools::TopicsCommand,
    },
    /// List, describe, reset the offsets of, or delete consumer groups.
    Groups {
        #[command(subcommand)]
        command: groups::GroupsCommand,
    },
    /// Produce stdin's lines as records; prints PARTITION@OFFSET per record.
    Produce(tools::ProduceArgs),
    /// Print a topic's records to stdout.
    Consume(tools::ConsumeArgs),
    /// Measure a cluster: records/s, MB/s, latencies, the brokers' CPU per million records.
    Bench {
        #[command(subcommand)]
        command: bench::BenchCommand,
    },
    /// Browse the model's state space in stateright's Explorer.
    Explore {
        #[command(flatten)]
        flags: flags::CheckFlags,
        /// Where the Explorer listens.
        #[arg(long, default_value = "127.0.0.1:3000")]
        addr: String,
    },
}

#[derive(Subcommand)]
enum ClusterCommand {
    /// Start a controller and N brokers on 127.0.0.1 as child processes; Ctrl-C stops them.
    Up(cluster::UpArgs),
}

/// Logs to stderr: `RUST_LOG` filters (default: info).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}

/// Runs a controller or broker process; exit 1 when it stopped on a failure, 2 for a bad
/// configuration.
fn run_process(result: Result<Result<(), String>, String>) -> ExitCode {
    match result {
        Err(bad_config) => {
            eprintln!("error: {bad_config}");
            ExitCode::from(2)
        }
        Ok(Err(why)) => {
            tracing::error!("{why}");
            eprintln!("error: {why}");
            ExitCode::from(1)
        }
        Ok(Ok(())) => ExitCode::SUCCESS,
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let usage = error.use_stderr();
            let _ = error.print();
            // clap's help and version go to stdout and succeed; bad usage exits 2.
            return if usage {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let result = match cli.command {
        Command::Topics { command } => return tools::topics(command),
        Command::Groups { command } => return groups::run(command),
        Command::Produce(args) => return tools::produce(args),
        Command::Consume(args) => return tools::consume(args),
        Command::Bench { command } => return bench::run(command),
        Command::Controller { config, trace } => {
            init_logging();
            let settings = gregor_runtime::config::ControllerSettings::load(&config)
                .map_err(|e| e.to_string());
            return run_process(
                settings.map(|s| gregor_runtime::process::run_controller(s, trace)),
            );
        }
        Command::Broker { config, trace } => {
            init_logging();
            let settings =
                gregor_runtime::config::BrokerSettings::load(&config).map_err(|e| e.to_string());
            return run_process(settings.map(|s| gregor_runtime::process::run_broker(s, trace)));
        }
        Command::Cluster {
            command: ClusterCommand::Up(args),
        } => cluster::up(args),
        Command::Check {
            path: Some(path),
            flags,
            run,
        } => {
            if flags.any_set() {
                eprintln!("error: give either a path of check files or flags, not both");
                return ExitCode::from(2);
            }
            specs::check_path(&path, &run)
        }
        Command::Check {
            path: None,
            flags,
            run,
        } => match flags.config() {
            Ok(config) => check::check_one(config, &run).map(|report| report.passed()),
            Err(message) => {
                eprintln!("error: {message}");
                return ExitCode::from(2);
            }
        },
        Command::Explore { flags, addr } => match flags.config() {
            Ok(config) => check::explore(config, &addr).map(|()| true),
            Err(message) => {
                eprintln!("error: {message}");
                return ExitCode::from(2);
            }
        },
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}
