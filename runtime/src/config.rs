//! The two processes' configuration files, Kafka's `.properties` files under Kafka's setting
//! names and with Kafka's defaults: `gregor controller --config controller.properties` reads
//! [`ControllerSettings`], `gregor broker --config broker.properties` reads [`BrokerSettings`].
//! Each turns into the model's configuration (and, for a broker, the log's), so the roles the
//! checker explores run with exactly what the file says.
//!
//! A setting Gregor does not know is refused, naming it, and so is a value it cannot honour,
//! naming the setting, the value and why. A few settings that Kafka's own example files carry
//! but that mean nothing to Gregor yet are accepted and kept (see
//! [`BrokerSettings::compatibility`]), so that a Kafka user's file needs editing only where
//! Gregor differs: one controller, node 0; one log directory; a broker's replication traffic on
//! its own listener.

use crate::storage::{batch, FlushConfig, LogConfig};
use gregor_model::config::{
    BrokerConfig, BrokerLimits, BrokerTimeouts, ControllerConfig, Endpoint, OffsetsTopicConfig,
    ProtocolConfig, TopicConfig,
};
use gregor_model::group::GroupConfig;
use gregor_model::types::{BrokerId, FlushPolicy};
use std::collections::BTreeMap;
use std::fmt;
use std::num::IntErrorKind;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;
use thiserror::Error;

/// What is wrong with a configuration. Every variant names what it concerns: the file, the
/// line, or the setting with its value.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Anything wrong inside a file, with the file's name in front.
    #[error("{path}: {error}")]
    InFile {
        path: PathBuf,
        error: Box<ConfigError>,
    },
    #[error("line {line}: {why}")]
    Syntax { line: usize, why: String },
    #[error("unknown setting {key} (= {value:?})")]
    Unknown { key: String, value: String },
    #[error("missing setting {key}: {why}")]
    Missing { key: String, why: String },
    #[error("invalid value {value:?} for {key}: {why}")]
    Invalid {
        key: String,
        value: String,
        why: String,
    },
    #[error("override {text:?} is not KEY=VALUE")]
    Override { text: String },
}

fn invalid(key: &str, value: &str, why: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        value: value.to_string(),
        why: why.into(),
    }
}

fn in_file(path: &Path, error: ConfigError) -> ConfigError {
    ConfigError::InFile {
        path: path.to_path_buf(),
        error: Box::new(error),
    }
}

// ---------------------------------------------------------------------------------------------
// The .properties format.

/// Parses the subset of Java's `.properties` format that configuration files use: one
/// `key=value`, `key: value` or `key value` per line; lines whose first non-blank character is
/// `#` or `!` are comments; blank lines are skipped; whitespace around keys and values is
/// trimmed; a line ending in an odd number of backslashes continues on the next line (whose
/// leading whitespace is dropped). Java's escapes are read (`\t`, `\n`, `\r`, `\f`, `\uXXXX`,
/// and a backslash before any other character stands for that character), so `a\=b` is a key
/// with an `=` in it.
///
/// A key set twice keeps its last value, as Java's `Properties.load` does, at the place of its
/// first appearance; the answer therefore has each key once, in the file's order. A line with
/// a value but no key is refused, naming the line.
pub fn parse_properties(text: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let mut properties: Vec<(String, String)> = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((index, line)) = lines.next() {
        let line_number = index + 1;
        let start = line.trim_start();
        if start.is_empty() || start.starts_with('#') || start.starts_with('!') {
            continue;
        }
        let mut logical = start.to_string();
        while ends_in_continuation(&logical) {
            logical.pop();
            match lines.next() {
                Some((_, next)) => logical.push_str(next.trim_start()),
                None => break,
            }
        }
        let (key, value) = split_key_value(&logical);
        let key = unescape(key.trim(), line_number)?;
        let value = unescape(value.trim(), line_number)?;
        if key.is_empty() {
            return Err(ConfigError::Syntax {
                line: line_number,
                why: format!("no key before the value {value:?}"),
            });
        }
        match properties.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => *v = value,
            None => properties.push((key, value)),
        }
    }
    Ok(properties)
}

/// Whether a line ends in an odd number of backslashes (the last one escapes the line break).
fn ends_in_continuation(line: &str) -> bool {
    line.bytes().rev().take_while(|&b| b == b'\\').count() % 2 == 1
}

/// Splits a logical line at the first unescaped `=`, `:` or whitespace; whitespace and one
/// `=` or `:` after the key belong to neither part.
fn split_key_value(line: &str) -> (&str, &str) {
    let mut escaped = false;
    let mut end = line.len();
    for (i, c) in line.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '=' || c == ':' || c.is_whitespace() {
            end = i;
            break;
        }
    }
    let key = &line[..end];
    let rest = line[end..].trim_start();
    let value = rest
        .strip_prefix('=')
        .or_else(|| rest.strip_prefix(':'))
        .unwrap_or(rest);
    (key, value)
}

fn unescape(text: &str, line: usize) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\u{c}'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                let code = (hex.len() == 4)
                    .then(|| u32::from_str_radix(&hex, 16).ok())
                    .flatten()
                    .and_then(char::from_u32);
                match code {
                    Some(decoded) => out.push(decoded),
                    None => {
                        return Err(ConfigError::Syntax {
                            line,
                            why: format!("malformed \\uXXXX escape \\u{hex}"),
                        })
                    }
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    Ok(out)
}

/// Reads and parses a `.properties` file; every error names the file.
pub fn load_properties(path: impl AsRef<Path>) -> Result<Vec<(String, String)>, ConfigError> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_properties(&text).map_err(|error| in_file(path, error))
}

/// Splits a command-line override `KEY=VALUE` (as `gregor cluster up --broker-config` takes
/// it) at its first `=`, trimming both sides.
pub fn parse_override(text: &str) -> Result<(String, String), ConfigError> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_string(), value.trim().to_string()))
        }
        _ => Err(ConfigError::Override {
            text: text.to_string(),
        }),
    }
}

/// The properties with each override set (replacing the file's value, or added after the
/// file's settings).
fn with_overrides<S: AsRef<str>>(
    properties: &[(String, String)],
    overrides: &[S],
) -> Result<Vec<(String, String)>, ConfigError> {
    let mut properties = properties.to_vec();
    for text in overrides {
        let (key, value) = parse_override(text.as_ref())?;
        match properties.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => *v = value,
            None => properties.push((key, value)),
        }
    }
    Ok(properties)
}

// ---------------------------------------------------------------------------------------------
// Reading typed values.

/// A configuration's properties, checked against the keys its process knows.
struct Props<'a> {
    map: BTreeMap<&'a str, &'a str>,
}

impl<'a> Props<'a> {
    /// Refuses the first key (in the file's order) that `known` does not accept.
    fn new(
        properties: &'a [(String, String)],
        known: impl Fn(&str) -> bool,
    ) -> Result<Self, ConfigError> {
        if let Some((key, value)) = properties.iter().find(|(key, _)| !known(key)) {
            return Err(ConfigError::Unknown {
                key: key.clone(),
                value: value.clone(),
            });
        }
        let map = properties
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        Ok(Props { map })
    }

    fn get(&self, key: &str) -> Option<&'a str> {
        self.map.get(key).copied()
    }

    /// The keys among `keys` that are set, with their values.
    fn kept(&self, keys: &[&str]) -> BTreeMap<String, String> {
        keys.iter()
            .filter_map(|&key| Some((key.to_string(), self.get(key)?.to_string())))
            .collect()
    }

    fn int_or(
        &self,
        key: &str,
        default: i64,
        range: RangeInclusive<i64>,
    ) -> Result<i64, ConfigError> {
        Ok(self.int(key, range)?.unwrap_or(default))
    }

    fn int(&self, key: &str, range: RangeInclusive<i64>) -> Result<Option<i64>, ConfigError> {
        self.get(key)
            .map(|value| int_in(key, value, range))
            .transpose()
    }

    fn millis_or(
        &self,
        key: &str,
        default: i64,
        range: RangeInclusive<i64>,
    ) -> Result<Duration, ConfigError> {
        // Every range given here starts at 0 or above.
        Ok(Duration::from_millis(
            self.int_or(key, default, range)? as u64
        ))
    }

    fn bool_or(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        match self.get(key) {
            None => Ok(default),
            Some(value) => match value.to_ascii_lowercase().as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(invalid(key, value, "must be true or false")),
            },
        }
    }
}

fn int(key: &str, value: &str) -> Result<i64, ConfigError> {
    value.parse::<i64>().map_err(|error| match error.kind() {
        IntErrorKind::Empty => invalid(key, value, "empty; an integer is needed"),
        IntErrorKind::PosOverflow | IntErrorKind::NegOverflow => {
            invalid(key, value, "beyond the range of a 64-bit integer")
        }
        _ => invalid(key, value, "not an integer"),
    })
}

fn int_in(key: &str, value: &str, range: RangeInclusive<i64>) -> Result<i64, ConfigError> {
    let n = int(key, value)?;
    check_range(key, value, n, range)
}

fn check_range(
    key: &str,
    value: &str,
    n: i64,
    range: RangeInclusive<i64>,
) -> Result<i64, ConfigError> {
    if range.contains(&n) {
        return Ok(n);
    }
    let (low, high) = (*range.start(), *range.end());
    let why = if n < low {
        format!("must be at least {low}")
    } else {
        format!("must be at most {high}")
    };
    Err(invalid(key, value, why))
}

const INT: i64 = i32::MAX as i64;
const LONG: i64 = i64::MAX;

/// A comma-separated list's entries, trimmed, empty entries dropped.
fn list(value: &str) -> Vec<&str> {
    value
        .split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Addresses.

/// A listener: a name and the address it binds or advertises, `NAME://host:port` in the file.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Listener {
    /// The listener's name, upper-cased as Kafka normalises it.
    pub name: String,
    /// A host name or IP address, IPv6 without brackets; `0.0.0.0` (or an empty host in the
    /// file) binds every interface.
    pub host: String,
    /// 0 binds any free port.
    pub port: u16,
}

impl fmt::Display for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}",
            self.name,
            HostPort::display(&self.host, self.port)
        )
    }
}

/// A `host:port` address, IPv6 hosts without brackets.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

impl HostPort {
    fn display(host: &str, port: u16) -> String {
        if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        }
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&HostPort::display(&self.host, self.port))
    }
}

