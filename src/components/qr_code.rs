//! Renders a string as a QR code SVG, in the browser, with the `qrcode` crate.
//! The only inner HTML in the app: an SVG this code generated itself, never a server string.

use leptos::prelude::*;
use qrcode::{EcLevel, render::svg};

/// The SVG for `data`, or why it cannot be drawn.
pub fn qr_svg(data: &str) -> Result<String, String> {
    if data.is_empty() {
        return Err("There is no code to show yet.".into());
    }
    let code = qrcode::QrCode::with_error_correction_level(data.as_bytes(), EcLevel::M)
        .map_err(|_| "This code is too long to draw as a QR code.".to_string())?;
    Ok(code
        .render::<svg::Color<'_>>()
        .min_dimensions(232, 232)
        .quiet_zone(true)
        .dark_color(svg::Color("#111111"))
        .light_color(svg::Color("#ffffff"))
        .build())
}

/// A QR code for `data`, with the string itself as its text alternative.
#[component]
pub fn QrCode(
    data: Memo<String>,
    /// Called with `data` once its code is on screen (and again for each new code).
    #[prop(optional, into)]
    on_shown: Option<Callback<String>>,
) -> impl IntoView {
    let svg = Memo::new(move |_| data.with(|d| qr_svg(d)));
    // Effects run after the view is in the DOM: this says "it is on screen", not "it was asked for".
    Effect::new(move |_| {
        if let (Some(on_shown), Ok(_)) = (on_shown, svg.get()) {
            on_shown.run(data.get_untracked());
        }
    });
    view! {
        <figure class="qr" data-testid="qr-code" data-qr=move || data.get()>
            {move || match svg.get() {
                Ok(svg) => view! {
                    <div class="qr-image" role="img" aria-label="QR code to scan with WhatsApp" inner_html=svg></div>
                }.into_any(),
                Err(why) => view! { <p class="form-error" role="alert">{why}</p> }.into_any(),
            }}
        </figure>
    }
}
