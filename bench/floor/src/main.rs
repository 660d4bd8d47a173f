//! The smallest app that uses what botlink cannot do without: two routes, one HTTP call whose
//! JSON is parsed with serde, and one QR code drawn as SVG.

use leptos::prelude::*;
use leptos_router::{
    components::{A, Route, Router, Routes},
    path,
};

#[derive(serde::Deserialize, Clone, Debug)]
struct Health {
    status: String,
}

#[component]
fn Home() -> impl IntoView {
    let health = LocalResource::new(|| async {
        let resp = gloo_net::http::Request::get("/api/health").send().await.ok()?;
        resp.json::<Health>().await.ok().map(|h| h.status)
    });
    let svg = qrcode::QrCode::new(b"https://example.com/link/0123456789abcdef")
        .map(|c| c.render::<qrcode::render::svg::Color<'_>>().build())
        .unwrap_or_default();
    view! {
        <p>{move || health.get().flatten()}</p>
        <div inner_html=svg></div>
        <A href="/other">"other"</A>
    }
}

fn main() {
    leptos::mount::mount_to_body(|| {
        view! {
            <Router>
                <Routes fallback=|| "not found">
                    <Route path=path!("/") view=Home/>
                    <Route path=path!("/other") view=|| view! { <A href="/">"home"</A> }/>
                </Routes>
            </Router>
        }
    })
}
