//! A controllable TCP proxy between the gateway and the backend, for fault injection.
//!
//! It forwards bytes both ways (TLS passes through untouched, so mTLS and SigV4 stay real) and
//! can, at any moment, for every connection: delay each chunk, black-hole it (accept and read,
//! forward nothing: a hung backend), reset it, stall the backend's answer after N bytes, or stop
//! listening (a killed backend). It counts the connections it accepts.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// What the proxy does to traffic now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Forward everything.
    Pass,
    /// Forward each chunk after this delay.
    Delay(Duration),
    /// Accept and read, forward nothing, never close.
    BlackHole,
    /// Close every connection with a reset.
    Reset,
    /// Forward N more bytes from the backend per connection (counted from when this fault is
    /// set), then hold the rest until the fault changes (a backend that pauses mid-body).
    PauseAfter(usize),
    /// Forward N more bytes from the backend per connection (counted from when this fault is
    /// set), then nothing.
    StallAfter(usize),
}

/// The proxy; stops when dropped.
pub struct FaultProxy {
    /// Where the gateway should connect.
    pub addr: SocketAddr,
    upstream: SocketAddr,
    fault: Arc<Mutex<(Fault, u64)>>,
    accepted: Arc<AtomicUsize>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl FaultProxy {
    /// Starts forwarding to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut proxy = Self {
            addr: listener.local_addr().unwrap(),
            upstream,
            fault: Arc::new(Mutex::new((Fault::Pass, 0))),
            accepted: Arc::new(AtomicUsize::new(0)),
            task: None,
        };
        proxy.listen(listener);
        proxy
    }

    fn listen(&mut self, listener: TcpListener) {
        let (upstream, fault, accepted) = (self.upstream, self.fault.clone(), self.accepted.clone());
        self.task = Some(tokio::spawn(async move {
            // Connections live in this set: stopping the proxy closes them all.
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    accepted_conn = listener.accept() => {
                        let Ok((client, _)) = accepted_conn else { continue };
                        accepted.fetch_add(1, Ordering::SeqCst);
                        connections.spawn(relay(client, upstream, fault.clone()));
                    }
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
        }));
    }

    /// Changes what happens to traffic, for new and open connections alike.
    pub fn set(&self, fault: Fault) {
        let mut current = self.fault.lock().unwrap();
        *current = (fault, current.1 + 1);
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Stops listening and closes every connection: the backend is gone (connection refused).
    pub fn kill(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }

    /// Listens again on the same port after [`FaultProxy::kill`].
    pub async fn revive(&mut self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(e) => {
                    assert!(std::time::Instant::now() < deadline, "cannot rebind {}: {e}", self.addr);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
        self.set(Fault::Pass);
        self.listen(listener);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The fault now, and how many times it was set (so counts can restart when it changes).
fn current(fault: &Mutex<(Fault, u64)>) -> (Fault, u64) {
    *fault.lock().unwrap()
}

/// Closes a connection with RST instead of FIN (`SO_LINGER` 0 does not block on drop).
#[allow(deprecated)]
fn reset(stream: TcpStream) {
    let _ = stream.set_linger(Some(Duration::ZERO));
    drop(stream);
}

async fn relay(client: TcpStream, upstream: SocketAddr, fault: Arc<Mutex<(Fault, u64)>>) {
    if current(&fault).0 == Fault::Reset {
        return reset(client);
    }
    let Ok(server) = TcpStream::connect(upstream).await else {
        return reset(client);
    };
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let up = pump(client_read, server_write, fault.clone(), false);
    let down = pump(server_read, client_write, fault.clone(), true);
    // Either direction ending (or resetting) ends the connection.
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
}

/// Copies `from` to `to` under the current fault; `Some(Reset)` when told to reset.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    fault: Arc<Mutex<(Fault, u64)>>,
    from_backend: bool,
) -> Option<Fault> {
    let mut buf = vec![0u8; 16 * 1024];
    // Bytes forwarded since the fault last changed.
    let (mut forwarded, mut epoch) = (0usize, current(&fault).1);
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => n,
        };
        let mut chunk = &buf[..n];
        let (now, now_epoch) = current(&fault);
        if now_epoch != epoch {
            (forwarded, epoch) = (0, now_epoch);
        }
        match now {
            Fault::Pass => {}
            Fault::Delay(d) => tokio::time::sleep(d).await,
            Fault::BlackHole => std::future::pending::<()>().await,
            Fault::Reset => {
                if let Ok(stream) = from.reunite(to) {
                    reset(stream);
                }
                return Some(Fault::Reset);
            }
            Fault::StallAfter(limit) if from_backend => {
                let room = limit.saturating_sub(forwarded);
                if room == 0 {
                    std::future::pending::<()>().await;
                }
                chunk = &chunk[..chunk.len().min(room)];
            }
            Fault::StallAfter(_) => {}
            Fault::PauseAfter(limit) if from_backend => {
                let room = limit.saturating_sub(forwarded);
                if chunk.len() > room {
                    if to.write_all(&chunk[..room]).await.is_err() {
                        return None;
                    }
                    chunk = &chunk[room..];
                    while current(&fault).1 == epoch {
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    }
                }
            }
            Fault::PauseAfter(_) => {}
        }
        if to.write_all(chunk).await.is_err() {
            return None;
        }
        forwarded += chunk.len();
    }
}

/// Closes a client connection abruptly (RST), as a browser tab that is closed mid-download.
pub fn abort(stream: TcpStream) {
    reset(stream);
}
