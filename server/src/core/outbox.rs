//! The node's outbox: what is stored and told about a bot runs in the order it was written, one
//! item after another per bot, each bot on its own task (a slow bot holds up no other). It is
//! the only path of a bot's status: a synchronous callback of the WhatsApp library and an HTTP
//! handler alike put their writes here, so a queued ending can never overwrite a later status.
//!
//! While a bot's items wait (Redis or the database is slow), what only the latest counts for is
//! coalesced: a newer status replaces the waiting status writes it covers, a newer QR the waiting
//! QR, and waiting message counts add up in one. Endings (`logged_out`, `conflict`) and every
//! other event are never dropped. So a bot's queue holds a few items, however long the wait.

use crate::core::sync::lock;
use futures_util::future::BoxFuture;
use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
};

/// What an item is, for coalescing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Runs, whatever comes after it.
    Once,
    /// The QR on screen: a newer QR replaces it while it waits.
    Qr,
    /// A count of received messages that reads the count when it runs: a newer one replaces it.
    Messages,
    /// A status that is not an ending, stored and/or told to the user's socket: a newer status
    /// that does at least the same replaces it while it waits.
    Status { stores: bool, announces: bool },
}

impl Kind {
    /// Whether this newer item makes a waiting `older` one needless.
    fn covers(self, older: Kind) -> bool {
        match (self, older) {
            (Kind::Qr, Kind::Qr) | (Kind::Messages, Kind::Messages) => true,
            (
                Kind::Status { stores, announces },
                Kind::Status {
                    stores: older_stores,
                    announces: older_announces,
                },
            ) => (stores || !older_stores) && (announces || !older_announces),
            _ => false,
        }
    }
}

struct Item {
    kind: Kind,
    work: BoxFuture<'static, ()>,
}

/// Each bot's waiting items; a bot is in the map exactly while its task runs.
type Queues = Arc<Mutex<HashMap<String, VecDeque<Item>>>>;

#[derive(Default)]
pub struct Outbox {
    queues: Queues,
}

/// A bot's queue this long is worth a line in the log (coalescing keeps it short).
const LONG_QUEUE: usize = 64;

impl Outbox {
    /// Runs `work` after everything put in before it for `bot`; a waiting item that `kind`
    /// covers is dropped first.
    pub fn put(&self, bot: &str, kind: Kind, work: impl Future<Output = ()> + Send + 'static) {
        let item = Item {
            kind,
            work: Box::pin(work),
        };
        let mut queues = lock(&self.queues);
        match queues.get_mut(bot) {
            Some(waiting) => {
                waiting.retain(|older| !kind.covers(older.kind));
                waiting.push_back(item);
                if waiting.len() == LONG_QUEUE {
                    tracing::warn!(%bot, "{LONG_QUEUE} events wait for this bot (Redis or the database is slow)");
                }
            }
            None => {
                queues.insert(bot.to_owned(), VecDeque::from([item]));
                tokio::spawn(run(self.queues.clone(), bot.to_owned()));
            }
        }
    }

    /// Runs `work` in the bot's order and answers what it answers (it is never dropped).
    pub async fn run<T: Send + 'static>(
        &self,
        bot: &str,
        work: impl Future<Output = T> + Send + 'static,
    ) -> Option<T> {
        let (done, answer) = tokio::sync::oneshot::channel();
        self.put(bot, Kind::Once, async move {
            let _ = done.send(work.await);
        });
        answer.await.ok()
    }

    /// Waits until everything put in before for `bot` has run (an answer that must follow its
    /// stores). Only that bot's items: another bot's slow queue does not delay it.
    pub async fn flush(&self, bot: &str) {
        self.run(bot, async {}).await;
    }

    /// How many items wait, over every bot.
    #[cfg(test)]
    fn waiting(&self) -> usize {
        lock(&self.queues).values().map(VecDeque::len).sum()
    }
}

/// A bot's task: runs its items in order and ends, removing the bot, when none waits.
async fn run(queues: Queues, bot: String) {
    loop {
        let next = {
            let mut queues = lock(&queues);
            let Some(waiting) = queues.get_mut(&bot) else {
                return;
            };
            match waiting.pop_front() {
                Some(item) => item,
                None => {
                    queues.remove(&bot);
                    return;
                }
            }
        };
        next.work.await;
    }
}

#[cfg(test)]
mod tests {
    use super::{Kind, Outbox};
    use std::sync::{Arc, Mutex};
    use tokio::sync::oneshot;

