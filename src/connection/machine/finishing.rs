//! From the scan to the link: after `qr_scanned` the socket stays open until
//! `whatsapp_connected`; if that takes 60 s (or the phone asks for a passkey), the page says
//! "finish linking on your phone" instead of spinning, and keeps waiting. Then: linked.

use super::{Command, Display, Live, Machine, Millis, Notice, Phase, phase::Scanned};

impl Machine {
    /// `qr_scanned`: linking is finishing; the stall notice is due in `scan_stall`.
    pub(super) fn scanned(&mut self, mut live: Live, now: Millis) -> Phase {
        live.scanned.get_or_insert(Scanned {
            stall_at: now.saturating_add(self.config.scan_stall),
            stalled: false,
        });
        Phase::Open(live)
    }

    /// The phone asks for a passkey: say "finish on your phone" now, not after 60 s.
    pub(super) fn finish_on_phone(&mut self, mut live: Live, now: Millis) -> Phase {
        live.scanned
            .get_or_insert(Scanned {
                stall_at: now,
                stalled: true,
            })
            .stalled = true;
        Phase::Open(live)
    }

    /// 60 s after the scan and still not linked: say so.
    pub(super) fn scan_stalled(&mut self, mut live: Live) -> Phase {
        if let Some(s) = live.scanned.as_mut() {
            s.stalled = true;
        }
        Phase::Open(live)
    }

    /// The phone is linked: the display ends, and nothing reopens a socket for it.
    pub(super) fn linked(
        &mut self,
        display: Display,
        phone: Option<String>,
        out: &mut Vec<Command>,
    ) -> Phase {
        out.push(Command::Notify(Notice::PairingEnded {
            bot: display.bot.clone(),
        }));
        Phase::Linked {
            bot: display.bot,
            phone,
        }
    }
}
