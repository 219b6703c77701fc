//! Counterexamples in plain words: one sentence per protocol step, naming who acted, on what,
//! and what changed ("4. controller: broker 1's session expires; controller elects broker 2 for
//! t-0 in epoch 1, ISR {2,3}"). Partitions are named `t-<index>`, the topic being `t`.

use super::{CheckConfig, ModelLog, ModelState};
use crate::actor::ActorState;
use crate::broker::{BrokerState, Role};
use crate::client::member::{MemberState, Membership};
use crate::log::{EpochEndOffset, LogEntry, Record};
use crate::message::{ErrorCode, FetchRequest, FetchResponse, Msg, PartitionState, Timer};
use crate::types::{format_isr, Acks, CrashKind, TopicPartition};
use stateright::actor::{ActorModelAction, Id};

pub type Action = ActorModelAction<Msg<Record>, Timer, ()>;

/// Describes each step of a path (states, each with the action taken from it).
pub fn describe_path(config: &CheckConfig, path: &[(ModelState, Option<Action>)]) -> Vec<String> {
    path.windows(2)
        .filter_map(|pair| {
            let (before, action) = &pair[0];
            let (after, _) = &pair[1];
            action
                .as_ref()
                .map(|action| describe_step(config, before, action, after))
        })
        .collect()
}

/// One step: the event, then what it changed in the actor that handled it.
pub fn describe_step(
    config: &CheckConfig,
    before: &ModelState,
    action: &Action,
    after: &ModelState,
) -> String {
    let name = |id: Id| actor_name(config, id);
    let (event, actor) = match action {
        ActorModelAction::Deliver { src, dst, msg } => (
            format!(
                "{} handles {} from {}",
                name(*dst),
                message(msg),
                name(*src)
            ),
            Some(*dst),
        ),
        ActorModelAction::Drop(envelope) => (
            format!(
                "the network loses {} from {} to {}",
                message(&envelope.msg),
                name(envelope.src),
                name(envelope.dst)
            ),
            None,
        ),
        ActorModelAction::Timeout(id, timer) => (timer_event(config, *id, timer), Some(*id)),
        ActorModelAction::Crash(id) => {
            let how = match config.crash {
                CrashKind::Process => {
                    "its process dies; the page cache keeps its logs; messages to it are lost"
                }
                CrashKind::Power => {
                    "it loses power; only what was flushed survives; messages to it are lost"
                }
            };
            (format!("{} crashes ({how})", name(*id)), None)
        }
        ActorModelAction::Recover(id) => (format!("{} restarts", name(*id)), Some(*id)),
        ActorModelAction::SelectRandom { actor, .. } => {
            (format!("{} chooses at random", name(*actor)), None)
        }
    };
    let Some(actor) = actor else {
        return event;
    };
    let index = usize::from(actor);
    let changes = changes(
        config,
        &before.actor_states[index],
        &after.actor_states[index],
    );
    if changes.is_empty() {
        event
    } else {
        format!("{event}; {} {}", name(actor), changes.join(", "))
    }
}

pub fn actor_name(config: &CheckConfig, id: Id) -> String {
    let index = usize::from(id);
    let brokers = config.brokers as usize;
    match index {
        0 => "controller".to_string(),
        _ if index <= brokers => format!("broker {index}"),
        _ if config.groups => format!("member{}", index - brokers),
        _ if index == brokers + 1 => "producer".to_string(),
        _ => "consumer".to_string(),
    }
}

fn partition(tp: &TopicPartition) -> String {
    format!("{}-{}", super::TOPIC, tp.partition)
}

fn timer_event(config: &CheckConfig, id: Id, timer: &Timer) -> String {
    let name = actor_name(config, id);
    match timer {
        Timer::SessionExpiry(broker) => format!("{name}: broker {broker}'s session expires"),
        Timer::Heartbeat => format!("{name}: time to heartbeat"),
        Timer::ReplicaLag(tp, follower) => {
            format!(
                "{name}: follower {follower} of {} lags too long",
                partition(tp)
            )
        }
        Timer::FetchBackoff(tp) => format!("{name}: fetch backoff for {} ends", partition(tp)),
        Timer::FetchExpiry(_) => format!("{name}: a held fetch waited its max_wait_ms"),
        Timer::HighWatermarkCheckpoint => format!("{name}: writes its HW checkpoint"),
        Timer::Retention => format!("{name}: applies retention"),
        Timer::RetryBackoff => format!("{name}: retry backoff ends"),
        Timer::RequestTimeout(broker) => {
            format!("{name}: its request to broker {broker} times out")
        }
        Timer::MetadataTimeout => format!("{name}: its metadata request times out"),
        Timer::Group(_, group, timer) => format!("{name}: group {group}'s timer {timer:?} fires"),
    }
}

