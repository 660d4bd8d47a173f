//! The simulated link's state: the running pairings (one per bot), the QR refs and pairing codes
//! that were shown and are gone, and how a QR's text is made. It owns what it needs and knows
//! nothing of the server's state; the engine that drives it is `pairing.rs`.

use crate::{config::QrStyle, sync::lock};
use protocol::Pairing as PairingView;
use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};
use tokio::task::AbortHandle;

pub struct Pairings {
    /// How a QR's text is made, and how many a pairing shows.
    pub(crate) qr: QrFormat,
    pub(crate) running: Mutex<HashMap<String, Pairing>>,
    /// Refs that were shown and are gone: "expired" or "used", so the link page can say which.
    pub(crate) spent: Mutex<HashMap<String, &'static str>>,
}

pub(crate) struct Pairing {
    pub(crate) user_id: String,
    pub(crate) qr_ref: String,
    pub(crate) attempt: u32,
    pub(crate) expires_in_ms: u64,
    /// The rotation task, or after the scan the restart task.
    pub(crate) task: Option<AbortHandle>,
    pub(crate) scanned: bool,
    /// The pairing code handed out for this pairing, if one was asked for.
    pub(crate) code: Option<IssuedCode>,
}

/// A pairing code: the phone enters it instead of scanning (botlink's extension of the contract).
pub(crate) struct IssuedCode {
    pub(crate) code: String,
    pub(crate) expires_at: Instant,
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
    Spent(&'static str),
    Unknown,
}

const SPENT_LIMIT: usize = 100_000;

impl Pairings {
    pub fn new(qr: QrFormat) -> Self {
        Pairings {
            qr,
            running: Mutex::default(),
            spent: Mutex::default(),
        }
    }

    /// The current QR of the bot's pairing, if one runs.
    pub fn view(&self, bot_id: &str) -> Option<PairingView> {
        lock(&self.running).get(bot_id).map(|p| self.view_of(p))
    }

    pub(crate) fn view_of(&self, p: &Pairing) -> PairingView {
        let qr = match self.qr.style {
            QrStyle::Link => format!("{}/link/{}", self.qr.public_url, p.qr_ref),
            QrStyle::Whatsapp => format!("2@{},botlink-simulated", p.qr_ref),
        };
        PairingView {
            qr,
            attempt: p.attempt,
            attempts: self.qr.count,
            expires_in_ms: p.expires_in_ms,
        }
    }

    pub fn lookup(&self, qr_ref: &str) -> RefLookup {
        if let Some((bot, _)) = lock(&self.running)
            .iter()
            .find(|(_, p)| p.qr_ref == qr_ref && !p.scanned)
        {
            return RefLookup::Live {
                bot_id: bot.clone(),
            };
        }
        match lock(&self.spent).get(qr_ref) {
            Some(why) => RefLookup::Spent(why),
            None => RefLookup::Unknown,
        }
    }

    pub(crate) fn spend(&self, qr_ref: String, why: &'static str) {
        let mut spent = lock(&self.spent);
        if spent.len() >= SPENT_LIMIT {
            spent.clear();
        }
        spent.insert(qr_ref, why);
    }

    /// Ends a bot's pairing, if one runs (delete, logout, a final failure).
    pub fn end(&self, bot_id: &str) {
        if let Some(p) = lock(&self.running).remove(bot_id) {
            if let Some(task) = p.task {
                task.abort();
            }
            self.spend(p.qr_ref, "expired");
            if let Some(code) = p.code {
                self.spend(code.code, "expired");
            }
        }
    }
}