/// Parses `host:port` or `[ipv6]:port`; an empty host is allowed (the caller decides).
fn host_port(text: &str) -> Result<HostPort, String> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("{text:?} opens a bracket it does not close"))?;
        let port = after
            .strip_prefix(':')
            .ok_or_else(|| format!("{text:?} has no :port after the bracketed host"))?;
        (host, port)
    } else {
        let (host, port) = text
            .rsplit_once(':')
            .ok_or_else(|| format!("{text:?} has no :port"))?;
        if host.contains(':') {
            return Err(format!(
                "{text:?}: an IPv6 host goes in brackets, [::1]:9092"
            ));
        }
        (host, port)
    };
    if host
        .chars()
        .any(|c| c.is_whitespace() || matches!(c, '/' | '@' | ',' | '[' | ']'))
    {
        return Err(format!("{host:?} is not a host name or IP address"));
    }
    let port = port
        .parse::<u16>()
        .map_err(|_| format!("port {port:?} is not a number from 0 to 65535"))?;
    Ok(HostPort {
        host: host.to_string(),
        port,
    })
}

/// Parses a listener list (`listeners`, `advertised.listeners`): names unique.
fn listeners(key: &str, value: &str) -> Result<Vec<Listener>, ConfigError> {
    let mut parsed: Vec<Listener> = Vec::new();
    for entry in list(value) {
        let (name, address) = entry
            .split_once("://")
            .ok_or_else(|| invalid(key, value, format!("{entry:?} is not NAME://host:port")))?;
        let name = name.trim().to_ascii_uppercase();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(invalid(
                key,
                value,
                format!("{entry:?}: a listener's name is letters, digits, _ and -"),
            ));
        }
        let address = host_port(address).map_err(|why| invalid(key, value, why))?;
        if parsed.iter().any(|l| l.name == name) {
            return Err(invalid(
                key,
                value,
                format!("listener name {name} appears twice"),
            ));
        }
        parsed.push(Listener {
            name,
            host: address.host,
            port: address.port,
        });
    }
    if parsed.is_empty() {
        return Err(invalid(key, value, "no listener given"));
    }
    Ok(parsed)
}

fn unspecified(host: &str) -> bool {
    matches!(host, "" | "0.0.0.0" | "::")
}

/// `listener.security.protocol.map` (`NAME:PROTOCOL,...`): Gregor speaks only PLAINTEXT, so
/// every listener must map to it. A listener the map leaves out is PLAINTEXT unless it is named
/// after another of Kafka's protocols (as Kafka reads such a name).
fn check_security_protocols(props: &Props, listeners: &[Listener]) -> Result<(), ConfigError> {
    const KEY: &str = "listener.security.protocol.map";
    let mut map = BTreeMap::new();
    if let Some(value) = props.get(KEY) {
        for entry in list(value) {
            let (name, protocol) = entry
                .split_once(':')
                .ok_or_else(|| invalid(KEY, value, format!("{entry:?} is not NAME:PROTOCOL")))?;
            map.insert(
                name.trim().to_ascii_uppercase(),
                protocol.trim().to_ascii_uppercase(),
            );
        }
    }
    for listener in listeners {
        let (key, value, protocol) = match map.get(&listener.name) {
            Some(protocol) => (KEY, props.get(KEY).unwrap_or(""), protocol.as_str()),
            None => (
                "listeners",
                props.get("listeners").unwrap_or(""),
                listener.name.as_str(),
            ),
        };
        if matches!(protocol, "SSL" | "SASL_PLAINTEXT" | "SASL_SSL")
            || (key == KEY && protocol != "PLAINTEXT")
        {
            return Err(invalid(
                key,
                value,
                format!(
                    "listener {} would speak {protocol}; Gregor speaks only PLAINTEXT",
                    listener.name
                ),
            ));
        }
    }
    Ok(())
}

/// `process.roles`, if set, must be the one role this process plays: Gregor runs the
/// controller and the brokers as separate processes.
fn check_process_roles(props: &Props, role: &str) -> Result<(), ConfigError> {
    const KEY: &str = "process.roles";
    let Some(value) = props.get(KEY) else {
        return Ok(());
    };
    let roles = list(value);
    if roles.len() > 1 {
        return Err(invalid(
            KEY,
            value,
            "Gregor runs the controller and each broker as separate processes \
             (`gregor controller`, `gregor broker`); combined mode is not supported",
        ));
    }
    if roles != [role] {
        return Err(invalid(
            KEY,
            value,
            format!("this process is a {role}; set {KEY}={role} or leave it out"),
        ));
    }
    Ok(())
}

