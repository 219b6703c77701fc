//! The Kafka front end: Kafka's wire protocol on a broker's client listeners, translated to
//! and from the protocol's messages (`gregor_model::message`), one file per API. It decides
//! nothing about replication: every request about a partition goes to the broker actor as the
//! model's request, and the answer is the model's answer in Kafka's encoding.
//!
//! Per connection: requests are read as frames (`i32` size, header, body) of at most
//! `socket.request.max.bytes`; at most `queued.max.requests` are in flight; answers go back in
//! request order (Kafka's rule; clients pipeline). A connection is one client to the actor
//! (`Address::Client`): the actor's answers come back on the connection's channel and are
//! matched to the waiting requests — produce, ListOffsets, FindCoordinator, ListGroups and group
//! answers by request number, OffsetForLeaderEpoch answers by partition and epoch asked, the
//! others in order of kind; at
//! most one fetch per connection is with the actor at a time (the model holds one fetch per
//! requester), a later one waits its turn. A malformed, truncated or
//! oversized frame, or an API this broker does not offer, closes the connection with a logged
//! reason; every other connection goes on.

mod alter_configs;
mod api_versions;
mod create_partitions;
mod create_topics;
mod delete_groups;
mod delete_topics;
mod describe_cluster;
mod describe_configs;
mod describe_groups;
mod fetch;
mod find_coordinator;
mod groups;
mod heartbeat;
mod incremental_alter_configs;
mod init_producer_id;
mod join_group;
mod leave_group;
mod list_groups;
mod list_offsets;
mod metadata;
mod offset_commit;
mod offset_delete;
mod offset_fetch;
mod offset_for_leader_epoch;
mod produce;
mod sync_group;

use crate::host::roles::{snapshot, Directory, SharedDirectory};
use crate::host::{Event, Message};
use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use gregor_model::config::Endpoint;
use gregor_model::effects::Address;
use gregor_model::message::{AdminRequest, BrokerInfo, ErrorCode, Msg, TopicResult};
use gregor_model::types::{BrokerId, ClientId};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio_util::codec::{FramedRead, FramedWrite, LengthDelimitedCodec};

/// The front end's settings, with Kafka's names.
#[derive(Clone, Debug)]
pub struct FrontEndSettings {
    /// `message.max.bytes`: the largest record batch a producer may send.
    pub message_max_bytes: u64,
    /// `socket.request.max.bytes`: the largest request frame.
    pub request_max_bytes: usize,
    /// `max.connections`.
    pub max_connections: usize,
    /// `queued.max.requests`, here per connection: requests read and not yet answered.
    pub queued_max_requests: usize,
    /// `auto.create.topics.enable`, `num.partitions`, `default.replication.factor`.
    pub auto_create_topics: bool,
    pub num_partitions: u32,
    pub default_replication_factor: u32,
    /// The broker's settings as DescribeConfigs reports them.
    pub configs: Arc<[crate::config::Described]>,
}

/// One broker's Kafka front end, shared by its client listeners.
pub struct FrontEnd {
    pub node_id: BrokerId,
    pub inbox: mpsc::Sender<Event>,
    pub directory: SharedDirectory,
    pub settings: FrontEndSettings,
    next_client: AtomicU32,
    connections: Arc<Semaphore>,
}

impl FrontEnd {
    pub fn new(
        node_id: BrokerId,
        inbox: mpsc::Sender<Event>,
        directory: SharedDirectory,
        settings: FrontEndSettings,
    ) -> Arc<FrontEnd> {
        Arc::new(FrontEnd {
            node_id,
            inbox,
            directory,
            connections: Arc::new(Semaphore::new(settings.max_connections)),
            settings,
            next_client: AtomicU32::new(0),
        })
    }

