//! The check configuration's flags, shared by the command line and the check files
//! (`specs/checks/*.toml` use the same names as keys).

use clap::{Args, ValueEnum};
use gregor_model::check::{CheckConfig, NetworkKind};
use gregor_model::config::Rule;
use gregor_model::types::{Acks, CrashKind, FlushPolicy, Variant};
use serde::Deserialize;

#[derive(Args, Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct CheckFlags {
    /// Brokers, each holding a replica of every partition (replication factor) [default: 3]
    #[arg(long)]
    pub brokers: Option<u32>,
    /// Partitions of the topic; the producer's records go to them in turn [default: 1]
    #[arg(long)]
    pub partitions: Option<u32>,
    /// Records the producer sends [default: 2]
    #[arg(long)]
    pub records: Option<u8>,
    /// The producer's acks [default: all]
    #[arg(long, value_enum)]
    pub acks: Option<AcksFlag>,
    /// min.insync.replicas [default: 2]
    #[arg(long)]
    pub min_isr: Option<u32>,
    /// Which era of Kafka's truncation and fencing rules [default: kip320]
    #[arg(long, value_enum)]
    pub variant: Option<VariantFlag>,
    /// unclean.leader.election.enable: elect any live replica when no ISR member is alive
    #[arg(long)]
    pub unclean_election: bool,
    /// Brokers that may be down at the same time [default: 1]
    #[arg(long)]
    pub crashes: Option<usize>,
    /// What a crash loses: the process (page cache survives) or power (only flushed data
    /// survives) [default: process]
    #[arg(long, value_enum)]
    pub crash: Option<CrashFlag>,
    /// When the log is fsynced [default: never]
    #[arg(long, value_enum)]
    pub flush: Option<FlushFlag>,
    /// The largest leader epoch explored, per partition; the first leader's is 0 [default: 1]
    #[arg(long)]
    pub max_epoch: Option<u32>,
    /// The largest partition epoch explored, per partition (each leader or ISR change bumps
    /// it; the first is 0) [default: 2]
    #[arg(long)]
    pub max_partition_epoch: Option<u32>,
    /// The most broker registrations after formation explored (by restart or after a
    /// session expiry), all brokers together [default: 0]
    #[arg(long)]
    pub max_registrations: Option<u32>,
    /// Per-link FIFO (as TCP) or unordered delivery [default: ordered]
    #[arg(long, value_enum)]
    pub network: Option<NetworkFlag>,
    /// The network may lose any message
    #[arg(long)]
    pub lossy: bool,
    /// The controller may expire the session of a broker that is up (slow or cut off), which
    /// goes on as a zombie; otherwise only crashed brokers' sessions expire
    #[arg(long)]
    pub zombies: bool,
    /// Brokers heartbeat; a zombie learns from the answer that its session expired and
    /// registers again (sessions expire at any moment either way)
    #[arg(long)]
    pub heartbeats: bool,
    /// Retention deletes the oldest records below the HW, at any moment
    #[arg(long)]
    pub retention: bool,
    /// Brokers write their HW checkpoint at any moment (Kafka: every 5 s); without, a restarted
    /// broker finds none (HW 0)
    #[arg(long)]
    pub checkpoints: bool,
    /// The producer's enable.idempotence [default: on]
    #[arg(long, value_enum)]
    pub idempotence: Option<Switch>,
    /// The producer's retries per record [default: 1]
    #[arg(long)]
    pub retries: Option<u8>,
    /// Consumers reading committed records: 1, or 0 to leave the consumer out [default: 1]
    #[arg(long)]
    pub consumers: Option<u8>,
    /// Switch a rule of the protocol off, to see what it prevents (repeatable): kip380-update-fence,
    /// kip380-bounce-fence, kip320-fetch-fence, kip497-partition-epoch-fence,
    /// kip903-broker-epoch-fence, kip966-min-isr-guard, follower-hw-cap, retention-below-hw,
    /// duplicate-detection, offsets-commit-acks-all, commit-generation-fence, group-record-acks-all
    #[arg(long, value_name = "RULE")]
    #[serde(default)]
    pub without: Vec<String>,
    /// Check the consumer group coordinator: group members in place of the producer and the
    /// consumer, committed offsets in __consumer_offsets (1 partition on every broker). Its
    /// defaults: --brokers 2 --partitions 2 --min-isr 1 --members 2 --max-generation 1
    #[arg(long)]
    pub groups: bool,
    /// Group members, with --groups [default: 2]
    #[arg(long)]
    pub members: Option<u8>,
    /// The largest group generation explored, with --groups (the first is 1; a rebalance makes
    /// the next) [default: 1]
    #[arg(long)]
    pub max_generation: Option<i32>,
}