/// `log.dirs` (else `log.dir`, else `default`): exactly one directory.
fn log_dir(props: &Props, first: &[&str], default: &str) -> Result<PathBuf, ConfigError> {
    let Some((key, value)) = first.iter().find_map(|&key| Some((key, props.get(key)?))) else {
        return Ok(PathBuf::from(default));
    };
    match list(value).as_slice() {
        [dir] => Ok(PathBuf::from(dir)),
        [] => Err(invalid(key, value, "no directory given")),
        _ => Err(invalid(
            key,
            value,
            "Gregor supports exactly one log directory per process",
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// The broker.

/// The settings a broker reads, in the order of Kafka's documentation.
const BROKER_KEYS: &[&str] = &[
    "node.id",
    "listeners",
    "advertised.listeners",
    "inter.broker.listener.name",
    "listener.security.protocol.map",
    "controller.quorum.bootstrap.servers",
    "controller.quorum.voters",
    "process.roles",
    "log.dirs",
    "log.dir",
    "num.partitions",
    "default.replication.factor",
    "auto.create.topics.enable",
    "min.insync.replicas",
    "unclean.leader.election.enable",
    "replica.lag.time.max.ms",
    "broker.heartbeat.interval.ms",
    "broker.session.timeout.ms",
    "replica.fetch.wait.max.ms",
    "replica.fetch.backoff.ms",
    "replica.fetch.min.bytes",
    "replica.fetch.max.bytes",
    "replica.fetch.response.max.bytes",
    "replica.high.watermark.checkpoint.interval.ms",
    "log.retention.check.interval.ms",
    "log.segment.bytes",
    "log.roll.ms",
    "log.roll.hours",
    "log.retention.ms",
    "log.retention.minutes",
    "log.retention.hours",
    "log.retention.bytes",
    "log.index.interval.bytes",
    "log.flush.interval.messages",
    "log.flush.interval.ms",
    "log.flush.offset.checkpoint.interval.ms",
    "message.max.bytes",
    "socket.request.max.bytes",
    "max.connections",
    "queued.max.requests",
    "num.network.threads",
    "offsets.topic.num.partitions",
    "offsets.topic.replication.factor",
    "group.min.session.timeout.ms",
    "group.max.session.timeout.ms",
    "group.initial.rebalance.delay.ms",
    "group.max.size",
    "offsets.retention.minutes",
    "offsets.retention.check.interval.ms",
];

/// Settings accepted for compatibility with Kafka's files and kept (see
/// [`BrokerSettings::compatibility`]), but not used yet: `broker.rack`, the role and
/// controller-listener declarations Kafka's KRaft files carry, the internal topics' settings,
/// and the thread counts and socket buffers of Kafka's example `server.properties`.
const COMPATIBILITY_KEYS: &[&str] = &[
    "broker.rack",
    "process.roles",
    "controller.listener.names",
    "transaction.state.log.replication.factor",
    "transaction.state.log.min.isr",
    "num.io.threads",
    "num.recovery.threads.per.data.dir",
    "socket.send.buffer.bytes",
    "socket.receive.buffer.bytes",
];

/// A broker's settings (`gregor broker --config broker.properties`), read from Kafka's setting
/// names with Kafka's defaults, checked, and ready to become the model's [`BrokerConfig`]
/// ([`BrokerSettings::model_config`]) and the log's [`LogConfig`]
/// ([`BrokerSettings::log_config`]).
///
/// The settings, by Kafka name (default):
/// - `node.id` (required): the broker's id, from 1 (0 is the controller's).
/// - `listeners` (required): `NAME://host:port,...`, the addresses the broker binds; port 0
///   binds any free port, an empty host or `0.0.0.0` every interface.
/// - `advertised.listeners` (`listeners`): the addresses the broker registers with the
///   controller, for clients and other brokers to connect to; each names one of the
///   `listeners`, and must have a host one can connect to (not `0.0.0.0`). Port 0 stands for
///   the port the listener of that name bound. A listener left out is not registered.
/// - `inter.broker.listener.name` (`REPLICATION`): the listener that carries Gregor's own
///   broker-to-broker transport (not the Kafka protocol). It must be advertised. Every other
///   listener speaks the Kafka protocol to clients; there must be at least one.
/// - `listener.security.protocol.map`: accepted only if every listener maps to PLAINTEXT.
/// - `controller.quorum.bootstrap.servers` (required): `host:port` of the controller; Gregor
///   runs exactly one. A Kafka file's `controller.quorum.voters=0@host:port` is read instead if
///   the former is absent.
/// - `log.dirs`, else `log.dir` (`/tmp/kafka-logs`): the one directory of the broker's logs.
/// - `num.partitions` (1), `default.replication.factor` (1), `auto.create.topics.enable`
///   (true): how the broker creates topics a client asks for without creating them.
/// - `min.insync.replicas` (1), `unclean.leader.election.enable` (false): kept for the front
///   end; the topics' defaults are the controller's.
/// - Timers, in milliseconds: `replica.lag.time.max.ms` (30000), `broker.heartbeat.interval.ms`
///   (2000), `replica.fetch.wait.max.ms` (500, below `replica.lag.time.max.ms`),
///   `replica.fetch.backoff.ms` (1000), `replica.high.watermark.checkpoint.interval.ms` (5000),
///   `log.retention.check.interval.ms` (300000). `broker.session.timeout.ms` (9000) is accepted
///   as Kafka accepts it on brokers, but only the controller's value matters.
/// - Replication sizes: `replica.fetch.min.bytes` (1), `replica.fetch.max.bytes` (1048576),
///   `replica.fetch.response.max.bytes` (10485760).
/// - The log: `log.segment.bytes` (1073741824), `log.roll.ms` else `log.roll.hours` (168 h),
///   `log.retention.ms` else `log.retention.minutes` else `log.retention.hours` (168 h; -1 keeps
///   forever), `log.retention.bytes` (-1, unlimited), `log.index.interval.bytes` (4096),
///   `log.flush.interval.messages` (never; 1 flushes before every acknowledgement),
///   `log.flush.interval.ms` (never), `log.flush.offset.checkpoint.interval.ms` (60000).
/// - The front end: `message.max.bytes` (1048588), `socket.request.max.bytes` (104857600),
///   `max.connections` (Kafka: unlimited, 2147483647; Gregor: 1000, so that a flood of
///   connections is refused before it exhausts file descriptors and buffers),
///   `queued.max.requests` (500; Gregor bounds the requests in flight on one connection with it,
///   where Kafka bounds its shared request queue), `num.network.threads` (3, Kafka's default:
///   the threads that serve every connection, clients' and peers'; the actor has its own).
/// - The group coordinator: `offsets.topic.num.partitions` (50) and
///   `offsets.topic.replication.factor` (3; the internal topic is created when a client first
///   looks for a coordinator, once that many brokers are alive), `group.min.session.timeout.ms`
///   (6000), `group.max.session.timeout.ms` (1800000), `group.initial.rebalance.delay.ms`
///   (3000), `group.max.size` (Kafka: unlimited, 2147483647), `offsets.retention.minutes`
///   (10080: a group without members loses its offsets 7 days after it became empty or last
///   committed), `offsets.retention.check.interval.ms` (600000; Gregor expires on time and uses
///   it only to retry an expiry it could not write).
/// - Accepted and kept, not used yet: see [`BrokerSettings::compatibility`].
///
/// The fetch purgatory's size (the model's `fetches_held_max`) and the InitProducerId queue
/// have no Kafka setting; they keep the model's defaults (1000 each).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerSettings {
    properties: Vec<(String, String)>,
    node_id: BrokerId,
    listeners: Vec<Listener>,
    advertised_listeners: Vec<Listener>,
    inter_broker_listener: String,
    controller: HostPort,
    log_dir: PathBuf,
    num_partitions: u32,
    default_replication_factor: u16,
    auto_create_topics_enable: bool,
    topic_defaults: TopicConfig,
    session_timeout: Duration,
    timeouts: BrokerTimeouts,
    limits: BrokerLimits,
    log: LogConfig,
    message_max_bytes: u32,
    socket_request_max_bytes: u32,
    max_connections: usize,
    queued_max_requests: usize,
    network_threads: usize,
    offsets_topic: OffsetsTopicConfig,
    groups: GroupConfig,
    compatibility: BTreeMap<String, String>,
}

impl BrokerSettings {
    /// Reads a broker's `.properties` file; every error names the file.
    pub fn load(path: impl AsRef<Path>) -> Result<BrokerSettings, ConfigError> {
        let path = path.as_ref();
        let properties = load_properties(path)?;
        BrokerSettings::from_properties(properties).map_err(|error| in_file(path, error))
    }

    /// Reads a broker's settings from a `.properties` text.
    pub fn parse(text: &str) -> Result<BrokerSettings, ConfigError> {
        BrokerSettings::from_properties(parse_properties(text)?)
    }

    /// Checks and reads parsed properties.
    pub fn from_properties(
        properties: Vec<(String, String)>,
    ) -> Result<BrokerSettings, ConfigError> {
        let props = Props::new(&properties, |key| {
            BROKER_KEYS.contains(&key) || COMPATIBILITY_KEYS.contains(&key)
        })?;
        check_process_roles(&props, "broker")?;

        let node_id = match props.get("node.id") {
            None => {
                return Err(ConfigError::Missing {
                    key: "node.id".into(),
                    why: "every broker needs its own id, from 1".into(),
                })
            }
            Some(value) => {
                let n = int("node.id", value)?;
                if n == 0 {
                    return Err(invalid(
                        "node.id",
                        value,
                        "0 is the controller's id in Gregor; brokers are numbered from 1",
                    ));
                }
                check_range("node.id", value, n, 1..=INT)? as u32
            }
        };

        let (listeners, advertised_listeners, inter_broker_listener) = broker_listeners(&props)?;
        let controller = controller_address(&props)?;
        let log_dir = log_dir(&props, &["log.dirs", "log.dir"], "/tmp/kafka-logs")?;

        let replica_lag_max = props.millis_or("replica.lag.time.max.ms", 30_000, 1..=LONG)?;
        let replica_fetch_wait_max = props.millis_or("replica.fetch.wait.max.ms", 500, 0..=INT)?;
        if replica_fetch_wait_max >= replica_lag_max {
            let key = "replica.fetch.wait.max.ms";
            return Err(invalid(
                key,
                props.get(key).unwrap_or("500"),
                format!(
                    "must be less than replica.lag.time.max.ms ({} ms), or followers would \
                     drop out of the ISR while their fetches wait",
                    replica_lag_max.as_millis()
                ),
            ));
        }
        let timeouts = BrokerTimeouts {
            heartbeat_interval: Some(props.millis_or(
                "broker.heartbeat.interval.ms",
                2000,
                1..=INT,
            )?),
            replica_lag_max,
            fetch_backoff: props.millis_or("replica.fetch.backoff.ms", 1000, 0..=INT)?,
            replica_fetch_wait_max,
            high_watermark_checkpoint_interval: Some(props.millis_or(
                "replica.high.watermark.checkpoint.interval.ms",
                5000,
                1..=LONG,
            )?),
            retention_check_interval: Some(props.millis_or(
                "log.retention.check.interval.ms",
                300_000,
                1..=LONG,
            )?),
        };
        let limits = BrokerLimits {
            replica_fetch_min_bytes: props.int_or("replica.fetch.min.bytes", 1, 0..=INT)? as u32,
            replica_fetch_max_bytes: props.int_or("replica.fetch.max.bytes", 1 << 20, 0..=INT)?
                as u32,
            replica_fetch_response_max_bytes: props.int_or(
                "replica.fetch.response.max.bytes",
                10 << 20,
                0..=INT,
            )? as u32,
            ..BrokerLimits::default()
        };

        Ok(BrokerSettings {
            node_id: BrokerId(node_id),
            listeners,
            advertised_listeners,
            inter_broker_listener,
            controller,
            log_dir,
            num_partitions: props.int_or("num.partitions", 1, 1..=INT)? as u32,
            default_replication_factor: props.int_or(
                "default.replication.factor",
                1,
                1..=i16::MAX as i64,
            )? as u16,
            auto_create_topics_enable: props.bool_or("auto.create.topics.enable", true)?,
            topic_defaults: topic_defaults(&props)?,
            session_timeout: props.millis_or("broker.session.timeout.ms", 9000, 1..=INT)?,
            timeouts,
            limits,
            log: log_config(&props)?,
            message_max_bytes: props.int_or("message.max.bytes", 1_048_588, 0..=INT)? as u32,
            socket_request_max_bytes: props.int_or(
                "socket.request.max.bytes",
                104_857_600,
                1..=INT,
            )? as u32,
            max_connections: props.int_or("max.connections", 1000, 1..=INT)? as usize,
            queued_max_requests: props.int_or("queued.max.requests", 500, 1..=INT)? as usize,
            network_threads: props.int_or("num.network.threads", 3, 1..=256)? as usize,
            offsets_topic: OffsetsTopicConfig {
                partitions: props.int_or("offsets.topic.num.partitions", 50, 1..=INT)? as u32,
                replication_factor: props.int_or(
                    "offsets.topic.replication.factor",
                    3,
                    1..=i16::MAX as i64,
                )? as u32,
            },
            groups: group_config(&props)?,
            compatibility: props.kept(COMPATIBILITY_KEYS),
            properties,
        })
    }

    /// These settings with `KEY=VALUE` overrides applied (`gregor cluster up --broker-config`),
    /// each replacing the file's value of its key or adding it. The result is read and checked
    /// as a whole, so precedence holds across file and overrides: an override of
    /// `log.retention.hours` does nothing while the file sets `log.retention.ms`, as in Kafka.
    pub fn with_overrides<S: AsRef<str>>(
        &self,
        overrides: &[S],
    ) -> Result<BrokerSettings, ConfigError> {
        BrokerSettings::from_properties(with_overrides(&self.properties, overrides)?)
    }

    /// The model's broker configuration. Its endpoints are the advertised listeners; one whose
    /// advertised port is 0 gets the port its listener actually bound, which `bound` gives as
    /// `(listener name, port)` pairs (names compared ignoring case).
    ///
    /// `protocol` is the default but for the flush policy: `Always` when
    /// `log.flush.interval.messages=1`, else `Never` (the log's own flush settings are in
    /// [`BrokerSettings::log_config`]).
    ///
    /// # Panics
    ///
    /// If an advertised listener's port is 0 and `bound` has no port for it: the caller must
    /// bind every listener before registering.
    pub fn model_config<S: AsRef<str>>(&self, bound: &[(S, u16)]) -> BrokerConfig {
        let endpoints = self
            .advertised_listeners
            .iter()
            .map(|listener| {
                let port = if listener.port != 0 {
                    listener.port
                } else {
                    bound
                        .iter()
                        .find(|(name, _)| name.as_ref().eq_ignore_ascii_case(&listener.name))
                        .map(|&(_, port)| port)
                        .unwrap_or_else(|| {
                            panic!(
                                "listener {} is advertised with port 0 but was not bound",
                                listener.name
                            )
                        })
                };
                Endpoint {
                    listener: listener.name.clone(),
                    host: listener.host.clone(),
                    port,
                }
            })
            .collect();
        let flush = if self.log.flush.messages == Some(1) {
            FlushPolicy::Always
        } else {
            FlushPolicy::Never
        };
        BrokerConfig {
            id: self.node_id,
            endpoints,
            protocol: ProtocolConfig {
                flush,
                ..ProtocolConfig::default()
            },
            timeouts: self.timeouts.clone(),
            limits: self.limits.clone(),
            offsets_topic: self.offsets_topic.clone(),
            groups: self.groups,
        }
    }

    /// The settings of every partition log the broker holds.
    pub fn log_config(&self) -> LogConfig {
        self.log.clone()
    }

    /// The properties these settings were read from, overrides applied.
    pub fn properties(&self) -> &[(String, String)] {
        &self.properties
    }

    /// `node.id`.
    pub fn node_id(&self) -> BrokerId {
        self.node_id
    }

    /// `listeners`: every address to bind, the inter-broker listener among them.
    pub fn listeners(&self) -> &[Listener] {
        &self.listeners
    }

    /// `advertised.listeners`: what the broker registers (port 0: the bound port).
    pub fn advertised_listeners(&self) -> &[Listener] {
        &self.advertised_listeners
    }

    /// The listeners that speak the Kafka protocol to clients: all but the inter-broker one.
    pub fn client_listeners(&self) -> impl Iterator<Item = &Listener> + '_ {
        self.listeners
            .iter()
            .filter(|listener| listener.name != self.inter_broker_listener)
    }

    /// The listener named by `inter.broker.listener.name`, which carries Gregor's
    /// broker-to-broker transport.
    pub fn inter_broker_listener(&self) -> &Listener {
        self.listeners
            .iter()
            .find(|listener| listener.name == self.inter_broker_listener)
            .expect("checked when read")
    }

    /// `controller.quorum.bootstrap.servers`: where the controller listens.
    pub fn controller(&self) -> &HostPort {
        &self.controller
    }

    /// `log.dirs` / `log.dir`: the broker's one log directory.
    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }

    /// `num.partitions`: partitions of a topic created without saying how many.
    pub fn num_partitions(&self) -> u32 {
        self.num_partitions
    }

    /// `default.replication.factor`: replicas of a topic created without saying how many.
    pub fn default_replication_factor(&self) -> u16 {
        self.default_replication_factor
    }

    /// `auto.create.topics.enable`: whether Metadata and Produce create a missing topic.
    pub fn auto_create_topics_enable(&self) -> bool {
        self.auto_create_topics_enable
    }

    /// `min.insync.replicas` and `unclean.leader.election.enable` as this broker's file says
    /// (the topics' defaults are the controller's).
    pub fn topic_defaults(&self) -> TopicConfig {
        self.topic_defaults
    }

    /// `broker.session.timeout.ms` as this broker's file says; only the controller's matters.
    pub fn session_timeout(&self) -> Duration {
        self.session_timeout
    }

    /// `message.max.bytes`: the largest record batch a producer may send.
    pub fn message_max_bytes(&self) -> u32 {
        self.message_max_bytes
    }

    /// `socket.request.max.bytes`: the largest request read off a connection.
    pub fn socket_request_max_bytes(&self) -> u32 {
        self.socket_request_max_bytes
    }

    /// `max.connections`: client connections open at once; more are refused.
    pub fn max_connections(&self) -> usize {
        self.max_connections
    }

    /// `queued.max.requests`: requests in flight on one connection; the front end stops
    /// reading a connection that has this many.
    pub fn queued_max_requests(&self) -> usize {
        self.queued_max_requests
    }

    /// `num.network.threads`: the threads that serve the broker's connections (clients' and
    /// peers'); the actor has a thread of its own besides.
    pub fn network_threads(&self) -> usize {
        self.network_threads
    }

    /// Every setting this broker reads, with its value in effect, as DescribeConfigs reports
    /// a broker's configuration: Kafka's default unless the file (or an override) set it or
    /// one of its synonyms (`log.retention.hours` for `log.retention.ms`, ...); then the
    /// settings accepted for compatibility that the file sets.
    pub fn described(&self) -> Vec<Described> {
        use ConfigKind::{Boolean, Int, List, Long};
        let set = |keys: &[&str]| {
            keys.iter()
                .any(|key| self.properties.iter().any(|(k, _)| k == key))
        };
        let one = |name: &str, kind, value: Option<String>, synonyms: &[&str]| Described {
            name: name.to_string(),
            value,
            set: set(&[&[name], synonyms].concat()),
            kind,
        };
        let value = |v: &dyn fmt::Display| Some(v.to_string());
        let listeners = |l: &[Listener]| {
            Some(
                l.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            )
        };
        let millis = |d: Duration| Some(d.as_millis().to_string());
        let log = &self.log;
        let mut described = vec![
            one("node.id", Int, value(&self.node_id.0), &[]),
            one("listeners", List, listeners(&self.listeners), &[]),
            one(
                "advertised.listeners",
                List,
                listeners(&self.advertised_listeners),
                &[],
            ),
            one(
                "inter.broker.listener.name",
                ConfigKind::String,
                value(&self.inter_broker_listener),
                &[],
            ),
            one(
                "controller.quorum.bootstrap.servers",
                List,
                value(&self.controller),
                &["controller.quorum.voters"],
            ),
            one(
                "log.dirs",
                ConfigKind::String,
                value(&self.log_dir.display()),
                &["log.dir"],
            ),
            one("num.partitions", Int, value(&self.num_partitions), &[]),
            one(
                "default.replication.factor",
                Int,
                value(&self.default_replication_factor),
                &[],
            ),
            one(
                "auto.create.topics.enable",
                Boolean,
                value(&self.auto_create_topics_enable),
                &[],
            ),
            one(
                "min.insync.replicas",
                Int,
                value(&self.topic_defaults.min_insync_replicas),
                &[],
            ),
            one(
                "unclean.leader.election.enable",
                Boolean,
                value(&self.topic_defaults.unclean_leader_election),
                &[],
            ),
            one(
                "replica.lag.time.max.ms",
                Long,
                millis(self.timeouts.replica_lag_max),
                &[],
            ),
            one(
                "broker.heartbeat.interval.ms",
                Int,
                self.timeouts.heartbeat_interval.and_then(millis),
                &[],
            ),
            one(
                "broker.session.timeout.ms",
                Int,
                millis(self.session_timeout),
                &[],
            ),
            one(
                "replica.fetch.wait.max.ms",
                Int,
                millis(self.timeouts.replica_fetch_wait_max),
                &[],
            ),
            one(
                "replica.fetch.backoff.ms",
                Int,
                millis(self.timeouts.fetch_backoff),
                &[],
            ),
            one(
                "replica.fetch.min.bytes",
                Int,
                value(&self.limits.replica_fetch_min_bytes),
                &[],
            ),
            one(
                "replica.fetch.max.bytes",
                Int,
                value(&self.limits.replica_fetch_max_bytes),
                &[],
            ),
            one(
                "replica.fetch.response.max.bytes",
                Int,
                value(&self.limits.replica_fetch_response_max_bytes),
                &[],
            ),
            one(
                "replica.high.watermark.checkpoint.interval.ms",
                Long,
                self.timeouts
                    .high_watermark_checkpoint_interval
                    .and_then(millis),
                &[],
            ),
            one(
                "log.retention.check.interval.ms",
                Long,
                self.timeouts.retention_check_interval.and_then(millis),
                &[],
            ),
            one("log.segment.bytes", Int, value(&log.segment_bytes), &[]),
            one(
                "log.roll.ms",
                Long,
                value(&log.segment_ms),
                &["log.roll.hours"],
            ),
            one(
                "log.retention.ms",
                Long,
                value(&log.retention_ms.unwrap_or(-1)),
                &["log.retention.minutes", "log.retention.hours"],
            ),
            one(
                "log.retention.bytes",
                Long,
                value(&log.retention_bytes.map_or(-1, |b| b as i64)),
                &[],
            ),
            one(
                "log.index.interval.bytes",
                Int,
                value(&log.index_interval_bytes),
                &[],
            ),
            one(
                "log.flush.interval.messages",
                Long,
                value(&log.flush.messages.map_or(LONG, |m| m as i64)),
                &[],
            ),
            one(
                "log.flush.interval.ms",
                Long,
                log.flush.ms.map(|ms| ms.to_string()),
                &[],
            ),
            one(
                "log.flush.offset.checkpoint.interval.ms",
                Int,
                value(&log.recovery_checkpoint_interval_ms),
                &[],
            ),
            one(
                "message.max.bytes",
                Int,
                value(&self.message_max_bytes),
                &[],
            ),
            one(
                "socket.request.max.bytes",
                Int,
                value(&self.socket_request_max_bytes),
                &[],
            ),
            one("max.connections", Int, value(&self.max_connections), &[]),
            one(
                "queued.max.requests",
                Int,
                value(&self.queued_max_requests),
                &[],
            ),
            one(
                "num.network.threads",
                Int,
                value(&self.network_threads),
                &[],
            ),
            one(
                "offsets.topic.num.partitions",
                Int,
                value(&self.offsets_topic.partitions),
                &[],
            ),
            one(
                "offsets.topic.replication.factor",
                ConfigKind::Short,
                value(&self.offsets_topic.replication_factor),
                &[],
            ),
            one(
                "group.min.session.timeout.ms",
                Int,
                millis(self.groups.min_session_timeout),
                &[],
            ),
            one(
                "group.max.session.timeout.ms",
                Int,
                millis(self.groups.max_session_timeout),
                &[],
            ),
            one(
                "group.initial.rebalance.delay.ms",
                Int,
                millis(self.groups.initial_rebalance_delay),
                &[],
            ),
            one("group.max.size", Int, value(&self.groups.max_size), &[]),
            one(
                "offsets.retention.minutes",
                Int,
                value(&(self.groups.offsets_retention.as_secs() / 60)),
                &[],
            ),
            one(
                "offsets.retention.check.interval.ms",
                Long,
                millis(self.groups.offsets_retention_check),
                &[],
            ),
        ];
        described.extend(self.compatibility.iter().map(|(name, value)| Described {
            name: name.clone(),
            value: Some(value.clone()),
            set: true,
            kind: ConfigKind::String,
        }));
        described
    }

    /// `broker.rack`, if set (accepted, not used yet).
    pub fn broker_rack(&self) -> Option<&str> {
        self.compatibility.get("broker.rack").map(String::as_str)
    }

    /// The settings accepted for compatibility with Kafka's files but not used yet, as set:
    /// `broker.rack`, `process.roles` (if set, it must be `broker`),
    /// `controller.listener.names`, `group.initial.rebalance.delay.ms`,
    /// `offsets.topic.replication.factor`, `transaction.state.log.replication.factor`,
    /// `transaction.state.log.min.isr`, `num.io.threads`,
    /// `num.recovery.threads.per.data.dir`, `socket.send.buffer.bytes`,
    /// `socket.receive.buffer.bytes`.
    pub fn compatibility(&self) -> &BTreeMap<String, String> {
        &self.compatibility
    }
}

/// A setting as DescribeConfigs reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Described {
    pub name: String,
    /// `None`: no value (as Kafka's `log.flush.interval.ms` when unset).
    pub value: Option<String>,
    /// Whether the configuration file (or an override) set it, or a synonym of it; otherwise
    /// the value is Kafka's default.
    pub set: bool,
    pub kind: ConfigKind,
}

