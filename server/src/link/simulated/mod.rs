//! The simulated link (`--link simulated`): QR codes that open this server's `/link/<ref>`
//! (`page.rs`), driven by `pairing.rs` over leased rows of the store (`pairings.rs` keeps the
//! ones this node drives).

pub mod page;
pub mod pairing;
pub mod pairings;

use super::{Link, LinkError};
use crate::core::context::Ctx;
use protocol::{Bot, BotStatus, Pairing, http::PairingCode};

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
