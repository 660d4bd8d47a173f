//! The simulated link's pairings on this node: how a QR's text is made, and the tasks that drive
//! the pairings whose lease this node holds (their rows, the truth, are in the store). The engine
//! that drives them is `pairing.rs`.

use crate::{config::QrStyle, core::sync::lock, store::PairingRow};
use protocol::Pairing as PairingView;
use std::{collections::HashMap, sync::Mutex, time::Duration};
use tokio::task::AbortHandle;

pub struct Pairings {
    /// How a QR's text is made, and how many a pairing shows.
    pub(crate) qr: QrFormat,
    /// Bot → the fence this node holds its pairing with, and the task that drives it.
    driven: Mutex<HashMap<String, (i64, AbortHandle)>>,
}

/// How long a pairing code is valid.
pub const CODE_TTL: Duration = Duration::from_secs(180);

/// Pairing codes avoid look-alikes (0/O, 1/I/L, U/V): they are read off a screen and typed.
pub(crate) const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTWXYZ23456789";

/// How the simulator writes a QR: a link to this server's `/link/<ref>`, or WhatsApp's form.
#[derive(Clone, Debug)]
pub struct QrFormat {
    pub style: QrStyle,
    /// This server's public origin (the links' prefix).
    pub public_url: String,
    /// QRs a pairing shows before `qr_expired`.
    pub count: u32,
}

/// What a `/link/<ref>` lookup found.
pub enum RefLookup {
    Live { bot_id: String },
    Spent(String),
    Unknown,
}

impl Pairings {
    pub fn new(qr: QrFormat) -> Self {
        Pairings {
            qr,
            driven: Mutex::default(),
        }
    }

    /// The pairing as the contract shows it.
    pub fn view_of(&self, row: &PairingRow) -> PairingView {
        let qr = match self.qr.style {
            QrStyle::Link => format!("{}/link/{}", self.qr.public_url, row.qr_ref),
            QrStyle::Whatsapp => format!("2@{},botlink-simulated", row.qr_ref),
        };
        PairingView {
            qr,
            attempt: row.attempt,
            attempts: self.qr.count,
            expires_in_ms: u64::try_from(row.qr_ms).unwrap_or(0),
        }
    }

    /// Notes the task driving `bot`'s pairing with `fence`; a task it replaces is stopped.
    pub(crate) fn driving(&self, bot: &str, fence: i64, task: AbortHandle) {
        if let Some((_, old)) = lock(&self.driven).insert(bot.to_owned(), (fence, task)) {
            old.abort();
        }
    }

    /// The task with `fence` ended by itself.
    pub(crate) fn ended(&self, bot: &str, fence: i64) {
        let mut driven = lock(&self.driven);
        if driven.get(bot).is_some_and(|(f, _)| *f == fence) {
            driven.remove(bot);
        }
    }

    /// Stops driving `bot`'s pairing (it ended, or another node holds it now).
    pub(crate) fn stop(&self, bot: &str) {
        if let Some((_, task)) = lock(&self.driven).remove(bot) {
            task.abort();
        }
    }

    /// Keeps only the tasks of the leases this node still holds, as the store says.
    pub(crate) fn keep_only(&self, held: &[(String, i64)]) {
        let held: HashMap<&str, i64> = held.iter().map(|(b, f)| (b.as_str(), *f)).collect();
        lock(&self.driven).retain(|bot, (fence, task)| {
            let keep = held.get(bot.as_str()) == Some(fence);
            if !keep {
                tracing::info!(%bot, "pairing no longer held by this node: its task stops");
                task.abort();
            }
            keep
        });
    }

    /// Stops every task (a drain: the leases are given back).
    pub(crate) fn stop_all(&self) {
        for (_, (_, task)) in lock(&self.driven).drain() {
            task.abort();
        }
    }

    /// How many pairings this node drives now.
    pub fn driven(&self) -> usize {
        lock(&self.driven).len()
    }
}