/// A setting's type, as DescribeConfigs names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigKind {
    Boolean,
    String,
    Short,
    Int,
    Long,
    List,
}

/// `listeners`, `advertised.listeners` and `inter.broker.listener.name`, checked together.
fn broker_listeners(props: &Props) -> Result<(Vec<Listener>, Vec<Listener>, String), ConfigError> {
    let Some(value) = props.get("listeners") else {
        return Err(ConfigError::Missing {
            key: "listeners".into(),
            why: "a broker needs a listener for clients and one for replication, e.g. \
                  PLAINTEXT://127.0.0.1:9092,REPLICATION://127.0.0.1:19092"
                .into(),
        });
    };
    let bound = listeners("listeners", value)?;
    let bound: Vec<Listener> = bound
        .into_iter()
        .map(|mut listener| {
            if listener.host.is_empty() {
                listener.host = "0.0.0.0".into();
            }
            listener
        })
        .collect();

    let key = "inter.broker.listener.name";
    let inter_value = props.get(key).unwrap_or("REPLICATION");
    let inter = inter_value.trim().to_ascii_uppercase();
    if !bound.iter().any(|listener| listener.name == inter) {
        return Err(invalid(
            key,
            inter_value,
            format!("names none of the listeners ({value})"),
        ));
    }
    if bound.iter().all(|listener| listener.name == inter) {
        return Err(invalid(
            "listeners",
            value,
            format!(
                "{inter} carries Gregor's broker-to-broker transport, not the Kafka protocol, \
                 so another listener must serve clients"
            ),
        ));
    }

    let advertised = match props.get("advertised.listeners") {
        Some(advertised_value) => {
            let advertised = listeners("advertised.listeners", advertised_value)?;
            for listener in &advertised {
                if !bound.iter().any(|b| b.name == listener.name) {
                    return Err(invalid(
                        "advertised.listeners",
                        advertised_value,
                        format!("{} is not one of the listeners ({value})", listener.name),
                    ));
                }
                if unspecified(&listener.host) {
                    return Err(invalid(
                        "advertised.listeners",
                        advertised_value,
                        format!(
                            "{listener}: a host one can connect to is needed, not {:?}",
                            listener.host
                        ),
                    ));
                }
            }
            if !advertised.iter().any(|listener| listener.name == inter) {
                return Err(invalid(
                    "advertised.listeners",
                    advertised_value,
                    format!("the inter-broker listener {inter} must be advertised, for the other brokers"),
                ));
            }
            advertised
        }
        None => {
            if let Some(listener) = bound.iter().find(|l| unspecified(&l.host)) {
                return Err(invalid(
                    "listeners",
                    value,
                    format!(
                        "advertised.listeners is not set, so the listeners are advertised, \
                         and {listener} binds every interface, which one cannot connect to; \
                         set advertised.listeners"
                    ),
                ));
            }
            bound.clone()
        }
    };
    check_security_protocols(props, &bound)?;
    Ok((bound, advertised, inter))
}

