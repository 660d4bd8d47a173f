//! HTTP answers into a page's signals: what the dashboard and the link page need of a resource,
//! and no more. `LocalResource` with `<Suspense>` does the same through leptos' async machinery,
//! which costs the app ~5 KB of wasm (brotli) per answer type; this is an effect and a counter.

use leptos::prelude::*;
use leptos::task::spawn_local;
use std::cell::Cell;
use std::future::Future;
use std::rc::Rc;

/// Puts `value` into `signal`, and tells its readers only if it differs from what is there: an
/// answer equal to the one on screen (a refresh, a new session's refetch) rebuilds nothing. A
/// signal already gone (its component unmounted) takes nothing.
pub fn replace_if_changed<T: PartialEq + Send + Sync + 'static>(signal: RwSignal<T>, value: T) {
    signal.try_maybe_update(|old| {
        let changed = *old != value;
        if changed {
            *old = value;
        }
        (changed, ())
    });
}

/// Runs `fetch` now, and again whenever a signal it read changes, and hands each answer to
/// `answered`, unless a newer call overtook it. What is on screen stays until an answer replaces
/// it. An answer that arrives after the component is gone finds its signals gone: `answered`
/// sets them with [`replace_if_changed`] (or `try_set`).
pub fn use_fetched<T, Fut>(fetch: impl Fn() -> Fut + 'static, answered: impl Fn(T) + 'static)
where
    T: 'static,
    Fut: Future<Output = T> + 'static,
{
    let latest = Rc::new(Cell::new(0u64));
    let answered = Rc::new(answered);
    Effect::new(move |_| {
        let call = latest.get() + 1;
        latest.set(call);
        let pending = fetch();
        let (latest, answered) = (latest.clone(), answered.clone());
        spawn_local(async move {
            let answer = pending.await;
            if latest.get() == call {
                answered(answer);
            }
        });
    });
}