#[derive(Args, Clone, Debug, Default)]
pub struct RunFlags {
    /// Worker threads [default: the machine's cores; at least 2 with --timeout, which
    /// stateright's exhaustive searches only honour with more than one]
    #[arg(long)]
    pub threads: Option<usize>,
    /// Breadth-first search: shortest counterexamples, but keeps every state in memory
    #[arg(long, conflicts_with_all = ["dfs", "simulate"])]
    pub bfs: bool,
    /// Depth-first search with fingerprints (the default): little memory
    #[arg(long, conflicts_with = "simulate")]
    pub dfs: bool,
    /// Random walks from the initial state, seeded with SEED, instead of an exhaustive search:
    /// finds violations too deep for the exhaustive searches but never proves a property holds
    #[arg(long, value_name = "SEED")]
    pub simulate: Option<u64>,
    /// Give up after this many seconds (the result is then incomplete)
    #[arg(long)]
    pub timeout: Option<u64>,
    /// Depth-first search: do not go deeper than this many steps (finds violations within
    /// reach sooner; the result is then incomplete)
    #[arg(long, value_name = "STEPS")]
    pub max_depth: Option<usize>,
    /// Print the result as one JSON object
    #[arg(long)]
    pub json: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug, Deserialize)]
pub enum AcksFlag {
    #[value(name = "all")]
    #[serde(rename = "all")]
    All,
    #[value(name = "1")]
    #[serde(rename = "1")]
    Leader,
    #[value(name = "0")]
    #[serde(rename = "0")]
    None,
}

#[derive(ValueEnum, Clone, Copy, Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VariantFlag {
    Kip320,
    Kip279,
    Kip101,
    HwTruncation,
}

#[derive(ValueEnum, Clone, Copy, Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CrashFlag {
    Process,
    Power,
}

#[derive(ValueEnum, Clone, Copy, Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FlushFlag {
    Never,
    Always,
}

#[derive(ValueEnum, Clone, Copy, Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Switch {
    On,
    Off,
}

#[derive(ValueEnum, Clone, Copy, Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NetworkFlag {
    Ordered,
    Unordered,
}

impl CheckFlags {
    /// Whether any configuration flag was given.
    pub fn any_set(&self) -> bool {
        let CheckFlags {
            brokers,
            partitions,
            records,
            acks,
            min_isr,
            variant,
            unclean_election,
            crashes,
            crash,
            flush,
            max_epoch,
            max_partition_epoch,
            max_registrations,
            network,
            lossy,
            zombies,
            heartbeats,
            retention,
            checkpoints,
            idempotence,
            retries,
            consumers,
            without,
            groups,
            members,
            max_generation,
        } = self;
        brokers.is_some()
            || partitions.is_some()
            || records.is_some()
            || acks.is_some()
            || min_isr.is_some()
            || variant.is_some()
            || *unclean_election
            || crashes.is_some()
            || crash.is_some()
            || flush.is_some()
            || max_epoch.is_some()
            || max_partition_epoch.is_some()
            || max_registrations.is_some()
            || network.is_some()
            || *lossy
            || *zombies
            || *heartbeats
            || *retention
            || *checkpoints
            || idempotence.is_some()
            || retries.is_some()
            || consumers.is_some()
            || !without.is_empty()
            || *groups
            || members.is_some()
            || max_generation.is_some()
    }