    /// Serves the Kafka clients of one listener (`name` is its listener name, whose endpoints
    /// Metadata answers carry).
    pub async fn serve(self: Arc<Self>, listener: TcpListener, name: String) {
        let name: Arc<str> = name.into();
        loop {
            let (stream, remote) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!("accepting a client connection: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Ok(permit) = self.connections.clone().try_acquire_owned() else {
                tracing::warn!(
                    "{remote}: refused: max.connections ({}) reached",
                    self.settings.max_connections
                );
                continue;
            };
            let front_end = self.clone();
            let name = name.clone();
            tokio::spawn(async move {
                let client = ClientId(front_end.next_client.fetch_add(1, Ordering::Relaxed));
                if let Err(why) = front_end.connection(stream, client, name).await {
                    tracing::warn!("client {remote}: closing the connection: {why}");
                }
                drop(permit);
            });
        }
    }

    async fn connection(
        self: &Arc<Self>,
        stream: TcpStream,
        client: ClientId,
        listener: Arc<str>,
    ) -> Result<(), String> {
        let _ = stream.set_nodelay(true);
        let client_host: Arc<str> = match stream.peer_addr() {
            Ok(address) => format!("/{}", address.ip()).into(),
            Err(_) => "".into(),
        };
        let (read, write) = stream.into_split();
        let codec = LengthDelimitedCodec::builder()
            .max_frame_length(self.settings.request_max_bytes)
            .new_codec();
        let mut frames = FramedRead::new(read, codec.clone());
        let mut writer = FramedWrite::new(write, codec);
        let (replies_tx, mut replies) = mpsc::unbounded_channel();
        let opened = Event::ClientOpen {
            client,
            replies: replies_tx,
        };
        self.inbox
            .send(opened)
            .await
            .map_err(|_| "the broker is stopping")?;
        let mut conn = Connection {
            front_end: self.clone(),
            client,
            listener,
            client_host,
            pending: VecDeque::new(),
            next_request: 0,
            admin: VecDeque::new(),
            fetch_with_actor: false,
        };
        let result = loop {
            let room = conn.pending.len() < self.settings.queued_max_requests;
            let deadline = conn.next_deadline();
            tokio::select! {
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)),
                    if deadline.is_some() => conn.expire(),
                frame = frames.next(), if room => match frame {
                    None => break Ok(()),
                    Some(Err(e)) => break Err(format!("reading a request: {e}")),
                    Some(Ok(frame)) => {
                        if let Err(why) = conn.request(frame.freeze()).await {
                            break Err(why);
                        }
                    }
                },
                Some(reply) = replies.recv() => conn.reply(reply).await,
            }
            if let Err(why) = conn.write_ready(&mut writer).await {
                break Err(why);
            }
        };
        let _ = self.inbox.send(Event::ClientClosed { client }).await;
        result
    }
}

/// A request read and not yet answered.
struct Pending {
    correlation_id: i32,
    version: i16,
    work: Work,
}

/// What a request waits for.
enum Work {
    /// Its answer, encoded.
    Ready(Bytes),
    Metadata(metadata::Waiting),
    Produce(produce::Waiting),
    Fetch(fetch::Waiting),
    ListOffsets(list_offsets::Waiting),
    OffsetForLeaderEpoch(offset_for_leader_epoch::Waiting),
    CreateTopics(create_topics::Waiting),
    CreatePartitions(create_partitions::Waiting),
    AlterConfigs(incremental_alter_configs::Waiting),
    DeleteTopics(delete_topics::Waiting),
    InitProducerId,
    DescribeCluster,
    FindCoordinator(find_coordinator::Waiting),
    ListGroups(list_groups::Waiting),
    /// A request to one or more groups' coordinators.
    Group(groups::Waiting),
}

/// What an answer to an admin request (forwarded to the controller) completes.
enum AdminWaiter {
    /// A topic auto-created for a Metadata request: nobody waits for the answer.
    AutoCreate,
    Request(i32),
}

