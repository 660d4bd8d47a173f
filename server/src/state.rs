//! The application's state: the shared [`Context`] and what only the HTTP and socket layers
//! use — the rate limits and user arrivals ([`Coordination`]) and the WhatsApp [`Link`]. Handlers
//! read the context's fields through this state (`Deref`); a link is handed the context alone.

use crate::{
    config::ServeArgs,
    context::{Context, Ctx},
    coordination::Coordination,
    links::Link,
    store::Store,
};
use std::sync::Arc;

pub type Shared = Arc<AppState>;

pub struct AppState {
    pub ctx: Ctx,
    /// Rate limits and each user's newest socket: in memory alone, in Redis in a cluster.
    pub coordination: Coordination,
    /// The WhatsApp link every pairing goes through (`--link`).
    pub link: Box<dyn Link>,
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
    ) -> Shared {
        Arc::new(AppState {
            ctx: Context::new(cfg, node, store),
            coordination,
            link,
        })
    }
}
