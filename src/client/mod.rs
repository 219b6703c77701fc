//! A small async Kafka client for Gregor's command-line tools (`gregor topics|produce|consume`).
//!
//! - [`Connection`]: one TCP connection to one broker. It negotiates versions with ApiVersions
//!   on connect, then sends one request at a time and reads the matching response.
//! - [`Client`]: a bootstrap address, the brokers learnt from Metadata (node id → host:port),
//!   and a connection per broker, opened on first use.
//! - [`Retry`]: bounded attempts with a fixed backoff for retriable errors
//!   ([`is_retriable`]): a few Kafka error codes and any connection failure.
//!
//! Every network wait has a timeout. Errors name the broker and the Kafka error.

pub mod murmur2;
pub mod records;
pub mod requests;
#[cfg(test)]
mod smoke;

use std::collections::HashMap;
use std::fmt;
use std::ops::RangeInclusive;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, MetadataRequest, MetadataResponse, RequestHeader, ResponseHeader,
    TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long any single network wait (connect, write, response) may take.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The client id in every request header.
pub const CLIENT_ID: &str = "gregor-cli";
/// A response larger than this is taken as a framing error rather than allocated.
const MAX_FRAME_BYTES: usize = 256 << 20;

/// The versions of each API this client can speak. The broker's range is intersected with
/// this and the highest common version is used. `None`: an API this client never sends.
pub fn client_versions(key: ApiKey) -> Option<RangeInclusive<i16>> {
    Some(match key {
        ApiKey::ApiVersions => 0..=3,
        // v0 cannot ask for "all topics" with a null list; every broker since 0.10 has v1.
        ApiKey::Metadata => 1..=12,
        ApiKey::Produce => 3..=12,
        ApiKey::Fetch => 4..=12,
        ApiKey::ListOffsets => 1..=8,
        ApiKey::CreateTopics => 2..=7,
        ApiKey::DeleteTopics => 1..=6,
        ApiKey::FindCoordinator => 1..=4,
        ApiKey::ListGroups => 0..=5,
        ApiKey::DescribeGroups => 0..=5,
        ApiKey::OffsetFetch => 1..=8,
        ApiKey::OffsetCommit => 2..=8,
        ApiKey::DeleteGroups => 0..=2,
        _ => return None,
    })
}

/// A connection-level failure: connecting, writing, reading, a timeout, or a malformed frame.
/// The connection is dropped; the operation can be retried after refreshing metadata.
#[derive(Debug)]
pub struct ConnectionError {
    pub broker: String,
    pub message: String,
}

impl fmt::Display for ConnectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "broker {}: {}", self.broker, self.message)
    }
}

impl std::error::Error for ConnectionError {}

/// A copy of a failed request's error, for each of the partitions the request carried;
/// remembers whether the original was retriable.
#[derive(Debug)]
pub struct SharedFailure {
    pub message: String,
    pub retriable: bool,
}

impl SharedFailure {
    pub fn of(error: &anyhow::Error) -> Self {
        SharedFailure {
            message: format!("{error:#}"),
            retriable: is_retriable(error),
        }
    }
}

impl fmt::Display for SharedFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SharedFailure {}

/// A non-zero error code in a Kafka response.
#[derive(Debug)]
pub struct KafkaError {
    pub code: i16,
    pub broker: String,
    /// What was being done, e.g. "Produce to t-0".
    pub context: String,
    pub message: Option<String>,
}

impl KafkaError {
    pub fn new(code: i16, broker: &str, context: impl Into<String>) -> Self {
        KafkaError {
            code,
            broker: broker.to_string(),
            context: context.into(),
            message: None,
        }
    }

    pub fn with_message(mut self, message: Option<&StrBytes>) -> Self {
        self.message = message.map(|m| m.to_string()).filter(|m| !m.is_empty());
        self
    }
}

impl fmt::Display for KafkaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} (error code {}) from broker {}",
            self.context,
            error_name(self.code),
            self.code,
            self.broker
        )?;
        if let Some(message) = &self.message {
            write!(f, ": {message}")?;
        }
        Ok(())
    }
}

impl std::error::Error for KafkaError {}

