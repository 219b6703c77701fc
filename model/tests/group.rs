//! The group coordinator's membership state machine (`gregor_model::group`), request by
//! request: joins (MEMBER_ID_REQUIRED, the initial delay), generations and their leader,
//! syncs waiting for the stored assignment, heartbeats, leaves, session and sync timeouts,
//! static members, and which offset commits a group accepts.

use gregor_model::group::{
    Answer, Group, GroupConfig, GroupTimer, JoinRequest, Joined, Leaving, MemberId, Output, Phase,
    SyncRequest,
};
use gregor_model::message::ErrorCode;
use std::time::Duration;

const SESSION: Duration = Duration::from_secs(10);
const REBALANCE: Duration = Duration::from_secs(30);

fn join(member: Option<&MemberId>, client: &str) -> JoinRequest {
    JoinRequest {
        client_host: "/127.0.0.1".to_string(),
        member_id: member.cloned(),
        instance_id: None,
        client_id: client.to_string(),
        session_timeout: SESSION,
        rebalance_timeout: REBALANCE,
        protocol_type: "consumer".to_string(),
        protocols: vec![("range".to_string(), client.as_bytes().to_vec())],
        require_known_member_id: true,
    }
}

fn group() -> Group<u32> {
    Group::new("g".to_string(), 1, GroupConfig::default())
}

/// The answers in `out`, by reply token.
fn answers(out: &[Output<u32>]) -> Vec<(u32, Answer)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Answer(to, answer) => Some((*to, answer.clone())),
            _ => None,
        })
        .collect()
}

fn answer(out: &[Output<u32>], to: u32) -> Answer {
    let mut found = answers(out).into_iter().filter(|(t, _)| *t == to);
    let (_, answer) = found
        .next()
        .unwrap_or_else(|| panic!("no answer to {to} in {out:?}"));
    assert!(found.next().is_none(), "two answers to {to}");
    answer
}

fn joined(answer: Answer) -> Joined {
    match answer {
        Answer::Join(Ok(joined)) => joined,
        other => panic!("not joined: {other:?}"),
    }
}

/// A new member's first join: MEMBER_ID_REQUIRED with its id.
fn member_id(group: &mut Group<u32>, client: &str, reply: u32) -> MemberId {
    let mut out = Vec::new();
    group.join(join(None, client), reply, &mut out);
    match answer(&out, reply) {
        Answer::Join(Err((ErrorCode::MemberIdRequired, Some(id)))) => id,
        other => panic!("{other:?}"),
    }
}

/// Two members (client ids "a" and "b") through MEMBER_ID_REQUIRED and the initial delay to
/// generation 1, completing. Returns (a, b, leader, follower); join answers go to 3 and 4.
fn completing_pair(
    group: &mut Group<u32>,
    out: &mut Vec<Output<u32>>,
) -> (MemberId, MemberId, MemberId, MemberId) {
    let a = member_id(group, "a", 1);
    let b = member_id(group, "b", 2);
    group.join(join(Some(&a), "a"), 3, out);
    group.join(join(Some(&b), "b"), 4, out);
    // The initial delay, extended while members arrive, ends within the rebalance timeout.
    for _ in 0..=REBALANCE.as_secs() / 3 {
        if group.phase == Phase::PreparingRebalance {
            group.timer(GroupTimer::Join, out);
        }
    }
    assert_eq!(group.phase, Phase::CompletingRebalance);
    let leader = joined(answer(out, 3)).leader;
    let follower = if leader == a { b.clone() } else { a.clone() };
    (a, b, leader, follower)
}

