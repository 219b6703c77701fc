//! `gregor groups list|describe|reset-offsets|delete`: Kafka's `kafka-consumer-groups` over
//! Gregor's small client. A group's requests go to its coordinator (FindCoordinator, retried
//! while `__consumer_offsets` is being created or the coordinator moves); ListGroups asks every
//! broker, as each lists only the groups it coordinates.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{anyhow, bail, Result};
use bytes::Bytes;
use clap::{Args, Subcommand};
use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::{
    ConsumerProtocolAssignment, DeleteGroupsRequest, DescribeGroupsRequest, FindCoordinatorRequest,
    GroupId, ListGroupsRequest, OffsetCommitRequest, OffsetFetchRequest,
};
use kafka_protocol::protocol::{Decodable, StrBytes};

use crate::client::requests::{CONSUMER_REPLICA_ID, EARLIEST, LATEST};
use crate::client::{error_name, topic_name, Client, KafkaError, Retry, Target};
use crate::tools::{block_on, list_offsets, wait_for_topic, Connect};

#[derive(Subcommand, Debug)]
pub enum GroupsCommand {
    /// Every consumer group of the cluster, with its state.
    List {
        #[command(flatten)]
        connect: Connect,
    },
    /// A group's state and, per partition, its committed offset, the log end (high
    /// watermark), the lag and the member it is assigned to.
    Describe {
        group: String,
        #[command(flatten)]
        connect: Connect,
    },
    /// Set a group's committed offsets (the group must have no active members). Without
    /// --execute, prints what it would set.
    ResetOffsets(ResetArgs),
    /// Delete a group with no active members, and its committed offsets.
    Delete {
        group: String,
        #[command(flatten)]
        connect: Connect,
    },
}

#[derive(Args, Debug)]
pub struct ResetArgs {
    pub group: String,
    /// TOPIC, or TOPIC:P,P,... for some of its partitions (repeatable)
    #[arg(long = "topic", required = true, value_name = "TOPIC[:P,...]")]
    pub topics: Vec<String>,
    #[command(flatten)]
    pub to: ResetTo,
    /// Only print the new offsets (the default)
    #[arg(long)]
    pub dry_run: bool,
    /// Commit the new offsets
    #[arg(long, conflicts_with = "dry_run")]
    pub execute: bool,
    #[command(flatten)]
    pub connect: Connect,
}

/// Where to move the group's offsets (exactly one).
#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
pub struct ResetTo {
    /// This offset (kept within the partition's earliest and latest offsets)
    #[arg(long, value_name = "N")]
    pub to_offset: Option<i64>,
    /// The partition's earliest offset
    #[arg(long)]
    pub to_earliest: bool,
    /// The partition's latest offset (its high watermark)
    #[arg(long)]
    pub to_latest: bool,
    /// The first record at or after this time, e.g. 2026-11-20T10:00:00Z (by the time index)
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub to_datetime: Option<jiff::Timestamp>,
    /// The first record at or after now minus this duration: ISO 8601 (PT48H) or 48h
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub by_duration: Option<jiff::SignedDuration>,
    /// The committed offset plus N (N may be negative), kept within the partition's offsets
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub shift_by: Option<i64>,
}

fn parse_time(text: &str) -> Result<jiff::Timestamp, String> {
    text.parse::<jiff::Timestamp>()
        .map_err(|e| format!("`{text}` is not an RFC 3339 time like 2026-11-20T10:00:00Z: {e}"))
}

fn parse_duration(text: &str) -> Result<jiff::SignedDuration, String> {
    let duration = text
        .parse::<jiff::SignedDuration>()
        .map_err(|e| format!("`{text}` is not a duration like PT48H (ISO 8601) or 48h: {e}"))?;
    if duration.is_negative() {
        return Err(format!("`{text}` is negative"));
    }
    Ok(duration)
}

pub fn run(command: GroupsCommand) -> std::process::ExitCode {
    block_on(async move {
        match command {
            GroupsCommand::List { connect } => list(&mut connect.client()).await,
            GroupsCommand::Describe { group, connect } => {
                describe(&mut connect.client(), &group).await
            }
            GroupsCommand::ResetOffsets(args) => reset(args).await,
            GroupsCommand::Delete { group, connect } => delete(&mut connect.client(), &group).await,
        }
    })
}

