//! The router and the app-wide providers: the session and the one connection owner.

use crate::components::Diagnostics;
use crate::connection::provide_connection;
use crate::pages::{Dashboard, LinkBot, NewBotWizard, NotFound};
use crate::session::{SessionStore, provide_session};
use leptos::prelude::*;
use leptos_router::{
    components::{A, FlatRoutes, Route, Router},
    path,
};

/// The whole app: header, routes, and the providers every page relies on.
#[component]
pub fn App() -> impl IntoView {
    let session = SessionStore::default();
    provide_session(session.clone());
    provide_connection(session);

    view! {
        <Router>
            <a class="skip-link" href="#main">"Skip to content"</a>
            <header class="top-bar">
                <a href="/" class="brand">"botlink"</a>
                <nav aria-label="Main">
                    <A href="/">"Dashboard"</A>
                    <A href="/bots/new">"New bot"</A>
                </nav>
            </header>
            <main id="main" class="page">
                <FlatRoutes fallback=|| view! { <NotFound/> }>
                    <Route path=path!("/") view=Dashboard/>
                    <Route path=path!("/bots/new") view=NewBotWizard/>
                    <Route path=path!("/bots/:id/link") view=LinkBot/>
                </FlatRoutes>
            </main>
            <footer class="footer">
                <Diagnostics/>
            </footer>
        </Router>
    }
}
