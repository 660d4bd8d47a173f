//! Components: they read signals and send intents; none opens a socket.

mod bot_row;
mod qr_code;
mod qr_panel;
mod status_badge;

pub use bot_row::BotRow;
pub use qr_code::{QrCode, qr_svg};
pub use qr_panel::QrPanel;
pub use status_badge::StatusBadge;