/// Retries `attempt` while it fails with a retriable error (refreshing metadata between).
async fn retrying<T>(
    client: &mut Client,
    mut attempt: impl AsyncFnMut(&mut Client) -> Result<T>,
) -> Result<T> {
    let mut retry = Retry::new(client.retry);
    loop {
        match attempt(client).await {
            Ok(value) => return Ok(value),
            Err(error) => {
                retry.wait(error).await?;
                let _ = client.metadata(None).await;
            }
        }
    }
}

/// The node id of the group's coordinator.
async fn coordinator(client: &mut Client, group: &str) -> Result<i32> {
    retrying(client, async |client: &mut Client| {
        if client.last_broker().is_empty() {
            client.metadata(None).await?;
        }
        let (response, broker) = client
            .request(Target::Any, |version| {
                let request = if version >= 4 {
                    FindCoordinatorRequest::default()
                        .with_coordinator_keys(vec![StrBytes::from_string(group.to_string())])
                } else {
                    FindCoordinatorRequest::default()
                        .with_key(StrBytes::from_string(group.to_string()))
                };
                Ok(request)
            })
            .await?;
        let (code, message, node) = match response.coordinators.first() {
            Some(c) => (c.error_code, c.error_message.clone(), c.node_id.0),
            None => (
                response.error_code,
                response.error_message.clone(),
                response.node_id.0,
            ),
        };
        if code != 0 {
            let context = format!("FindCoordinator for group {group}");
            return Err(KafkaError::new(code, &broker, context)
                .with_message(message.as_ref())
                .into());
        }
        if client.broker_address(node).is_none() {
            client.metadata(None).await?;
        }
        Ok(node)
    })
    .await
}

/// DescribeGroups at the coordinator.
async fn describe_group(client: &mut Client, group: &str) -> Result<DescribedGroup> {
    retrying(client, async |client: &mut Client| {
        let node = coordinator(client, group).await?;
        let (response, broker) = client
            .request(Target::Node(node), |_| {
                Ok(DescribeGroupsRequest::default()
                    .with_groups(vec![GroupId(StrBytes::from_string(group.to_string()))]))
            })
            .await?;
        let described = response
            .groups
            .into_iter()
            .next()
            .ok_or_else(|| anyhow!("broker {broker}: DescribeGroups answered no group"))?;
        if described.error_code != 0 {
            let context = format!("DescribeGroups {group}");
            return Err(KafkaError::new(described.error_code, &broker, context).into());
        }
        Ok(described)
    })
    .await
}

/// Every committed offset of the group: (topic, partition) → offset.
async fn committed(client: &mut Client, group: &str) -> Result<BTreeMap<(String, i32), i64>> {
    retrying(client, async |client: &mut Client| {
        let node = coordinator(client, group).await?;
        let name = GroupId(StrBytes::from_string(group.to_string()));
        let (response, broker) = client
            .request(Target::Node(node), |version| {
                Ok(if version >= 8 {
                    OffsetFetchRequest::default().with_groups(vec![
                        OffsetFetchRequestGroup::default()
                            .with_group_id(name.clone())
                            .with_topics(None),
                    ])
                } else {
                    OffsetFetchRequest::default()
                        .with_group_id(name.clone())
                        .with_topics(None)
                })
            })
            .await?;
        let context = || format!("OffsetFetch {group}");
        let mut found = BTreeMap::new();
        let mut add = |topic: &str, partition: i32, offset: i64, code: i16| {
            if code != 0 {
                return Err(KafkaError::new(code, &broker, context()));
            }
            if offset >= 0 {
                found.insert((topic.to_string(), partition), offset);
            }
            Ok(())
        };
        if let Some(answer) = response.groups.first() {
            if answer.error_code != 0 {
                return Err(KafkaError::new(answer.error_code, &broker, context()).into());
            }
            for t in &answer.topics {
                for p in &t.partitions {
                    add(
                        &t.name.0,
                        p.partition_index,
                        p.committed_offset,
                        p.error_code,
                    )?;
                }
            }
        } else {
            if response.error_code != 0 {
                return Err(KafkaError::new(response.error_code, &broker, context()).into());
            }
            for t in &response.topics {
                for p in &t.partitions {
                    add(
                        &t.name.0,
                        p.partition_index,
                        p.committed_offset,
                        p.error_code,
                    )?;
                }
            }
        }
        Ok(found)
    })
    .await
}

