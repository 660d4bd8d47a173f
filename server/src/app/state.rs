//! The router's state: the shared [`Context`], the rate limits and user arrivals
//! ([`Coordination`]) and the WhatsApp [`Link`]. A handler takes only the parts it needs, each
//! its own extractor (`State<Ctx>`, `State<Arc<dyn Link>>`, `State<Arc<Coordination>>`, axum's
//! `FromRef`); a link is handed the context alone.

use crate::{
    cluster::coordination::Coordination,
    config::ServeArgs,
    core::context::{Context, Ctx},
    link::Link,
    store::Store,
};
use axum::extract::FromRef;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub ctx: Ctx,
    /// Rate limits and each user's newest socket: in memory alone, in Redis in a cluster.
    pub coordination: Arc<Coordination>,
    /// The WhatsApp link every pairing goes through.
    pub link: Arc<dyn Link>,
}

impl std::ops::Deref for AppState {
    type Target = Context;

    fn deref(&self) -> &Context {
        &self.ctx
    }
}

impl AppState {
    pub fn new(
        cfg: ServeArgs,
        node: String,
        store: Box<dyn Store>,
        coordination: Coordination,
        link: Box<dyn Link>,
    ) -> AppState {
        AppState {
            ctx: Context::new(cfg, node, store),
            coordination: Arc::new(coordination),
            link: Arc::from(link),
        }
    }
}

impl FromRef<AppState> for Ctx {
    fn from_ref(st: &AppState) -> Ctx {
        st.ctx.clone()
    }
}

impl FromRef<AppState> for Arc<dyn Link> {
    fn from_ref(st: &AppState) -> Arc<dyn Link> {
        st.link.clone()
    }
}

impl FromRef<AppState> for Arc<Coordination> {
    fn from_ref(st: &AppState) -> Arc<Coordination> {
        st.coordination.clone()
    }
}