    type Log = Arc<Mutex<Vec<String>>>;

    fn write(log: &Log, what: &str) -> impl Future<Output = ()> + Send + 'static {
        let (log, what) = (log.clone(), what.to_owned());
        async move { log.lock().unwrap().push(what) }
    }

    const FULL: Kind = Kind::Status {
        stores: true,
        announces: true,
    };
    const STORE: Kind = Kind::Status {
        stores: true,
        announces: false,
    };
    const ANNOUNCE: Kind = Kind::Status {
        stores: false,
        announces: true,
    };

    /// The bot's queue is held up until the returned sender is used (Redis or the database
    /// slow); its task has started the item that holds it up.
    async fn hold_up(outbox: &Outbox, bot: &str) -> oneshot::Sender<()> {
        let (release, wait) = oneshot::channel::<()>();
        outbox.put(bot, Kind::Once, async move {
            let _ = wait.await;
        });
        tokio::task::yield_now().await;
        release
    }

    #[tokio::test]
    async fn while_a_bot_waits_the_latest_status_and_qr_win_and_nothing_else_is_dropped() {
        let (outbox, log) = (Outbox::default(), Log::default());
        let release = hold_up(&outbox, "b").await;
        outbox.put("b", FULL, write(&log, "status pairing"));
        for n in 1..=50 {
            outbox.put("b", Kind::Qr, write(&log, &format!("qr {n}")));
        }
        outbox.put("b", Kind::Once, write(&log, "qr_scanned"));
        outbox.put("b", STORE, write(&log, "store connected"));
        outbox.put("b", Kind::Once, write(&log, "whatsapp_connected"));
        outbox.put("b", ANNOUNCE, write(&log, "announce connected"));
        outbox.put("b", Kind::Once, write(&log, "connection_failed 440"));
        outbox.put("b", Kind::Once, write(&log, "status conflict (an ending)"));
        outbox.put("b", FULL, write(&log, "status disconnected"));
        assert_eq!(outbox.waiting(), 6, "bounded while held up");
        release.send(()).unwrap();
        outbox.flush("b").await;
        assert_eq!(
            *log.lock().unwrap(),
            [
                "qr 50",
                "qr_scanned",
                "whatsapp_connected",
                "connection_failed 440",
                "status conflict (an ending)",
                "status disconnected",
            ]
        );
        assert_eq!(outbox.waiting(), 0);
    }

    #[tokio::test]
    async fn a_store_only_status_is_not_dropped_for_a_newer_announcement() {
        let (outbox, log) = (Outbox::default(), Log::default());
        let release = hold_up(&outbox, "b").await;
        outbox.put("b", STORE, write(&log, "store connected"));
        outbox.put("b", ANNOUNCE, write(&log, "announce connected"));
        outbox.put("b", STORE, write(&log, "store connected, its phone"));
        release.send(()).unwrap();
        outbox.flush("b").await;
        assert_eq!(
            *log.lock().unwrap(),
            ["announce connected", "store connected, its phone"]
        );
    }

    #[tokio::test]
    async fn a_status_written_by_a_request_comes_after_what_waited_before_it() {
        // The review's race: an ending queued by the library (440 → `conflict`), then a logout
        // from the dashboard. The logout is the bot's last word.
        let (outbox, log) = (Outbox::default(), Log::default());
        let release = hold_up(&outbox, "b").await;
        outbox.put("b", Kind::Once, write(&log, "status conflict"));
        let logout = {
            let log = log.clone();
            let outbox = Arc::new(outbox);
            let o = outbox.clone();
            let handle =
                tokio::spawn(async move { o.run("b", write(&log, "status logged_out")).await });
            tokio::task::yield_now().await;
            release.send(()).unwrap();
            handle.await.unwrap()
        };
        assert_eq!(logout, Some(()), "the request hears its write ran");
        assert_eq!(
            *log.lock().unwrap(),
            ["status conflict", "status logged_out"]
        );
    }

    #[tokio::test]
    async fn a_slow_bot_holds_up_no_other() {
        let (outbox, log) = (Outbox::default(), Log::default());
        let _held = hold_up(&outbox, "slow").await;
        outbox.put("slow", Kind::Once, write(&log, "slow's event"));
        outbox.put("other", Kind::Once, write(&log, "other's event"));
        outbox.flush("other").await;
        assert_eq!(*log.lock().unwrap(), ["other's event"]);
    }
}
