//! Counterexamples in plain words: one sentence per protocol step, naming who acted, on what,
//! and what changed ("4. controller: broker 1's session expires; controller elects broker 2 for
//! epoch 2, ISR {2,3}").

use crate::actor::ActorState;
use crate::broker::{BrokerState, Role};
use crate::log::{EpochEndOffset, LogEntry, Record};
use crate::message::{ErrorCode, FetchRequest, FetchResponse, LeaderAndIsr, Msg, Timer};
use crate::model::{CheckConfig, ModelLog, ModelState};
use crate::types::{format_isr, Acks, CrashKind};
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
                    "its process dies; the page cache keeps its log; messages to it are lost"
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
        _ if index == brokers + 1 => "producer".to_string(),
        _ => "consumer".to_string(),
    }
}

fn timer_event(config: &CheckConfig, id: Id, timer: &Timer) -> String {
    let name = actor_name(config, id);
    match timer {
        Timer::SessionExpiry(broker) => format!("{name}: broker {broker}'s session expires"),
        Timer::ReplicaLag(follower) => format!("{name}: follower {follower} lags too long"),
        Timer::FetchBackoff => format!("{name}: fetch backoff ends"),
        Timer::RetryBackoff => format!("{name}: retry backoff ends"),
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
            let (old, new) = (&before.partition, &after.partition);
            if old.leader_epoch != new.leader_epoch {
                changes.push(match new.leader {
                    Some(leader) => format!(
                        "elects broker {leader} for epoch {}, ISR {}",
                        new.leader_epoch,
                        format_isr(&new.isr)
                    ),
                    None => format!(
                        "has no live ISR member: partition offline in epoch {}",
                        new.leader_epoch
                    ),
                });
            } else if old.isr != new.isr {
                changes.push(format!(
                    "sets ISR {} (partition epoch {})",
                    format_isr(&new.isr),
                    new.partition_epoch
                ));
            }
        }
        (ActorState::Broker(before), ActorState::Broker(after)) => {
            broker_changes(before, after, &mut changes)
        }
        (ActorState::Producer(before), ActorState::Producer(after)) => {
            let batches = config.batches();
            for acked in &after.acknowledged[before.acknowledged.len()..] {
                changes.push(format!(
                    "is told record {} is written at offset {}",
                    batches[acked.batch].0, acked.offset
                ));
            }
            if after.next_batch > before.next_batch
                && after.acknowledged.len() == before.acknowledged.len()
                && config.acks != Acks::None
            {
                changes.push(format!("gives up record {}", batches[before.next_batch].0));
            }
        }
        (ActorState::Consumer(before), ActorState::Consumer(after)) => {
            for read in &after.read[before.read.len()..] {
                changes.push(format!(
                    "reads record {} at offset {}",
                    read.batch.0, read.base_offset
                ));
            }
        }
        _ => {}
    }
    changes
}

fn broker_changes(
    before: &BrokerState<ModelLog>,
    after: &BrokerState<ModelLog>,
    changes: &mut Vec<String>,
) {
    let role_changed = std::mem::discriminant(&before.role) != std::mem::discriminant(&after.role)
        || before.leader_epoch != after.leader_epoch
        || matches!((&before.role, &after.role),
            (Role::Follower(a), Role::Follower(b)) if a.leader != b.leader);
    if role_changed {
        changes.push(match &after.role {
            Role::Leader(leader) => format!(
                "becomes leader of epoch {} with ISR {}",
                after.leader_epoch,
                format_isr(&leader.isr)
            ),
            Role::Follower(follower) => format!(
                "follows broker {} in epoch {}",
                follower.leader, after.leader_epoch
            ),
            Role::Unassigned => format!("has no role (epoch {})", after.leader_epoch),
        });
    } else if let (Role::Leader(old), Role::Leader(new)) = (&before.role, &after.role) {
        if old.isr != new.isr {
            changes.push(format!("now has ISR {}", format_isr(&new.isr)));
        }
        if old.proposed_isr != new.proposed_isr {
            if let Some(proposed) = &new.proposed_isr {
                changes.push(format!("proposes ISR {}", format_isr(proposed)));
            }
        }
    }
    if before.log != after.log {
        changes.push(format!("log {}", format_log(after.log.entries())));
    }
    if before.high_watermark != after.high_watermark {
        changes.push(format!("HW {}", after.high_watermark));
    }
}