    /// The configuration: the defaults with these flags applied, validated.
    pub fn config(&self) -> Result<CheckConfig, String> {
        let mut config = match self.groups {
            true => CheckConfig::groups(),
            false => CheckConfig::default(),
        };
        if !self.groups && (self.members.is_some() || self.max_generation.is_some()) {
            return Err("--members and --max-generation need --groups".to_string());
        }
        if let Some(members) = self.members {
            config.members = members;
        }
        if let Some(max_generation) = self.max_generation {
            config.max_generation = max_generation;
        }
        if let Some(brokers) = self.brokers {
            config.brokers = brokers;
        }
        if let Some(partitions) = self.partitions {
            config.partitions = partitions;
        }
        if let Some(records) = self.records {
            config.records = records;
        }
        if let Some(acks) = self.acks {
            config.acks = match acks {
                AcksFlag::All => Acks::All,
                AcksFlag::Leader => Acks::Leader,
                AcksFlag::None => Acks::None,
            };
        }
        if let Some(min_isr) = self.min_isr {
            config.min_insync_replicas = min_isr;
        }
        if let Some(variant) = self.variant {
            config.variant = match variant {
                VariantFlag::Kip320 => Variant::Kip320,
                VariantFlag::Kip279 => Variant::Kip279,
                VariantFlag::Kip101 => Variant::Kip101,
                VariantFlag::HwTruncation => Variant::HwTruncation,
            };
        }
        config.unclean_leader_election = self.unclean_election;
        if let Some(crashes) = self.crashes {
            config.crashes = crashes;
        }
        if let Some(crash) = self.crash {
            config.crash = match crash {
                CrashFlag::Process => CrashKind::Process,
                CrashFlag::Power => CrashKind::Power,
            };
        }
        if let Some(flush) = self.flush {
            config.flush = match flush {
                FlushFlag::Never => FlushPolicy::Never,
                FlushFlag::Always => FlushPolicy::Always,
            };
        }
        if let Some(max_epoch) = self.max_epoch {
            config.max_epoch = max_epoch;
        }
        if let Some(max_partition_epoch) = self.max_partition_epoch {
            config.max_partition_epoch = max_partition_epoch;
        }
        if let Some(max_registrations) = self.max_registrations {
            config.max_registrations = max_registrations;
        }
        if let Some(network) = self.network {
            config.network = match network {
                NetworkFlag::Ordered => NetworkKind::Ordered,
                NetworkFlag::Unordered => NetworkKind::Unordered,
            };
        }
        config.lossy = self.lossy;
        config.zombies = self.zombies;
        config.heartbeats = self.heartbeats;
        config.retention = self.retention;
        config.checkpoints = self.checkpoints;
        if let Some(idempotence) = self.idempotence {
            config.idempotence = matches!(idempotence, Switch::On);
        }
        for name in &self.without {
            let rule = Rule::from_name(name).ok_or_else(|| {
                let names: Vec<&str> = Rule::ALL.iter().map(|r| r.name()).collect();
                format!("--without {name}: one of {}", names.join(", "))
            })?;
            config.without.insert(rule);
        }
        if let Some(retries) = self.retries {
            config.attempts_max = retries.checked_add(1).ok_or("--retries: at most 254")?;
        }
        if let Some(consumers) = self.consumers {
            config.consumers = consumers;
        }
        validate(&config)?;
        Ok(config)
    }
}

fn validate(config: &CheckConfig) -> Result<(), String> {
    if !(1..=7).contains(&config.brokers) {
        return Err(format!("--brokers {}: between 1 and 7", config.brokers));
    }
    if !(1..=4).contains(&config.partitions) {
        return Err(format!(
            "--partitions {}: between 1 and 4",
            config.partitions
        ));
    }
    if !(1..=9).contains(&config.records) {
        return Err(format!("--records {}: between 1 and 9", config.records));
    }
    if config.min_insync_replicas < 1 || config.min_insync_replicas > config.brokers {
        return Err(format!(
            "--min-isr {}: between 1 and --brokers ({})",
            config.min_insync_replicas, config.brokers
        ));
    }
    if config.crashes > config.brokers as usize {
        return Err(format!(
            "--crashes {}: at most --brokers ({})",
            config.crashes, config.brokers
        ));
    }
    if config.groups && !(1..=3).contains(&config.members) {
        return Err(format!("--members {}: between 1 and 3", config.members));
    }
    if config.groups && !(1..=9).contains(&config.max_generation) {
        return Err(format!(
            "--max-generation {}: between 1 and 9",
            config.max_generation
        ));
    }
    if config.groups && config.consumers > 0 {
        return Err("--groups has no consumer: leave --consumers out".to_string());
    }
    if config.consumers > 1 {
        return Err(format!("--consumers {}: 0 or 1", config.consumers));
    }
    if config.max_partition_epoch < config.max_epoch {
        return Err(format!(
            "--max-partition-epoch {}: at least --max-epoch ({})",
            config.max_partition_epoch, config.max_epoch
        ));
    }
    Ok(())
}
