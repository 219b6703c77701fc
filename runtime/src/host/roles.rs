//! The controller and the broker as the host runs them: the model's handlers, what their saves
//! are on disk, what a restarted process finds, and what the host reads off a broker's state
//! for the transport (whom to dial) and the Kafka front end (the topic directory).

use super::{HostedRole, Links, Message};
use crate::storage::checkpoint::write_atomic;
use crate::storage::{DataDir, DiskDurable, DiskLog, DiskLogConfig, TopicPartition as StorageTp};
use gregor_model::broker::{self, BrokerSave, BrokerState, BrokerStorage};
use gregor_model::config::{BrokerConfig, ControllerConfig, TopicConfig};
use gregor_model::controller::{self, ControllerState};
use gregor_model::effects::{Address, Effects};
use gregor_model::log::ReplicaLog;
use gregor_model::message::{BrokerInfo, Timer};
use gregor_model::types::{BrokerEpoch, Map, Offset, TopicId, TopicPartition};
use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// The controller's saved state, in its data folder.
const CONTROLLER_STATE: &str = "controller-state";
/// A broker's last broker epoch, in its data folder.
const BROKER_EPOCH: &str = "broker-epoch";
/// A partition folder's topic id (Kafka keeps its topic id there too).
const PARTITION_METADATA: &str = "partition.metadata";

/// The controller, saving its whole state to `<dir>/controller-state` with every decision.
pub struct ControllerRole {
    config: ControllerConfig,
    path: PathBuf,
    saved: Option<ControllerState>,
    state: Option<ControllerState>,
}

impl ControllerRole {
    /// The controller over its data folder, with what it saved there before, if anything.
    pub fn open(config: ControllerConfig, dir: &Path) -> Result<ControllerRole, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let path = dir.join(CONTROLLER_STATE);
        let saved = match std::fs::read(&path) {
            Ok(bytes) => Some(postcard::from_bytes(&bytes).map_err(|e| {
                format!(
                    "{}: not a controller state this version can read ({e})",
                    path.display()
                )
            })?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        Ok(ControllerRole {
            config,
            path,
            saved,
            state: None,
        })
    }
}

impl HostedRole for ControllerRole {
    type Save = ControllerState;

    fn address(&self) -> Address {
        Address::Controller
    }

    fn start(&mut self, out: &mut Effects<Message, ControllerState>) {
        let saved = self.saved.take();
        self.state = Some(controller::on_start(&self.config, saved.as_ref(), out));
    }

    fn on_msg(&mut self, from: Address, msg: Message, out: &mut Effects<Message, ControllerState>) {
        let mut state = Cow::Owned(self.state.take().expect("started"));
        controller::on_msg(&self.config, &mut state, from, msg, out);
        self.state = Some(state.into_owned());
    }

    fn on_timer(&mut self, timer: &Timer, out: &mut Effects<Message, ControllerState>) {
        let mut state = Cow::Owned(self.state.take().expect("started"));
        controller::on_timeout(&self.config, &mut state, timer, out);
        self.state = Some(state.into_owned());
    }