struct Connection {
    front_end: Arc<FrontEnd>,
    client: ClientId,
    listener: Arc<str>,
    /// The client's address as Kafka shows it in DescribeGroups: `/127.0.0.1`.
    client_host: Arc<str>,
    pending: VecDeque<Pending>,
    next_request: u32,
    admin: VecDeque<AdminWaiter>,
    /// Whether a fetch of this connection is with the actor now.
    fetch_with_actor: bool,
}

/// The cluster id Metadata and DescribeCluster answer.
pub const CLUSTER_ID: &str = "gregor";

/// Kafka's error code for the model's.
pub fn code(error: Option<ErrorCode>) -> i16 {
    error.map_or(0, ErrorCode::code)
}

/// Encodes an answer: its header (v0 for ApiVersions, always) and body.
fn encode<R: Encodable>(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &R,
) -> Result<Bytes, String> {
    let mut buf = BytesMut::new();
    let header_version = match api {
        ApiKey::ApiVersions => 0,
        api => api.response_header_version(version),
    };
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut buf, header_version)
        .map_err(|e| format!("encoding a {api:?} answer header: {e}"))?;
    body.encode(&mut buf, version)
        .map_err(|e| format!("encoding a {api:?} v{version} answer: {e}"))?;
    Ok(buf.freeze())
}

/// Decodes a request body of the version its header names.
fn decode<R: Decodable>(api: ApiKey, version: i16, body: &mut Bytes) -> Result<R, String> {
    R::decode(body, version).map_err(|e| format!("a malformed {api:?} v{version} request: {e}"))
}

impl Connection {
    fn directory(&self) -> Arc<Directory> {
        snapshot(&self.front_end.directory)
    }

    fn request_number(&mut self) -> u32 {
        self.next_request = self.next_request.wrapping_add(1);
        self.next_request
    }

    /// Hands the actor a message from this client.
    async fn to_actor(&self, msg: Message) {
        let event = Event::Message {
            from: Address::Client(self.client),
            msg,
        };
        let _ = self.front_end.inbox.send(event).await;
    }

    /// Queues a request's answer — finished at once by `finish` when nothing goes to the
    /// actor — and hands the actor the request's messages.
    async fn submit(
        &mut self,
        mut pending: Pending,
        to_actor: Vec<Message>,
        finish: fn(&mut Pending) -> Result<(), String>,
    ) -> Result<(), String> {
        if to_actor.is_empty() {
            finish(&mut pending)?;
        }
        self.pending.push_back(pending);
        for msg in to_actor {
            self.to_actor(msg).await;
        }
        Ok(())
    }

    /// Queues an admin request's answer and forwards `request` to the controller (through the
    /// actor); with nothing to forward, the answer is finished at once by `finish`.
    async fn submit_admin(
        &mut self,
        mut pending: Pending,
        request: Option<AdminRequest>,
        finish: fn(&mut Pending) -> Result<(), String>,
    ) -> Result<(), String> {
        let Some(request) = request else {
            finish(&mut pending)?;
            self.pending.push_back(pending);
            return Ok(());
        };
        self.admin
            .push_back(AdminWaiter::Request(pending.correlation_id));
        self.pending.push_back(pending);
        self.to_actor(Msg::Admin(request)).await;
        Ok(())
    }