/// A log as `[1@e1, 2@e2]`: each record's value and the epoch it was written in.
pub fn format_log(entries: &[LogEntry<Record>]) -> String {
    let entries: Vec<String> = entries.iter().map(format_entry).collect();
    format!("[{}]", entries.join(", "))
}

fn format_entry(entry: &LogEntry<Record>) -> String {
    format!("{}@e{}", entry.batch.0, entry.leader_epoch)
}

fn leader_and_isr(decision: &LeaderAndIsr) -> String {
    let leader = match decision.leader {
        Some(leader) => format!("leader {leader}"),
        None => "no leader".to_string(),
    };
    format!(
        "{leader}, epoch {}, ISR {}",
        decision.leader_epoch,
        format_isr(&decision.isr)
    )
}

fn fetch(request: &FetchRequest) -> String {
    let epoch = request
        .current_leader_epoch
        .map(|e| format!(", epoch {e}"))
        .unwrap_or_default();
    format!(
        "Fetch(offset {}, HW {}{epoch})",
        request.fetch_offset, request.high_watermark
    )
}

fn fetch_response(response: &FetchResponse<Record>) -> String {
    match response.error {
        Some(error) => format!("FetchResponse({})", error.name()),
        None => format!(
            "FetchResponse({}, HW {}, epoch {})",
            format_log(&response.batches),
            response.high_watermark,
            response.leader_epoch
        ),
    }
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

/// A message in words.
pub fn message(msg: &Msg<Record>) -> String {
    match msg {
        Msg::LeaderAndIsr(decision) => format!("LeaderAndIsr({})", leader_and_isr(decision)),
        Msg::SessionExpired { broker_epoch } => {
            format!("SessionExpired(broker epoch {broker_epoch})")
        }
        Msg::BrokerRegistration { broker_epoch } => {
            format!("BrokerRegistration(broker epoch {broker_epoch})")
        }
        Msg::AlterPartition {
            leader_epoch,
            partition_epoch,
            isr,
        } => format!(
            "AlterPartition(ISR {}, epoch {leader_epoch}, partition epoch {partition_epoch})",
            format_isr(isr)
        ),
        Msg::AlterPartitionResponse { result, .. } => match result {
            Ok(decision) => format!(
                "AlterPartitionResponse(ISR {}, partition epoch {})",
                format_isr(&decision.isr),
                decision.partition_epoch
            ),
            Err(error) => format!("AlterPartitionResponse({})", error.name()),
        },
        Msg::OffsetForLeaderEpoch {
            current_leader_epoch,
            leader_epoch,
        } => {
            let current = current_leader_epoch
                .map(|e| format!(", current epoch {e}"))
                .unwrap_or_default();
            format!("OffsetForLeaderEpoch(epoch {leader_epoch}{current})")
        }
        Msg::OffsetForLeaderEpochResponse { result, .. } => {
            format!("OffsetForLeaderEpochResponse({})", epoch_end_offset(result))
        }
        Msg::Fetch(request) => fetch(request),
        Msg::FetchResponse(response) => fetch_response(response),
        Msg::Produce { acks, batch, .. } => {
            let acks = match acks {
                Acks::None => "0",
                Acks::Leader => "1",
                Acks::All => "all",
            };
            format!("Produce(record {}, acks={acks})", batch.0)
        }
        Msg::ProduceResponse { result, .. } => match result {
            Ok(offset) => format!("ProduceResponse(written at offset {offset})"),
            Err(error) => format!("ProduceResponse({})", error.name()),
        },
        Msg::Metadata {
            leader,
            leader_epoch,
        } => match leader {
            Some(leader) => format!("Metadata(leader {leader}, epoch {leader_epoch})"),
            None => format!("Metadata(no leader, epoch {leader_epoch})"),
        },
    }
}