/// Kafka's name for an error code, as in the protocol guide: `NOT_LEADER_OR_FOLLOWER`.
pub fn error_name(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        None => "NONE".to_string(),
        Some(ResponseError::Unknown(code)) => format!("UNKNOWN_ERROR_CODE_{code}"),
        Some(error) => {
            // The crate names its variants in CamelCase; Kafka's names are SCREAMING_SNAKE.
            let camel = format!("{error:?}");
            let mut name = String::with_capacity(camel.len() + 8);
            let mut previous_lower = false;
            for c in camel.chars() {
                if c.is_ascii_uppercase() && previous_lower {
                    name.push('_');
                }
                previous_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
                name.push(c.to_ascii_uppercase());
            }
            name
        }
    }
}

/// Error codes worth retrying after a metadata refresh and a backoff.
pub fn retriable_code(code: i16) -> bool {
    matches!(
        code,
        3  // UNKNOWN_TOPIC_OR_PARTITION: the topic may still be being created
        | 5  // LEADER_NOT_AVAILABLE
        | 6  // NOT_LEADER_OR_FOLLOWER
        | 7  // REQUEST_TIMED_OUT
        | 13 // NETWORK_EXCEPTION
        | 14 // COORDINATOR_LOAD_IN_PROGRESS
        | 15 // COORDINATOR_NOT_AVAILABLE: __consumer_offsets is being created, or has no leader
        | 16 // NOT_COORDINATOR: the coordinator moved; look it up again
        | 19 // NOT_ENOUGH_REPLICAS
        | 20 // NOT_ENOUGH_REPLICAS_AFTER_APPEND
        | 41 // NOT_CONTROLLER: CreateTopics/DeleteTopics went to a broker that just lost the role
    )
}

/// Whether an error (anywhere in its chain) is a connection failure or a retriable Kafka error.
pub fn is_retriable(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause.downcast_ref::<ConnectionError>().is_some()
            || cause
                .downcast_ref::<SharedFailure>()
                .is_some_and(|e| e.retriable)
            || cause
                .downcast_ref::<KafkaError>()
                .is_some_and(|e| retriable_code(e.code))
    })
}

/// Bounded attempts with a fixed backoff.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 20,
            backoff: Duration::from_millis(250),
        }
    }
}

/// One operation's retry state: `loop { match op().await { Ok(v) => break v, Err(e) =>
/// retry.wait(e).await? } }` retries retriable errors until the attempts run out.
pub struct Retry {
    policy: RetryPolicy,
    failures: u32,
}

impl Retry {
    pub fn new(policy: RetryPolicy) -> Self {
        Retry {
            policy,
            failures: 0,
        }
    }

    /// Returns the error if it is not retriable or the attempts are used up; otherwise sleeps
    /// the backoff so the caller can try again.
    pub async fn wait(&mut self, error: anyhow::Error) -> Result<()> {
        if !is_retriable(&error) {
            return Err(error);
        }
        self.failures += 1;
        if self.failures >= self.policy.attempts {
            return Err(error.context(format!("gave up after {} attempts", self.failures)));
        }
        tokio::time::sleep(self.policy.backoff).await;
        Ok(())
    }
}

/// Encode a whole request frame: size, request header, body.
pub fn encode_request<R: Request>(
    request: &R,
    version: i16,
    correlation_id: i32,
    client_id: &str,
) -> Result<BytesMut> {
    let api_key = ApiKey::try_from(R::KEY).map_err(|_| anyhow!("unknown api key {}", R::KEY))?;
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_string(client_id.to_string())));
    let header_version = api_key.request_header_version(version);
    let size = header.compute_size(header_version)? + request.compute_size(version)?;
    let mut frame = BytesMut::with_capacity(4 + size);
    frame.put_i32(i32::try_from(size).context("request too large")?);
    header.encode(&mut frame, header_version)?;
    request
        .encode(&mut frame, version)
        .with_context(|| format!("encoding {api_key:?} v{version} request"))?;
    Ok(frame)
}

/// Run a future under a timeout, turning both the timeout and an I/O error into a
/// [`ConnectionError`] naming the broker.
async fn timed<T>(
    broker: &str,
    what: &str,
    timeout: Duration,
    future: impl std::future::Future<Output = std::io::Result<T>>,
) -> Result<T> {
    match tokio::time::timeout(timeout, future).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(ConnectionError {
            broker: broker.to_string(),
            message: format!("{what}: {error}"),
        }
        .into()),
        Err(_) => Err(ConnectionError {
            broker: broker.to_string(),
            message: format!("{what}: timed out after {} ms", timeout.as_millis()),
        }
        .into()),
    }
}

