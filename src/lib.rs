//! botlink: link WhatsApp bots to a phone by QR code.
//!
//! The pure core ([`connection::machine`], the [`protocol`] crate) builds on any target and is
//! tested natively; everything that touches the browser is wasm32-only.

pub mod connection;
pub mod single_flight;

#[cfg(target_arch = "wasm32")]
pub mod api;
#[cfg(target_arch = "wasm32")]
mod app;
#[cfg(target_arch = "wasm32")]
pub mod components;
#[cfg(target_arch = "wasm32")]
pub mod http;
#[cfg(target_arch = "wasm32")]
pub mod json;
#[cfg(target_arch = "wasm32")]
mod pages;
#[cfg(target_arch = "wasm32")]
pub mod session;

#[cfg(target_arch = "wasm32")]
pub use app::App;