/// Two members through MEMBER_ID_REQUIRED, the initial delay, and a stored assignment:
/// generation 1, stable. Returns (leader, follower).
fn stable_pair(group: &mut Group<u32>) -> (MemberId, MemberId) {
    let (a, b, leader, follower) = completing_pair(group, &mut Vec::new());
    let mut out = Vec::new();
    let assignments = vec![(a.clone(), b"pa".to_vec()), (b.clone(), b"pb".to_vec())];
    for (id, reply) in [(&follower, 5), (&leader, 6)] {
        let assignments = match id == &leader {
            true => assignments.clone(),
            false => Vec::new(),
        };
        group.sync(
            SyncRequest {
                member_id: id.clone(),
                instance_id: None,
                generation: 1,
                assignments,
            },
            reply,
            &mut out,
        );
    }
    group.stored(1, &mut out);
    assert_eq!(group.phase, Phase::Stable);
    (leader, follower)
}

#[test]
fn members_join_after_the_initial_delay_and_get_their_assignment_once_it_is_stored() {
    let mut group = group();
    let a = member_id(&mut group, "a", 1);
    assert!(
        a.0.starts_with("a-1-"),
        "{a:?}: client id and coordinator epoch"
    );
    let b = member_id(&mut group, "b", 2);
    assert_ne!(a, b);
    let mut out = Vec::new();
    group.join(join(Some(&a), "a"), 3, &mut out);
    assert!(
        out.contains(&Output::SetTimer(GroupTimer::Join, Duration::from_secs(3))),
        "an empty group waits group.initial.rebalance.delay.ms: {out:?}"
    );
    group.join(join(Some(&b), "b"), 4, &mut out);
    assert!(answers(&out).is_empty(), "both wait for the delay: {out:?}");
    assert_eq!(group.phase, Phase::PreparingRebalance);

    // A member joined during the delay: it is extended once, within the rebalance timeout.
    let mut out = Vec::new();
    group.timer(GroupTimer::Join, &mut out);
    assert_eq!(
        out,
        vec![Output::SetTimer(GroupTimer::Join, Duration::from_secs(3))]
    );
    group.timer(GroupTimer::Join, &mut out);
    let (first, second) = (joined(answer(&out, 3)), joined(answer(&out, 4)));
    assert_eq!((first.generation, second.generation), (1, 1));
    assert_eq!(first.protocol, "range");
    assert_eq!(first.leader, second.leader);
    let (leader, follower) = match first.leader == a {
        true => (first, second),
        false => (second, first),
    };
    assert_eq!(
        leader.members.len(),
        2,
        "the leader gets every member's metadata"
    );
    assert!(follower.members.is_empty());
    assert!(out.contains(&Output::SetTimer(GroupTimer::Session(a.clone()), SESSION)));
    assert_eq!(group.phase, Phase::CompletingRebalance);

    // The follower's sync waits for the leader's assignment to be stored.
    let mut out = Vec::new();
    let sync = |id: &MemberId, assignments| SyncRequest {
        member_id: id.clone(),
        instance_id: None,
        generation: 1,
        assignments,
    };
    group.sync(sync(&follower.member_id, Vec::new()), 5, &mut out);
    assert!(out.is_empty(), "{out:?}");
    let assignments = vec![
        (leader.member_id.clone(), b"p0".to_vec()),
        (follower.member_id.clone(), b"p1".to_vec()),
    ];
    group.sync(sync(&leader.member_id, assignments), 6, &mut out);
    let stored = out
        .iter()
        .find_map(|o| match o {
            Output::Store(record) => Some(record.clone()),
            _ => None,
        })
        .expect("the leader's assignment is stored");
    assert_eq!(stored.generation, 1);
    assert_eq!(stored.members.len(), 2);
    assert!(
        answers(&out).is_empty(),
        "no sync answered before the record is committed"
    );
    let mut out = Vec::new();
    group.stored(1, &mut out);
    assert_eq!(
        answer(&out, 5),
        Answer::Sync(Ok(("range".to_string(), b"p1".to_vec())))
    );
    assert_eq!(
        answer(&out, 6),
        Answer::Sync(Ok(("range".to_string(), b"p0".to_vec())))
    );
    assert_eq!(group.phase, Phase::Stable);
}