/// What changed in one actor's state, in words.
fn changes(
    config: &CheckConfig,
    before: &ActorState<ModelLog>,
    after: &ActorState<ModelLog>,
) -> Vec<String> {
    let mut changes = Vec::new();
    match (before, after) {
        (ActorState::Controller(before), ActorState::Controller(after)) => {
            for (broker, registration) in &after.brokers {
                if before.brokers.get(broker) == Some(registration) {
                    continue;
                }
                changes.push(match registration.alive {
                    true => format!(
                        "registers broker {broker} (broker epoch {})",
                        registration.broker_epoch
                    ),
                    false => format!("marks broker {broker} dead"),
                });
            }
            for new in after.partitions() {
                let old = before.partition(new.topic_partition);
                if let Some(change) = partition_change(old, new) {
                    changes.push(change);
                }
            }
        }
        (ActorState::Broker(before), ActorState::Broker(after)) => {
            broker_changes(before, after, &mut changes)
        }
        (ActorState::Producer(before), ActorState::Producer(after)) => {
            let batches = config.batches();
            for acked in &after.acknowledged[before.acknowledged.len()..] {
                changes.push(format!(
                    "is told record {} is written at offset {} of t-{}",
                    batches[acked.batch].value, acked.offset, acked.partition
                ));
            }
            if after.next_batch > before.next_batch
                && after.acknowledged.len() == before.acknowledged.len()
                && config.acks != Acks::None
            {
                changes.push(format!(
                    "gives up record {}",
                    batches[before.next_batch].value
                ));
            }
        }
        (ActorState::Member(before), ActorState::Member(after)) => {
            member_changes(before, after, &mut changes)
        }
        (ActorState::Consumer(before), ActorState::Consumer(after)) => {
            for read in &after.read[before.read.len()..] {
                changes.push(format!(
                    "reads record {} at offset {} of t-{}",
                    read.entry.batch.value, read.entry.base_offset, read.partition
                ));
            }
        }
        _ => {}
    }
    changes
}

fn partition_change(old: Option<&PartitionState>, new: &PartitionState) -> Option<String> {
    let name = partition(&new.topic_partition);
    let Some(old) = old else {
        return Some(format!(
            "creates {name}: replicas {:?}, leader {}",
            new.replicas.iter().map(|b| b.0).collect::<Vec<_>>(),
            new.leader.map_or("none".to_string(), |l| l.to_string())
        ));
    };
    if old.leader_epoch != new.leader_epoch {
        return Some(match new.leader {
            Some(leader) => format!(
                "elects broker {leader} for {name} in epoch {}, ISR {}",
                new.leader_epoch,
                format_isr(&new.isr)
            ),
            None => format!(
                "has no live ISR member: {name} offline in epoch {}",
                new.leader_epoch
            ),
        });
    }
    (old.isr != new.isr).then(|| {
        format!(
            "sets {name}'s ISR {} (partition epoch {})",
            format_isr(&new.isr),
            new.partition_epoch
        )
    })
}

fn broker_changes(
    before: &BrokerState<ModelLog>,
    after: &BrokerState<ModelLog>,
    changes: &mut Vec<String>,
) {
    if before.broker_epoch != after.broker_epoch {
        changes.push(format!("registers as broker epoch {}", after.broker_epoch));
    }
    for (tp, new) in &after.replicas {
        let name = partition(tp);
        let Some(old) = before.replicas.get(tp) else {
            changes.push(format!("creates its replica of {name}"));
            continue;
        };
        let role_changed = std::mem::discriminant(&old.role) != std::mem::discriminant(&new.role)
            || old.leader_epoch != new.leader_epoch
            || matches!((&old.role, &new.role),
                (Role::Follower(a), Role::Follower(b)) if a.leader != b.leader);
        if role_changed {
            changes.push(match &new.role {
                Role::Leader(leader) => format!(
                    "leads {name} in epoch {} with ISR {}",
                    new.leader_epoch,
                    format_isr(&leader.isr)
                ),
                Role::Follower(follower) => format!(
                    "follows broker {} for {name} in epoch {}",
                    follower.leader, new.leader_epoch
                ),
                Role::Unassigned => format!("has no role for {name} (epoch {})", new.leader_epoch),
            });
        } else if let (Role::Leader(old), Role::Leader(new)) = (&old.role, &new.role) {
            if old.isr != new.isr {
                changes.push(format!("now has {name}'s ISR {}", format_isr(&new.isr)));
            }
            if old.proposed_isr != new.proposed_isr {
                if let Some(proposed) = &new.proposed_isr {
                    changes.push(format!("proposes {name}'s ISR {}", format_isr(proposed)));
                }
            }
        }
        if old.log != new.log {
            changes.push(format!("{name} log {}", format_log(new.log.entries())));
        }
        if old.high_watermark != new.high_watermark {
            changes.push(format!("{name} HW {}", new.high_watermark));
        }
    }
}

