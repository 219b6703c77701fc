//! The links between Gregor's processes (the controller and the brokers): one TCP connection
//! per pair, length-delimited frames of postcard-encoded protocol messages, exactly the
//! model's network (`specs/protocol.md`, "The host's contract"):
//!
//! - FIFO per link: one connection carries both directions, one writer task per connection
//!   drains a bounded queue in order, coalescing what is queued into one write.
//! - Lossy on a break: when a connection breaks, what was queued or in flight on it is gone,
//!   and the actor is told (`Event::LinkDown`, which it hands to its role as `Disconnected`).
//!   A message sent while no connection is up is not kept for a later one (a restarted peer
//!   must never receive a message meant for its previous incarnation): it is lost, and the
//!   actor tells its role (`Disconnected`) once a connection to that peer is up again, so that
//!   what the role sends again goes on the new connection.
//! - A full queue (a peer that stopped reading) breaks the link rather than drop one message
//!   and deliver the next: the model's links lose messages only when a connection breaks.
//!
//! Who dials: a broker dials the controller, and the broker with the smaller id dials the other;
//! the first frame on a connection is the dialer's [`Hello`]. A newer connection from the same
//! peer replaces the older one (the peer restarted or reconnected).
//!
//! Record batches travel as the bytes they are (serde's bytes, one copy into the frame), never
//! re-encoded record by record.

use super::{Event, Message};
use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use gregor_model::effects::Address;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::AbortHandle;
use tokio_util::codec::{FramedRead, FramedWrite, LengthDelimitedCodec};

/// The first frame on a connection: who dialed.
#[derive(Debug, Serialize, Deserialize)]
pub struct Hello {
    pub from: Address,
}

/// Limits of the links.
#[derive(Clone, Copy, Debug)]
pub struct LinkLimits {
    /// Messages queued per link before it is considered broken.
    pub queue: usize,
    /// The largest frame accepted (a fetch answer is bounded by
    /// `replica.fetch.response.max.bytes`).
    pub frame_max: usize,
    /// How long a dial may take.
    pub connect_timeout: Duration,
    /// The longest pause between two dials of a peer that does not answer.
    pub backoff_max: Duration,
}

impl Default for LinkLimits {
    fn default() -> Self {
        LinkLimits {
            queue: 16 * 1024,
            frame_max: 64 << 20,
            connect_timeout: Duration::from_secs(3),
            backoff_max: Duration::from_secs(1),
        }
    }
}

struct Peer {
    generation: u64,
    tx: mpsc::Sender<Message>,
    reader: AbortHandle,
    /// Dropped with the peer entry: tells the dialer the connection is over.
    _closed: oneshot::Sender<()>,
}

/// Every link of one process.
pub struct Links {
    me: Address,
    inbox: mpsc::Sender<Event>,
    peers: Mutex<HashMap<Address, Peer>>,
    limits: LinkLimits,
    generation: AtomicU64,
    runtime: tokio::runtime::Handle,
    /// The dialers running, with the address each dials.
    dialers: Mutex<HashMap<Address, watch::Sender<SocketAddr>>>,
}

fn codec(frame_max: usize) -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .max_frame_length(frame_max)
        .new_codec()
}

impl Links {
    /// The links of the process at `me`, whose network tasks run on `runtime` and whose
    /// received messages go to `inbox`.
    pub fn new(
        me: Address,
        inbox: mpsc::Sender<Event>,
        limits: LinkLimits,
        runtime: tokio::runtime::Handle,
    ) -> Arc<Links> {
        Arc::new(Links {
            me,
            inbox,
            peers: Mutex::new(HashMap::new()),
            limits,
            generation: AtomicU64::new(0),
            runtime,
            dialers: Mutex::new(HashMap::new()),
        })
    }

    fn peers(&self) -> std::sync::MutexGuard<'_, HashMap<Address, Peer>> {
        self.peers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a connection to `peer` is up.
    pub fn is_up(&self, peer: Address) -> bool {
        self.peers().contains_key(&peer)
    }