#[test]
fn heartbeats_name_unknown_members_old_generations_and_rebalances() {
    let mut group = group();
    let (leader, follower) = stable_pair(&mut group);
    let mut out = Vec::new();
    group.heartbeat(&follower, None, 1, 1, &mut out);
    assert_eq!(answer(&out, 1), Answer::Heartbeat(Ok(())));
    assert!(out.contains(&Output::SetTimer(
        GroupTimer::Session(follower.clone()),
        SESSION
    )));
    group.heartbeat(&follower, None, 0, 2, &mut out);
    assert_eq!(
        answer(&out, 2),
        Answer::Heartbeat(Err(ErrorCode::IllegalGeneration))
    );
    group.heartbeat(&MemberId("stranger".into()), None, 1, 3, &mut out);
    assert_eq!(
        answer(&out, 3),
        Answer::Heartbeat(Err(ErrorCode::UnknownMemberId))
    );

    // The leader leaves: the follower is told to rejoin, and alone makes generation 2.
    let mut out = Vec::new();
    let leaving = Leaving {
        member_id: Some(leader.clone()),
        instance_id: None,
    };
    group.leave(vec![leaving.clone()], 4, &mut out);
    assert_eq!(answer(&out, 4), Answer::Leave(vec![(leaving, Ok(()))]));
    assert_eq!(group.phase, Phase::PreparingRebalance);
    group.heartbeat(&follower, None, 1, 5, &mut out);
    assert_eq!(
        answer(&out, 5),
        Answer::Heartbeat(Err(ErrorCode::RebalanceInProgress))
    );
    let mut out = Vec::new();
    group.join(join(Some(&follower), "x"), 6, &mut out);
    let alone = joined(answer(&out, 6));
    assert_eq!(
        alone.generation, 2,
        "every member joined: no waiting for the timeout"
    );
    assert_eq!(alone.leader, follower);
    assert_eq!(alone.members.len(), 1);
}

#[test]
fn a_member_whose_session_expires_is_removed_unless_it_waits_on_the_coordinator() {
    let mut group = group();
    let (leader, follower) = stable_pair(&mut group);
    let mut out = Vec::new();
    group.timer(GroupTimer::Session(follower.clone()), &mut out);
    assert!(!group.members.contains_key(&follower));
    assert_eq!(group.phase, Phase::PreparingRebalance);

    // The leader rejoins: alone, it makes generation 2 at once.
    let mut out = Vec::new();
    group.join(join(Some(&leader), "a"), 1, &mut out);
    let alone = joined(answer(&out, 1));
    assert_eq!((alone.generation, alone.members.len()), (2, 1));

    // A member waiting for its join to complete (here: the initial delay) is alive: its
    // session timer re-arms instead of removing it.
    let mut waiting = self::group();
    let a = member_id(&mut waiting, "a", 1);
    waiting.join(join(Some(&a), "a"), 2, &mut Vec::new());
    let mut out = Vec::new();
    waiting.timer(GroupTimer::Session(a.clone()), &mut out);
    assert!(waiting.members.contains_key(&a));
    assert_eq!(out, vec![Output::SetTimer(GroupTimer::Session(a), SESSION)]);
}

#[test]
fn offset_commits_are_fenced_by_member_and_generation() {
    let mut group = group();
    assert_eq!(
        group.check_commit(None, None, -1, true),
        Ok(()),
        "an empty group: any commit"
    );
    let (leader, follower) = stable_pair(&mut group);
    assert_eq!(group.check_commit(Some(&follower), None, 1, true), Ok(()));
    assert_eq!(
        group.check_commit(Some(&follower), None, 0, true),
        Err(ErrorCode::IllegalGeneration)
    );
    assert_eq!(
        group.check_commit(None, None, -1, true),
        Err(ErrorCode::IllegalGeneration),
        "a commit without a member, to a group with members"
    );
    assert_eq!(
        group.check_commit(Some(&MemberId("x".into())), None, 1, true),
        Err(ErrorCode::UnknownMemberId)
    );

    // While the next generation's assignment is handed out, commits wait.
    let mut out = Vec::new();
    group.join(join(Some(&leader), "a"), 1, &mut out);
    assert_eq!(
        group.check_commit(Some(&follower), None, 1, true),
        Ok(()),
        "during the join phase the current generation may still commit"
    );
    group.join(join(Some(&follower), "b"), 2, &mut out);
    assert_eq!(group.phase, Phase::CompletingRebalance);
    assert_eq!(
        group.check_commit(Some(&follower), None, 2, true),
        Err(ErrorCode::RebalanceInProgress)
    );
    assert_eq!(
        group.check_commit(Some(&follower), None, 1, true),
        Err(ErrorCode::IllegalGeneration),
        "the old generation is fenced"
    );
}

