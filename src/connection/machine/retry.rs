//! After a trouble: retry within a budget — jittered backoff for the network and retryable
//! codes, a token refresh before each `token_expired` retry, one wait for a rate limit — or stop
//! with the failure the page shows and wait for the user. Never a loop. Which of them a trouble
//! gets is `policy.rs`'s; here are the budgets, the delays and the phases that wait them out:
//! [`Phase::Backoff`], [`Phase::Refreshing`] and [`Phase::Failed`].

use super::{
    AfterClaim, Answer, Command, Display, Epoch, Event, Failure, MAX_SERVER_WAIT, Machine, Millis,
    Notice, Phase, Purpose,
    policy::{self, RetryCause, Trouble, Verdict},
};

impl Machine {
    /// What follows `trouble` for `display`, by the policy.
    pub(super) fn trouble(
        &mut self,
        display: Display,
        trouble: Trouble,
        now: Millis,
        out: &mut Vec<Command>,
    ) -> Phase {
        let verdict = policy::verdict(trouble);
        self.settle(display, verdict, now, out)
    }

    /// Carries out a verdict of the policy.
    pub(super) fn settle(
        &mut self,
        display: Display,
        verdict: Verdict,
        now: Millis,
        out: &mut Vec<Command>,
    ) -> Phase {
        match verdict {
            Verdict::Retry(cause) => self.retry(display, cause, now, out),
            Verdict::Stop(failure) => self.fail(display, failure, now, out),
            Verdict::Linked => self.linked(display, None, out),
            // Only a `connection_failed` code asks to keep waiting, and only on an open socket,
            // which `open.rs` keeps for it; a display with nothing open to wait on retries.
            Verdict::KeepWaiting => self.retry(display, RetryCause::Network, now, out),
        }
    }

    /// Schedules the next attempt within its budget, or ends the display.
    fn retry(
        &mut self,
        mut display: Display,
        cause: RetryCause,
        now: Millis,
        out: &mut Vec<Command>,
    ) -> Phase {
        match cause {
            RetryCause::Network | RetryCause::Code(_) => {
                if display.budget.network_retries >= self.config.max_network_retries {
                    let failure = match cause {
                        RetryCause::Code(code) => Failure::Code(code),
                        _ => Failure::Network,
                    };
                    return self.fail(display, failure, now, out);
                }
                display.budget.network_retries += 1;
                // Full jitter: uniform in [0, min(cap, base·2^(n-1))], floored by the 1 s rule.
                let exp = self
                    .config
                    .backoff_base
                    .saturating_mul(1 << (display.budget.network_retries - 1).min(20));
                let delay = self.random_below(exp.min(self.config.backoff_cap));
                let retry_at = self.not_before(now.saturating_add(delay));
                Phase::Backoff { display, retry_at }
            }
            RetryCause::TokenExpired => {
                let n = display.budget.token_retries as usize;
                let Some(&delay) = self.config.token_retry_delays.get(n) else {
                    // Spent: stop, and keep "Try again" disabled for the cooldown.
                    let retry_at = now.saturating_add(self.config.token_cooldown);
                    out.push(Command::Notify(Notice::PairingEnded {
                        bot: display.bot.clone(),
                    }));
                    return Phase::Failed {
                        display,
                        failure: Failure::TokenExpired,
                        retry_at,
                    };
                };
                display.budget.token_retries += 1;
                let epoch = self.epoch();
                out.push(Command::RefreshSession { epoch });
                Phase::Refreshing {
                    display,
                    epoch,
                    retry_delay: delay,
                    fresh_session: false,
                    give_up_at: now.saturating_add(self.config.request_timeout),
                }
            }
            // One wait, then one more try; a second refusal ends the display.
            RetryCause::RateLimited { wait } => {
                if display.budget.rate_limit_retried {
                    return self.fail(display, Failure::RateLimited, now, out);
                }
                display.budget.rate_limit_retried = true;
                // The server's `Retry-After` is untrusted: bounded, and the sum saturates.
                let wait = wait
                    .unwrap_or(self.config.rate_limit_wait)
                    .min(MAX_SERVER_WAIT);
                Phase::Backoff {
                    display,
                    retry_at: self.not_before(now.saturating_add(wait)),
                }
            }
        }
    }