/// `controller.quorum.bootstrap.servers`, else `controller.quorum.voters`: one controller.
fn controller_address(props: &Props) -> Result<HostPort, ConfigError> {
    let one_controller = "Gregor runs exactly one controller; name only it";
    let (key, value, entry) = if let Some(value) = props.get("controller.quorum.bootstrap.servers")
    {
        let key = "controller.quorum.bootstrap.servers";
        match list(value).as_slice() {
            [entry] => (key, value, *entry),
            [] => return Err(invalid(key, value, "no controller given")),
            _ => return Err(invalid(key, value, one_controller)),
        }
    } else if let Some(value) = props.get("controller.quorum.voters") {
        let key = "controller.quorum.voters";
        let entry = match list(value).as_slice() {
            [entry] => *entry,
            [] => return Err(invalid(key, value, "no controller given")),
            _ => return Err(invalid(key, value, one_controller)),
        };
        let (id, address) = entry
            .split_once('@')
            .ok_or_else(|| invalid(key, value, format!("{entry:?} is not ID@host:port")))?;
        if id.trim() != "0" {
            return Err(invalid(
                key,
                value,
                "Gregor's controller is node 0: 0@host:port",
            ));
        }
        (key, value, address)
    } else {
        return Err(ConfigError::Missing {
            key: "controller.quorum.bootstrap.servers".into(),
            why: "the controller's host:port, e.g. 127.0.0.1:9093".into(),
        });
    };
    let address = host_port(entry).map_err(|why| invalid(key, value, why))?;
    if unspecified(&address.host) || address.port == 0 {
        return Err(invalid(
            key,
            value,
            format!("{address}: a host and port one can connect to are needed"),
        ));
    }
    Ok(address)
}

/// `min.insync.replicas` and `unclean.leader.election.enable`.
/// The coordinator's settings; the session timeouts' bounds must be ordered.
fn group_config(props: &Props) -> Result<GroupConfig, ConfigError> {
    let min_session_timeout = props.millis_or("group.min.session.timeout.ms", 6000, 0..=INT)?;
    let max_session_timeout =
        props.millis_or("group.max.session.timeout.ms", 1_800_000, 0..=INT)?;
    if max_session_timeout < min_session_timeout {
        let key = "group.max.session.timeout.ms";
        return Err(invalid(
            key,
            props.get(key).unwrap_or("1800000"),
            format!(
                "must be at least group.min.session.timeout.ms ({} ms)",
                min_session_timeout.as_millis()
            ),
        ));
    }
    Ok(GroupConfig {
        min_session_timeout,
        max_session_timeout,
        initial_rebalance_delay: props.millis_or(
            "group.initial.rebalance.delay.ms",
            3000,
            0..=INT,
        )?,
        max_size: props.int_or("group.max.size", INT, 1..=INT)? as usize,
        offsets_retention: Duration::from_secs(
            props.int_or("offsets.retention.minutes", 10_080, 1..=INT)? as u64 * 60,
        ),
        offsets_retention_check: props.millis_or(
            "offsets.retention.check.interval.ms",
            600_000,
            1..=LONG,
        )?,
    })
}

fn topic_defaults(props: &Props) -> Result<TopicConfig, ConfigError> {
    Ok(TopicConfig {
        min_insync_replicas: props.int_or("min.insync.replicas", 1, 1..=INT)? as u32,
        unclean_leader_election: props.bool_or("unclean.leader.election.enable", false)?,
    })
}

/// The log's settings, with Kafka's precedence between units.
fn log_config(props: &Props) -> Result<LogConfig, ConfigError> {
    const HOUR_MS: i64 = 3600 * 1000;
    let segment_bytes = props.int_or(
        "log.segment.bytes",
        1 << 30,
        batch::HEADER_BYTES as i64..=INT,
    )?;
    // Every unit is checked, also where a finer one takes precedence, as Kafka checks them.
    let roll_ms = props.int("log.roll.ms", 1..=LONG)?;
    let roll_hours = props.int_or("log.roll.hours", 168, 1..=INT)?;
    let segment_ms = roll_ms.unwrap_or(roll_hours * HOUR_MS);
    let retention = props.int("log.retention.ms", -1..=LONG)?;
    let retention_minutes = props.int("log.retention.minutes", -1..=INT)?;
    let retention_hours = props.int_or("log.retention.hours", 168, -1..=INT)?;
    let retention_ms = retention
        .or(retention_minutes.map(|minutes| minutes * 60_000))
        .unwrap_or(retention_hours * HOUR_MS);
    let retention_bytes = props.int_or("log.retention.bytes", -1, -1..=LONG)?;
    let flush_messages = props.int_or("log.flush.interval.messages", LONG, 1..=LONG)?;
    let flush_ms = props.int("log.flush.interval.ms", 0..=LONG)?;
    let config = LogConfig {
        segment_bytes: segment_bytes as u64,
        segment_ms,
        retention_ms: (retention_ms >= 0).then_some(retention_ms),
        retention_bytes: (retention_bytes >= 0).then_some(retention_bytes as u64),
        index_interval_bytes: props.int_or("log.index.interval.bytes", 4096, 4..=INT)? as u64,
        flush: FlushConfig {
            messages: (flush_messages != LONG).then_some(flush_messages as u64),
            ms: flush_ms.filter(|&ms| ms != LONG),
        },
        recovery_checkpoint_interval_ms: props.int_or(
            "log.flush.offset.checkpoint.interval.ms",
            60_000,
            0..=INT,
        )?,
    };
    // The ranges above include the log's own checks.
    debug_assert!(config.validate().is_ok(), "{config:?}");
    Ok(config)
}

// ---------------------------------------------------------------------------------------------
// The controller.

/// The settings the controller reads.
const CONTROLLER_KEYS: &[&str] = &[
    "node.id",
    "listeners",
    "listener.security.protocol.map",
    "process.roles",
    "metadata.log.dir",
    "log.dirs",
    "log.dir",
    "broker.session.timeout.ms",
    "min.insync.replicas",
    "unclean.leader.election.enable",
    "default.replication.factor",
    "num.partitions",
];

/// Settings a controller accepts and ignores: its quorum and advertised address (a broker
/// learns the controller's address from its own file), besides [`COMPATIBILITY_KEYS`] and
/// every broker setting (Kafka's example controller files carry broker settings too).
const CONTROLLER_IGNORED_KEYS: &[&str] = &[
    "controller.quorum.voters",
    "controller.quorum.bootstrap.servers",
    "advertised.listeners",
];

/// The controller's settings (`gregor controller --config controller.properties`), read from
/// Kafka's setting names with Kafka's defaults, checked, and ready to become the model's
/// [`ControllerConfig`] ([`ControllerSettings::model_config`]).
///
/// The settings, by Kafka name (default):
/// - `node.id` (0): Gregor's controller is always node 0.
/// - `listeners` (required): exactly one listener, e.g. `CONTROLLER://127.0.0.1:9093`, where
///   the brokers reach the controller; port 0 binds any free port.
/// - `metadata.log.dir`, else `log.dirs`, else `log.dir` (`/tmp/kraft-controller-logs`): the
///   one directory where the controller saves its state.
/// - `broker.session.timeout.ms` (9000): a broker that has not heartbeaten for this long is
///   dead.
/// - `min.insync.replicas` (1), `unclean.leader.election.enable` (false): the configuration a
///   topic gets for what its creation leaves out.
/// - `default.replication.factor` (1), `num.partitions` (1): accepted and checked, for a
///   CreateTopics that leaves them out.
/// - `process.roles`: if set, it must be `controller`.
/// - `listener.security.protocol.map`: accepted only if the listener maps to PLAINTEXT.
/// - `controller.listener.names`, `controller.quorum.voters`,
///   `controller.quorum.bootstrap.servers`, `advertised.listeners`, and every other setting a
///   broker accepts: accepted and ignored (see [`ControllerSettings::ignored`]), as Kafka's
///   controller files carry them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControllerSettings {
    properties: Vec<(String, String)>,
    listener: Listener,
    log_dir: PathBuf,
    session_timeout: Duration,
    topic_defaults: TopicConfig,
    default_replication_factor: u16,
    num_partitions: u32,
    ignored: BTreeMap<String, String>,
}

impl ControllerSettings {
    /// Reads the controller's `.properties` file; every error names the file.
    pub fn load(path: impl AsRef<Path>) -> Result<ControllerSettings, ConfigError> {
        let path = path.as_ref();
        let properties = load_properties(path)?;
        ControllerSettings::from_properties(properties).map_err(|error| in_file(path, error))
    }

    /// Reads the controller's settings from a `.properties` text.
    pub fn parse(text: &str) -> Result<ControllerSettings, ConfigError> {
        ControllerSettings::from_properties(parse_properties(text)?)
    }

