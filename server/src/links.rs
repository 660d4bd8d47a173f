//! The seam between the pairing API and WhatsApp: one interface, [`Link`], with two
//! implementations — [`Simulated`] (the default, for development, demos and tests: QR codes that
//! open this server's `/link/<ref>`) and `whatsapp::WhatsAppLink` (real sessions through the
//! whatsapp-rust crate). The HTTP API and the Socket.IO replay talk to this trait only.

use crate::{
    context::Ctx,
    pairing,
    store::{RETRY_WHEN_DOWN, StoreError},
};
use protocol::{Bot, BotStatus, Pairing, http::PairingCode};
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

impl From<StoreError> for LinkError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Down(why) => LinkError::Unavailable {
                reason: format!("the database is unavailable: {why}"),
                retry_after: RETRY_WHEN_DOWN,
            },
            StoreError::Sql(why) => LinkError::Broken(why),
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
    async fn holder(&self, _st: &Ctx, _bot_id: &str) -> Option<crate::store::DeviceHold> {
        None
    }

    /// After a restart: resumes every linked bot from its stored device, without a QR (and,
    /// in a cluster, keeps this node's holds on its devices from now on).
    async fn resume(&self, st: &Ctx);

    /// Stops every client (the server is shutting down); devices are kept.
    async fn shutdown(&self, st: &Ctx);
}

/// The simulated link: `pairing.rs` is its engine.
pub struct Simulated;

#[async_trait::async_trait]
impl Link for Simulated {
    async fn start(&self, st: &Ctx, user: &str, bot: &Bot) -> Result<Pairing, LinkError> {
        if bot.status == BotStatus::Connected {
            return Err(LinkError::AlreadyConnected);
        }
        Ok(pairing::start_or_join(st, user, &bot.id).await?)
    }

    async fn pairing(&self, st: &Ctx, bot_id: &str) -> Option<Pairing> {
        pairing::view(st, bot_id).await
    }

    async fn pairing_code(
        &self,
        st: &Ctx,
        user: &str,
        bot: &Bot,
        _phone: &str,
    ) -> Result<PairingCode, LinkError> {
        if bot.status == BotStatus::Connected {
            return Err(LinkError::AlreadyConnected);
        }
        Ok(pairing::issue_code(st, user, &bot.id).await?)
    }

    async fn unlink(&self, st: &Ctx, bot_id: &str) -> Result<(), LinkError> {
        Ok(pairing::end(st, bot_id).await?)
    }

    async fn resume(&self, _st: &Ctx) {
        // A simulated session has nothing to resume: its "device" is the row's status.
    }

    async fn shutdown(&self, _st: &Ctx) {}
}
