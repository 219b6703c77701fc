//! The two processes: `gregor controller` and `gregor broker`. Each binds its listeners, opens
//! what it saved, starts its links and (a broker) its Kafka front end on a multi-threaded
//! tokio runtime, and runs its actor on a thread of its own (`host`), until SIGINT/SIGTERM (a
//! clean stop: logs flushed) or a `Stop` (a failed log operation: the process exits non-zero,
//! which the protocol treats as a crash).
//!
//! Each prints one line on stdout once it listens, with the addresses it bound (ports given as
//! 0 are chosen by the system): `gregor cluster up` and the tests read it.

use crate::config::{BrokerSettings, ControllerSettings, Listener};
use crate::host::roles::{resolve, BrokerRole, ControllerRole, Directory, SharedDirectory};
use crate::host::transport::{LinkLimits, Links};
use crate::host::{Event, Host, HostedRole};
use crate::kafka::{FrontEnd, FrontEndSettings};
use crate::storage::{DataDir, DiskLogConfig, SystemClock};
use gregor_model::effects::Address;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// Events queued for an actor before the network waits (backpressure on its connections).
const INBOX: usize = 8192;

/// The file the controller keeps its topic id prefix in (drawn at its first start).
const CLUSTER_ID: &str = "cluster-id";

/// The runtime of a process's connections: `threads` tokio workers.
fn network_runtime(threads: usize) -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name("gregor-net")
        .enable_all()
        .build()
        .map_err(|e| format!("starting the network runtime: {e}"))
}

async fn bind(listener: &Listener) -> Result<TcpListener, String> {
    TcpListener::bind((listener.host.as_str(), listener.port))
        .await
        .map_err(|e| format!("binding listener {listener}: {e}"))
}

/// Opens the trace file (`--trace FILE`): one JSON line per step.
fn trace_writer(trace: Option<&Path>) -> Result<Option<Box<dyn Write + Send>>, String> {
    let Some(path) = trace else {
        return Ok(None);
    };
    let file = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Some(Box::new(std::io::BufWriter::new(file))))
}

/// Sends `Shutdown` to the actor on SIGINT or SIGTERM.
fn stop_on_signals(runtime: &tokio::runtime::Runtime, inbox: mpsc::Sender<Event>) {
    runtime.spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(e) => {
                    tracing::warn!("cannot listen for SIGTERM: {e}");
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("stopping");
        let _ = inbox.send(Event::Shutdown).await;
    });
}

/// Runs the actor on its own thread until it stops.
fn run_actor<R: HostedRole + Send + 'static>(
    role: R,
    links: Arc<Links>,
    inbox: mpsc::Receiver<Event>,
    trace: Option<Box<dyn Write + Send>>,
) -> Result<(), String> {
    let name = role.address().to_string();
    let actor = std::thread::Builder::new()
        .name("gregor-actor".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("starting the actor's runtime: {e}"))?;
            runtime.block_on(Host::new(role, links, trace).run(inbox))
        })
        .map_err(|e| format!("starting the actor thread: {e}"))?;
    match actor.join() {
        Ok(Ok(())) => Ok(()),
        Ok(Err(why)) => Err(format!("{name} stopped: {why}")),
        Err(_) => Err(format!("{name}: the actor thread panicked")),
    }
}