    /// Checks and reads parsed properties.
    pub fn from_properties(
        properties: Vec<(String, String)>,
    ) -> Result<ControllerSettings, ConfigError> {
        let ignored_key = |key: &str| {
            !CONTROLLER_KEYS.contains(&key)
                && (CONTROLLER_IGNORED_KEYS.contains(&key)
                    || COMPATIBILITY_KEYS.contains(&key)
                    || BROKER_KEYS.contains(&key))
        };
        let props = Props::new(&properties, |key| {
            CONTROLLER_KEYS.contains(&key) || ignored_key(key)
        })?;
        check_process_roles(&props, "controller")?;
        if let Some(value) = props.get("node.id") {
            let n = int("node.id", value)?;
            if n != 0 {
                return Err(invalid("node.id", value, "Gregor's controller is node 0"));
            }
        }
        let Some(value) = props.get("listeners") else {
            return Err(ConfigError::Missing {
                key: "listeners".into(),
                why: "the controller's one listener, e.g. CONTROLLER://127.0.0.1:9093".into(),
            });
        };
        let mut listener = match listeners("listeners", value)?.as_slice() {
            [listener] => listener.clone(),
            _ => {
                return Err(invalid(
                    "listeners",
                    value,
                    "the controller has exactly one listener",
                ))
            }
        };
        if listener.host.is_empty() {
            listener.host = "0.0.0.0".into();
        }
        check_security_protocols(&props, std::slice::from_ref(&listener))?;
        Ok(ControllerSettings {
            log_dir: log_dir(
                &props,
                &["metadata.log.dir", "log.dirs", "log.dir"],
                "/tmp/kraft-controller-logs",
            )?,
            listener,
            session_timeout: props.millis_or("broker.session.timeout.ms", 9000, 1..=INT)?,
            topic_defaults: topic_defaults(&props)?,
            default_replication_factor: props.int_or(
                "default.replication.factor",
                1,
                1..=i16::MAX as i64,
            )? as u16,
            num_partitions: props.int_or("num.partitions", 1, 1..=INT)? as u32,
            ignored: properties
                .iter()
                .filter(|(key, _)| ignored_key(key))
                .cloned()
                .collect(),
            properties,
        })
    }

    /// These settings with `KEY=VALUE` overrides applied, as [`BrokerSettings::with_overrides`].
    pub fn with_overrides<S: AsRef<str>>(
        &self,
        overrides: &[S],
    ) -> Result<ControllerSettings, ConfigError> {
        ControllerSettings::from_properties(with_overrides(&self.properties, overrides)?)
    }

    /// The model's controller configuration: the default protocol, `broker.session.timeout.ms`,
    /// the topics' defaults, Kafka's producer-id block of 1000, and the cluster's
    /// `topic_id_prefix` (drawn once by the host at the controller's first start and kept in
    /// its state, so it is not a setting).
    pub fn model_config(&self, topic_id_prefix: u64) -> ControllerConfig {
        ControllerConfig {
            protocol: ProtocolConfig::default(),
            session_timeout: self.session_timeout,
            topic_defaults: self.topic_defaults,
            producer_id_block_size: 1000,
            topic_id_prefix,
        }
    }

    /// The properties these settings were read from, overrides applied.
    pub fn properties(&self) -> &[(String, String)] {
        &self.properties
    }

    /// `listeners`: the one address the controller binds.
    pub fn listener(&self) -> &Listener {
        &self.listener
    }

