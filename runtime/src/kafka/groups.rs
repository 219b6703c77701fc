//! What the group APIs share: a request about one or more groups becomes one
//! `Msg::Group` per group for the broker actor, whose coordinator (or refusal) answers each;
//! once every answer is in, the API's [`Call`] encodes the Kafka answer. Writes (OffsetCommit,
//! DeleteGroups) are answered REQUEST_TIMED_OUT if their records are not committed within
//! `offsets.commit.timeout.ms` (Kafka's 5 s); the actor's late answer is then dropped, as a
//! late produce acknowledgement is.

use super::{Connection, Pending, Work};
use bytes::Bytes;
use gregor_model::message::{ErrorCode, GroupAnswer, GroupOp, GroupRequest, GroupResponse, Msg};
use tokio::time::{Duration, Instant};

/// `offsets.commit.timeout.ms`: how long a commit or deletion waits for its records to be
/// committed.
pub const COMMIT_TIMEOUT: Duration = Duration::from_millis(5000);

/// An API's part: how the answers to its group requests become its Kafka answer.
pub trait Call: Send + Sync {
    /// The encoded answer; `answers` are in the order the requests were sent.
    fn answer(
        self: Box<Self>,
        version: i16,
        correlation_id: i32,
        answers: Vec<GroupAnswer>,
    ) -> Result<Bytes, String>;
}

/// A group request waiting for the actor's answers.
pub struct Waiting {
    /// The request numbers sent, and each one's answer once in.
    sent: Vec<(u32, Option<GroupAnswer>)>,
    /// When a write is answered REQUEST_TIMED_OUT.
    pub deadline: Option<Instant>,
    call: Option<Box<dyn Call>>,
}

impl Waiting {
    /// Whether this request waits for the answer numbered `request`.
    pub fn waits_for(&self, request: u32) -> bool {
        self.sent
            .iter()
            .any(|(number, answer)| *number == request && answer.is_none())
    }
}

/// Sends `requests` (group, operation) to the actor and queues the answer; with no request, it
/// is answered at once. `writes`: the requests write records, so they get a deadline.
pub async fn submit(
    conn: &mut Connection,
    correlation_id: i32,
    version: i16,
    requests: Vec<(String, GroupOp)>,
    writes: bool,
    call: Box<dyn Call>,
) -> Result<(), String> {
    let mut sent = Vec::with_capacity(requests.len());
    let mut to_actor = Vec::with_capacity(requests.len());
    for (group, op) in requests {
        let request = conn.request_number();
        sent.push((request, None));
        to_actor.push(Msg::Group(Box::new(GroupRequest { request, group, op })));
    }
    let waiting = Waiting {
        sent,
        deadline: writes.then(|| Instant::now() + COMMIT_TIMEOUT),
        call: Some(call),
    };
    let pending = Pending {
        correlation_id,
        version,
        work: Work::Group(waiting),
    };
    conn.submit(pending, to_actor, finish).await
}

/// One answer from the actor.
pub fn complete(pending: &mut Pending, response: &GroupResponse) -> Result<bool, String> {
    let Work::Group(waiting) = &mut pending.work else {
        unreachable!("a group request")
    };
    let Some(slot) = waiting
        .sent
        .iter_mut()
        .find(|(number, answer)| *number == response.request && answer.is_none())
    else {
        return Ok(false);
    };
    slot.1 = Some(response.answer.clone());
    if waiting.sent.iter().all(|(_, answer)| answer.is_some()) {
        finish(pending)?;
    }
    Ok(true)
}

/// The deadline passed: what is still unanswered is REQUEST_TIMED_OUT.
pub fn expire(pending: &mut Pending) -> Result<(), String> {
    let Work::Group(waiting) = &mut pending.work else {
        unreachable!("a group request")
    };
    for (_, answer) in &mut waiting.sent {
        answer.get_or_insert(GroupAnswer::Refused(ErrorCode::RequestTimedOut));
    }
    finish(pending)
}

fn finish(pending: &mut Pending) -> Result<(), String> {
    let Work::Group(waiting) = &mut pending.work else {
        unreachable!("a group request")
    };
    let call = waiting.call.take().expect("finished once");
    let answers = std::mem::take(&mut waiting.sent)
        .into_iter()
        .map(|(_, answer)| answer.expect("every answer is in"))
        .collect();
    pending.work = Work::Ready(call.answer(pending.version, pending.correlation_id, answers)?);
    Ok(())
}
