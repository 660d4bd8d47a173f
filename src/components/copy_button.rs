//! A "Copy" button for a short text (a QR's link, a pairing code), with a fallback for browsers
//! where the clipboard is out of reach: it selects the text so the person copies it by hand.

use leptos::{prelude::*, task::spawn_local};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

/// Writes `text` to the clipboard; `false` where the API is missing (insecure contexts) or refused.
async fn write_to_clipboard(text: &str) -> bool {
    let Some(navigator) = web_sys::window().map(|w| w.navigator()) else {
        return false;
    };
    // `navigator.clipboard` is undefined outside secure contexts: calling into it would throw.
    let has_clipboard = js_sys::Reflect::get(&navigator, &"clipboard".into())
        .is_ok_and(|c| !c.is_undefined() && !c.is_null());
    has_clipboard
        && JsFuture::from(navigator.clipboard().write_text(text))
            .await
            .is_ok()
}

/// Selects the text of the input `id`, for a copy by hand.
fn select_input(id: &str) {
    if let Some(input) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.get_element_by_id(id))
        .and_then(|e| e.dyn_into::<web_sys::HtmlInputElement>().ok())
    {
        let _ = input.focus();
        input.select();
    }
}

/// A button that copies `text`, and says whether it did.
#[component]
pub fn CopyButton(
    /// What to copy.
    text: Memo<String>,
    /// The button's words, e.g. "Copy link".
    #[prop(into)]
    label: String,
    /// The `data-testid` of the button.
    #[prop(into)]
    testid: String,
    /// The id of a read-only input that shows the same text: selected when copying fails.
    #[prop(into)]
    input_id: String,
) -> impl IntoView {
    let said = RwSignal::new(None::<String>);
    let input_id = StoredValue::new(input_id);
    let copy = move |_| {
        let text = text.get_untracked();
        spawn_local(async move {
            if write_to_clipboard(&text).await {
                said.set(Some("Copied.".into()));
            } else {
                input_id.with_value(|id| select_input(id));
                said.set(Some(
                    "Selected — press Ctrl+C (⌘C on a Mac) to copy.".into(),
                ));
            }
        });
    };
    view! {
        <button type="button" class="secondary small" data-testid=testid on:click=copy>{label}</button>
        <span class="copy-said" role="status" aria-live="polite">{move || said.get().unwrap_or_default()}</span>
    }
}
