//! Mounts the app; nothing else.

#[cfg(target_arch = "wasm32")]
fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(botlink::App);
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("botlink is a web app: build it with `trunk build` (see README.md).");
}
