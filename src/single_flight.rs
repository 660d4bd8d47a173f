//! Single-flight requests by kind: concurrent callers of one kind share one request; a request
//! of another kind is never answered by it. Pure (no browser), so it is tested natively.

use futures::future::{FutureExt, LocalBoxFuture, Shared};
use std::cell::RefCell;

/// The requests in flight, at most one per kind.
pub struct SingleFlight<K, T: Clone> {
    pending: RefCell<Vec<(K, Shared<LocalBoxFuture<'static, T>>)>>,
}

impl<K, T: Clone> Default for SingleFlight<K, T> {
    fn default() -> Self {
        SingleFlight {
            pending: RefCell::new(Vec::new()),
        }
    }
}

impl<K: PartialEq + Copy, T: Clone + 'static> SingleFlight<K, T> {
    /// Joins the request of `kind` in flight, or starts `start()`'s and shares it.
    pub async fn run(&self, kind: K, start: impl FnOnce() -> LocalBoxFuture<'static, T>) -> T {
        let shared = {
            let mut pending = self.pending.borrow_mut();
            match pending.iter().find(|(k, _)| *k == kind) {
                Some((_, p)) => p.clone(),
                None => {
                    let p = start().shared();
                    pending.push((kind, p.clone()));
                    p
                }
            }
        };
        let result = shared.clone().await;
        // Only this request's entry goes: a newer one of the same kind may have taken its place.
        self.pending
            .borrow_mut()
            .retain(|(k, p)| !(*k == kind && p.ptr_eq(&shared)));
        result
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use futures::channel::oneshot;
    use futures::executor::LocalPool;
    use futures::task::LocalSpawnExt;
    use std::cell::Cell;
    use std::rc::Rc;

    #[derive(Clone, Copy, PartialEq, Debug)]
    enum Kind {
        SignIn,
        Refresh,
    }

    type Flights = Rc<SingleFlight<Kind, String>>;

    /// A request of `kind` answering `answer` once `gate` opens; `started` counts real requests.
    fn call(
        pool: &LocalPool,
        flights: &Flights,
        kind: Kind,
        gate: oneshot::Receiver<()>,
        answer: &str,
        started: &Rc<Cell<u32>>,
        results: &Rc<RefCell<Vec<(Kind, String)>>>,
    ) {
        let (flights, started, results) = (flights.clone(), started.clone(), results.clone());
        let answer = answer.to_owned();
        pool.spawner()
            .spawn_local(async move {
                let got = flights
                    .run(kind, move || {
                        started.set(started.get() + 1);
                        async move {
                            let _ = gate.await;
                            answer
                        }
                        .boxed_local()
                    })
                    .await;
                results.borrow_mut().push((kind, got));
            })
            .expect("spawns");
    }

    /// Regression: "Sign in again" during a refresh got the refresh's result and never asked for
    /// a session.
    #[test]
    fn a_request_of_another_kind_is_never_answered_by_the_one_in_flight() {
        let mut pool = LocalPool::new();
        let flights = Flights::default();
        let started = Rc::new(Cell::new(0));
        let results = Rc::new(RefCell::new(Vec::new()));
        let (open_refresh, refresh_gate) = oneshot::channel();
        let (open_sign_in, sign_in_gate) = oneshot::channel();
        call(
            &pool,
            &flights,
            Kind::Refresh,
            refresh_gate,
            "refreshed",
            &started,
            &results,
        );
        pool.run_until_stalled();
        call(
            &pool,
            &flights,
            Kind::SignIn,
            sign_in_gate,
            "signed in",
            &started,
            &results,
        );
        pool.run_until_stalled();
        assert_eq!(started.get(), 2, "the sign-in asked for its own session");
        open_refresh.send(()).unwrap();
        open_sign_in.send(()).unwrap();
        pool.run_until_stalled();
        let got = results.borrow().clone();
        assert!(got.contains(&(Kind::SignIn, "signed in".into())), "{got:?}");
        assert!(
            got.contains(&(Kind::Refresh, "refreshed".into())),
            "{got:?}"
        );
    }

    #[test]
    fn callers_of_one_kind_share_one_request() {
        let mut pool = LocalPool::new();
        let flights = Flights::default();
        let started = Rc::new(Cell::new(0));
        let results = Rc::new(RefCell::new(Vec::new()));
        let (open, gate) = oneshot::channel();
        call(
            &pool,
            &flights,
            Kind::Refresh,
            gate,
            "one",
            &started,
            &results,
        );
        for _ in 0..5 {
            let (_never, gate) = oneshot::channel();
            call(
                &pool,
                &flights,
                Kind::Refresh,
                gate,
                "another",
                &started,
                &results,
            );
        }
        pool.run_until_stalled();
        open.send(()).unwrap();
        pool.run_until_stalled();
        assert_eq!(started.get(), 1);
        assert_eq!(results.borrow().len(), 6);
        assert!(results.borrow().iter().all(|(_, r)| r == "one"));
    }

    /// Regression: the unconditional `take()` after the await could clear a newer request of the
    /// same kind, so a later caller started a second refresh beside it (with a stale token).
    #[test]
    fn a_finished_request_never_clears_a_newer_one() {
        use futures::task::{Context, Poll, noop_waker_ref};
        let mut cx = Context::from_waker(noop_waker_ref());
        let flights = SingleFlight::<Kind, String>::default();
        let started = Cell::new(0);
        let request = |gate: oneshot::Receiver<()>, answer: &'static str| {
            started.set(started.get() + 1);
            async move {
                let _ = gate.await;
                answer.to_owned()
            }
            .boxed_local()
        };
        let (open_a, gate_a) = oneshot::channel();
        let mut first = flights
            .run(Kind::Refresh, || request(gate_a, "a"))
            .boxed_local();
        assert!(first.poll_unpin(&mut cx).is_pending());
        let (_never, gate) = oneshot::channel();
        let mut joiner = flights
            .run(Kind::Refresh, || request(gate, "x"))
            .boxed_local();
        assert!(joiner.poll_unpin(&mut cx).is_pending());
        open_a.send(()).unwrap();
        assert_eq!(first.poll_unpin(&mut cx), Poll::Ready("a".to_owned()));
        // A newer request starts before the joiner of the old one has run again.
        let (_open_b, gate_b) = oneshot::channel();
        let mut newer = flights
            .run(Kind::Refresh, || request(gate_b, "b"))
            .boxed_local();
        assert!(newer.poll_unpin(&mut cx).is_pending());
        assert_eq!(joiner.poll_unpin(&mut cx), Poll::Ready("a".to_owned()));
        // A later caller joins the newer request instead of starting a third beside it.
        let (_never, gate) = oneshot::channel();
        let mut later = flights
            .run(Kind::Refresh, || request(gate, "c"))
            .boxed_local();
        assert!(later.poll_unpin(&mut cx).is_pending());
        assert_eq!(started.get(), 2, "two refreshes at once");
    }
}
