//! The bot statuses of §1 and the connection states of §3.

use serde::{Deserialize, Serialize};
use std::fmt;

/// `Bot.status` and `bot_status_update.status` (§1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BotStatus {
    Created,
    Pairing,
    Connected,
    Disconnected,
    LoggedOut,
    Conflict,
    /// A status another backend invented: shown as it is not known, never fatal.
    #[serde(other)]
    Unknown,
}

impl BotStatus {
    /// Every status of §1, in the contract's order (not `Unknown`).
    pub const ALL: [BotStatus; 6] = [
        BotStatus::Created,
        BotStatus::Pairing,
        BotStatus::Connected,
        BotStatus::Disconnected,
        BotStatus::LoggedOut,
        BotStatus::Conflict,
    ];

    /// The contract's word for it (`data-status` in the DOM, a column in a database).
    pub fn as_str(self) -> &'static str {
        match self {
            BotStatus::Created => "created",
            BotStatus::Pairing => "pairing",
            BotStatus::Connected => "connected",
            BotStatus::Disconnected => "disconnected",
            BotStatus::LoggedOut => "logged_out",
            BotStatus::Conflict => "conflict",
            BotStatus::Unknown => "unknown",
        }
    }

    /// An ending: the session is over until a person acts (unlinked, or replaced by another
    /// session). A backend never drops the news of one.
    pub fn is_ending(self) -> bool {
        matches!(self, BotStatus::LoggedOut | BotStatus::Conflict)
    }

    /// The status a word names; anything else is `Unknown`.
    pub fn parse(word: &str) -> BotStatus {
        BotStatus::ALL
            .into_iter()
            .find(|s| s.as_str() == word)
            .unwrap_or(BotStatus::Unknown)
    }
}

impl fmt::Display for BotStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `connection_update.state` (§3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionState {
    Connecting,
    Open,
    Close,
    #[serde(other)]
    Unknown,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_round_trips_through_its_word_and_json() {
        for s in BotStatus::ALL {
            assert_eq!(BotStatus::parse(s.as_str()), s);
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.as_str()));
            assert_eq!(serde_json::from_str::<BotStatus>(&json).unwrap(), s);
        }
    }

    #[test]
    fn a_status_another_backend_invented_is_unknown_not_an_error() {
        assert_eq!(BotStatus::parse("sleeping"), BotStatus::Unknown);
        assert_eq!(
            serde_json::from_str::<BotStatus>("\"sleeping\"").unwrap(),
            BotStatus::Unknown
        );
        assert_eq!(
            serde_json::from_str::<ConnectionState>("\"resuming\"").unwrap(),
            ConnectionState::Unknown
        );
    }
}