async fn list(client: &mut Client) -> Result<bool> {
    let metadata = retrying(client, async |client: &mut Client| {
        client.metadata(None).await
    })
    .await?;
    let nodes: Vec<i32> = metadata.brokers.iter().map(|b| b.node_id.0).collect();
    let mut groups = BTreeMap::new();
    let mut ok = true;
    for node in nodes {
        let answer = client
            .request(Target::Node(node), |_| Ok(ListGroupsRequest::default()))
            .await;
        match answer {
            Ok((response, _)) if response.error_code == 0 => {
                for g in response.groups {
                    let state = g.group_state.to_string();
                    groups.insert(
                        g.group_id.0.to_string(),
                        (state, g.protocol_type.to_string()),
                    );
                }
            }
            Ok((response, broker)) => {
                let error = KafkaError::new(response.error_code, &broker, "ListGroups");
                eprintln!("Error: {error}");
                ok = false;
            }
            Err(error) => {
                eprintln!("Error: ListGroups at broker {node}: {error:#}");
                ok = false;
            }
        }
    }
    let mut out = format!("{:<32} {:<20} {}\n", "GROUP", "STATE", "PROTOCOL-TYPE");
    for (group, (state, protocol_type)) in groups {
        out += &format!("{group:<32} {state:<20} {protocol_type}\n");
    }
    print!("{out}");
    Ok(ok)
}

/// Each member's assigned partitions, from its consumer-protocol assignment: (topic,
/// partition) → (member id, client id, host).
fn assignments(described: &DescribedGroup) -> BTreeMap<(String, i32), (String, String, String)> {
    let mut owners = BTreeMap::new();
    if described.protocol_type.as_str() != "consumer" {
        return owners;
    }
    for member in &described.members {
        let mut bytes: Bytes = member.member_assignment.clone();
        if bytes.len() < 2 {
            continue;
        }
        let version = i16::from_be_bytes([bytes[0], bytes[1]]).min(3);
        let _ = bytes.split_to(2);
        let Ok(assignment) = ConsumerProtocolAssignment::decode(&mut bytes, version) else {
            continue;
        };
        for t in assignment.assigned_partitions {
            for p in t.partitions {
                owners.insert(
                    (t.topic.0.to_string(), p),
                    (
                        member.member_id.to_string(),
                        member.client_id.to_string(),
                        member.client_host.to_string(),
                    ),
                );
            }
        }
    }
    owners
}

async fn describe(client: &mut Client, group: &str) -> Result<bool> {
    let described = describe_group(client, group).await?;
    if described.group_state.as_str() == "Dead" {
        eprintln!("Error: consumer group '{group}' does not exist.");
        return Ok(false);
    }
    let offsets = committed(client, group).await?;
    let owners = assignments(&described);
    let mut partitions: BTreeSet<(String, i32)> = offsets.keys().cloned().collect();
    partitions.extend(owners.keys().cloned());
    let mut ends = BTreeMap::new();
    let topics: BTreeSet<String> = partitions.iter().map(|(t, _)| t.clone()).collect();
    for topic in topics {
        let mut info = wait_for_topic(client, &topic).await?;
        let asked: Vec<i32> = partitions
            .iter()
            .filter(|(t, _)| *t == topic)
            .map(|&(_, p)| p)
            .collect();
        let found = list_offsets(client, &mut info, &asked, LATEST, CONSUMER_REPLICA_ID).await?;
        for (p, end) in found {
            ends.insert((topic.clone(), p), end);
        }
    }
    println!(
        "Consumer group '{group}' is {} with {} member(s).\n",
        described.group_state,
        described.members.len()
    );
    println!(
        "{:<24} {:<24} {:>9} {:>14} {:>14} {:>8}  {:<40} {:<16} CLIENT-ID",
        "GROUP",
        "TOPIC",
        "PARTITION",
        "CURRENT-OFFSET",
        "LOG-END-OFFSET",
        "LAG",
        "CONSUMER-ID",
        "HOST"
    );
    let dash = "-".to_string();
    for key in &partitions {
        let current = offsets.get(key);
        let end = ends.get(key);
        let lag = match (current, end) {
            (Some(c), Some(e)) => (e - c).max(0).to_string(),
            _ => dash.clone(),
        };
        let (member, client_id, host) =
            owners
                .get(key)
                .cloned()
                .unwrap_or((dash.clone(), dash.clone(), dash.clone()));
        let show = |o: Option<&i64>| o.map_or(dash.clone(), i64::to_string);
        println!(
            "{group:<24} {:<24} {:>9} {:>14} {:>14} {lag:>8}  {member:<40} {:<16} {client_id}",
            key.0,
            key.1,
            show(current),
            show(end),
            if host.is_empty() { &dash } else { &host },
        );
    }
    Ok(true)
}

