//! Components: they read signals and send intents; none opens a socket.
//!
//! They reuse the reactive types already in the app: `Memo` and `ReadSignal` rather than
//! `Signal<T>`, `String` from text and attribute closures (hence the `.to_owned()`s), `value`
//! attributes rather than properties. Leptos builds rendering code per type, not per element:
//! each new one costs the app 0.3–1.7 KB (README, "Performance").

mod bot_row;
mod clock;
mod copy_button;
mod countdown_ring;
mod diagnostics;
mod fetched;
mod pairing_code;
mod qr_code;
mod qr_panel;
mod status_badge;

pub use bot_row::BotRow;
pub use clock::use_ticking_clock;
pub use copy_button::CopyButton;
pub use countdown_ring::CountdownRing;
pub use diagnostics::Diagnostics;
pub use fetched::{replace_if_changed, use_fetched};
pub use pairing_code::{PairingCodeOffer, show_code};
pub use qr_code::{QrCode, qr_svg};
pub use qr_panel::QrPanel;
pub use status_badge::StatusBadge;