/// A log as `[1@e1, 2@e2]`: each record's value and the epoch it was written in.
pub fn format_log(entries: &[LogEntry<Record>]) -> String {
    let entries: Vec<String> = entries.iter().map(format_entry).collect();
    format!("[{}]", entries.join(", "))
}

fn format_entry(entry: &LogEntry<Record>) -> String {
    format!("{}@e{}", entry.batch.value, entry.leader_epoch)
}

fn fetch(request: &FetchRequest) -> String {
    let partitions: Vec<String> = request
        .partitions
        .iter()
        .map(|p| {
            let epoch = p
                .current_leader_epoch
                .map(|e| format!(", epoch {e}"))
                .unwrap_or_default();
            format!(
                "{} from {}{epoch}",
                partition(&p.topic_partition),
                p.fetch_offset
            )
        })
        .collect();
    format!("Fetch({})", partitions.join("; "))
}

fn fetch_response(response: &FetchResponse<Record>) -> String {
    let partitions: Vec<String> = response
        .partitions
        .iter()
        .map(|p| match p.error {
            Some(error) => format!("{} {}", partition(&p.topic_partition), error.name()),
            None => format!(
                "{} {}, HW {}, epoch {}",
                partition(&p.topic_partition),
                format_log(&p.batches),
                p.high_watermark,
                p.leader_epoch
            ),
        })
        .collect();
    format!("FetchResponse({})", partitions.join("; "))
}

fn epoch_end_offset(answer: &Result<EpochEndOffset, ErrorCode>) -> String {
    match answer {
        Ok(EpochEndOffset {
            leader_epoch: Some(epoch),
            end_offset,
        }) => format!("epoch {epoch} ends at {end_offset}"),
        Ok(EpochEndOffset {
            leader_epoch: None,
            end_offset,
        }) => format!("no such epoch, log starts at {end_offset}"),
        Err(error) => error.name().to_string(),
    }
}

fn acks(acks: Acks) -> &'static str {
    match acks {
        Acks::None => "0",
        Acks::Leader => "1",
        Acks::All => "all",
    }
}

