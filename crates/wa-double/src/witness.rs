//! The witness: what the double saw of every device's connections, counted where WhatsApp would
//! see them. "Most ever open at once" above 1 is botlink's rule broken at WhatsApp's side (two
//! sessions of one bot): no log of the server can prove that it never happened, this count can.
//!
//! A device is keyed by its noise key (base64, as in the QR), so the connection that showed a QR
//! and the logins after the scan are one device; its JID, once it has one, is an alias.

use serde::Serialize;
use std::collections::BTreeMap;

/// What one device did at the double.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DeviceCounts {
    /// The device's JID, once it has paired.
    pub jid: Option<String>,
    /// Noise handshakes completed by this device.
    pub handshakes: u64,
    /// Logins (a registered device's `<success>`).
    pub logins: u64,
    /// Connections of this device open now.
    pub open_now: u64,
    /// The most connections of this device ever open at the same time.
    pub most_open_at_once: u64,
    /// QR refs offered to it (six a pairing connection).
    pub qrs_offered: u64,
    /// Older connections thrown out with `<conflict type="replaced"/>` (the client's 440).
    pub replaced_sent: u64,
    /// Pairing code sessions started (`companion_hello`).
    pub codes_requested: u64,
    /// Messages delivered from its offline queue at a login.
    pub offline_delivered: u64,
}

/// Totals over every device, and the connections never tied to one.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Totals {
    /// WebSocket connections accepted at `/ws/chat`.
    pub connections: u64,
    /// Handshakes completed (the client's static key known).
    pub handshakes: u64,
    pub logins: u64,
    pub qrs_offered: u64,
    pub replaced_sent: u64,
    pub open_now: u64,
    /// Connections that ended before the client's static key was known: a failed handshake (a
    /// client that refused the double's certificate ends here).
    pub unbound_connections: u64,
    /// The largest `mostOpenAtOnce` of any device.
    pub most_open_at_once: u64,
    /// WhatsApp Web's `/sw.js` served (the client's version look-up).
    pub version_lookups: u64,
    /// Messages delivered from offline queues at logins.
    pub offline_delivered: u64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Stats {
    pub totals: Totals,
    /// Per device, by noise key.
    pub devices: BTreeMap<String, DeviceCounts>,
}

/// The counts, updated by the connections as they go (callers hold the double's lock).
#[derive(Debug, Default)]
pub struct Witness {
    stats: Stats,
}

impl Witness {
    pub fn snapshot(&self) -> Stats {
        let mut s = self.stats.clone();
        s.totals.most_open_at_once = s
            .devices
            .values()
            .map(|d| d.most_open_at_once)
            .max()
            .unwrap_or(0);
        s.totals.open_now = s.devices.values().map(|d| d.open_now).sum();
        s
    }

    fn device(&mut self, noise: &str) -> &mut DeviceCounts {
        self.stats.devices.entry(noise.to_owned()).or_default()
    }

    pub fn version_looked_up(&mut self) {
        self.stats.totals.version_lookups += 1;
    }

    pub fn connection_accepted(&mut self) {
        self.stats.totals.connections += 1;
    }

    /// A connection that ended before its handshake told who it was.
    pub fn unbound_ended(&mut self) {
        self.stats.totals.unbound_connections += 1;
    }

    /// The handshake completed: the connection is the device's from now on, until it ends.
    pub fn opened(&mut self, noise: &str) {
        self.stats.totals.handshakes += 1;
        let d = self.device(noise);
        d.handshakes += 1;
        d.open_now += 1;
        d.most_open_at_once = d.most_open_at_once.max(d.open_now);
    }

    pub fn closed(&mut self, noise: &str) {
        let d = self.device(noise);
        d.open_now = d.open_now.saturating_sub(1);
    }

    pub fn logged_in(&mut self, noise: &str, jid: &str) {
        self.stats.totals.logins += 1;
        let d = self.device(noise);
        d.logins += 1;
        d.jid = Some(jid.to_owned());
    }

    pub fn delivered_offline(&mut self, noise: &str, count: u64) {
        self.stats.totals.offline_delivered += count;
        self.device(noise).offline_delivered += count;
    }

    pub fn paired(&mut self, noise: &str, jid: &str) {
        self.device(noise).jid = Some(jid.to_owned());
    }

    pub fn qr_offered(&mut self, noise: &str, refs: u64) {
        self.stats.totals.qrs_offered += refs;
        self.device(noise).qrs_offered += refs;
    }

    pub fn code_requested(&mut self, noise: &str) {
        self.device(noise).codes_requested += 1;
    }

    pub fn replaced(&mut self, noise: &str) {
        self.stats.totals.replaced_sent += 1;
        self.device(noise).replaced_sent += 1;
    }

    /// Forgets every count (`POST /admin/reset`); connections open now still count as open.
    pub fn reset(&mut self) {
        let open: Vec<(String, u64)> = self
            .stats
            .devices
            .iter()
            .filter(|(_, d)| d.open_now > 0)
            .map(|(k, d)| (k.clone(), d.open_now))
            .collect();
        self.stats = Stats::default();
        for (k, n) in open {
            let d = self.device(&k);
            d.open_now = n;
            d.most_open_at_once = n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_connections_of_one_device_at_once_are_seen() {
        let mut w = Witness::default();
        w.opened("k");
        w.closed("k");
        w.opened("k");
        assert_eq!(w.snapshot().totals.most_open_at_once, 1);
        w.opened("k");
        let s = w.snapshot();
        assert_eq!(s.devices["k"].most_open_at_once, 2);
        assert_eq!(s.totals.most_open_at_once, 2);
        assert_eq!(s.totals.open_now, 2);
        assert_eq!(s.totals.handshakes, 3);
    }

    #[test]
    fn a_reset_keeps_what_is_open_now() {
        let mut w = Witness::default();
        w.opened("a");
        w.opened("b");
        w.closed("b");
        w.logged_in("a", "1@s.whatsapp.net");
        w.reset();
        let s = w.snapshot();
        assert_eq!(s.totals.logins, 0);
        assert_eq!(s.devices["a"].open_now, 1);
        assert!(!s.devices.contains_key("b"));
        w.closed("a");
        assert_eq!(w.snapshot().totals.open_now, 0);
    }
}