    /// `metadata.log.dir` / `log.dirs` / `log.dir`: where the controller saves its state.
    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }

    /// `broker.session.timeout.ms`.
    pub fn session_timeout(&self) -> Duration {
        self.session_timeout
    }

    /// `min.insync.replicas` and `unclean.leader.election.enable`: a new topic's defaults.
    pub fn topic_defaults(&self) -> TopicConfig {
        self.topic_defaults
    }

    /// `default.replication.factor`.
    pub fn default_replication_factor(&self) -> u16 {
        self.default_replication_factor
    }

    /// `num.partitions`.
    pub fn num_partitions(&self) -> u32 {
        self.num_partitions
    }

    /// The settings accepted but ignored, as set (unchecked).
    pub fn ignored(&self) -> &BTreeMap<String, String> {
        &self.ignored
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "\
node.id=1
listeners=PLAINTEXT://127.0.0.1:9092,REPLICATION://127.0.0.1:19092
controller.quorum.bootstrap.servers=127.0.0.1:9093
";

    fn broker(extra: &str) -> Result<BrokerSettings, ConfigError> {
        BrokerSettings::parse(&format!("{MINIMAL}{extra}\n"))
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// The error's message names the key, the value and (part of) the reason.
    #[track_caller]
    fn refused(result: Result<BrokerSettings, ConfigError>, key: &str, value: &str, why: &str) {
        let message = result.expect_err("should be refused").to_string();
        for part in [key, value, why] {
            assert!(message.contains(part), "{message:?} does not name {part:?}");
        }
    }

    #[test]
    fn properties_syntax() {
        let text = "\
# a comment
! another comment
   
a=1
b: 2
c 3
  d  =  four with spaces  
e=one,\\
    two,\\
    three
f
g=x=y
h\\=i=j
k=tab\\there \\u0041
# ends in a backslash, no continuation: \\
l=last
";
        assert_eq!(
            parse_properties(text).unwrap(),
            pairs(&[
                ("a", "1"),
                ("b", "2"),
                ("c", "3"),
                ("d", "four with spaces"),
                ("e", "one,two,three"),
                ("f", ""),
                ("g", "x=y"),
                ("h=i", "j"),
                ("k", "tab\there A"),
                ("l", "last"),
            ])
        );
    }

    #[test]
    fn properties_last_duplicate_wins_in_place() {
        assert_eq!(
            parse_properties("a=1\nb=2\na=3\n").unwrap(),
            pairs(&[("a", "3"), ("b", "2")])
        );
    }

    #[test]
    fn properties_refuse_a_line_without_key() {
        for (text, line) in [("a=1\n\n=2\n", 3), ("a=1\n : 2\n", 2), ("x=\\u00g1", 1)] {
            match parse_properties(text) {
                Err(ConfigError::Syntax { line: l, .. }) => assert_eq!(l, line, "{text:?}"),
                other => panic!("{text:?}: {other:?}"),
            }
        }
        assert!(parse_properties("\n\n=2\n")
            .unwrap_err()
            .to_string()
            .starts_with("line 3: "));
    }

    #[test]
    fn broker_defaults() {
        let settings = broker("").unwrap();
        assert_eq!(settings.node_id(), BrokerId(1));
        assert_eq!(settings.log_dir(), Path::new("/tmp/kafka-logs"));
        assert_eq!(settings.num_partitions(), 1);
        assert_eq!(settings.default_replication_factor(), 1);
        assert!(settings.auto_create_topics_enable());
        assert_eq!(
            settings.topic_defaults(),
            TopicConfig {
                min_insync_replicas: 1,
                unclean_leader_election: false
            }
        );
        assert_eq!(settings.session_timeout(), Duration::from_secs(9));
        assert_eq!(settings.message_max_bytes(), 1_048_588);
        assert_eq!(settings.socket_request_max_bytes(), 104_857_600);
        assert_eq!(settings.max_connections(), 1000);
        assert_eq!(settings.queued_max_requests(), 500);
        assert_eq!(settings.broker_rack(), None);
        assert_eq!(
            settings.controller(),
            &HostPort {
                host: "127.0.0.1".into(),
                port: 9093
            }
        );
        assert_eq!(settings.inter_broker_listener().name, "REPLICATION");
        let clients: Vec<_> = settings.client_listeners().map(|l| l.to_string()).collect();
        assert_eq!(clients, ["PLAINTEXT://127.0.0.1:9092"]);
        assert_eq!(settings.advertised_listeners(), settings.listeners());

        // The log's and the model's defaults are Kafka's too.
        let log = settings.log_config();
        assert_eq!(log, LogConfig::default());
        assert_eq!(
            log.flush,
            FlushConfig {
                messages: None,
                ms: None
            }
        );
        let model = settings.model_config::<&str>(&[]);
        let mut expected = BrokerConfig::new(BrokerId(1), ProtocolConfig::default());
        expected.endpoints = vec![
            Endpoint {
                listener: "PLAINTEXT".into(),
                host: "127.0.0.1".into(),
                port: 9092,
            },
            Endpoint {
                listener: "REPLICATION".into(),
                host: "127.0.0.1".into(),
                port: 19092,
            },
        ];
        assert_eq!(model, expected);
    }

    #[test]
    fn described_settings_say_which_the_file_set_a_synonym_counting() {
        let settings = broker("log.retention.hours=24\nbroker.rack=r1").unwrap();
        let described = settings.described();
        let get = |name: &str| described.iter().find(|d| d.name == name).unwrap();
        let retention = get("log.retention.ms");
        assert_eq!(retention.value.as_deref(), Some("86400000"));
        assert!(retention.set, "log.retention.hours is its synonym");
        let partitions = get("num.partitions");
        assert_eq!(
            (partitions.value.as_deref(), partitions.set),
            (Some("1"), false)
        );
        assert_eq!(get("num.network.threads").value.as_deref(), Some("3"));
        assert_eq!(get("log.flush.interval.ms").value, None);
        assert_eq!(get("broker.rack").value.as_deref(), Some("r1"));
        let names: std::collections::BTreeSet<&str> =
            described.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names.len(), described.len(), "each setting once");
        for key in BROKER_KEYS {
            let synonym = [
                "log.dir",
                "log.roll.hours",
                "log.retention.minutes",
                "log.retention.hours",
                "controller.quorum.voters",
                "listener.security.protocol.map",
                "process.roles",
            ];
            assert!(
                names.contains(key) || synonym.contains(key),
                "{key} is not described"
            );
        }
    }

    #[test]
    fn bad_numbers_name_key_value_and_reason() {
        let cases = [
            ("num.partitions", "abc", "not an integer"),
            ("num.partitions", "", "empty"),
            ("num.partitions", "0", "at least 1"),
            ("num.partitions", "99999999999999999999", "64-bit"),
            ("min.insync.replicas", "0", "at least 1"),
            ("default.replication.factor", "40000", "at most 32767"),
            ("log.segment.bytes", "13", "at least 61"),
            ("log.segment.bytes", "2147483648", "at most 2147483647"),
            ("log.retention.ms", "-2", "at least -1"),
            ("log.retention.hours", "1.5", "not an integer"),
            ("log.retention.bytes", "-5", "at least -1"),
            ("log.roll.ms", "0", "at least 1"),
            ("log.index.interval.bytes", "3", "at least 4"),
            ("log.flush.interval.messages", "0", "at least 1"),
            ("log.flush.interval.ms", "-1", "at least 0"),
            ("replica.lag.time.max.ms", "-30000", "at least 1"),
            ("replica.fetch.backoff.ms", "-1", "at least 0"),
            ("replica.fetch.max.bytes", "-1", "at least 0"),
            ("broker.heartbeat.interval.ms", "0", "at least 1"),
            ("max.connections", "0", "at least 1"),
            ("queued.max.requests", "x", "not an integer"),
            ("num.network.threads", "0", "at least 1"),
            ("num.network.threads", "1000", "at most 256"),
            (
                "replica.fetch.wait.max.ms",
                "30000",
                "less than replica.lag.time.max.ms",
            ),
            ("auto.create.topics.enable", "yes", "true or false"),
            ("unclean.leader.election.enable", "1", "true or false"),
        ];
        for (key, value, why) in cases {
            refused(broker(&format!("{key}={value}")), key, value, why);
        }
    }

    #[test]
    fn node_id() {
        refused(broker("node.id=0"), "node.id", "0", "controller's id");
        refused(broker("node.id=-3"), "node.id", "-3", "at least 1");
        refused(broker("node.id=one"), "node.id", "one", "not an integer");
        let missing = BrokerSettings::parse(
            "listeners=PLAINTEXT://h:1,REPLICATION://h:2\ncontroller.quorum.bootstrap.servers=h:3",
        );
        assert!(matches!(missing, Err(ConfigError::Missing { key, .. }) if key == "node.id"));
    }

    #[test]
    fn required_settings_are_named() {
        for (text, key) in [
            (
                "node.id=1\ncontroller.quorum.bootstrap.servers=h:3",
                "listeners",
            ),
            (
                "node.id=1\nlisteners=PLAINTEXT://h:1,REPLICATION://h:2",
                "controller.quorum.bootstrap.servers",
            ),
        ] {
            let message = BrokerSettings::parse(text).unwrap_err().to_string();
            assert!(message.contains(key), "{message}");
        }
    }

    #[test]
    fn unknown_settings_are_named() {
        let error = broker("log.retention.hourz=1").unwrap_err();
        assert!(matches!(&error, ConfigError::Unknown { key, .. } if key == "log.retention.hourz"));
        assert!(error.to_string().contains("log.retention.hourz"), "{error}");
        // A controller-only setting means nothing to a broker.
        assert!(broker("metadata.log.dir=/x").is_err());
    }

    fn with_listeners(listeners: &str, extra: &str) -> Result<BrokerSettings, ConfigError> {
        BrokerSettings::parse(&format!(
            "node.id=2\ncontroller.quorum.bootstrap.servers=c:9093\nlisteners={listeners}\n{extra}"
        ))
    }

    #[test]
    fn listener_syntax() {
        for (listeners, why) in [
            ("PLAINTEXT:/h:1,REPLICATION://h:2", "not NAME://host:port"),
            ("PLAINTEXT://h,REPLICATION://h:2", "no :port"),
            ("PLAINTEXT://h:65536,REPLICATION://h:2", "0 to 65535"),
            ("PLAINTEXT://h:x,REPLICATION://h:2", "0 to 65535"),
            ("PLAINTEXT://::1:9092,REPLICATION://h:2", "brackets"),
            ("PLAIN TEXT://h:1,REPLICATION://h:2", "letters, digits"),
            (
                "PLAINTEXT://h:1,plaintext://h:2,REPLICATION://h:3",
                "appears twice",
            ),
            ("", "no listener"),
        ] {
            refused(with_listeners(listeners, ""), "listeners", listeners, why);
        }
    }

    #[test]
    fn listeners_and_their_roles() {
        // Port 0, IPv6, a renamed inter-broker listener, and lower-case names.
        let settings = with_listeners(
            "client://[::1]:0,internal://127.0.0.1:0",
            "inter.broker.listener.name=internal",
        )
        .unwrap();
        assert_eq!(settings.inter_broker_listener().name, "INTERNAL");
        let client = settings.client_listeners().next().unwrap();
        assert_eq!((client.host.as_str(), client.port), ("::1", 0));
        assert_eq!(client.to_string(), "CLIENT://[::1]:0");

        refused(
            with_listeners(
                "PLAINTEXT://h:1,REPLICATION://h:2",
                "inter.broker.listener.name=BROKER",
            ),
            "inter.broker.listener.name",
            "BROKER",
            "names none of the listeners",
        );
        refused(
            with_listeners("REPLICATION://h:2", ""),
            "listeners",
            "REPLICATION://h:2",
            "another listener must serve clients",
        );
        refused(
            with_listeners("PLAINTEXT://h:1,SSL://h:3,REPLICATION://h:2", ""),
            "listeners",
            "SSL://h:3",
            "only PLAINTEXT",
        );
        refused(
            with_listeners(
                "PLAINTEXT://h:1,REPLICATION://h:2",
                "listener.security.protocol.map=PLAINTEXT:SSL,REPLICATION:PLAINTEXT",
            ),
            "listener.security.protocol.map",
            "PLAINTEXT:SSL",
            "only PLAINTEXT",
        );
        assert!(with_listeners(
            "SSL://h:1,REPLICATION://h:2",
            "listener.security.protocol.map=SSL:PLAINTEXT,REPLICATION:PLAINTEXT,CONTROLLER:SSL"
        )
        .is_ok());
    }

    #[test]
    fn advertised_listeners() {
        let any = "PLAINTEXT://0.0.0.0:9092,REPLICATION://:19092";
        refused(
            with_listeners(any, ""),
            "listeners",
            any,
            "set advertised.listeners",
        );
        let settings = with_listeners(
            any,
            "advertised.listeners=PLAINTEXT://kafka.example:9092,REPLICATION://10.0.0.2:0",
        )
        .unwrap();
        // An empty host binds every interface.
        assert_eq!(settings.listeners()[1].host, "0.0.0.0");
        let model = settings.model_config(&[("replication".to_string(), 40000)]);
        let endpoints: Vec<_> = model
            .endpoints
            .iter()
            .map(|e| (e.listener.as_str(), e.host.as_str(), e.port))
            .collect();
        assert_eq!(
            endpoints,
            [
                ("PLAINTEXT", "kafka.example", 9092),
                ("REPLICATION", "10.0.0.2", 40000)
            ]
        );

        for (advertised, why) in [
            ("PLAINTEXT://0.0.0.0:9092,REPLICATION://h:1", "connect to"),
            (
                "PLAINTEXT://h:9092,OTHER://h:1,REPLICATION://h:2",
                "not one of the listeners",
            ),
            ("PLAINTEXT://h:9092", "must be advertised"),
        ] {
            refused(
                with_listeners(any, &format!("advertised.listeners={advertised}")),
                "advertised.listeners",
                advertised,
                why,
            );
        }
    }

    #[test]
    fn bound_ports_replace_port_zero() {
        let settings =
            with_listeners("PLAINTEXT://127.0.0.1:0,REPLICATION://127.0.0.1:0", "").unwrap();
        let model = settings.model_config(&[("PLAINTEXT", 4001), ("REPLICATION", 4002)]);
        let ports: Vec<_> = model.endpoints.iter().map(|e| e.port).collect();
        assert_eq!(ports, [4001, 4002]);
    }

    #[test]
    #[should_panic(expected = "not bound")]
    fn an_unbound_port_zero_is_a_caller_bug() {
        let settings =
            with_listeners("PLAINTEXT://127.0.0.1:0,REPLICATION://127.0.0.1:1", "").unwrap();
        settings.model_config(&[("REPLICATION", 1)]);
    }

    #[test]
    fn one_controller() {
        refused(
            broker("controller.quorum.bootstrap.servers=a:9093,b:9093"),
            "controller.quorum.bootstrap.servers",
            "a:9093,b:9093",
            "exactly one controller",
        );
        refused(
            broker("controller.quorum.bootstrap.servers=a:0"),
            "controller.quorum.bootstrap.servers",
            "a:0",
            "connect to",
        );
        let text = "node.id=1\nlisteners=PLAINTEXT://h:1,REPLICATION://h:2\n";
        let voters =
            BrokerSettings::parse(&format!("{text}controller.quorum.voters=0@c:9093")).unwrap();
        assert_eq!(voters.controller().to_string(), "c:9093");
        for (value, why) in [
            ("1@c:9093", "node 0"),
            ("0@a:1,1@b:1", "exactly one"),
            ("c:9093", "ID@host:port"),
        ] {
            refused(
                BrokerSettings::parse(&format!("{text}controller.quorum.voters={value}")),
                "controller.quorum.voters",
                value,
                why,
            );
        }
    }

    #[test]
    fn one_log_dir() {
        refused(
            broker("log.dirs=/a,/b"),
            "log.dirs",
            "/a,/b",
            "exactly one log directory",
        );
        refused(
            broker("log.dir=/a, /b"),
            "log.dir",
            "/a, /b",
            "exactly one log directory",
        );
        assert_eq!(broker("log.dir=/b").unwrap().log_dir(), Path::new("/b"));
        assert_eq!(
            broker("log.dirs=/a\nlog.dir=/b").unwrap().log_dir(),
            Path::new("/a")
        );
    }

    #[test]
    fn process_roles() {
        assert!(broker("process.roles=broker").is_ok());
        refused(
            broker("process.roles=broker,controller"),
            "process.roles",
            "broker,controller",
            "combined mode",
        );
        refused(
            broker("process.roles=controller"),
            "process.roles",
            "controller",
            "this process is a broker",
        );
    }

    #[test]
    fn unit_precedence() {
        const HOUR: i64 = 3_600_000;
        let log = |extra: &str| broker(extra).unwrap().log_config();
        assert_eq!(log("log.roll.hours=2").segment_ms, 2 * HOUR);
        assert_eq!(log("log.roll.hours=2\nlog.roll.ms=5").segment_ms, 5);
        assert_eq!(log("log.retention.hours=2").retention_ms, Some(2 * HOUR));
        assert_eq!(
            log("log.retention.hours=2\nlog.retention.minutes=3").retention_ms,
            Some(180_000)
        );
        assert_eq!(
            log("log.retention.hours=2\nlog.retention.minutes=3\nlog.retention.ms=7").retention_ms,
            Some(7)
        );
        assert_eq!(
            log("log.retention.ms=-1\nlog.retention.hours=2").retention_ms,
            None
        );
        assert_eq!(log("log.retention.hours=-1").retention_ms, None);
        assert_eq!(log("log.retention.minutes=-1").retention_ms, None);
        assert_eq!(log("log.retention.bytes=1000").retention_bytes, Some(1000));
        // A bad value is refused even where a finer unit takes precedence.
        refused(
            broker("log.retention.ms=1\nlog.retention.hours=x"),
            "log.retention.hours",
            "x",
            "not an integer",
        );
        refused(
            broker("log.roll.ms=1\nlog.roll.hours=0"),
            "log.roll.hours",
            "0",
            "at least 1",
        );
    }

    #[test]
    fn flush_settings() {
        let settings = broker("log.flush.interval.messages=1").unwrap();
        assert_eq!(settings.log_config().flush.messages, Some(1));
        assert_eq!(
            settings.model_config::<&str>(&[]).protocol.flush,
            FlushPolicy::Always
        );

        let settings =
            broker("log.flush.interval.messages=10000\nlog.flush.interval.ms=1000").unwrap();
        assert_eq!(
            settings.log_config().flush,
            FlushConfig {
                messages: Some(10_000),
                ms: Some(1000)
            }
        );
        assert_eq!(
            settings.model_config::<&str>(&[]).protocol.flush,
            FlushPolicy::Never
        );

        let never = broker("log.flush.interval.messages=9223372036854775807").unwrap();
        assert_eq!(never.log_config().flush.messages, None);
    }

    #[test]
    fn timers_and_limits_reach_the_model() {
        let settings = broker(
            "replica.lag.time.max.ms=10000\nbroker.heartbeat.interval.ms=500\n\
             replica.fetch.wait.max.ms=100\nreplica.fetch.backoff.ms=0\n\
             replica.high.watermark.checkpoint.interval.ms=1000\n\
             log.retention.check.interval.ms=2000\nreplica.fetch.min.bytes=0\n\
             replica.fetch.max.bytes=4096\nreplica.fetch.response.max.bytes=8192",
        )
        .unwrap();
        let model = settings.model_config::<&str>(&[]);
        assert_eq!(
            model.timeouts,
            BrokerTimeouts {
                heartbeat_interval: Some(Duration::from_millis(500)),
                replica_lag_max: Duration::from_secs(10),
                fetch_backoff: Duration::ZERO,
                replica_fetch_wait_max: Duration::from_millis(100),
                high_watermark_checkpoint_interval: Some(Duration::from_secs(1)),
                retention_check_interval: Some(Duration::from_secs(2)),
            }
        );
        assert_eq!(
            model.limits,
            BrokerLimits {
                replica_fetch_min_bytes: 0,
                replica_fetch_max_bytes: 4096,
                replica_fetch_response_max_bytes: 8192,
                ..BrokerLimits::default()
            }
        );
    }

    #[test]
    fn overrides() {
        let settings = broker("log.retention.ms=1000").unwrap();
        let changed = settings
            .with_overrides(&["num.partitions=3", "node.id = 7", "log.retention.hours=1"])
            .unwrap();
        assert_eq!(changed.num_partitions(), 3);
        assert_eq!(changed.node_id(), BrokerId(7));
        // The file's log.retention.ms still takes precedence over the override's hours.
        assert_eq!(changed.log_config().retention_ms, Some(1000));
        assert_eq!(settings.num_partitions(), 1, "the original is unchanged");

        assert!(matches!(
            settings.with_overrides(&["num.partitions"]),
            Err(ConfigError::Override { .. })
        ));
        assert!(matches!(
            settings.with_overrides(&["=3"]),
            Err(ConfigError::Override { .. })
        ));
        refused(
            settings.with_overrides(&["num.partitions=-1"]),
            "num.partitions",
            "-1",
            "at least 1",
        );
        assert!(matches!(
            settings.with_overrides(&["no.such.key=1"]),
            Err(ConfigError::Unknown { key, .. }) if key == "no.such.key"
        ));
        assert_eq!(
            parse_override("a.b=c=d").unwrap(),
            ("a.b".into(), "c=d".into())
        );
    }

    #[test]
    fn a_kafka_broker_file() {
        // Kafka's config/kraft/broker.properties, adapted where Gregor differs: the controller
        // is node 0, replication has its own listener, no SSL.
        let text = r"
############################# Server Basics #############################

# The role of this server. Setting this puts us in KRaft mode
process.roles=broker

# The node id associated with this instance's roles
node.id=2

# Information about the KRaft controller quorum.
controller.quorum.bootstrap.servers=localhost:9093

############################# Socket Server Settings #############################

listeners=PLAINTEXT://localhost:9092,REPLICATION://localhost:19092
inter.broker.listener.name=REPLICATION
advertised.listeners=PLAINTEXT://localhost:9092,REPLICATION://localhost:19092
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,REPLICATION:PLAINTEXT
num.network.threads=3
num.io.threads=8
socket.send.buffer.bytes=102400
socket.receive.buffer.bytes=102400
socket.request.max.bytes=104857600

############################# Log Basics #############################

log.dirs=/tmp/kraft-broker-logs
num.partitions=1
num.recovery.threads.per.data.dir=1

############################# Internal Topic Settings  #############################
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1

############################# Log Flush Policy #############################
#log.flush.interval.messages=10000
#log.flush.interval.ms=1000

############################# Log Retention Policy #############################
log.retention.hours=168
#log.retention.bytes=1073741824
log.segment.bytes=1073741824
log.retention.check.interval.ms=300000

broker.rack=rack-a
group.initial.rebalance.delay.ms=0
";
        let settings = BrokerSettings::parse(text).unwrap();
        assert_eq!(settings.node_id(), BrokerId(2));
        assert_eq!(settings.log_dir(), Path::new("/tmp/kraft-broker-logs"));
        assert_eq!(settings.broker_rack(), Some("rack-a"));
        assert_eq!(settings.compatibility()["num.io.threads"], "8");
        assert_eq!(settings.compatibility()["process.roles"], "broker");
        assert_eq!(settings.log_config(), LogConfig::default());
        assert_eq!(settings.controller().to_string(), "localhost:9093");
    }

    #[test]
    fn load_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broker.properties");
        let error = BrokerSettings::load(&path).unwrap_err();
        assert!(matches!(error, ConfigError::Io { .. }));
        assert!(error.to_string().contains("broker.properties"), "{error}");

        std::fs::write(&path, format!("{MINIMAL}num.partitions=zero\n")).unwrap();
        let message = BrokerSettings::load(&path).unwrap_err().to_string();
        assert!(
            message.contains("broker.properties") && message.contains("num.partitions"),
            "{message}"
        );

        std::fs::write(&path, MINIMAL).unwrap();
        assert_eq!(BrokerSettings::load(&path).unwrap(), broker("").unwrap());
    }

    const CONTROLLER: &str = "listeners=CONTROLLER://127.0.0.1:9093\n";

    fn controller(extra: &str) -> Result<ControllerSettings, ConfigError> {
        ControllerSettings::parse(&format!("{CONTROLLER}{extra}\n"))
    }

    #[track_caller]
    fn controller_refused(extra: &str, key: &str, value: &str, why: &str) {
        let message = controller(extra)
            .expect_err("should be refused")
            .to_string();
        for part in [key, value, why] {
            assert!(message.contains(part), "{message:?} does not name {part:?}");
        }
    }

    #[test]
    fn controller_defaults() {
        let settings = controller("").unwrap();
        assert_eq!(
            settings.listener().to_string(),
            "CONTROLLER://127.0.0.1:9093"
        );
        assert_eq!(settings.log_dir(), Path::new("/tmp/kraft-controller-logs"));
        assert_eq!(settings.default_replication_factor(), 1);
        assert_eq!(settings.num_partitions(), 1);
        assert_eq!(
            settings.model_config(0),
            ControllerConfig::default(),
            "Kafka's defaults are the model's"
        );
        assert_eq!(settings.model_config(42).topic_id_prefix, 42);
    }

    #[test]
    fn controller_settings() {
        let settings = controller(
            "node.id=0\nbroker.session.timeout.ms=3000\nmin.insync.replicas=2\n\
             unclean.leader.election.enable=true\nlog.dirs=/a\nmetadata.log.dir=/m",
        )
        .unwrap();
        assert_eq!(settings.log_dir(), Path::new("/m"));
        let model = settings.model_config(7);
        assert_eq!(model.session_timeout, Duration::from_secs(3));
        assert_eq!(
            model.topic_defaults,
            TopicConfig {
                min_insync_replicas: 2,
                unclean_leader_election: true
            }
        );
        assert_eq!(
            controller("log.dirs=/a\nlog.dir=/b").unwrap().log_dir(),
            Path::new("/a")
        );
        let port_zero = ControllerSettings::parse("listeners=CONTROLLER://:0").unwrap();
        assert_eq!(port_zero.listener().host, "0.0.0.0");
    }

    #[test]
    fn controller_refusals() {
        controller_refused("node.id=1", "node.id", "1", "node 0");
        controller_refused(
            "min.insync.replicas=0",
            "min.insync.replicas",
            "0",
            "at least 1",
        );
        controller_refused(
            "broker.session.timeout.ms=x",
            "broker.session.timeout.ms",
            "x",
            "not an integer",
        );
        controller_refused(
            "unclean.leader.election.enable=no",
            "unclean.leader.election.enable",
            "no",
            "true or false",
        );
        controller_refused(
            "log.dirs=/a,/b",
            "log.dirs",
            "/a,/b",
            "exactly one log directory",
        );
        controller_refused(
            "process.roles=broker,controller",
            "process.roles",
            "broker,controller",
            "combined mode",
        );
        controller_refused("no.such.setting=1", "no.such.setting", "1", "unknown");
        let two = "CONTROLLER://h:1,OTHER://h:2";
        let message = ControllerSettings::parse(&format!("listeners={two}"))
            .unwrap_err()
            .to_string();
        assert!(
            message.contains(two) && message.contains("exactly one listener"),
            "{message}"
        );
        assert!(matches!(
            ControllerSettings::parse("node.id=0"),
            Err(ConfigError::Missing { key, .. }) if key == "listeners"
        ));
    }

    #[test]
    fn controller_overrides() {
        let settings = controller("").unwrap();
        let changed = settings
            .with_overrides(&["broker.session.timeout.ms=100"])
            .unwrap();
        assert_eq!(changed.session_timeout(), Duration::from_millis(100));
    }

    #[test]
    fn a_kafka_controller_file() {
        // Kafka's config/kraft/controller.properties, adapted: node 0, one controller.
        let text = "
process.roles=controller
node.id=0
controller.quorum.bootstrap.servers=localhost:9093
listeners=CONTROLLER://:9093
advertised.listeners=CONTROLLER://localhost:9093
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL
num.network.threads=3
num.io.threads=8
socket.send.buffer.bytes=102400
socket.receive.buffer.bytes=102400
socket.request.max.bytes=104857600
log.dirs=/tmp/kraft-controller-logs
num.partitions=1
num.recovery.threads.per.data.dir=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
log.retention.hours=168
log.segment.bytes=1073741824
log.retention.check.interval.ms=300000
";
        let settings = ControllerSettings::parse(text).unwrap();
        assert_eq!(settings.listener().port, 9093);
        assert_eq!(settings.ignored()["log.retention.hours"], "168");
        assert_eq!(
            settings.ignored()["controller.quorum.bootstrap.servers"],
            "localhost:9093"
        );
        assert!(!settings.ignored().contains_key("num.partitions"));
    }
}