/// A message in words.
pub fn message(msg: &Msg<Record>) -> String {
    match msg {
        Msg::MetadataUpdate(update) => {
            let partitions: Vec<String> = update
                .partitions
                .iter()
                .map(|p| {
                    let leader = p
                        .leader
                        .map_or("no leader".to_string(), |l| format!("leader {l}"));
                    format!(
                        "{} {leader}, epoch {}, ISR {}",
                        partition(&p.topic_partition),
                        p.leader_epoch,
                        format_isr(&p.isr)
                    )
                })
                .collect();
            format!(
                "MetadataUpdate(broker epoch {}{}{})",
                update.broker_epoch,
                if partitions.is_empty() { "" } else { ": " },
                partitions.join("; ")
            )
        }
        Msg::BrokerRegistration { broker_epoch, .. } => {
            format!("BrokerRegistration(broker epoch {broker_epoch})")
        }
        Msg::BrokerRegistrationRefused { newest, .. } => {
            format!("BrokerRegistrationRefused(newest epoch {newest})")
        }
        Msg::BrokerHeartbeat { broker_epoch, .. } => {
            format!("BrokerHeartbeat(broker epoch {broker_epoch})")
        }
        Msg::BrokerHeartbeatResponse { error, .. } => match error {
            Some(error) => format!("BrokerHeartbeatResponse({})", error.name()),
            None => "BrokerHeartbeatResponse(ok)".to_string(),
        },
        Msg::AlterPartition(request) => format!(
            "AlterPartition({} ISR {}, epoch {}, partition epoch {})",
            partition(&request.topic_partition),
            format_isr(&crate::message::isr_of(&request.isr)),
            request.leader_epoch,
            request.partition_epoch
        ),
        Msg::AlterPartitionResponse(response) => match &response.result {
            Ok(decided) => format!(
                "AlterPartitionResponse({} ISR {}, partition epoch {})",
                partition(&response.topic_partition),
                format_isr(&decided.isr),
                decided.partition_epoch
            ),
            Err(error) => format!("AlterPartitionResponse({})", error.name()),
        },
        Msg::AllocateProducerIds { .. } => "AllocateProducerIds".to_string(),
        Msg::AllocateProducerIdsResponse { first, count, .. } => {
            format!("AllocateProducerIdsResponse({count} from {first})")
        }
        Msg::Forward(_) => "Forward(CreateTopics)".to_string(),
        Msg::ForwardResponse(_) => "ForwardResponse(CreateTopics)".to_string(),
        Msg::Fetch(request) => fetch(request),
        Msg::FetchResponse(response) => fetch_response(response),
        Msg::OffsetForLeaderEpoch(request) => {
            let current = request
                .current_leader_epoch
                .map(|e| format!(", current epoch {e}"))
                .unwrap_or_default();
            format!(
                "OffsetForLeaderEpoch({} epoch {}{current})",
                partition(&request.topic_partition),
                request.leader_epoch
            )
        }
        Msg::OffsetForLeaderEpochResponse(response) => format!(
            "OffsetForLeaderEpochResponse({})",
            epoch_end_offset(&response.result)
        ),
        Msg::Metadata { .. } => "Metadata".to_string(),
        Msg::MetadataResponse(response) => {
            let leaders: Vec<String> = response
                .topics
                .iter()
                .filter_map(|(_, t)| t.as_ref().ok())
                .flat_map(|t| t.partitions.iter())
                .map(|p| {
                    format!(
                        "t-{} leader {} epoch {}",
                        p.partition,
                        p.leader.map_or("none".to_string(), |l| l.to_string()),
                        p.leader_epoch
                    )
                })
                .collect();
            format!("MetadataResponse({})", leaders.join("; "))
        }
        Msg::Admin(_) => "CreateTopics".to_string(),
        Msg::AdminResponse(_) => "CreateTopicsResponse".to_string(),
        Msg::InitProducerId => "InitProducerId".to_string(),
        Msg::FindCoordinator { groups, .. } => format!("FindCoordinator {groups:?}"),
        Msg::FindCoordinatorResponse { coordinators, .. } => {
            let found: Vec<String> = coordinators
                .iter()
                .map(|(group, found)| match found {
                    Ok(broker) => format!("{group}: broker {}", broker.id),
                    Err(error) => format!("{group}: {}", error.name()),
                })
                .collect();
            format!("FindCoordinator answered: {}", found.join(", "))
        }
        Msg::Group(request) => format!("{:?} for group {}", request.op, request.group),
        Msg::GroupResponse(response) => {
            format!("{:?} for group {}", response.answer, response.group)
        }
        Msg::ListGroups { .. } => "ListGroups".to_string(),
        Msg::ListGroupsResponse { groups, .. } => format!("ListGroups answered: {groups:?}"),
        Msg::InitProducerIdResponse(result) => match result {
            Ok((id, epoch)) => format!("InitProducerIdResponse(id {id}, epoch {epoch})"),
            Err(error) => format!("InitProducerIdResponse({})", error.name()),
        },
        Msg::Produce(request) => format!(
            "Produce(record {} to {}, acks={})",
            request.batch.value,
            partition(&request.topic_partition),
            acks(request.acks)
        ),
        Msg::ProduceResponse(response) => match response.result {
            Ok(offset) => format!("ProduceResponse(written at offset {offset})"),
            Err(error) => format!("ProduceResponse({})", error.name()),
        },
        Msg::ListOffsets(request) => format!(
            "ListOffsets({:?} of {})",
            request.query,
            partition(&request.topic_partition)
        ),
        Msg::ListOffsetsResponse(response) => match response.result {
            Ok(listed) => match listed.offset {
                Some(offset) => format!("ListOffsetsResponse(offset {offset})"),
                None => "ListOffsetsResponse(none)".to_string(),
            },
            Err(error) => format!("ListOffsetsResponse({})", error.name()),
        },
        Msg::Disconnected => "Disconnected".to_string(),
    }
}

/// What a group member learned, in words.
fn member_changes(before: &MemberState, after: &MemberState, changes: &mut Vec<String>) {
    if after.coordinator != before.coordinator {
        changes.push(match after.coordinator {
            Some(broker) => format!("finds its coordinator, broker {broker}"),
            None => "looks for its coordinator again".to_string(),
        });
    }
    if after.member_id != before.member_id {
        changes.push(match &after.member_id {
            Some(id) => format!("is member {}", id.0),
            None => "forgets its member id".to_string(),
        });
    }
    if after.membership != before.membership {
        changes.push(match &after.membership {
            Membership::Unjoined => "gives its partitions up and rejoins".to_string(),
            Membership::Joined { generation } => format!("joins generation {generation}"),
            Membership::Assigned {
                generation,
                partitions,
                committed: false,
            } => format!("is assigned partitions {partitions:?} in generation {generation}"),
            Membership::Assigned {
                generation,
                partitions,
                committed: true,
            } => format!(
                "is told its commit of offset {generation} for partitions {partitions:?} is written"
            ),
        });
    }
}