/// `TOPIC` or `TOPIC:P,P,...`.
fn topic_spec(text: &str) -> Result<(String, Option<Vec<i32>>)> {
    match text.split_once(':') {
        None => Ok((text.to_string(), None)),
        Some((topic, list)) => {
            let partitions = list
                .split(',')
                .map(|p| {
                    p.trim()
                        .parse::<i32>()
                        .ok()
                        .filter(|p| *p >= 0)
                        .ok_or_else(|| anyhow!("--topic {text}: `{p}` is not a partition number"))
                })
                .collect::<Result<Vec<_>>>()?;
            Ok((topic.to_string(), Some(partitions)))
        }
    }
}

async fn reset(args: ResetArgs) -> Result<bool> {
    let mut client = args.connect.client();
    let client = &mut client;
    let group = args.group.as_str();
    let described = describe_group(client, group).await?;
    let state = described.group_state.to_string();
    if state != "Empty" && state != "Dead" {
        eprintln!(
            "Error: assignments can only be reset if the group '{group}' is inactive, but the \
             current state is {state} ({} member(s)).",
            described.members.len()
        );
        return Ok(false);
    }
    let current = committed(client, group).await?;
    let mut plan: Vec<(String, i32, i64)> = Vec::new();
    for spec in &args.topics {
        let (topic, partitions) = topic_spec(spec)?;
        let mut info = wait_for_topic(client, &topic).await?;
        let all: Vec<i32> = info.partitions.keys().copied().collect();
        let partitions = match partitions {
            Some(asked) => {
                if let Some(p) = asked.iter().find(|p| !all.contains(p)) {
                    bail!("topic {topic} has no partition {p}");
                }
                asked
            }
            None => all,
        };
        let earliest = list_offsets(
            client,
            &mut info,
            &partitions,
            EARLIEST,
            CONSUMER_REPLICA_ID,
        )
        .await?;
        let latest =
            list_offsets(client, &mut info, &partitions, LATEST, CONSUMER_REPLICA_ID).await?;
        let to = &args.to;
        let by_time = match (to.to_datetime, to.by_duration) {
            (Some(time), _) => Some(time.as_millisecond()),
            (None, Some(duration)) => Some(
                jiff::Timestamp::now()
                    .checked_sub(duration)
                    .map_err(|e| anyhow!("--by-duration {duration}: {e}"))?
                    .as_millisecond(),
            ),
            (None, None) => None,
        };
        let at_time = match by_time {
            Some(ms) => {
                Some(list_offsets(client, &mut info, &partitions, ms, CONSUMER_REPLICA_ID).await?)
            }
            None => None,
        };
        for &p in &partitions {
            let (low, high) = (earliest[&p], latest[&p]);
            let clamp = |offset: i64| offset.clamp(low, high);
            let offset = if let Some(n) = to.to_offset {
                clamp(n)
            } else if to.to_earliest {
                low
            } else if to.to_latest {
                high
            } else if let Some(found) = &at_time {
                // No record at or after the time: the log end, as Kafka's tool does.
                match found[&p] {
                    offset if offset >= 0 => clamp(offset),
                    _ => high,
                }
            } else if let Some(n) = to.shift_by {
                let Some(&now) = current.get(&(topic.clone(), p)) else {
                    bail!(
                        "cannot shift the offset of {topic}-{p}: the group has no committed \
                         offset there"
                    );
                };
                clamp(now.saturating_add(n))
            } else {
                unreachable!("clap requires one of the --to options")
            };
            plan.push((topic.clone(), p, offset));
        }
    }
    println!(
        "{:<24} {:<24} {:>9} {:>14}",
        "GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"
    );
    for (topic, p, offset) in &plan {
        println!("{group:<24} {topic:<24} {p:>9} {offset:>14}");
    }
    if !args.execute {
        println!("\n(dry run: nothing was committed; --execute commits these offsets)");
        return Ok(true);
    }
    commit(client, group, &plan).await
}