    /// The endpoint of `broker` on the listener this connection came in on.
    fn endpoint<'a>(&self, broker: &'a BrokerInfo) -> Option<&'a Endpoint> {
        broker
            .endpoints
            .iter()
            .find(|e| *e.listener == *self.listener)
    }

    fn answer(&mut self, correlation_id: i32, _api: ApiKey, version: i16, work: Work) {
        self.pending.push_back(Pending {
            correlation_id,
            version,
            work,
        });
    }

    /// One request frame.
    async fn request(&mut self, mut frame: Bytes) -> Result<(), String> {
        if frame.len() < 8 {
            return Err(format!("a truncated request of {} bytes", frame.len()));
        }
        let api_key = i16::from_be_bytes([frame[0], frame[1]]);
        let version = i16::from_be_bytes([frame[2], frame[3]]);
        let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
        let Ok(api) = ApiKey::try_from(api_key) else {
            return Err(format!("unknown API key {api_key}"));
        };
        if api == ApiKey::ApiVersions {
            // Any version is answered (KIP-511): an unknown one with v0 and the ranges.
            let answer = api_versions::answer(&mut frame, version, correlation_id)?;
            self.answer(correlation_id, api, version, Work::Ready(answer));
            return Ok(());
        }
        let Some((min, max)) = api_versions::supported(api) else {
            return Err(format!("{api:?} is not offered by this broker"));
        };
        if version < min || version > max {
            return Err(format!(
                "{api:?} v{version} is outside the offered v{min}-{max}"
            ));
        }
        let header_version = api.request_header_version(version);
        let header = RequestHeader::decode(&mut frame, header_version)
            .map_err(|e| format!("a malformed {api:?} request header: {e}"))?;
        match api {
            ApiKey::Metadata => metadata::request(self, frame, version, correlation_id).await,
            ApiKey::Produce => produce::request(self, frame, version, correlation_id).await,
            ApiKey::Fetch => fetch::request(self, frame, version, correlation_id).await,
            ApiKey::ListOffsets => {
                list_offsets::request(self, frame, version, correlation_id).await
            }
            ApiKey::OffsetForLeaderEpoch => {
                offset_for_leader_epoch::request(self, frame, version, correlation_id).await
            }
            ApiKey::CreateTopics => {
                create_topics::request(self, frame, version, correlation_id).await
            }
            ApiKey::DeleteTopics => {
                delete_topics::request(self, frame, version, correlation_id).await
            }
            ApiKey::InitProducerId => {
                init_producer_id::request(self, frame, version, correlation_id).await
            }
            ApiKey::DescribeConfigs => {
                describe_configs::request(self, frame, version, correlation_id)
            }
            ApiKey::CreatePartitions => {
                create_partitions::request(self, frame, version, correlation_id).await
            }
            ApiKey::IncrementalAlterConfigs => {
                incremental_alter_configs::request(self, frame, version, correlation_id).await
            }
            ApiKey::AlterConfigs => {
                alter_configs::request(self, frame, version, correlation_id).await
            }
            ApiKey::DescribeCluster => {
                describe_cluster::request(self, frame, version, correlation_id).await
            }
            ApiKey::FindCoordinator => {
                find_coordinator::request(self, frame, version, correlation_id).await
            }
            ApiKey::JoinGroup => {
                let client_id = header.client_id.as_deref().unwrap_or("");
                join_group::request(self, frame, version, correlation_id, client_id).await
            }
            ApiKey::SyncGroup => sync_group::request(self, frame, version, correlation_id).await,
            ApiKey::Heartbeat => heartbeat::request(self, frame, version, correlation_id).await,
            ApiKey::LeaveGroup => leave_group::request(self, frame, version, correlation_id).await,
            ApiKey::OffsetCommit => {
                offset_commit::request(self, frame, version, correlation_id).await
            }
            ApiKey::OffsetFetch => {
                offset_fetch::request(self, frame, version, correlation_id).await
            }
            ApiKey::OffsetDelete => {
                offset_delete::request(self, frame, version, correlation_id).await
            }
            ApiKey::ListGroups => list_groups::request(self, frame, version, correlation_id).await,
            ApiKey::DescribeGroups => {
                describe_groups::request(self, frame, version, correlation_id).await
            }
            ApiKey::DeleteGroups => {
                delete_groups::request(self, frame, version, correlation_id).await
            }
            other => Err(format!("{other:?} is not offered by this broker")),
        }
    }

    /// The earliest deadline of a waiting acks=all produce (its `timeout_ms`) or group write
    /// (`offsets.commit.timeout.ms`).
    fn next_deadline(&self) -> Option<tokio::time::Instant> {
        self.pending
            .iter()
            .filter_map(|p| match &p.work {
                Work::Produce(waiting) => waiting.deadline,
                Work::Group(waiting) => waiting.deadline,
                _ => None,
            })
            .min()
    }

    /// Answers the acks=all produce requests and group writes whose deadline is up.
    fn expire(&mut self) {
        let now = tokio::time::Instant::now();
        let due = |d: Option<tokio::time::Instant>| d.is_some_and(|d| d <= now);
        for pending in &mut self.pending {
            let result = match &pending.work {
                Work::Produce(w) if due(w.deadline) => produce::expire(pending),
                Work::Group(w) if due(w.deadline) => groups::expire(pending),
                _ => Ok(()),
            };
            if let Err(why) = result {
                tracing::error!("client {}: {why}", self.client);
            }
        }
    }

    /// One answer from the actor: it completes (part of) a waiting request.
    async fn reply(&mut self, msg: Message) {
        let result = match msg {
            Msg::MetadataResponse(response) => {
                let mut create = Vec::new();
                // Metadata and DescribeCluster both ask the actor for Metadata; its answers
                // come in the order asked.
                let result = self.complete_first(
                    |w| matches!(w, Work::Metadata(_) | Work::DescribeCluster),
                    |conn, pending| match pending.work {
                        Work::DescribeCluster => {
                            describe_cluster::complete(conn, pending, &response)
                        }
                        _ => {
                            create = metadata::complete(conn, pending, &response)?;
                            Ok(())
                        }
                    },
                );
                if !create.is_empty() {
                    self.admin.push_back(AdminWaiter::AutoCreate);
                    self.to_actor(Msg::Admin(AdminRequest::CreateTopics(create)))
                        .await;
                }
                result
            }
            Msg::ProduceResponse(response) => {
                let request = response.request;
                self.complete_where(
                    |w| matches!(w, Work::Produce(p) if p.request == request),
                    |_, pending| produce::complete(pending, &response),
                )
            }
            Msg::ListOffsetsResponse(response) => {
                let request = response.request;
                self.complete_where(
                    |w| matches!(w, Work::ListOffsets(p) if p.request == request),
                    |_, pending| list_offsets::complete(pending, &response),
                )
            }
            Msg::OffsetForLeaderEpochResponse(response) => self.complete_where(
                |w| matches!(w, Work::OffsetForLeaderEpoch(_)),
                |_, pending| offset_for_leader_epoch::complete(pending, &response),
            ),
            Msg::FetchResponse(response) => {
                self.fetch_with_actor = false;
                let result = self.complete_first(
                    |w| matches!(w, Work::Fetch(f) if f.with_actor),
                    |_, pending| fetch::complete(pending, response),
                );
                fetch::submit_next(self).await;
                result
            }
            Msg::AdminResponse(results) => match self.admin.pop_front() {
                Some(AdminWaiter::Request(correlation_id)) => self.complete_where(
                    |w| {
                        matches!(
                            w,
                            Work::CreateTopics(_)
                                | Work::DeleteTopics(_)
                                | Work::CreatePartitions(_)
                                | Work::AlterConfigs(_)
                        )
                    },
                    |_, pending| {
                        if pending.correlation_id != correlation_id {
                            return Ok(false);
                        }
                        match &mut pending.work {
                            Work::CreateTopics(_) => create_topics::complete(pending, &results),
                            Work::CreatePartitions(_) => {
                                create_partitions::complete(pending, &results)
                            }
                            Work::AlterConfigs(_) => {
                                incremental_alter_configs::complete(pending, &results)
                            }
                            _ => delete_topics::complete(pending, &results),
                        }
                    },
                ),
                Some(AdminWaiter::AutoCreate) | None => Ok(()),
            },
            Msg::InitProducerIdResponse(result) => self.complete_first(
                |w| matches!(w, Work::InitProducerId),
                |_, pending| init_producer_id::complete(pending, result),
            ),
            Msg::FindCoordinatorResponse {
                request,
                coordinators,
            } => self.complete_first(
                |w| matches!(w, Work::FindCoordinator(f) if f.request == request),
                |conn, pending| find_coordinator::complete(conn, pending, &coordinators),
            ),
            Msg::ListGroupsResponse { request, groups } => self.complete_first(
                |w| matches!(w, Work::ListGroups(l) if l.request == request),
                |_, pending| list_groups::complete(pending, &groups),
            ),
            Msg::GroupResponse(response) => self.complete_where(
                |w| matches!(w, Work::Group(g) if g.waits_for(response.request)),
                |_, pending| groups::complete(pending, &response),
            ),
            _ => Ok(()),
        };
        if let Err(why) = result {
            tracing::error!("client {}: {why}", self.client);
        }
    }

    /// Completes the first waiting request that `is` matches.
    fn complete_first(
        &mut self,
        is: impl Fn(&Work) -> bool,
        complete: impl FnOnce(&Connection, &mut Pending) -> Result<(), String>,
    ) -> Result<(), String> {
        let Some(index) = self.pending.iter().position(|p| is(&p.work)) else {
            return Ok(());
        };
        let mut pending = self.pending.remove(index).expect("found");
        let result = complete(self, &mut pending);
        self.pending.insert(index, pending);
        result
    }

    /// Offers an answer to every waiting request `is` matches, until one takes it (returns
    /// true, or `()` for the helpers that always take it).
    fn complete_where<T: Taken>(
        &mut self,
        is: impl Fn(&Work) -> bool,
        mut complete: impl FnMut(&Connection, &mut Pending) -> Result<T, String>,
    ) -> Result<(), String> {
        for index in 0..self.pending.len() {
            if !is(&self.pending[index].work) {
                continue;
            }
            let mut pending = self.pending.remove(index).expect("in range");
            let result = complete(self, &mut pending);
            self.pending.insert(index, pending);
            match result {
                Ok(taken) if taken.taken() => return Ok(()),
                Ok(_) => continue,
                Err(why) => return Err(why),
            }
        }
        Ok(())
    }

    /// Writes the answers at the head of the queue that are ready, in order.
    async fn write_ready(
        &mut self,
        writer: &mut FramedWrite<tokio::net::tcp::OwnedWriteHalf, LengthDelimitedCodec>,
    ) -> Result<(), String> {
        let mut wrote = false;
        while matches!(self.pending.front(), Some(p) if matches!(p.work, Work::Ready(_))) {
            let pending = self.pending.pop_front().expect("checked");
            let Work::Ready(bytes) = pending.work else {
                unreachable!()
            };
            writer
                .feed(bytes)
                .await
                .map_err(|e| format!("writing an answer: {e}"))?;
            wrote = true;
        }
        if wrote {
            SinkExt::<Bytes>::flush(writer)
                .await
                .map_err(|e| format!("writing an answer: {e}"))?;
        }
        Ok(())
    }
}

/// Whether a completion took the answer it was offered.
trait Taken {
    fn taken(&self) -> bool;
}

impl Taken for bool {
    fn taken(&self) -> bool {
        *self
    }
}

impl Taken for () {
    fn taken(&self) -> bool {
        true
    }
}

/// A request's answers per topic (named `N`), per partition in request order: the partition
/// index and its answer `A`, `None` until there is one.
pub type Answers<N, A> = Vec<(N, Vec<(i32, Option<A>)>)>;

/// An error code and its message, for the admin answers.
pub type Outcome = (i16, Option<String>);

/// The controller's outcome for the topic named `name`.
pub fn admin_outcome(results: &[TopicResult], name: &str) -> Outcome {
    match results.iter().find(|r| r.name == name).map(|r| r.result) {
        Some(Ok(_)) => (0, None),
        Some(Err(error)) => (error.code(), Some(error.name().to_string())),
        None => (42, Some("no answer for this topic".to_string())),
    }
}

/// Kafka's UUID for a topic id.
pub fn uuid(id: u128) -> uuid::Uuid {
    uuid::Uuid::from_u128(id)
}