/// The cluster's topic id prefix: read, or drawn and saved at the first start.
fn topic_id_prefix(dir: &Path) -> Result<u64, String> {
    let path = dir.join(CLUSTER_ID);
    match std::fs::read_to_string(&path) {
        Ok(text) => u64::from_str_radix(text.trim(), 16)
            .map_err(|_| format!("{}: not a cluster id", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            use std::hash::{BuildHasher, Hasher};
            let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
            hasher.write_u128(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos()),
            );
            let prefix = hasher.finish();
            crate::storage::checkpoint::write_atomic(&path, format!("{prefix:016x}\n").as_bytes())
                .map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(prefix)
        }
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// `gregor controller`.
pub fn run_controller(settings: ControllerSettings, trace: Option<PathBuf>) -> Result<(), String> {
    // The controller's connections are its brokers' heartbeats and requests: light traffic.
    let runtime = network_runtime(2)?;
    let dir = settings.log_dir().to_path_buf();
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let prefix = topic_id_prefix(&dir)?;
    let role = ControllerRole::open(settings.model_config(prefix), &dir)?;
    let listener = runtime.block_on(bind(settings.listener()))?;
    let bound = listener
        .local_addr()
        .map_err(|e| format!("listener {}: {e}", settings.listener()))?;
    let (inbox_tx, inbox) = mpsc::channel(INBOX);
    let links = Links::new(
        Address::Controller,
        inbox_tx.clone(),
        LinkLimits::default(),
        runtime.handle().clone(),
    );
    runtime.spawn(links.clone().accept(listener));
    stop_on_signals(&runtime, inbox_tx);
    println!(
        "gregor controller listening on {}://{bound} (data {})",
        settings.listener().name,
        dir.display()
    );
    let _ = std::io::stdout().flush();
    let result = run_actor(role, links, inbox, trace_writer(trace.as_deref())?);
    runtime.shutdown_timeout(Duration::from_millis(200));
    result
}

/// `gregor broker`.
pub fn run_broker(settings: BrokerSettings, trace: Option<PathBuf>) -> Result<(), String> {
    let runtime = network_runtime(settings.network_threads())?;
    let id = settings.node_id();
    // Bind every listener first: ports given as 0 are known only then, and the broker
    // registers the bound ones.
    let mut client_listeners = Vec::new();
    let mut bound = Vec::new();
    for listener in settings.client_listeners() {
        let socket = runtime.block_on(bind(listener))?;
        let port = socket
            .local_addr()
            .map_err(|e| format!("listener {listener}: {e}"))?
            .port();
        bound.push((listener.name.clone(), port));
        client_listeners.push((listener.name.clone(), socket));
    }
    let inter_broker = settings.inter_broker_listener().clone();
    let replication = runtime.block_on(bind(&inter_broker))?;
    let replication_port = replication
        .local_addr()
        .map_err(|e| format!("listener {inter_broker}: {e}"))?
        .port();
    bound.push((inter_broker.name.clone(), replication_port));
    let config = settings.model_config(&bound);
    let data_dir = DataDir::open(settings.log_dir()).map_err(|e| e.to_string())?;
    let log_config = DiskLogConfig {
        data_dir,
        log: settings.log_config(),
        clock: Arc::new(SystemClock),
    };
    let directory: SharedDirectory = Arc::new(RwLock::new(Arc::new(Directory::default())));
    let role = BrokerRole::open(
        config.clone(),
        log_config,
        inter_broker.name.clone(),
        directory.clone(),
    )?;
    let (inbox_tx, inbox) = mpsc::channel(INBOX);
    let links = Links::new(
        Address::Broker(id),
        inbox_tx.clone(),
        LinkLimits::default(),
        runtime.handle().clone(),
    );
    runtime.spawn(links.clone().accept(replication));
    let controller = settings.controller();
    let controller_address = resolve(&controller.host, controller.port)?;
    links.dial(Address::Controller, controller_address);
    // The broker starts (and registers) once its link to the controller is up, so that its
    // registration is not lost to a link still connecting.
    let mut waited = Duration::ZERO;
    while !links.is_up(Address::Controller) {
        std::thread::sleep(Duration::from_millis(20));
        waited += Duration::from_millis(20);
        if waited.as_millis() % 5000 == 0 {
            tracing::warn!("waiting for the controller at {controller}");
        }
    }
    let front_end = FrontEnd::new(
        id,
        inbox_tx.clone(),
        directory,
        FrontEndSettings {
            message_max_bytes: u64::from(settings.message_max_bytes()),
            request_max_bytes: settings.socket_request_max_bytes() as usize,
            max_connections: settings.max_connections(),
            queued_max_requests: settings.queued_max_requests(),
            auto_create_topics: settings.auto_create_topics_enable(),
            num_partitions: settings.num_partitions(),
            default_replication_factor: u32::from(settings.default_replication_factor()),
            configs: settings.described().into(),
        },
    );
    let mut described = Vec::new();
    for (name, socket) in client_listeners {
        if let Ok(address) = socket.local_addr() {
            described.push(format!("{name}://{address}"));
        }
        runtime.spawn(front_end.clone().serve(socket, name));
    }
    described.push(format!(
        "{}://{}:{replication_port}",
        inter_broker.name, inter_broker.host
    ));
    stop_on_signals(&runtime, inbox_tx);
    println!(
        "gregor broker {id} listening on {} (data {})",
        described.join(","),
        settings.log_dir().display()
    );
    let _ = std::io::stdout().flush();
    let result = run_actor(role, links, inbox, trace_writer(trace.as_deref())?);
    runtime.shutdown_timeout(Duration::from_millis(200));
    result
}