/// OffsetCommit of `plan` as an admin (no member, generation -1).
async fn commit(client: &mut Client, group: &str, plan: &[(String, i32, i64)]) -> Result<bool> {
    let mut by_topic: BTreeMap<&str, Vec<(i32, i64)>> = BTreeMap::new();
    for (topic, p, offset) in plan {
        by_topic.entry(topic).or_default().push((*p, *offset));
    }
    let failed = retrying(client, async |client: &mut Client| {
        let node = coordinator(client, group).await?;
        let (response, broker) = client
            .request(Target::Node(node), |_| {
                let topics = by_topic
                    .iter()
                    .map(|(topic, partitions)| {
                        OffsetCommitRequestTopic::default()
                            .with_name(topic_name(topic))
                            .with_partitions(
                                partitions
                                    .iter()
                                    .map(|&(p, offset)| {
                                        OffsetCommitRequestPartition::default()
                                            .with_partition_index(p)
                                            .with_committed_offset(offset)
                                    })
                                    .collect(),
                            )
                    })
                    .collect();
                Ok(OffsetCommitRequest::default()
                    .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
                    .with_generation_id_or_member_epoch(-1)
                    .with_topics(topics))
            })
            .await?;
        let mut failed = Vec::new();
        for t in &response.topics {
            for p in &t.partitions {
                if p.error_code == 0 {
                    continue;
                }
                let error = KafkaError::new(
                    p.error_code,
                    &broker,
                    format!("OffsetCommit {}-{}", t.name.0, p.partition_index),
                );
                if crate::client::retriable_code(p.error_code) {
                    return Err(error.into());
                }
                failed.push(format!(
                    "{}-{}: {}",
                    t.name.0,
                    p.partition_index,
                    error_name(p.error_code)
                ));
            }
        }
        Ok(failed)
    })
    .await?;
    if failed.is_empty() {
        println!("\ncommitted.");
        Ok(true)
    } else {
        for f in failed {
            eprintln!("Error: {f}");
        }
        Ok(false)
    }
}

async fn delete(client: &mut Client, group: &str) -> Result<bool> {
    let code = retrying(client, async |client: &mut Client| {
        let node = coordinator(client, group).await?;
        let (response, broker) = client
            .request(Target::Node(node), |_| {
                Ok(DeleteGroupsRequest::default()
                    .with_groups_names(vec![GroupId(StrBytes::from_string(group.to_string()))]))
            })
            .await?;
        let code = response.results.first().map_or(0, |r| r.error_code);
        if crate::client::retriable_code(code) {
            return Err(KafkaError::new(code, &broker, format!("DeleteGroups {group}")).into());
        }
        Ok(code)
    })
    .await?;
    match code {
        0 => {
            println!("Deleted consumer group '{group}'.");
            Ok(true)
        }
        68 => {
            eprintln!("Error: consumer group '{group}' has active members (NON_EMPTY_GROUP).");
            Ok(false)
        }
        69 => {
            eprintln!("Error: consumer group '{group}' does not exist (GROUP_ID_NOT_FOUND).");
            Ok(false)
        }
        code => {
            eprintln!(
                "Error: deleting consumer group '{group}': {}",
                error_name(code)
            );
            Ok(false)
        }
    }
}
