//! The node's outbox: events to users' sockets leave in the order they were written, one after
//! another, from one task. Callers never wait on Redis (a synchronous callback of the WhatsApp
//! library can emit too), and a user never sees `whatsapp_connected` before `qr_scanned`.

use futures_util::future::BoxFuture;
use tokio::sync::mpsc;

pub struct Outbox(mpsc::UnboundedSender<BoxFuture<'static, ()>>);

impl Outbox {
    /// Starts the task that runs what is put in, in order.
    pub fn start() -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<BoxFuture<'static, ()>>();
        tokio::spawn(async move {
            while let Some(next) = rx.recv().await {
                next.await;
            }
        });
        Outbox(tx)
    }

    /// Waits until everything put in before has run (an answer that must follow its stores).
    pub async fn flush(&self) {
        let (done, wait) = tokio::sync::oneshot::channel();
        self.put(async move {
            let _ = done.send(());
        });
        let _ = wait.await;
    }

    /// Runs `work` after everything put in before it.
    pub fn put(&self, work: impl Future<Output = ()> + Send + 'static) {
        // The receiver lives as long as the runtime: a send fails only while it shuts down.
        let _ = self.0.send(Box::pin(work));
    }
}
