//! Asking the server about the bot over HTTP, with the lock held: the QR for a new display, the
//! QR again before a retry (a resync: the pairing may have moved on), or the bot's state after
//! a pause.

use super::{
    Answer, BotStatus, Command, Display, Epoch, Event, Failure, Machine, Millis, Notice, Phase,
    Purpose, policy::Trouble,
};
use protocol::Pairing;

impl Machine {
    pub(super) fn fetch(
        &mut self,
        display: Display,
        purpose: Purpose,
        now: Millis,
        out: &mut Vec<Command>,
    ) -> Phase {
        let epoch = self.epoch();
        let bot = display.bot.clone();
        out.push(match purpose {
            Purpose::Resume => Command::FetchBot { bot, epoch },
            Purpose::Display | Purpose::Resync => Command::FetchQr { bot, epoch },
        });
        Phase::Fetching {
            display,
            epoch,
            purpose,
            give_up_at: now.saturating_add(self.config.request_timeout),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_fetching(
        &mut self,
        display: Display,
        epoch: Epoch,
        purpose: Purpose,
        give_up_at: Millis,
        event: Event,
        now: Millis,
        out: &mut Vec<Command>,
    ) -> Phase {
        match event {
            Event::Answer(Answer::Qr(qr)) => {
                let display = Display {
                    qr: Some(qr),
                    ..display
                };
                match purpose {
                    // A retry: the QR is on screen already.
                    Purpose::Resync => self.open(display, now, out),
                    Purpose::Display | Purpose::Resume => Phase::Debouncing {
                        display,
                        open_at: None,
                    },
                }
            }
            Event::Answer(Answer::Bot { status, pairing }) => {
                self.resumed(display, status, pairing, out)
            }
            Event::Answer(Answer::Failed(failure)) => {
                self.trouble(display, Trouble::Http(failure), now, out)
            }
            // A request that never answers (a black-holed link) is a network failure.
            Event::Timer(_) => {
                out.push(Command::Log("the request timed out".into()));
                self.trouble(display, Trouble::NoAnswer, now, out)
            }
            // Not this request's answers; nothing to retry, take over or show yet.
            Event::Answer(Answer::SessionReady | Answer::TabClaimed | Answer::TabBusy)
            | Event::Retry
            | Event::TakeOver
            | Event::QrShown(_)
            | Event::Frame(_)
            | Event::SocketClosed(_)
            | Event::PageVisible
            | Event::Online
            | Event::Offline => Phase::Fetching {
                display,
                epoch,
                purpose,
                give_up_at,
            },
        }
    }

    /// The bot as the server sees it after a pause: linked, still pairing, or over.
    fn resumed(
        &mut self,
        display: Display,
        status: BotStatus,
        pairing: Option<Pairing>,
        out: &mut Vec<Command>,
    ) -> Phase {
        out.push(Command::Notify(Notice::BotStatus {
            bot: display.bot.clone(),
            status,
        }));
        if status == BotStatus::Connected {
            return self.linked(display, None, out);
        }
        match pairing.filter(|p| !p.qr.is_empty()) {
            // Still pairing: its current QR goes on screen, and the debounce counts from there.
            Some(qr) => Phase::Debouncing {
                display: Display {
                    qr: Some(qr),
                    ..display
                },
                open_at: None,
            },
            // The pairing ended while the page was away (its codes expired).
            None => {
                out.push(Command::Notify(Notice::PairingEnded {
                    bot: display.bot.clone(),
                }));
                Phase::Failed {
                    display,
                    failure: Failure::QrExpired,
                    retry_at: 0,
                }
            }
        }
    }
}
