//! Group commit for the connections table: writes queue up while the
//! previous batch is being flushed, then go to the store as one atomic batch
//! with one fsync ([`Store::apply_entries`]). A registration is answered only
//! once its batch is durable, so it survives `kill -9`; a burst of
//! registrations costs one fsync per batch, not per registration.
//!
//! Writes are applied in the order they were queued, so a removal queued
//! after a registration (a teardown racing the registration) wins.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use vigil_runtime::{Store, Table};

/// Most writes in one batch.
const MAX_BATCH: usize = 4096;

type Ack = oneshot::Sender<Result<(), String>>;

enum Op {
    Write {
        key: Vec<u8>,
        value: Option<Vec<u8>>,
        ack: Option<Ack>,
    },
    /// Apply what is queued, flush, and stop.
    Close(oneshot::Sender<()>),
}

/// Handle of the writer thread; cheap to clone.
#[derive(Clone)]
pub(crate) struct Writer {
    tx: mpsc::UnboundedSender<Op>,
}

impl Writer {
    /// Starts the writer thread over `store`.
    pub(crate) fn spawn(store: Arc<dyn Store>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let spawned = std::thread::Builder::new()
            .name("vigil-store-writer".into())
            .spawn(move || run(store.as_ref(), rx));
        if let Err(e) = spawned {
            // The receiver is gone with the closure: every write will fail
            // (and say so) rather than pretend to be durable.
            tracing::error!(error = %e, "cannot start the store writer");
        }
        Self { tx }
    }

    /// Queues `value` under `key`; the receiver says when it is durable.
    pub(crate) fn put(
        &self,
        key: Vec<u8>,
        value: Vec<u8>,
    ) -> oneshot::Receiver<Result<(), String>> {
        self.queue(key, Some(value))
    }

    /// Queues the removal of `key`; the receiver says when it is durable.
    pub(crate) fn delete(&self, key: Vec<u8>) -> oneshot::Receiver<Result<(), String>> {
        self.queue(key, None)
    }

    /// Queues the removal of `key` without waiting for it.
    pub(crate) fn delete_soon(&self, key: Vec<u8>) {
        let _ = self.tx.send(Op::Write {
            key,
            value: None,
            ack: None,
        });
    }

    fn queue(&self, key: Vec<u8>, value: Option<Vec<u8>>) -> oneshot::Receiver<Result<(), String>> {
        let (ack, done) = oneshot::channel();
        let op = Op::Write {
            key,
            value,
            ack: Some(ack),
        };
        if let Err(mpsc::error::SendError(Op::Write { ack: Some(ack), .. })) = self.tx.send(op) {
            let _ = ack.send(Err("the store writer has stopped".into()));
        }
        done
    }

    /// Applies everything queued, flushes and stops the writer.
    pub(crate) async fn close(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Op::Close(done)).is_ok() {
            let _ = wait.await;
        }
    }
}

/// Waits for a queued write; the error is the store's.
pub(crate) async fn durable(ack: oneshot::Receiver<Result<(), String>>) -> Result<(), String> {
    ack.await
        .unwrap_or_else(|_| Err("the store writer has stopped".into()))
}

type Batch = (Vec<(Vec<u8>, Option<Vec<u8>>)>, Vec<Ack>);

fn run(store: &dyn Store, mut rx: mpsc::UnboundedReceiver<Op>) {
    let mut closing = None;
    while closing.is_none() {
        let Some(first) = rx.blocking_recv() else {
            break;
        };
        let mut batch: Batch = (Vec::new(), Vec::new());
        add(&mut batch, &mut closing, first);
        while batch.0.len() < MAX_BATCH && closing.is_none() {
            match rx.try_recv() {
                Ok(op) => add(&mut batch, &mut closing, op),
                Err(_) => break,
            }
        }
        let (ops, acks) = batch;
        let result = store
            .apply_entries(Table::Connections, &ops)
            .map_err(|e| e.to_string());
        if let Err(e) = &result {
            tracing::error!(error = %e, writes = ops.len(), "store batch failed");
        }
        for ack in acks {
            let _ = ack.send(result.clone());
        }
    }
    if let Err(e) = store.flush() {
        tracing::error!(error = %e, "store flush at shutdown failed");
    }
    if let Some(done) = closing {
        let _ = done.send(());
    }
}

fn add(batch: &mut Batch, closing: &mut Option<oneshot::Sender<()>>, op: Op) {
    match op {
        Op::Write { key, value, ack } => {
            batch.0.push((key, value));
            batch.1.extend(ack);
        }
        Op::Close(done) => *closing = Some(done),
    }
}
