use leptos::prelude::*;

/// Any unknown route.
#[component]
pub fn NotFound() -> impl IntoView {
    view! {
        <section class="card">
            <h1>"Page not found"</h1>
            <p>"There is nothing at this address."</p>
            <a href="/">"Go to the dashboard"</a>
        </section>
    }
}
