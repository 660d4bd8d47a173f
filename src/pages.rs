//! The pages, one per route.

mod dashboard;
mod link_bot;
mod new_bot_wizard;
mod not_found;

pub use dashboard::Dashboard;
pub use link_bot::LinkBot;
pub use new_bot_wizard::NewBotWizard;
pub use not_found::NotFound;