/// One TCP connection to one broker, with the API versions it supports.
pub struct Connection {
    broker: String,
    stream: TcpStream,
    next_correlation_id: i32,
    /// api key → (min, max) as the broker reported them.
    versions: HashMap<i16, (i16, i16)>,
    timeout: Duration,
}

impl Connection {
    /// Connect and negotiate versions with ApiVersions.
    pub async fn connect(broker: &str, timeout: Duration) -> Result<Self> {
        let stream = timed(broker, "connecting", timeout, TcpStream::connect(broker)).await?;
        let _ = stream.set_nodelay(true);
        let mut connection = Connection {
            broker: broker.to_string(),
            stream,
            next_correlation_id: 1,
            versions: HashMap::new(),
            timeout,
        };
        connection.negotiate().await?;
        Ok(connection)
    }

    async fn negotiate(&mut self) -> Result<()> {
        // v3 (flexible) names the client software; a broker without v3 answers
        // UNSUPPORTED_VERSION in the v0 layout, which does not decode as v3: fall back to v0.
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("gregor"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let response = match self.send(&request, 3).await {
            Ok(response) if response.error_code == 0 => response,
            Err(error) if error.downcast_ref::<ConnectionError>().is_some() => return Err(error),
            _ => self.send(&ApiVersionsRequest::default(), 0).await?,
        };
        if response.error_code != 0 {
            return Err(KafkaError::new(response.error_code, &self.broker, "ApiVersions").into());
        }
        self.versions = response
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect();
        Ok(())
    }

    /// The highest version of `key` that both this client and the broker support.
    pub fn version(&self, key: ApiKey) -> Result<i16> {
        let ours = client_versions(key).ok_or_else(|| anyhow!("gregor does not send {key:?}"))?;
        let Some(&(min, max)) = self.versions.get(&(key as i16)) else {
            bail!("broker {} does not support {key:?} at all", self.broker);
        };
        let version = max.min(*ours.end());
        if version < min.max(*ours.start()) {
            bail!(
                "broker {} supports {key:?} versions {min}..={max}; gregor speaks {}..={}",
                self.broker,
                ours.start(),
                ours.end()
            );
        }
        Ok(version)
    }

    async fn write_request<R: Request>(&mut self, request: &R, version: i16) -> Result<i32> {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let frame = encode_request(request, version, correlation_id, CLIENT_ID)?;
        let broker = self.broker.clone();
        timed(
            &broker,
            "sending a request",
            self.timeout,
            self.stream.write_all(&frame),
        )
        .await?;
        Ok(correlation_id)
    }

    async fn read_frame(&mut self) -> Result<Bytes> {
        let broker = self.broker.clone();
        let size = timed(
            &broker,
            "waiting for a response",
            self.timeout,
            self.stream.read_i32(),
        )
        .await?;
        let size = usize::try_from(size)
            .ok()
            .filter(|&s| s <= MAX_FRAME_BYTES)
            .ok_or_else(|| ConnectionError {
                broker: broker.clone(),
                message: format!("response frame size {size} is out of range"),
            })?;
        let mut body = vec![0; size];
        timed(
            &broker,
            "reading a response",
            self.timeout,
            self.stream.read_exact(&mut body),
        )
        .await?;
        Ok(Bytes::from(body))
    }

    /// Send one request and read its response.
    pub async fn send<R: Request>(&mut self, request: &R, version: i16) -> Result<R::Response> {
        let api_key =
            ApiKey::try_from(R::KEY).map_err(|_| anyhow!("unknown api key {}", R::KEY))?;
        let correlation_id = self.write_request(request, version).await?;
        let mut body = self.read_frame().await?;
        // ApiVersions answers with header v0 whatever the version; the crate knows that.
        let header = ResponseHeader::decode(&mut body, api_key.response_header_version(version))
            .map_err(|e| ConnectionError {
                broker: self.broker.clone(),
                message: format!("malformed {api_key:?} response header: {e}"),
            })?;
        if header.correlation_id != correlation_id {
            return Err(ConnectionError {
                broker: self.broker.clone(),
                message: format!(
                    "response correlation id {} does not match request {correlation_id}",
                    header.correlation_id
                ),
            }
            .into());
        }
        let response = R::Response::decode(&mut body, version).with_context(|| {
            format!(
                "decoding {api_key:?} v{version} response from broker {}",
                self.broker
            )
        })?;
        if body.has_remaining() {
            // Not fatal: a newer tagged field or trailing bytes we do not know about.
            eprintln!(
                "warning: {} unread bytes after {api_key:?} v{version} response from broker {}",
                body.remaining(),
                self.broker
            );
        }
        Ok(response)
    }

    /// Send a request that gets no response (Produce with acks=0).
    pub async fn send_without_response<R: Request>(
        &mut self,
        request: &R,
        version: i16,
    ) -> Result<()> {
        self.write_request(request, version).await.map(|_| ())
    }
}

/// Where to send a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Any broker: a bootstrap address or a broker learnt from metadata.
    Any,
    /// The broker with this node id (from the last Metadata).
    Node(i32),
}