    /// Queues `msg` on the link to `to`. False if there is no link, or if its queue is full,
    /// in which case the link is broken: the caller tells its role the link is down.
    pub fn send(&self, to: Address, msg: Message) -> bool {
        let mut peers = self.peers();
        let Some(peer) = peers.get(&to) else {
            return false;
        };
        match peer.tx.try_send(msg) {
            Ok(()) => true,
            Err(error) => {
                if matches!(error, mpsc::error::TrySendError::Full(_)) {
                    tracing::warn!(
                        "link to {to}: {} messages queued; breaking it",
                        self.limits.queue
                    );
                }
                if let Some(peer) = peers.remove(&to) {
                    peer.reader.abort();
                }
                false
            }
        }
    }

    /// A connection to `peer` passed its handshake: it carries the link from now on,
    /// replacing an earlier one. The receiver resolves when this connection is over.
    async fn connected(
        self: &Arc<Self>,
        peer: Address,
        stream: TcpStream,
    ) -> oneshot::Receiver<()> {
        let _ = stream.set_nodelay(true);
        let (read, write) = stream.into_split();
        let (tx, rx) = mpsc::channel(self.limits.queue);
        let (closed_tx, closed_rx) = oneshot::channel();
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        // The reader starts only after the earlier connection's end is queued, so that what
        // the role receives on the new link follows its `Disconnected` for the old one.
        let (start_tx, start_rx) = oneshot::channel::<()>();
        let links = self.clone();
        let frame_max = self.limits.frame_max;
        let reader = self.runtime.spawn(async move {
            if start_rx.await.is_err() {
                return;
            }
            let mut frames = FramedRead::new(read, codec(frame_max));
            let why = loop {
                match frames.next().await {
                    Some(Ok(frame)) => match postcard::from_bytes::<Message>(&frame) {
                        Ok(msg) => {
                            let event = Event::Message { from: peer, msg };
                            if links.inbox.send(event).await.is_err() {
                                return;
                            }
                        }
                        Err(e) => break format!("a frame that does not decode: {e}"),
                    },
                    Some(Err(e)) => break format!("reading: {e}"),
                    None => break "closed by the peer".to_string(),
                }
            };
            links.down(peer, generation, &why).await;
        });
        let old = self.peers().insert(
            peer,
            Peer {
                generation,
                tx,
                reader: reader.abort_handle(),
                _closed: closed_tx,
            },
        );
        if let Some(old) = old {
            old.reader.abort();
            let _ = self.inbox.send(Event::LinkDown { peer }).await;
        }
        tracing::info!("link to {peer} up");
        let _ = self.inbox.send(Event::LinkUp { peer }).await;
        let _ = start_tx.send(());
        let links = self.clone();
        self.runtime.spawn(async move {
            let why = write_loop(rx, FramedWrite::new(write, codec(frame_max))).await;
            if let Some(why) = why {
                links.down(peer, generation, &why).await;
            }
        });
        closed_rx
    }

    /// The connection of `generation` to `peer` ended: if it still carries the link, the link
    /// is down and the role is told.
    async fn down(&self, peer: Address, generation: u64, why: &str) {
        let removed = {
            let mut peers = self.peers();
            match peers.get(&peer) {
                Some(current) if current.generation == generation => peers.remove(&peer),
                _ => None,
            }
        };
        if let Some(removed) = removed {
            removed.reader.abort();
            tracing::info!("link to {peer} down: {why}");
            let _ = self.inbox.send(Event::LinkDown { peer }).await;
        }
    }

    /// Keeps a connection to `peer` at `address` up: dials, and dials again with backoff
    /// whenever it is down. Calling it again for the same peer changes the address.
    pub fn dial(self: &Arc<Self>, peer: Address, address: SocketAddr) {
        let mut dialers = self.dialers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(existing) = dialers.get(&peer) {
            if *existing.borrow() != address {
                let _ = existing.send(address);
            }
            return;
        }
        let (tx, rx) = watch::channel(address);
        dialers.insert(peer, tx);
        let links = self.clone();
        self.runtime
            .spawn(async move { links.dial_loop(peer, rx).await });
    }

