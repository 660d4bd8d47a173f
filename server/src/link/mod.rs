//! The seam between the pairing API and WhatsApp: one interface, [`Link`], implemented by
//! `whatsapp::WhatsAppLink` (real sessions through the whatsapp-rust crate, with WhatsApp or, in
//! a test build, the WhatsApp double; docs/whatsapp.md) and by the unit tests' fakes. The HTTP
//! API and the Socket.IO replay
//! talk to this trait only, and a link is handed the narrow `core::context::Context`, never the
//! application's state. A change to how WhatsApp's events become the contract's goes in
//! `whatsapp/events.rs`; to how a client starts, stops or is pinned, `whatsapp/mod.rs` and
//! `whatsapp/pinning.rs`.

pub mod whatsapp;

use crate::{
    core::context::Ctx,
    store::{DeviceHold, RETRY_WHEN_DOWN, StoreError},
};
use protocol::{Bot, Pairing, http::PairingCode};
use std::time::Duration;

/// Why a link could not do what was asked; each is an HTTP answer of the contract.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// `409`: the bot is linked already (its device is registered and its session open).
    #[error("the bot is already connected")]
    AlreadyConnected,
    /// `503` with `Retry-After`: WhatsApp did not answer, or refused for now.
    #[error("{reason}")]
    Unavailable {
        reason: String,
        retry_after: Duration,
    },
    /// `500`: the bot's device store cannot be used (the server log says why).
    #[error("{0}")]
    Broken(String),
}

/// What a 503 of a link asks the app to wait (WhatsApp refused, or the device's node is gone).
pub const RETRY_AFTER: Duration = Duration::from_secs(30);

impl LinkError {
    /// The answer for a bot whose device another node holds (when the request was not passed
    /// on there: its holder is gone, or it was passed on here already).
    pub fn held_elsewhere(hold: &DeviceHold) -> LinkError {
        if hold.live() {
            LinkError::Unavailable {
                reason: format!(
                    "This bot's WhatsApp session runs on server node {}; try again.",
                    hold.node
                ),
                retry_after: Duration::from_secs(1),
            }
        } else {
            LinkError::Unavailable {
                reason: format!(
                    "This bot's WhatsApp device is on server node {}, which has stopped; the bot \
                     comes back when that node returns. To link it anew elsewhere, unlink it first.",
                    hold.node
                ),
                retry_after: RETRY_AFTER,
            }
        }
    }
}

impl From<StoreError> for LinkError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Down(why) => LinkError::Unavailable {
                reason: format!("the database is unavailable: {why}"),
                retry_after: RETRY_WHEN_DOWN,
            },
            StoreError::Sql(why) => LinkError::Broken(why),
            StoreError::Fenced => LinkError::Unavailable {
                reason: "another server node took this bot's WhatsApp session; try again".into(),
                retry_after: RETRY_AFTER,
            },
        }
    }
}

/// One WhatsApp link, shared by every bot of the server.
#[async_trait::async_trait]
pub trait Link: Send + Sync {
    /// Starts pairing `bot`, or joins the pairing already running (never two for one bot).
    /// Answers within 10 s.
    async fn start(&self, st: &Ctx, user: &str, bot: &Bot) -> Result<Pairing, LinkError>;

    /// The QR on screen for `bot` now, if it is pairing.
    async fn pairing(&self, st: &Ctx, bot_id: &str) -> Option<Pairing>;

    /// A code the phone enters instead of scanning (`phone`: its digits with country code).
    async fn pairing_code(
        &self,
        st: &Ctx,
        user: &str,
        bot: &Bot,
        phone: &str,
    ) -> Result<PairingCode, LinkError>;

    /// Unlinks the phone (logout and delete): ends any pairing or session, tells WhatsApp
    /// (best effort) and forgets the device. Refused while another node's live hold names
    /// the bot (its session runs there); an error when the device could not be forgotten.
    async fn unlink(&self, st: &Ctx, bot_id: &str) -> Result<(), LinkError>;

    /// Another node that holds the bot's device (cluster mode, real link): requests about the
    /// bot are forwarded to it while it lives.
    async fn holder(&self, _st: &Ctx, _bot_id: &str) -> Option<DeviceHold> {
        None
    }

    /// After a restart: resumes every linked bot from its stored device, without a QR (and,
    /// in a cluster, keeps this node's holds on its devices from now on).
    async fn resume(&self, st: &Ctx);

    /// Stops every client (the server is shutting down); devices are kept.
    async fn shutdown(&self, st: &Ctx);
}
