//! The cross-tab pairing lock: at most one tab of this browser pairs (holds a socket) at a time.
//!
//! The Web Locks API (`navigator.locks.request`), called through js-sys because web-sys keeps
//! `LockManager` behind its unstable-API flag. One lock for the whole origin, not one per bot: tabs
//! share one session (one user), and the server keeps one socket per *user*, so two tabs pairing
//! two different bots would still replace each other's socket.
//!
//! Where the API is missing (an insecure context, such as a LAN address over plain http), the
//! tabs ask each other over a BroadcastChannel instead (`channel.rs`); where that is
//! missing too, every claim is granted, and the server's one-socket-per-user rule (a replaced
//! socket ends its display with "server disconnect", never a loop) is what stands.

mod channel;

use channel::Holder;
use js_sys::{Function, Object, Promise, Reflect};
use std::rc::Rc;
use wasm_bindgen::{JsCast, JsValue, closure::Closure};
use wasm_bindgen_futures::JsFuture;

/// The lock's name, for the whole origin.
pub const NAME: &str = "botlink.pairing";

/// A held lock; dropping it lets go.
pub struct Held {
    /// Web Locks: resolving this promise's `resolve` lets go.
    release: Option<Function>,
    /// BroadcastChannel: this tab answers for the pairing while it lives.
    _holder: Option<Holder>,
}

impl Held {
    /// A lock that guards nothing: there is no API to coordinate tabs with.
    pub(super) fn unguarded() -> Held {
        Held {
            release: None,
            _holder: None,
        }
    }

    pub(super) fn guarded_by(holder: Holder) -> Held {
        Held {
            release: None,
            _holder: Some(holder),
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(release) = self.release.take() {
            // Resolving the promise the lock's callback returned releases the lock.
            let _ = release.call0(&JsValue::NULL);
        }
    }
}

/// What became of a claim.
pub enum Answer {
    /// Ours: hold `Held` as long as the display runs.
    Granted(Held),
    /// Another tab holds it.
    Busy,
    /// It was ours, and another tab took it over (`steal`).
    Lost,
}

/// Asks for the lock without waiting: granted now, or busy now. With `steal`, takes it from the
/// tab that holds it (that tab hears `Lost`). `answer` may be called more than once: `Granted`,
/// then perhaps `Lost`.
pub fn claim(steal: bool, answer: impl Fn(Answer) + 'static) {
    let answer: Rc<dyn Fn(Answer)> = Rc::new(answer);
    let Some((locks, request)) = lock_manager() else {
        channel::claim(steal, answer);
        return;
    };
    let on_lock = {
        let answer = answer.clone();
        // Called once by the browser: with the lock, or with null when it is not available.
        Closure::once_into_js(move |lock: JsValue| -> JsValue {
            if lock.is_null() {
                answer(Answer::Busy);
                return JsValue::UNDEFINED;
            }
            let mut release = None;
            let held = Promise::new(&mut |resolve, _reject| release = Some(resolve));
            answer(Answer::Granted(Held {
                release,
                _holder: None,
            }));
            held.into()
        })
    };
    let options = Object::new();
    let flag = if steal { "steal" } else { "ifAvailable" };
    let _ = Reflect::set(&options, &flag.into(), &JsValue::TRUE);
    let requested = request
        .call3(&locks, &NAME.into(), &options, &on_lock)
        .ok()
        .and_then(|p| p.dyn_into::<Promise>().ok());
    let Some(requested) = requested else {
        // The API is there but refused the call: ask the other tabs the other way.
        channel::claim(steal, answer);
        return;
    };
    wasm_bindgen_futures::spawn_local(async move {
        // The request's promise settles when the lock is let go: normally, or rejected with an
        // AbortError when another tab stole it.
        if let Err(e) = JsFuture::from(requested).await {
            let name = Reflect::get(&e, &"name".into())
                .ok()
                .and_then(|n| n.as_string());
            if name.as_deref() == Some("AbortError") {
                answer(Answer::Lost);
            }
        }
    });
}

/// `navigator.locks` and its `request`, where the browser has them.
fn lock_manager() -> Option<(JsValue, Function)> {
    let navigator = web_sys::window()?.navigator();
    let locks = Reflect::get(&navigator, &"locks".into()).ok()?;
    if locks.is_undefined() || locks.is_null() {
        return None;
    }
    let request = Reflect::get(&locks, &"request".into())
        .ok()?
        .dyn_into::<Function>()
        .ok()?;
    Some((locks, request))
}

/// How this browser coordinates tabs, in words for the diagnostics panel.
pub fn coordination() -> &'static str {
    if lock_manager().is_some() {
        "Web Locks"
    } else if channel::is_available() {
        "BroadcastChannel (weaker: two tabs claiming at the same instant may both pair)"
    } else {
        "none: the server's one-socket-per-user rule stands"
    }
}