    fn save(&mut self, saved: ControllerState) -> Result<(), String> {
        let bytes = postcard::to_stdvec(&saved).map_err(|e| e.to_string())?;
        write_atomic(&self.path, &bytes).map_err(|e| format!("{}: {e}", self.path.display()))
    }
}

/// What the Kafka front end reads of a broker's metadata: topics by name and id.
#[derive(Clone, Debug, Default)]
pub struct Directory {
    pub topics: HashMap<String, DirectoryTopic>,
    pub names: HashMap<TopicId, String>,
    pub brokers: Vec<BrokerInfo>,
}

#[derive(Clone, Debug)]
pub struct DirectoryTopic {
    pub id: TopicId,
    pub uuid: u128,
    pub partitions: u32,
    pub config: TopicConfig,
}

impl DirectoryTopic {
    /// The partition a Kafka request names by index, if the topic has it.
    pub fn partition(&self, index: i32) -> Option<TopicPartition> {
        let index = u32::try_from(index).ok().filter(|i| *i < self.partitions)?;
        Some(TopicPartition {
            topic_id: self.id,
            partition: index,
        })
    }
}

/// The directory as last published; the front end takes a snapshot per request.
pub type SharedDirectory = Arc<RwLock<Arc<Directory>>>;

pub fn snapshot(directory: &SharedDirectory) -> Arc<Directory> {
    directory.read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// A broker over its data folder.
pub struct BrokerRole {
    config: BrokerConfig,
    log_config: DiskLogConfig,
    saved: Option<BrokerStorage<DiskDurable>>,
    state: Option<BrokerState<DiskLog>>,
    /// The partitions whose folder has its `partition.metadata`.
    labelled: BTreeSet<TopicPartition>,
    /// The listener peers dial for the broker-to-broker links.
    inter_broker_listener: String,
    published_brokers: Vec<BrokerInfo>,
    published_topics: usize,
    /// What the directory showed of every topic (partition counts, settings), as last
    /// published, folded into one number.
    published_signature: u64,
    directory: SharedDirectory,
}

impl BrokerRole {
    /// The broker over its data folder: what a restart finds there (its last broker epoch,
    /// each partition folder with its topic id, the HW checkpoint).
    pub fn open(
        config: BrokerConfig,
        log_config: DiskLogConfig,
        inter_broker_listener: String,
        directory: SharedDirectory,
    ) -> Result<BrokerRole, String> {
        let dir = log_config.data_dir.path().to_path_buf();
        let saved = restart_storage(&dir, &log_config.data_dir)?;
        let labelled = saved
            .as_ref()
            .map(|s| s.logs.keys().copied().collect())
            .unwrap_or_default();
        Ok(BrokerRole {
            config,
            log_config,
            saved,
            state: None,
            labelled,
            inter_broker_listener,
            published_brokers: Vec::new(),
            published_topics: usize::MAX,
            published_signature: 0,
            directory,
        })
    }

    fn state(&self) -> &BrokerState<DiskLog> {
        self.state.as_ref().expect("started")
    }

    /// Writes `partition.metadata` into the folder of every replica created since the last
    /// step (before any later step can append to it).
    fn label_new_partitions(&mut self) -> Result<(), String> {
        let state = self.state.as_ref().expect("started");
        for (tp, replica) in state.replicas.iter() {
            if self.labelled.contains(tp) {
                continue;
            }
            let durable = replica.log.durable();
            let folder = self
                .log_config
                .data_dir
                .path()
                .join(format!("{}-{}", durable.topic, durable.partition));
            let text = format!("version: 0\ntopic_id: {}\n", tp.topic_id.0);
            let path = folder.join(PARTITION_METADATA);
            write_atomic(&path, text.as_bytes()).map_err(|e| format!("{}: {e}", path.display()))?;
            self.labelled.insert(*tp);
        }
        let held: BTreeSet<TopicPartition> = state.replicas.keys().copied().collect();
        self.labelled.retain(|tp| held.contains(tp));
        Ok(())
    }

    fn publish_directory(&mut self) {
        let state = self.state.as_ref().expect("started");
        let metadata = &state.metadata;
        // What the directory shows of each topic besides its name — partition count (topics
        // only grow, by CreatePartitions) and settings (IncrementalAlterConfigs) — folded into
        // one number per step: a change of any topic changes it.
        let signature: u64 = metadata
            .topics
            .iter()
            .map(|(id, t)| {
                let config = &t.info.config;
                let shown = u64::from(t.info.partitions) << 32
                    | u64::from(config.min_insync_replicas) << 1
                    | u64::from(config.unclean_leader_election);
                (id.0 + 1)
                    .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                    .rotate_left(17)
                    ^ shown
            })
            .fold(0u64, u64::wrapping_add);
        if metadata.topics.len() == self.published_topics
            && signature == self.published_signature
            && metadata.brokers == self.published_brokers
            && !self.directory_stale(state)
        {
            return;
        }
        let mut directory = Directory {
            brokers: metadata.brokers.clone(),
            ..Directory::default()
        };
        for (id, topic) in metadata.topics.iter() {
            directory.names.insert(*id, topic.info.name.clone());
            directory.topics.insert(
                topic.info.name.clone(),
                DirectoryTopic {
                    id: *id,
                    uuid: topic.info.uuid,
                    partitions: topic.info.partitions,
                    config: topic.info.config,
                },
            );
        }
        self.published_topics = metadata.topics.len();
        self.published_signature = signature;
        *self.directory.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(directory);
    }

    /// Whether a topic was replaced (deleted and created again) without the count changing.
    fn directory_stale(&self, state: &BrokerState<DiskLog>) -> bool {
        let directory = snapshot(&self.directory);
        state
            .metadata
            .topics
            .keys()
            .any(|id| !directory.names.contains_key(id))
    }

    /// Dials every live broker with a larger id than this one (the smaller id dials).
    fn dial_peers(&mut self, links: &Arc<Links>) {
        let brokers = &self.state.as_ref().expect("started").metadata.brokers;
        if *brokers == self.published_brokers {
            return;
        }
        for broker in brokers.iter().filter(|b| b.id > self.config.id) {
            let endpoint = broker
                .endpoints
                .iter()
                .find(|e| e.listener == self.inter_broker_listener);
            let Some(endpoint) = endpoint else {
                tracing::warn!(
                    "broker {} registered no {} listener; it cannot be reached",
                    broker.id,
                    self.inter_broker_listener
                );
                continue;
            };
            match (endpoint.host.as_str(), endpoint.port).to_socket_addrs() {
                Ok(mut addresses) => {
                    if let Some(address) = addresses.next() {
                        links.dial(Address::Broker(broker.id), address);
                    }
                }
                Err(e) => tracing::warn!(
                    "broker {}: {}:{}: {e}",
                    broker.id,
                    endpoint.host,
                    endpoint.port
                ),
            }
        }
        self.published_brokers = brokers.clone();
    }

    fn storage_tp(&self, tp: &TopicPartition) -> Option<StorageTp> {
        let replica = self.state().replicas.get(tp)?;
        let durable = replica.log.durable();
        StorageTp::new(&durable.topic, durable.partition).ok()
    }
}

impl HostedRole for BrokerRole {
    type Save = BrokerSave;

    fn address(&self) -> Address {
        Address::Broker(self.config.id)
    }

    fn start(&mut self, out: &mut Effects<Message, BrokerSave>) {
        let saved = self.saved.take();
        self.state = Some(broker::on_start::<DiskLog>(
            &self.config,
            &self.log_config,
            saved.as_ref(),
            out,
        ));
    }

    fn on_msg(&mut self, from: Address, msg: Message, out: &mut Effects<Message, BrokerSave>) {
        let mut state = Cow::Owned(self.state.take().expect("started"));
        broker::on_msg(&self.config, &self.log_config, &mut state, from, msg, out);
        self.state = Some(state.into_owned());
    }

    fn on_timer(&mut self, timer: &Timer, out: &mut Effects<Message, BrokerSave>) {
        let mut state = Cow::Owned(self.state.take().expect("started"));
        broker::on_timeout(&self.config, &mut state, timer, out);
        self.state = Some(state.into_owned());
    }

    fn save(&mut self, saved: BrokerSave) -> Result<(), String> {
        let data_dir = self.log_config.data_dir.clone();
        match saved {
            BrokerSave::BrokerEpoch(epoch) => {
                let path = data_dir.path().join(BROKER_EPOCH);
                write_atomic(&path, format!("{}\n", epoch.0).as_bytes())
                    .map_err(|e| format!("{}: {e}", path.display()))
            }
            BrokerSave::HighWatermarks(high_watermarks) => {
                for (tp, hw) in high_watermarks.iter() {
                    if let Some(name) = self.storage_tp(tp) {
                        data_dir.set_high_watermark(&name, hw.0);
                    }
                }
                data_dir
                    .checkpoint_high_watermarks()
                    .map_err(|e| e.to_string())
            }
        }
    }

    fn after_step(&mut self, links: &Arc<Links>) {
        if let Err(why) = self.label_new_partitions() {
            // The folder cannot be labelled: the disk is failing. The next log operation will
            // fail too and stop the broker; until then, say so.
            tracing::error!("{why}");
        }
        self.publish_directory();
        self.dial_peers(links);
    }

    fn shutdown(&mut self) {
        let Some(state) = self.state.as_mut() else {
            return;
        };
        for (tp, replica) in state.replicas.iter_mut() {
            if let Err(e) = replica.log.flush() {
                tracing::warn!("flushing {tp} at shutdown: {e}");
            }
        }
        let data_dir = &self.log_config.data_dir;
        if let Err(e) = data_dir.checkpoint_recovery_points() {
            tracing::warn!("{e}");
        }
    }
}

/// What a restarted broker finds in its data folder; `None` on its first start.
fn restart_storage(
    dir: &Path,
    data_dir: &Arc<DataDir>,
) -> Result<Option<BrokerStorage<DiskDurable>>, String> {
    let epoch_path = dir.join(BROKER_EPOCH);
    let broker_epoch = match std::fs::read_to_string(&epoch_path) {
        Ok(text) => BrokerEpoch(text.trim().parse().map_err(|_| {
            format!(
                "{}: {:?} is not a broker epoch",
                epoch_path.display(),
                text.trim()
            )
        })?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", epoch_path.display())),
    };
    let mut logs = Map::default();
    let mut high_watermarks = Map::default();
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries {
        let folder = entry.map_err(|e| format!("{}: {e}", dir.display()))?.path();
        let Some(name) = folder
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(StorageTp::from_dir_name)
        else {
            continue;
        };
        let metadata = folder.join(PARTITION_METADATA);
        let text = match std::fs::read_to_string(&metadata) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // Created by a step whose process died before labelling it: nothing was
                // appended to it yet (appends come in later steps).
                tracing::warn!(
                    "{}: no {PARTITION_METADATA}; skipping the folder",
                    folder.display()
                );
                continue;
            }
            Err(e) => return Err(format!("{}: {e}", metadata.display())),
        };
        let topic_id = text
            .lines()
            .find_map(|l| l.strip_prefix("topic_id:"))
            .and_then(|id| id.trim().parse().ok())
            .ok_or_else(|| format!("{}: no topic_id line", metadata.display()))?;
        let tp = TopicPartition {
            topic_id: TopicId(topic_id),
            partition: name.partition,
        };
        let hw = data_dir.offsets(&name).high_watermark.unwrap_or(0);
        logs.insert(
            tp,
            DiskDurable {
                topic: name.topic.clone(),
                partition: name.partition,
            },
        );
        high_watermarks.insert(tp, Offset(hw));
    }
    Ok(Some(BrokerStorage {
        broker_epoch,
        logs,
        high_watermarks,
        high_watermark_lowered: false,
    }))
}

/// The first address `host:port` resolves to.
pub fn resolve(host: &str, port: u16) -> Result<SocketAddr, String> {
    (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("{host}:{port}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host}:{port}: resolves to no address"))
}