#[test]
fn a_static_member_rejoining_takes_its_place_without_a_rebalance_and_fences_its_old_id() {
    let mut group = group();
    let mut request = join(None, "s");
    request.instance_id = Some("instance-1".to_string());
    let mut out = Vec::new();
    group.join(request.clone(), 1, &mut out);
    assert!(
        answers(&out).is_empty(),
        "static members need no MEMBER_ID_REQUIRED"
    );
    group.timer(GroupTimer::Join, &mut out);
    let first = joined(answer(&out, 1));
    let mut out = Vec::new();
    group.sync(
        SyncRequest {
            member_id: first.member_id.clone(),
            instance_id: Some("instance-1".to_string()),
            generation: 1,
            assignments: vec![(first.member_id.clone(), b"p".to_vec())],
        },
        2,
        &mut out,
    );
    group.stored(1, &mut out);
    assert_eq!(group.phase, Phase::Stable);

    // It restarts: a new member id, the same generation and assignment, no rebalance.
    let mut out = Vec::new();
    group.join(request, 3, &mut out);
    let again = joined(answer(&out, 3));
    assert_ne!(again.member_id, first.member_id);
    assert_eq!(again.generation, 1);
    assert_eq!(group.phase, Phase::Stable);
    assert_eq!(group.members[&again.member_id].assignment, b"p".to_vec());
    group.heartbeat(&first.member_id, Some("instance-1"), 1, 4, &mut out);
    assert_eq!(
        answer(&out, 4),
        Answer::Heartbeat(Err(ErrorCode::FencedInstanceId))
    );
}

#[test]
fn joins_with_a_foreign_protocol_or_a_bad_session_timeout_are_refused() {
    let mut group = group();
    let (_, _) = stable_pair(&mut group);
    let mut out = Vec::new();
    let mut other = join(None, "c");
    other.protocol_type = "connect".to_string();
    group.join(other, 1, &mut out);
    assert!(matches!(
        answer(&out, 1),
        Answer::Join(Err((ErrorCode::InconsistentGroupProtocol, _)))
    ));
    let mut other = join(None, "c");
    other.protocols = vec![("roundrobin".to_string(), Vec::new())];
    group.join(other, 2, &mut out);
    assert!(matches!(
        answer(&out, 2),
        Answer::Join(Err((ErrorCode::InconsistentGroupProtocol, _)))
    ));
    let mut other = join(None, "c");
    other.session_timeout = Duration::from_millis(100);
    group.join(other, 3, &mut out);
    assert!(matches!(
        answer(&out, 3),
        Answer::Join(Err((ErrorCode::InvalidSessionTimeout, _)))
    ));
    group.join(join(Some(&MemberId("ghost".into())), "g"), 4, &mut out);
    assert!(matches!(
        answer(&out, 4),
        Answer::Join(Err((ErrorCode::UnknownMemberId, _)))
    ));
}

#[test]
fn members_that_do_not_sync_by_the_rebalance_timeout_are_removed() {
    let mut group = group();
    let (_, _, leader, follower) = completing_pair(&mut group, &mut Vec::new());
    // Only the follower syncs; the leader never does.
    let mut out = Vec::new();
    group.sync(
        SyncRequest {
            member_id: follower.clone(),
            instance_id: None,
            generation: 1,
            assignments: Vec::new(),
        },
        5,
        &mut out,
    );
    group.timer(GroupTimer::Sync(1), &mut out);
    assert!(!group.members.contains_key(&leader));
    assert_eq!(
        answer(&out, 5),
        Answer::Sync(Err(ErrorCode::RebalanceInProgress)),
        "the waiting sync is told to rejoin"
    );
    assert_eq!(group.phase, Phase::PreparingRebalance);
    // A stale generation's timer does nothing.
    let before = group.clone();
    group.timer(GroupTimer::Sync(0), &mut Vec::new());
    assert_eq!(group, before);
}

