//! An HTTP answer in a signal: what the dashboard and the link page need of a resource, and no
//! more. `LocalResource` with `<Suspense>` does the same through leptos' async machinery, which
//! costs the app ~5 KB of wasm (brotli) per answer type; this is an effect and a counter.

use leptos::prelude::*;
use leptos::task::spawn_local;
use std::cell::Cell;
use std::future::Future;
use std::rc::Rc;

/// The latest answer of `fetch`, `None` until the first arrives. `fetch` runs again whenever a
/// signal it read changes; the answer on screen stays until the next one arrives, and an answer
/// overtaken by a newer call (or arriving after the component is gone) is dropped.
pub fn use_fetched<T, Fut>(fetch: impl Fn() -> Fut + 'static) -> ReadSignal<Option<T>>
where
    T: Send + Sync + 'static,
    Fut: Future<Output = T> + 'static,
{
    let (answer, set_answer) = signal(None::<T>);
    let latest = Rc::new(Cell::new(0u64));
    Effect::new(move |_| {
        let call = latest.get() + 1;
        latest.set(call);
        let pending = fetch();
        let latest = latest.clone();
        spawn_local(async move {
            let value = pending.await;
            if latest.get() == call {
                // A component gone meanwhile took the signal with it: nothing to set then.
                set_answer.try_set(Some(value));
            }
        });
    });
    answer
}