/// A bootstrap address, the cluster's brokers by node id, and a connection to each.
pub struct Client {
    bootstrap: Vec<String>,
    timeout: Duration,
    brokers: HashMap<i32, String>,
    connections: HashMap<String, Connection>,
    controller: Option<i32>,
    last_broker: String,
    pub retry: RetryPolicy,
}

impl Client {
    /// `bootstrap` is `HOST:PORT`, or several separated by commas.
    pub fn new(bootstrap: &str, timeout: Duration) -> Self {
        Client {
            bootstrap: bootstrap
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            timeout,
            brokers: HashMap::new(),
            connections: HashMap::new(),
            controller: None,
            last_broker: String::new(),
            retry: RetryPolicy::default(),
        }
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The broker's advertised address, from the last Metadata.
    pub fn broker_address(&self, node: i32) -> Option<&str> {
        self.brokers.get(&node).map(String::as_str)
    }

    /// The broker that answered the last Metadata.
    pub fn last_broker(&self) -> &str {
        &self.last_broker
    }

    /// The controller id from the last Metadata, if the broker reported one.
    pub fn controller(&self) -> Option<i32> {
        self.controller
    }

    async fn connection_to(&mut self, address: &str) -> Result<&mut Connection> {
        if !self.connections.contains_key(address) {
            let connection = Connection::connect(address, self.timeout).await?;
            self.connections.insert(address.to_string(), connection);
        }
        Ok(self
            .connections
            .get_mut(address)
            .expect("inserted just above"))
    }

    /// The address to use for a target; for `Any`, the first address that accepts a connection.
    async fn address_for(&mut self, target: Target) -> Result<String> {
        match target {
            Target::Node(node) => self.brokers.get(&node).cloned().ok_or_else(|| {
                // Retriable: the metadata may be stale.
                KafkaError::new(5, "(metadata)", format!("no address known for node {node}")).into()
            }),
            Target::Any => {
                if let Some(address) = self.connections.keys().next() {
                    return Ok(address.clone());
                }
                let mut candidates = self.bootstrap.clone();
                candidates.extend(self.brokers.values().cloned());
                let mut last_error = anyhow!("no bootstrap server given");
                for address in candidates {
                    match self.connection_to(&address).await {
                        Ok(_) => return Ok(address),
                        Err(error) => last_error = error,
                    }
                }
                Err(last_error)
            }
        }
    }

    /// Send a request built for the negotiated version; returns the response and the broker
    /// address it came from. A connection failure drops the connection.
    pub async fn request<R: Request>(
        &mut self,
        target: Target,
        build: impl FnOnce(i16) -> Result<R>,
    ) -> Result<(R::Response, String)> {
        let api_key =
            ApiKey::try_from(R::KEY).map_err(|_| anyhow!("unknown api key {}", R::KEY))?;
        let address = self.address_for(target).await?;
        let connection = self.connection_to(&address).await?;
        let version = connection.version(api_key)?;
        let request = build(version)?;
        match connection.send(&request, version).await {
            Ok(response) => Ok((response, address)),
            Err(error) => {
                if error.downcast_ref::<ConnectionError>().is_some() {
                    self.connections.remove(&address);
                }
                Err(error)
            }
        }
    }

    /// Like [`Client::request`] for a request the broker does not answer (acks=0).
    pub async fn request_without_response<R: Request>(
        &mut self,
        target: Target,
        build: impl FnOnce(i16) -> Result<R>,
    ) -> Result<String> {
        let api_key =
            ApiKey::try_from(R::KEY).map_err(|_| anyhow!("unknown api key {}", R::KEY))?;
        let address = self.address_for(target).await?;
        let connection = self.connection_to(&address).await?;
        let version = connection.version(api_key)?;
        let request = build(version)?;
        if let Err(error) = connection.send_without_response(&request, version).await {
            self.connections.remove(&address);
            return Err(error);
        }
        Ok(address)
    }

    /// Fetch Metadata for all topics (`None`) or the named ones, and learn the brokers.
    pub async fn metadata(&mut self, topics: Option<&[String]>) -> Result<MetadataResponse> {
        let (response, broker) = self
            .request(Target::Any, |version| Ok(metadata_request(topics, version)))
            .await?;
        self.last_broker = broker;
        self.brokers = response
            .brokers
            .iter()
            .map(|b| (b.node_id.0, join_host_port(&b.host, b.port)))
            .collect();
        // Connections to brokers no longer listed are dropped; bootstrap ones stay.
        let known: Vec<String> = self.brokers.values().cloned().collect();
        let bootstrap = self.bootstrap.clone();
        self.connections
            .retain(|address, _| known.contains(address) || bootstrap.contains(address));
        self.controller = (response.controller_id.0 >= 0).then_some(response.controller_id.0);
        Ok(response)
    }
}

/// A Metadata request for all topics or the named ones, never creating topics.
pub fn metadata_request(topics: Option<&[String]>, version: i16) -> MetadataRequest {
    let mut request = MetadataRequest::default().with_topics(topics.map(|names| {
        names
            .iter()
            .map(|name| MetadataRequestTopic::default().with_name(Some(topic_name(name))))
            .collect()
    }));
    if version >= 4 {
        request = request.with_allow_auto_topic_creation(false);
    }
    request
}

pub fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

/// `host:port`, bracketing an IPv6 literal.
pub fn join_host_port(host: &str, port: i32) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Kafka's text form of a topic id: URL-safe base64 without padding, as `kafka-topics` prints.
pub fn kafka_uuid(bytes: &[u8; 16]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(22);
    for chunk in bytes.chunks(3) {
        let mut n = 0u32;
        for (i, b) in chunk.iter().enumerate() {
            n |= u32::from(*b) << (16 - 8 * i);
        }
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_names_are_kafkas() {
        assert_eq!(error_name(6), "NOT_LEADER_OR_FOLLOWER");
        assert_eq!(error_name(3), "UNKNOWN_TOPIC_OR_PARTITION");
        assert_eq!(error_name(36), "TOPIC_ALREADY_EXISTS");
        assert_eq!(error_name(20), "NOT_ENOUGH_REPLICAS_AFTER_APPEND");
        assert_eq!(error_name(-1), "UNKNOWN_SERVER_ERROR");
        assert_eq!(error_name(0), "NONE");
        assert_eq!(error_name(9999), "UNKNOWN_ERROR_CODE_9999");
    }

    #[test]
    fn retriable_errors_are_found_through_context() {
        let error = anyhow::Error::from(KafkaError::new(6, "b:1", "Produce")).context("outer");
        assert!(is_retriable(&error));
        let error = anyhow::Error::from(KafkaError::new(1, "b:1", "Fetch"));
        assert!(!is_retriable(&error));
        let error = anyhow::Error::from(ConnectionError {
            broker: "b:1".into(),
            message: "refused".into(),
        });
        assert!(is_retriable(&error));
        assert!(!is_retriable(&anyhow!("plain")));
        assert!(is_retriable(&SharedFailure::of(&error).into()));
        assert!(!is_retriable(&SharedFailure::of(&anyhow!("plain")).into()));
    }

    #[test]
    fn kafka_uuid_is_unpadded_url_safe_base64() {
        assert_eq!(kafka_uuid(&[0; 16]), "AAAAAAAAAAAAAAAAAAAAAA");
        // 0xfb 0xff 0xbf ... → "-_-_" per 3 bytes in the URL-safe alphabet.
        let id = [
            0xfb, 0xef, 0xbe, 0xfb, 0xef, 0xbe, 0xfb, 0xef, 0xbe, 0xfb, 0xef, 0xbe, 0xfb, 0xef,
            0xbe, 0xff,
        ];
        assert_eq!(kafka_uuid(&id), "--------------------_w");
    }

    #[test]
    fn metadata_request_versions() {
        let request = metadata_request(None, 1);
        assert!(request.topics.is_none());
        assert!(request.allow_auto_topic_creation);
        encode_request(&request, 1, 7, CLIENT_ID).unwrap();
        let request = metadata_request(Some(&["t".to_string()]), 12);
        assert!(!request.allow_auto_topic_creation);
        encode_request(&request, 12, 7, CLIENT_ID).unwrap();
    }

    /// A fake broker answering ApiVersions and Metadata, to check framing, header versions and
    /// version negotiation end to end over TCP.
    async fn fake_broker(listener: tokio::net::TcpListener) {
        use kafka_protocol::messages::api_versions_response::ApiVersion;
        use kafka_protocol::messages::metadata_response::{
            MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
        };
        use kafka_protocol::messages::{ApiVersionsResponse, BrokerId};
        use kafka_protocol::protocol::decode_request_header_from_buffer;

        let port = listener.local_addr().unwrap().port();
        let (mut stream, _) = listener.accept().await.unwrap();
        loop {
            let Ok(size) = stream.read_i32().await else {
                return;
            };
            let mut body = vec![0; size as usize];
            stream.read_exact(&mut body).await.unwrap();
            let mut body = Bytes::from(body);
            let header = decode_request_header_from_buffer(&mut body).unwrap();
            let (key, version) = (header.request_api_key, header.request_api_version);
            let api_key = ApiKey::try_from(key).unwrap();
            let response_header =
                ResponseHeader::default().with_correlation_id(header.correlation_id);
            let header_version = api_key.response_header_version(version);
            let mut frame = BytesMut::new();
            response_header.encode(&mut frame, header_version).unwrap();
            match api_key {
                ApiKey::ApiVersions => {
                    assert_eq!(version, 3);
                    let request = ApiVersionsRequest::decode(&mut body, version).unwrap();
                    assert_eq!(request.client_software_name.as_str(), "gregor");
                    let range = |k: ApiKey, min, max| {
                        ApiVersion::default()
                            .with_api_key(k as i16)
                            .with_min_version(min)
                            .with_max_version(max)
                    };
                    ApiVersionsResponse::default()
                        .with_api_keys(vec![
                            range(ApiKey::ApiVersions, 0, 4),
                            range(ApiKey::Metadata, 0, 13),
                        ])
                        .encode(&mut frame, version)
                        .unwrap();
                }
                ApiKey::Metadata => {
                    assert_eq!(version, 12, "highest common version");
                    let request = MetadataRequest::decode(&mut body, version).unwrap();
                    assert!(request.topics.is_none());
                    assert!(!request.allow_auto_topic_creation);
                    MetadataResponse::default()
                        .with_brokers(vec![MetadataResponseBroker::default()
                            .with_node_id(BrokerId(1))
                            .with_host(StrBytes::from_static_str("127.0.0.1"))
                            .with_port(i32::from(port))])
                        .with_controller_id(BrokerId(1))
                        .with_topics(vec![MetadataResponseTopic::default()
                            .with_name(Some(topic_name("t")))
                            .with_partitions(vec![MetadataResponsePartition::default()
                                .with_partition_index(0)
                                .with_leader_id(BrokerId(1))
                                .with_leader_epoch(4)
                                .with_replica_nodes(vec![BrokerId(1)])
                                .with_isr_nodes(vec![BrokerId(1)])])])
                        .encode(&mut frame, version)
                        .unwrap();
                }
                other => panic!("unexpected {other:?}"),
            }
            stream.write_i32(frame.len() as i32).await.unwrap();
            stream.write_all(&frame).await.unwrap();
        }
    }

    #[tokio::test]
    async fn negotiates_and_reads_metadata_from_a_fake_broker() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let server = tokio::spawn(fake_broker(listener));
        let mut client = Client::new(&address, Duration::from_secs(5));
        let response = client.metadata(None).await.unwrap();
        assert_eq!(client.broker_address(1), Some(address.as_str()));
        assert_eq!(client.controller(), Some(1));
        assert_eq!(client.last_broker(), address);
        assert_eq!(response.topics[0].partitions[0].leader_epoch, 4);
        // The same connection again: correlation ids keep matching.
        client.metadata(None).await.unwrap();
        drop(client);
        server.await.unwrap();
    }

    #[test]
    fn host_port() {
        assert_eq!(join_host_port("h", 9092), "h:9092");
        assert_eq!(join_host_port("::1", 9092), "[::1]:9092");
    }
}
