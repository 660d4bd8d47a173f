//! The pairing lock where Web Locks are missing (insecure contexts, such as a LAN address over
//! plain http): the tabs ask each other over a `BroadcastChannel`.
//!
//! - A tab that wants to pair posts `who`; a tab that pairs answers `held`. Nobody answers within
//!   [`ASK_WINDOW_MS`]: the claim is granted.
//! - "Pair here instead" posts `steal`: the tab that pairs hears it and lets go (`Lost`).
//!
//! Weaker than a lock: two tabs that claim within the same window may both win. That rare race
//! ends in the server's one-socket-per-user rule (`41` → "server disconnect"), never in a loop.

use super::{Answer, Held};
use gloo_events::EventListener;
use std::cell::Cell;
use std::rc::Rc;
use wasm_bindgen::JsCast;
use web_sys::{BroadcastChannel, MessageEvent};

const CHANNEL: &str = "botlink.pairing";
/// How long a claim waits for a tab that pairs to say so.
pub const ASK_WINDOW_MS: u32 = 150;

/// A tab that pairs: it answers `who` and hears `steal` while this lives.
pub struct Holder {
    channel: BroadcastChannel,
    _listener: EventListener,
}

impl Drop for Holder {
    fn drop(&mut self) {
        self.channel.close();
    }
}

fn message_of(event: &web_sys::Event) -> Option<String> {
    event.dyn_ref::<MessageEvent>()?.data().as_string()
}

/// Claims over the channel; `answer` hears `Granted` or `Busy`, and later perhaps `Lost`.
pub fn claim(steal: bool, answer: Rc<dyn Fn(Answer)>) {
    let Ok(channel) = BroadcastChannel::new(CHANNEL) else {
        // No channel either: nothing to coordinate with.
        answer(Answer::Granted(Held::unguarded()));
        return;
    };
    if steal {
        let _ = channel.post_message(&"steal".into());
        answer(Answer::Granted(hold(channel, answer.clone())));
        return;
    }
    let heard = Rc::new(Cell::new(false));
    let listener = {
        let heard = heard.clone();
        EventListener::new(&channel, "message", move |e| {
            if message_of(e).as_deref() == Some("held") {
                heard.set(true);
            }
        })
    };
    let _ = channel.post_message(&"who".into());
    wasm_bindgen_futures::spawn_local(async move {
        gloo_timers::future::TimeoutFuture::new(ASK_WINDOW_MS).await;
        drop(listener);
        if heard.get() {
            channel.close();
            answer(Answer::Busy);
        } else {
            answer(Answer::Granted(hold(channel, answer.clone())));
        }
    });
}

/// Starts answering for the pairing on `channel`.
fn hold(channel: BroadcastChannel, answer: Rc<dyn Fn(Answer)>) -> Held {
    let reply = channel.clone();
    let listener = EventListener::new(&channel, "message", move |e| {
        match message_of(e).as_deref() {
            Some("who") => {
                let _ = reply.post_message(&"held".into());
            }
            Some("steal") => answer(Answer::Lost),
            _ => {}
        }
    });
    Held::guarded_by(Holder {
        channel,
        _listener: listener,
    })
}

/// Whether the browser has `BroadcastChannel`.
pub fn is_available() -> bool {
    web_sys::window()
        .and_then(|w| js_sys::Reflect::get(&w, &"BroadcastChannel".into()).ok())
        .is_some_and(|c| c.is_function())
}