#[test]
fn a_leader_rejoining_in_a_stable_group_starts_a_rebalance_a_follower_does_not() {
    let mut group = group();
    let (leader, follower) = stable_pair(&mut group);
    // The client id is the member id's first part, and the metadata it joined with.
    let client = |id: &MemberId| id.0.split('-').next().unwrap().to_string();
    let mut out = Vec::new();
    group.join(join(Some(&follower), &client(&follower)), 1, &mut out);
    let same = joined(answer(&out, 1));
    assert_eq!((same.generation, group.phase), (1, Phase::Stable));
    let mut out = Vec::new();
    group.join(join(Some(&leader), &client(&leader)), 2, &mut out);
    assert!(answers(&out).is_empty());
    assert_eq!(group.phase, Phase::PreparingRebalance);
    // A loaded group is stable with the stored members, and their sessions run.
    let record = group.record();
    let mut out = Vec::new();
    let loaded: Group<u32> = Group::load("g".into(), &record, 2, GroupConfig::default(), &mut out);
    assert_eq!(loaded.phase, Phase::Stable);
    assert_eq!(loaded.members.len(), 2);
    assert_eq!(
        out.iter()
            .filter(|o| matches!(o, Output::SetTimer(GroupTimer::Session(_), _)))
            .count(),
        2
    );
}

#[test]
fn committed_offsets_are_what_the_last_stored_commit_of_each_partition_says() {
    use gregor_model::group::CommittedOffset;
    let mut group = group();
    let at = |offset, metadata: &str| CommittedOffset {
        offset,
        leader_epoch: Some(0),
        metadata: metadata.to_string(),
    };
    let p0 = ("t".to_string(), 0);
    let p1 = ("t".to_string(), 1);
    assert_eq!(
        group.committed(Some(std::slice::from_ref(&p0))),
        vec![(p0.clone(), None)]
    );
    group.offsets_stored([(p0.clone(), at(5, "first")), (p1.clone(), at(7, ""))]);
    group.offsets_stored([(p0.clone(), at(9, "second"))]);
    assert_eq!(
        group.committed(None),
        vec![(p0.clone(), Some(at(9, "second"))), (p1, Some(at(7, "")))]
    );
    assert_eq!(
        group.committed(Some(std::slice::from_ref(&p0))),
        vec![(p0, Some(at(9, "second")))]
    );
}

#[test]
fn a_model_batch_holds_a_coordinators_records_one_offset_each() {
    use gregor_model::group::{CommittedOffset, CoordinatorRecord};
    use gregor_model::log::{Record, RecordBatch};
    let records = vec![
        CoordinatorRecord::Offset {
            group: "g".into(),
            partition: ("t".into(), 0),
            offset: Some(CommittedOffset {
                offset: 3,
                leader_epoch: None,
                metadata: String::new(),
            }),
        },
        CoordinatorRecord::Group {
            group: "g".into(),
            record: None,
        },
    ];
    let batch = Record::coordinator(records.clone());
    assert_eq!(batch.record_count(), 2);
    assert_eq!(batch.coordinator_records(), Some(records));
    assert_eq!(Record::new(1).coordinator_records(), None);
}

#[test]
fn a_group_belongs_to_the_partition_kafka_computes_from_javas_string_hash() {
    use gregor_model::group::coordinator_partition;
    // abs(String.hashCode()) % 50, with Kafka's abs(Integer.MIN_VALUE) = 0 and hashes over
    // UTF-16 code units (a surrogate pair counts twice).
    for (group, partition) in [
        ("hello", 22),
        ("polygenelubricants", 0),
        ("my-group", 12),
        ("Grüße", 1),
        ("😀group", 32),
    ] {
        assert_eq!(coordinator_partition(group, 50), partition, "{group}");
    }
    assert_eq!(coordinator_partition("hello", 1), 0);
}

