//! The public listener: accepts clients on the requested address and splices each one to
//! rumqttd's internal loopback port.
//!
//! Why a front at all: rumqttd 0.20 binds its own listener, only logs a failed bind, and
//! has no way to stop. Owning the public socket ourselves makes the bind error immediate and
//! race-free, makes port 0 report the real port, and lets `stop()` really close the port and
//! every client connection.

use std::net::SocketAddr;
use std::thread::{self, JoinHandle};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tracing::{debug, warn};

use super::error::BrokerError;

/// A running front; stopping it closes the listener and all spliced connections.
#[derive(Debug)]
pub(crate) struct Front {
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Front {
    /// Serves `listener` (already bound) on a dedicated thread with its own runtime.
    pub(crate) fn spawn(
        listener: std::net::TcpListener,
        backend: SocketAddr,
    ) -> Result<Self, BrokerError> {
        let setup = |context| move |source| BrokerError::Setup { context, source };
        listener
            .set_nonblocking(true)
            .map_err(setup("front listener"))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(setup("front runtime"))?;
        let (tx, rx) = oneshot::channel();
        let thread = thread::Builder::new()
            .name("latchkey-broker-front".to_owned())
            .spawn(move || runtime.block_on(serve(listener, backend, rx)))
            .map_err(setup("front thread"))?;
        Ok(Self {
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    pub(crate) fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Stops accepting and drops every spliced connection (the runtime, and with it every
    /// connection task, is dropped when the thread returns).
    pub(crate) fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            warn!("embedded broker front thread panicked");
        }
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn serve(
    listener: std::net::TcpListener,
    backend: SocketAddr,
    mut shutdown: oneshot::Receiver<()>,
) {
    let listener = match TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            warn!(error = %e, "embedded broker front cannot register its listener");
            return;
        }
    };
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((client, peer)) => {
                    tokio::spawn(splice(client, peer, backend));
                }
                Err(e) => {
                    // Usually EMFILE or a connection reset before accept; keep serving.
                    debug!(error = %e, "embedded broker accept failed");
                }
            }
        }
    }
}

async fn splice(mut client: TcpStream, peer: SocketAddr, backend: SocketAddr) {
    let mut upstream = match TcpStream::connect(backend).await {
        Ok(s) => s,
        Err(e) => {
            debug!(%peer, error = %e, "embedded broker backend not reachable");
            return;
        }
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
        debug!(%peer, error = %e, "embedded broker connection ended");
    }
}
