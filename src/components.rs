//! Components: they read signals and send intents; none opens a socket.

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
pub use fetched::use_fetched;
pub use pairing_code::{PairingCodeOffer, show_code};
pub use qr_code::{QrCode, qr_svg};
pub use qr_panel::QrPanel;
pub use status_badge::StatusBadge;