#[test]
fn a_coordinator_rebuilds_its_groups_from_the_last_record_of_each_key() {
    use gregor_model::group::{load_groups, CommittedOffset, CoordinatorRecord};
    let mut group = group();
    let (_, _) = stable_pair(&mut group);
    let at = |offset| CommittedOffset {
        offset,
        leader_epoch: None,
        metadata: String::new(),
    };
    let offset =
        |group: &str, partition: u32, offset: Option<CommittedOffset>| CoordinatorRecord::Offset {
            group: group.into(),
            partition: ("t".into(), partition),
            offset,
        };
    let records = vec![
        CoordinatorRecord::Group {
            group: "g".into(),
            record: Some(group.record()),
        },
        offset("g", 0, Some(at(1))),
        offset("g", 0, Some(at(4))),
        offset("g", 1, Some(at(2))),
        offset("g", 1, None),
        offset("simple", 0, Some(at(9))),
        CoordinatorRecord::Group {
            group: "gone".into(),
            record: Some(group.record()),
        },
        CoordinatorRecord::Group {
            group: "gone".into(),
            record: None,
        },
    ];
    let mut out = Vec::new();
    let groups = load_groups::<u32>(records, 3, GroupConfig::default(), &mut out);
    assert_eq!(groups.keys().collect::<Vec<_>>(), vec!["g", "simple"]);
    let g = &groups["g"];
    assert_eq!(
        (g.phase, g.generation, g.members.len()),
        (Phase::Stable, 1, 2)
    );
    assert_eq!(g.committed(None), vec![(("t".to_string(), 0), Some(at(4)))]);
    let simple = &groups["simple"];
    assert_eq!(simple.phase, Phase::Empty);
    assert_eq!(simple.check_commit(None, None, -1, true), Ok(()));
    assert_eq!(
        simple.committed(None),
        vec![(("t".to_string(), 0), Some(at(9)))]
    );
}

#[test]
fn a_late_sync_in_a_stable_group_counts_and_a_new_generation_is_stored_while_an_old_one_is() {
    let mut group = group();
    let (a, b, leader, follower) = completing_pair(&mut group, &mut Vec::new());
    let sync = |id: &MemberId, generation| SyncRequest {
        member_id: id.clone(),
        instance_id: None,
        generation,
        assignments: vec![(a.clone(), b"x".to_vec()), (b.clone(), b"y".to_vec())],
    };
    let mut out = Vec::new();
    group.sync(sync(&leader, 1), 5, &mut out);
    group.stored(1, &mut out);
    assert_eq!(group.phase, Phase::Stable);
    // The follower syncs late, in the stable group: it is no longer awaited.
    group.sync(sync(&follower, 1), 6, &mut out);
    assert!(matches!(answer(&out, 6), Answer::Sync(Ok(_))));
    group.timer(GroupTimer::Sync(1), &mut out);
    assert_eq!(
        group.members.len(),
        2,
        "a member that synced is not removed"
    );

    // Generation 2's record is stored while generation 1's is still on its way.
    let mut out = Vec::new();
    group.join(join(Some(&leader), "z"), 7, &mut out);
    group.join(join(Some(&follower), "w"), 8, &mut out);
    assert_eq!(group.phase, Phase::CompletingRebalance);
    group.storing = Some(1);
    group.sync(sync(&leader, 2), 9, &mut out);
    assert!(out
        .iter()
        .any(|o| matches!(o, Output::Store(r) if r.generation == 2)));
    let mut out = Vec::new();
    group.stored(1, &mut out);
    assert_eq!(
        group.phase,
        Phase::CompletingRebalance,
        "the old record completes nothing"
    );
    group.stored(2, &mut out);
    assert_eq!(group.phase, Phase::Stable);
    assert!(matches!(answer(&out, 9), Answer::Sync(Ok(_))));
}
