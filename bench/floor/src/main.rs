//! The smallest app that uses what botlink cannot do without: two routes, one HTTP call whose
//! JSON is read with serde (through the browser's JSON.parse, as the app does), and one QR code
//! drawn as SVG.

use leptos::prelude::*;
use leptos_router::{
    components::{A, FlatRoutes, Route, Router},
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
        let text = resp.text().await.ok()?;
        let value = js_sys::JSON::parse(&text).ok()?;
        serde_wasm_bindgen::from_value::<Health>(value)
            .ok()
            .map(|h| h.status)
    });
    let svg = qrcode::QrCode::new(b"2@Y2xvdWQtcmVmLTAxMjM0NTY3ODk=,bm9pc2Uta2V5,aWRlbnRpdHk=,YWR2,1")
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
                <FlatRoutes fallback=|| "not found">
                    <Route path=path!("/") view=Home/>
                    <Route path=path!("/other") view=|| view! { <A href="/">"home"</A> }/>
                </FlatRoutes>
            </Router>
        }
    })
}