    async fn dial_loop(self: Arc<Self>, peer: Address, address: watch::Receiver<SocketAddr>) {
        let mut backoff = Duration::from_millis(50);
        loop {
            let target = *address.borrow();
            let dialed =
                tokio::time::timeout(self.limits.connect_timeout, TcpStream::connect(target)).await;
            match dialed {
                Ok(Ok(mut stream)) => {
                    let hello = postcard::to_stdvec(&Hello { from: self.me }).expect("encodes");
                    let mut frame = BytesMut::with_capacity(4 + hello.len());
                    frame.extend_from_slice(&(hello.len() as u32).to_be_bytes());
                    frame.extend_from_slice(&hello);
                    if stream.write_all(&frame).await.is_ok() {
                        backoff = Duration::from_millis(50);
                        let closed = self.connected(peer, stream).await;
                        let _ = closed.await;
                        continue;
                    }
                }
                Ok(Err(e)) => tracing::debug!("dialing {peer} at {target}: {e}"),
                Err(_) => tracing::debug!("dialing {peer} at {target}: timed out"),
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(self.limits.backoff_max);
        }
    }

    /// Accepts the connections peers dial to `listener`.
    pub async fn accept(self: Arc<Self>, listener: TcpListener) {
        loop {
            let (stream, remote) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!("accepting a peer connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let links = self.clone();
            self.runtime.spawn(async move {
                let handshake = tokio::time::timeout(Duration::from_secs(10), read_hello(stream));
                match handshake.await {
                    Ok(Ok((hello, stream))) => {
                        let _closed = links.connected(hello.from, stream).await;
                    }
                    Ok(Err(why)) => tracing::warn!("peer connection from {remote}: {why}"),
                    Err(_) => tracing::warn!("peer connection from {remote}: no handshake"),
                }
            });
        }
    }
}

/// Reads the dialer's [`Hello`] (a small frame; anything else closes the connection).
async fn read_hello(mut stream: TcpStream) -> Result<(Hello, TcpStream), String> {
    let length = stream.read_u32().await.map_err(|e| e.to_string())? as usize;
    if length > 1024 {
        return Err(format!("a first frame of {length} bytes is no handshake"));
    }
    let mut bytes = vec![0; length];
    stream
        .read_exact(&mut bytes)
        .await
        .map_err(|e| e.to_string())?;
    let hello = postcard::from_bytes(&bytes).map_err(|e| format!("bad handshake: {e}"))?;
    Ok((hello, stream))
}

/// Writes the queue's messages in order, coalescing what is queued into one write. Returns
/// why it stopped on an error; `None` when the link was closed by its owner.
async fn write_loop(
    mut rx: mpsc::Receiver<Message>,
    mut frames: FramedWrite<tokio::net::tcp::OwnedWriteHalf, LengthDelimitedCodec>,
) -> Option<String> {
    const COALESCE_BYTES: usize = 1 << 20;
    while let Some(msg) = rx.recv().await {
        let mut queued = 0;
        let mut next = Some(msg);
        while let Some(msg) = next.take() {
            let frame = match postcard::to_stdvec(&msg) {
                Ok(bytes) => Bytes::from(bytes),
                Err(e) => return Some(format!("encoding a message: {e}")),
            };
            queued += frame.len();
            if let Err(e) = frames.feed(frame).await {
                return Some(format!("writing: {e}"));
            }
            if queued < COALESCE_BYTES {
                next = rx.try_recv().ok();
            }
        }
        if let Err(e) = SinkExt::<Bytes>::flush(&mut frames).await {
            return Some(format!("writing: {e}"));
        }
    }
    let _ = frames.into_inner().shutdown().await;
    None
}
