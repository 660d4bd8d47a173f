//! THE connection owner: one per app, provided by context. Nobody else touches a socket.
//!
//! - [`machine`]: the pure state machine (natively tested).
//! - [`telemetry`]: the diagnostics panel's timeline and counters (natively tested).
//! - `tab_lock`: the pairing lock across tabs (Web Locks; a BroadcastChannel where they are
//!   missing), which the driver takes when the machine asks (`machine/lock.rs` says when).
//! - `driver`: runs the machine's commands in the browser.
//! - [`ConnectionContext`]: the Leptos face of it: read-only signals out, intents in, and the one
//!   consolidated effect that turns "which QR is wanted on screen" into machine input.

pub mod machine;
pub mod telemetry;

#[cfg(target_arch = "wasm32")]
mod driver;
#[cfg(target_arch = "wasm32")]
mod tab_lock;
#[cfg(target_arch = "wasm32")]
pub use context::{ConnectionContext, LiveBot, expect_connection, provide_connection};

#[cfg(target_arch = "wasm32")]
mod context {
    use super::driver::{Driver, Outputs};
    use super::machine::{Config, Input, Machine, Notice, View};
    use super::telemetry::Telemetry;
    use crate::session::SessionStore;
    use leptos::prelude::*;
    use std::collections::HashMap;
    use std::rc::Rc;

    /// Live facts about bots from the socket, overlaid on the dashboard's HTTP list.
    #[derive(Clone, Debug, Default, PartialEq, Eq)]
    pub struct LiveBot {
        pub status: Option<protocol::BotStatus>,
        pub messages: Option<u64>,
    }

    /// The connection owner's handle: `Copy`, cheap, the same for every component.
    #[derive(Clone, Copy)]
    pub struct ConnectionContext {
        view: RwSignal<View>,
        /// Which bot's QR the pages want on screen; the consolidated effect reads it.
        wanted: RwSignal<Option<String>>,
        live: RwSignal<HashMap<String, LiveBot>>,
        /// Bumped when a pairing ends: the dashboard refreshes its list over HTTP.
        pairing_ended: RwSignal<u64>,
        /// Bumped when the server says the pairing code on screen no longer works.
        codes_expired: RwSignal<u64>,
        telemetry: RwSignal<Telemetry>,
        driver: StoredValue<Rc<Driver>, LocalStorage>,
    }

    /// Creates the one connection owner of the app and provides it.
    pub fn provide_connection(session: SessionStore) -> ConnectionContext {
        let seed = (js_sys::Math::random() * u64::MAX as f64) as u64;
        let machine = Machine::new(Config::default(), seed);
        let view = RwSignal::new(machine.view());
        let live = RwSignal::new(HashMap::<String, LiveBot>::new());
        let pairing_ended = RwSignal::new(0u64);
        let codes_expired = RwSignal::new(0u64);
        let telemetry = RwSignal::new(Telemetry::default());
        let outputs = Outputs {
            on_telemetry: Box::new(move |t| {
                if telemetry.with_untracked(|old| old != t) {
                    telemetry.set(t.clone());
                }
            }),
            on_view: Box::new(move |v| {
                if view.with_untracked(|old| *old != v) {
                    view.set(v);
                }
            }),
            on_notice: Box::new(move |notice| match notice {
                Notice::BotStatus { bot, status } => {
                    live.update(|m| m.entry(bot).or_default().status = Some(status));
                }
                Notice::Messages { bot, messages } => {
                    live.update(|m| m.entry(bot).or_default().messages = Some(messages));
                }
                Notice::PairingEnded { .. } => pairing_ended.update(|n| *n += 1),
                Notice::PairingCodeExpired { .. } => codes_expired.update(|n| *n += 1),
            }),
        };
        let driver = StoredValue::new_local(Driver::new(machine, session, outputs));
        let ctx = ConnectionContext {
            view,
            wanted: RwSignal::new(None),
            live,
            pairing_ended,
            codes_expired,
            telemetry,
            driver,
        };

        // The single consolidated effect: "which QR is wanted" → ShowQr / HideQr. The memo makes
        // re-renders and repeated clicks that do not change the answer invisible to the machine.
        let wanted = Memo::new(move |_| ctx.wanted.get());
        Effect::new(move |_| {
            let input = match wanted.get() {
                Some(bot) => Input::ShowQr { bot },
                None => Input::HideQr,
            };
            ctx.dispatch(input);
        });
        on_cleanup(move || {
            // The driver's Drop closes too; this makes the order explicit while the owner still lives.
            let _ = driver.try_with_value(|d| d.shut_down());
        });
        provide_context(ctx);
        ctx
    }

    /// The app's connection owner. Panics only if the app forgot to provide it, a programming error.
    pub fn expect_connection() -> ConnectionContext {
        expect_context::<ConnectionContext>()
    }

    impl ConnectionContext {
        fn dispatch(&self, input: Input) {
            self.driver.with_value(|d| d.dispatch(input));
        }

        /// What the QR view shows: state, QR, failure, phone.
        pub fn view(&self) -> ReadSignal<View> {
            self.view.read_only()
        }

        /// Live status and message counts from the socket.
        pub fn live(&self) -> ReadSignal<HashMap<String, LiveBot>> {
            self.live.read_only()
        }

        /// Changes whenever a pairing ends.
        pub fn pairing_ended(&self) -> ReadSignal<u64> {
            self.pairing_ended.read_only()
        }

        /// Changes whenever the server says the pairing code on screen no longer works.
        pub fn codes_expired(&self) -> ReadSignal<u64> {
            self.codes_expired.read_only()
        }

        /// Which bot's QR is wanted on screen.
        pub fn wanted(&self) -> ReadSignal<Option<String>> {
            self.wanted.read_only()
        }

        /// Intent: show bot `bot`'s QR ("Generate QR", "Reconnect").
        pub fn show_qr(&self, bot: &str) {
            if self.wanted.with_untracked(|w| w.as_deref() != Some(bot)) {
                self.wanted.set(Some(bot.to_owned()));
            }
        }

        /// Intent: the QR of `bot` is no longer on screen (Cancel, unmount, route change).
        pub fn hide_qr(&self, bot: &str) {
            if self.wanted.with_untracked(|w| w.as_deref() == Some(bot)) {
                self.wanted.set(None);
            }
        }

        /// Event: the QR `qr` is on screen now (the debounce counts from here).
        pub fn qr_shown(&self, qr: &str) {
            self.dispatch(Input::QrShown { qr: qr.to_owned() });
        }

        /// Intent: "Try again" / "Generate new QR" / "Sign in again".
        pub fn retry(&self) {
            self.dispatch(Input::Retry);
        }

        /// Intent: "Pair here instead" — take the pairing over from another tab.
        pub fn take_over(&self) {
            self.dispatch(Input::TakeOver);
        }

        /// The connection owner's clock (milliseconds, the machine's `now`): what a failure's
        /// `retry_at` is compared with.
        pub fn now(&self) -> super::machine::Millis {
            super::driver::now()
        }

        /// How the tabs of this browser are kept from pairing at once (for the diagnostics).
        pub fn coordination(&self) -> &'static str {
            super::tab_lock::coordination()
        }

        /// The diagnostics: timeline, counters, time to scan.
        pub fn telemetry(&self) -> ReadSignal<Telemetry> {
            self.telemetry.read_only()
        }
    }
}
