//! What the machine does on each failure (PROTOCOL.md §4, §6): retry within a budget — jittered
//! backoff for the network and retryable codes, a token refresh before each `token_expired`
//! retry, one wait for a rate limit — or stop with the failure the page shows. Never a loop.

use super::{
    Command, Display, Failure, HttpFailure, MAX_SERVER_WAIT, Machine, Millis, Notice, Phase,
    RetryCause,
};

impl Machine {
    /// A CONNECT_ERROR (`44{message}`).
    pub(super) fn refused(
        &mut self,
        display: Display,
        message: &str,
        now: Millis,
        out: &mut Vec<Command>,
    ) -> Phase {
        match message {
            "token_expired" => self.retry(display, RetryCause::TokenExpired, now, out),
            "rate_limited" => self.retry(display, RetryCause::RateLimited, now, out),
            _ => self.fail(display, Failure::Unauthorized, now, out),
        }
    }

    /// An HTTP request of the display (QR, session, bot) failed.
    pub(super) fn http_failed(
        &mut self,
        display: Display,
        failure: HttpFailure,
        now: Millis,
        out: &mut Vec<Command>,
    ) -> Phase {
        match failure {
            HttpFailure::Unauthorized => self.fail(display, Failure::Unauthorized, now, out),
            HttpFailure::AlreadyConnected => {
                out.push(Command::Notify(Notice::PairingEnded {
                    bot: display.bot.clone(),
                }));
                Phase::Linked {
                    bot: display.bot,
                    phone: None,
                }
            }
            HttpFailure::RateLimited { retry_after } => {
                let wait = retry_after
                    .unwrap_or(self.config.rate_limit_wait)
                    .min(MAX_SERVER_WAIT);
                self.rate_limited(display, wait, now, out)
            }
            HttpFailure::Network => self.retry(display, RetryCause::Network, now, out),
            HttpFailure::Status { status, .. } if status >= 500 => {
                self.retry(display, RetryCause::Network, now, out)
            }
            HttpFailure::Status { status, message } => {
                self.fail(display, Failure::Http { status, message }, now, out)
            }
        }
    }

    /// Schedules the next attempt within its budget, or ends the display.
    pub(super) fn retry(
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
                let retry_at = self.not_before(now + delay);
                Phase::Backoff {
                    display,
                    retry_at,
                    cause,
                }
            }
            RetryCause::TokenExpired => {
                let n = display.budget.token_retries as usize;
                let Some(&delay) = self.config.token_retry_delays.get(n) else {
                    let retry_at = now + self.config.token_cooldown;
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
                    give_up_at: now + self.config.request_timeout,
                }
            }
            RetryCause::RateLimited => {
                self.rate_limited(display, self.config.rate_limit_wait, now, out)
            }
        }
    }

    /// `rate_limited` (a refused CONNECT) or an HTTP 429: one wait, then one more try; a second
    /// refusal ends the display.
    fn rate_limited(
        &mut self,
        mut display: Display,
        wait: Millis,
        now: Millis,
        out: &mut Vec<Command>,
    ) -> Phase {
        if display.budget.rate_limit_retried {
            return self.fail(display, Failure::RateLimited, now, out);
        }
        display.budget.rate_limit_retried = true;
        Phase::Backoff {
            display,
            retry_at: self.not_before(now.saturating_add(wait.min(MAX_SERVER_WAIT))),
            cause: RetryCause::RateLimited,
        }
    }

    /// Ends the display with `failure`; "Try again" is open at once.
    pub(super) fn fail(
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
}
