//! What WhatsApp remembers across connections, kept in the data directory (`double.json`): the
//! double's static Noise key, the accounts (a phone number, its LID and the phone's identity
//! key) and their linked devices (by noise key). Written whole, through a temporary file and a
//! rename, after each change: a killed double never leaves half a file.

use base64::{Engine, engine::general_purpose::STANDARD};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DeviceState {
    /// Connected for a QR or a code; not linked yet.
    Pairing,
    /// Linked to an account: it may log in.
    Registered,
    /// Removed by the phone (or never finished): its logins fail with 401.
    Removed,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    /// Digits only, no `+`.
    pub phone: String,
    pub lid: String,
    /// The phone's identity (account) key, private half, base64.
    pub identity_private: String,
    /// The next companion device number (the phone is device 0).
    pub next_device: u16,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    /// The device's noise key, base64 (as in its QR).
    pub noise: String,
    /// The device's identity key (32 bytes, base64), from its registration.
    pub identity: String,
    pub state: DeviceState,
    /// Set once linked.
    pub phone: Option<String>,
    pub device_id: Option<u16>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Saved {
    /// The double's static Noise key, private half, base64.
    pub static_private: String,
    pub accounts: Vec<Account>,
    pub devices: Vec<Device>,
}

impl Saved {
    pub fn account(&self, phone: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.phone == phone)
    }

    pub fn device(&self, noise: &str) -> Option<&Device> {
        self.devices.iter().find(|d| d.noise == noise)
    }

    pub fn device_mut(&mut self, noise: &str) -> Option<&mut Device> {
        self.devices.iter_mut().find(|d| d.noise == noise)
    }

    /// The device with this JID (`phone:device@s.whatsapp.net`, or the `+phone` alone for the
    /// account's most recent linked device).
    pub fn device_by_jid(&self, jid: &str) -> Option<&Device> {
        let (user, device) = split_jid(jid)?;
        self.devices.iter().rev().find(|d| {
            d.phone.as_deref() == Some(user.as_str())
                && device.is_none_or(|n| d.device_id == Some(n))
                && d.state != DeviceState::Pairing
        })
    }

    pub fn lid_of(&self, phone: &str) -> Option<String> {
        self.account(phone).map(|a| a.lid.clone())
    }
}

/// `"15551234567:3@s.whatsapp.net"` → ("15551234567", Some(3)); `"+1 555 123"` → digits, None.
pub fn split_jid(s: &str) -> Option<(String, Option<u16>)> {
    let s = s.trim();
    if let Some((user, _server)) = s.split_once('@') {
        let (user, device) = match user.split_once(':') {
            Some((u, d)) => (u, Some(d.parse().ok()?)),
            None => (user, None),
        };
        return Some((user.to_owned(), device));
    }
    let digits = phone_digits(s)?;
    Some((digits, None))
}

/// A phone number as digits (`+1 (555) 123-4567` → `15551234567`); `None` if it is not one.
pub fn phone_digits(s: &str) -> Option<String> {
    let digits: String = s.chars().filter(|c| c.is_ascii_digit()).collect();
    let allowed = s
        .chars()
        .all(|c| c.is_ascii_digit() || " +-().".contains(c));
    (allowed && (7..=15).contains(&digits.len()) && !digits.starts_with('0')).then_some(digits)
}

pub fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

pub fn unb64(s: &str) -> Option<Vec<u8>> {
    STANDARD.decode(s).ok()
}

/// The data directory's file.
pub struct Disk {
    file: PathBuf,
}

impl Disk {
    pub fn new(dir: &Path) -> Disk {
        Disk {
            file: dir.join("double.json"),
        }
    }

    pub fn load(&self) -> std::io::Result<Option<Saved>> {
        match std::fs::read(&self.file) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{} is not the double's state: {e}", self.file.display()),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn save(&self, saved: &Saved) {
        let tmp = self.file.with_extension("json.tmp");
        let write = || -> std::io::Result<()> {
            std::fs::write(&tmp, serde_json::to_vec_pretty(saved)?)?;
            std::fs::rename(&tmp, &self.file)
        };
        if let Err(e) = write() {
            tracing::error!("could not save {}: {e}", self.file.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jids_and_phone_numbers_are_read() {
        assert_eq!(
            split_jid("15551234567:3@s.whatsapp.net"),
            Some(("15551234567".into(), Some(3)))
        );
        assert_eq!(
            split_jid("+1 (555) 123-4567"),
            Some(("15551234567".into(), None))
        );
        assert_eq!(split_jid("12:x@s.whatsapp.net"), None);
        assert_eq!(phone_digits("0555123456"), None);
        assert_eq!(phone_digits("12ab45678"), None);
        assert_eq!(phone_digits("123"), None);
    }
}