    /// Ends the display with `failure`; "Try again" is open at once.
    fn fail(
        &mut self,
        display: Display,
        failure: Failure,
        now: Millis,
        out: &mut Vec<Command>,
    ) -> Phase {
        out.push(Command::Notify(Notice::PairingEnded {
            bot: display.bot.clone(),
        }));
        Phase::Failed {
            display,
            failure,
            retry_at: now,
        }
    }

    /// "Sign in again": a new session first, then the pairing (`Refreshing` with a fresh session).
    pub(super) fn new_session(
        &mut self,
        display: Display,
        now: Millis,
        out: &mut Vec<Command>,
    ) -> Phase {
        let epoch = self.epoch();
        out.push(Command::NewSession { epoch });
        Phase::Refreshing {
            display,
            epoch,
            retry_delay: 0,
            fresh_session: true,
            give_up_at: now.saturating_add(self.config.request_timeout),
        }
    }

    pub(super) fn on_backoff(
        &mut self,
        display: Display,
        retry_at: Millis,
        event: Event,
        now: Millis,
        out: &mut Vec<Command>,
    ) -> Phase {
        match event {
            // Resync over HTTP before trusting a new socket: the pairing may have moved on.
            Event::Timer(_) => self.fetch(display, Purpose::Resync, now, out),
            // Back online: the pending retry goes now (the 1 s rule still holds at the open).
            Event::Online => self.fetch(display, Purpose::Resync, now, out),
            Event::Retry
            | Event::TakeOver
            | Event::QrShown(_)
            | Event::Answer(_)
            | Event::Frame(_)
            | Event::SocketClosed(_)
            | Event::PageVisible
            | Event::Offline => Phase::Backoff { display, retry_at },
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_refreshing(
        &mut self,
        display: Display,
        epoch: Epoch,
        retry_delay: Millis,
        fresh_session: bool,
        give_up_at: Millis,
        event: Event,
        now: Millis,
        out: &mut Vec<Command>,
    ) -> Phase {
        match event {
            Event::Answer(Answer::SessionReady) if fresh_session => {
                self.fetch(display, Purpose::Display, now, out)
            }
            Event::Answer(Answer::SessionReady) => {
                let retry_at = self.not_before(now.saturating_add(retry_delay));
                Phase::Backoff { display, retry_at }
            }
            Event::Answer(Answer::Failed(failure)) => {
                self.trouble(display, Trouble::Http(failure), now, out)
            }
            // A refresh that never answers must not hold the lock forever.
            Event::Timer(_) => {
                out.push(Command::Log("the request timed out".into()));
                self.trouble(display, Trouble::NoAnswer, now, out)
            }
            Event::Answer(
                Answer::Qr(_) | Answer::Bot { .. } | Answer::TabClaimed | Answer::TabBusy,
            )
            | Event::Retry
            | Event::TakeOver
            | Event::QrShown(_)
            | Event::Frame(_)
            | Event::SocketClosed(_)
            | Event::PageVisible
            | Event::Online
            | Event::Offline => Phase::Refreshing {
                display,
                epoch,
                retry_delay,
                fresh_session,
                give_up_at,
            },
        }
    }

    pub(super) fn on_failed(
        &mut self,
        display: Display,
        failure: Failure,
        retry_at: Millis,
        event: Event,
        now: Millis,
        out: &mut Vec<Command>,
    ) -> Phase {
        match event {
            // "Try again" works once the cooldown is over. "Sign in again" gets a new session
            // first; the others ask for a QR again.
            Event::Retry if now >= retry_at => {
                let then = match failure {
                    Failure::Unauthorized => AfterClaim::SignIn,
                    _ => AfterClaim::Fetch,
                };
                self.claim(display.fresh(), then, false, now, out)
            }
            // Back online after the network failed: start again by itself.
            Event::Online if failure == Failure::Network => {
                self.claim(display.fresh(), AfterClaim::Fetch, false, now, out)
            }
            Event::Retry
            | Event::Online
            | Event::TakeOver
            | Event::QrShown(_)
            | Event::Answer(_)
            | Event::Frame(_)
            | Event::SocketClosed(_)
            | Event::Timer(_)
            | Event::PageVisible
            | Event::Offline => Phase::Failed {
                display,
                failure,
                retry_at,
            },
        }
    }
}
