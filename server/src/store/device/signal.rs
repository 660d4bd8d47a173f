//! The Signal state: identities, sessions, prekeys, signed prekeys, sender keys, and the sent
//! messages and inbound buffer the library keeps beside them.

use super::{PgDevice, array, count};
use std::{collections::HashMap, sync::Arc};
use whatsapp_rust::{
    async_trait,
    bytes::Bytes,
    wacore::store::{
        error::Result,
        traits::{PendingInboundKey, PendingInboundRow, SignalStore},
    },
};

/// The last value of each key (a batch upsert may not touch one row twice).
pub(super) fn last_wins<'a, V: ?Sized>(
    rows: impl Iterator<Item = (&'a str, &'a V)>,
) -> (Vec<&'a str>, Vec<&'a V>) {
    let mut at: HashMap<&str, usize> = HashMap::new();
    let (mut keys, mut values) = (Vec::new(), Vec::new());
    for (k, v) in rows {
        if let Some(&i) = at.get(k) {
            values[i] = v;
        } else {
            at.insert(k, keys.len());
            keys.push(k);
            values.push(v);
        }
    }
    (keys, values)
}

pub(super) fn now_secs() -> i64 {
    crate::store::now_ms() / 1000
}

#[async_trait]
impl SignalStore for PgDevice {
    async fn put_identity(&self, address: &str, key: [u8; 32]) -> Result<()> {
        self.put_identities_batch(&[(Arc::from(address), key)])
            .await
    }

    async fn put_identities_batch(&self, identities: &[(Arc<str>, [u8; 32])]) -> Result<()> {
        let (addresses, keys) = last_wins(identities.iter().map(|(a, k)| (&**a, &k[..])));
        self.write_one(
            "INSERT INTO wa_identities (bot_id, address, key)
             SELECT $1, a, k FROM UNNEST($2::text[], $3::bytea[]) AS t(a, k)
             ON CONFLICT (bot_id, address) DO UPDATE SET key = excluded.key",
            &[&self.bot, &addresses, &keys],
        )
        .await
        .map(drop)
    }

    async fn load_identity(&self, address: &str) -> Result<Option<[u8; 32]>> {
        self.read_one(
            "SELECT key FROM wa_identities WHERE bot_id = $1 AND address = $2",
            &[&self.bot, &address],
        )
        .await?
        .map(|r| array(r.get(0), "an identity key"))
        .transpose()
    }

    async fn delete_identity(&self, address: &str) -> Result<()> {
        self.write_one(
            "DELETE FROM wa_identities WHERE bot_id = $1 AND address = $2",
            &[&self.bot, &address],
        )
        .await
        .map(drop)
    }

    async fn get_session(&self, address: &str) -> Result<Option<Bytes>> {
        Ok(self
            .read_one(
                "SELECT record FROM wa_sessions WHERE bot_id = $1 AND address = $2",
                &[&self.bot, &address],
            )
            .await?
            .map(|r| Bytes::from(r.get::<_, Vec<u8>>(0))))
    }

    async fn put_session(&self, address: &str, session: &[u8]) -> Result<()> {
        self.put_sessions_batch(&[(Arc::from(address), Bytes::copy_from_slice(session))])
            .await
    }

    async fn put_sessions_batch(&self, sessions: &[(Arc<str>, Bytes)]) -> Result<()> {
        let (addresses, records) = last_wins(sessions.iter().map(|(a, r)| (&**a, &r[..])));
        self.write_one(
            "INSERT INTO wa_sessions (bot_id, address, record)
             SELECT $1, a, r FROM UNNEST($2::text[], $3::bytea[]) AS t(a, r)
             ON CONFLICT (bot_id, address) DO UPDATE SET record = excluded.record",
            &[&self.bot, &addresses, &records],
        )
        .await
        .map(drop)
    }

    async fn delete_session(&self, address: &str) -> Result<()> {
        self.write_one(
            "DELETE FROM wa_sessions WHERE bot_id = $1 AND address = $2",
            &[&self.bot, &address],
        )
        .await
        .map(drop)
    }

    async fn has_session(&self, address: &str) -> Result<bool> {
        Ok(self
            .read_one(
                "SELECT 1 FROM wa_sessions WHERE bot_id = $1 AND address = $2",
                &[&self.bot, &address],
            )
            .await?
            .is_some())
    }

    async fn has_signal_state_for_user(&self, user: &str) -> Result<bool> {
        // `user@server` (device 0) or `user:device@server`; no LIKE (a user part is data).
        Ok(self
            .read_one(
                "SELECT 1 WHERE EXISTS (SELECT 1 FROM wa_sessions WHERE bot_id = $1
                    AND left(address, length($2) + 1) IN ($2 || '@', $2 || ':'))
                 OR EXISTS (SELECT 1 FROM wa_identities WHERE bot_id = $1
                    AND left(address, length($2) + 1) IN ($2 || '@', $2 || ':'))",
                &[&self.bot, &user],
            )
            .await?
            .is_some())
    }

    async fn store_prekey(&self, id: u32, record: &[u8], uploaded: bool) -> Result<()> {
        self.store_prekeys_batch(&[(id, Bytes::copy_from_slice(record))], uploaded)
            .await
    }

    async fn store_prekeys_batch(&self, keys: &[(u32, Bytes)], uploaded: bool) -> Result<()> {
        let mut last: HashMap<u32, &[u8]> = HashMap::new();
        for (id, record) in keys {
            last.insert(*id, record);
        }
        let ids: Vec<i64> = last.keys().map(|&id| i64::from(id)).collect();
        let records: Vec<&[u8]> = last.values().copied().collect();
        self.write_one(
            "INSERT INTO wa_prekeys (bot_id, id, record, uploaded)
             SELECT $1, i, r, $4 FROM UNNEST($2::bigint[], $3::bytea[]) AS t(i, r)
             ON CONFLICT (bot_id, id) DO UPDATE SET record = excluded.record,
                uploaded = excluded.uploaded",
            &[&self.bot, &ids, &records, &uploaded],
        )
        .await
        .map(drop)
    }

    async fn load_prekey(&self, id: u32) -> Result<Option<Bytes>> {
        Ok(self
            .read_one(
                "SELECT record FROM wa_prekeys WHERE bot_id = $1 AND id = $2",
                &[&self.bot, &i64::from(id)],
            )
            .await?
            .map(|r| Bytes::from(r.get::<_, Vec<u8>>(0))))
    }

    async fn load_prekeys_batch(&self, ids: &[u32]) -> Result<Vec<(u32, Bytes)>> {
        let wanted: Vec<i64> = ids.iter().map(|&id| i64::from(id)).collect();
        let rows = self
            .read(
                "SELECT id, record FROM wa_prekeys WHERE bot_id = $1 AND id = ANY($2)",
                &[&self.bot, &wanted],
            )
            .await?;
        let mut found: HashMap<u32, Bytes> = rows
            .into_iter()
            .filter_map(|r| {
                let id = u32::try_from(r.get::<_, i64>(0)).ok()?;
                Some((id, Bytes::from(r.get::<_, Vec<u8>>(1))))
            })
            .collect();
        // In the order asked, as the trait's default answers.
        Ok(ids
            .iter()
            .filter_map(|id| Some((*id, found.remove(id)?)))
            .collect())
    }

    async fn mark_prekeys_uploaded(&self, ids: &[u32]) -> Result<()> {
        // An UPDATE, never an upsert: a key consumed since the upload stays gone.
        let ids: Vec<i64> = ids.iter().map(|&id| i64::from(id)).collect();
        self.write_one(
            "UPDATE wa_prekeys SET uploaded = true WHERE bot_id = $1 AND id = ANY($2)",
            &[&self.bot, &ids],
        )
        .await
        .map(drop)
    }

    async fn remove_prekey(&self, id: u32) -> Result<()> {
        self.write_one(
            "DELETE FROM wa_prekeys WHERE bot_id = $1 AND id = $2",
            &[&self.bot, &i64::from(id)],
        )
        .await
        .map(drop)
    }

    async fn get_max_prekey_id(&self) -> Result<u32> {
        let row = self
            .read_one(
                "SELECT COALESCE(MAX(id), 0) FROM wa_prekeys WHERE bot_id = $1",
                &[&self.bot],
            )
            .await?;
        Ok(row.map_or(0, |r| u32::try_from(r.get::<_, i64>(0)).unwrap_or(0)))
    }

    async fn store_signed_prekey(&self, id: u32, record: &[u8]) -> Result<()> {
        self.write_one(
            "INSERT INTO wa_signed_prekeys (bot_id, id, record) VALUES ($1, $2, $3)
             ON CONFLICT (bot_id, id) DO UPDATE SET record = excluded.record",
            &[&self.bot, &i64::from(id), &record],
        )
        .await
        .map(drop)
    }

    async fn load_signed_prekey(&self, id: u32) -> Result<Option<Vec<u8>>> {
        Ok(self
            .read_one(
                "SELECT record FROM wa_signed_prekeys WHERE bot_id = $1 AND id = $2",
                &[&self.bot, &i64::from(id)],
            )
            .await?
            .map(|r| r.get(0)))
    }

    async fn load_all_signed_prekeys(&self) -> Result<Vec<(u32, Vec<u8>)>> {
        let rows = self
            .read(
                "SELECT id, record FROM wa_signed_prekeys WHERE bot_id = $1 ORDER BY id",
                &[&self.bot],
            )
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| Some((u32::try_from(r.get::<_, i64>(0)).ok()?, r.get(1))))
            .collect())
    }

    async fn remove_signed_prekey(&self, id: u32) -> Result<()> {
        self.write_one(
            "DELETE FROM wa_signed_prekeys WHERE bot_id = $1 AND id = $2",
            &[&self.bot, &i64::from(id)],
        )
        .await
        .map(drop)
    }

    async fn put_sender_key(&self, address: &str, record: &[u8]) -> Result<()> {
        self.put_sender_keys_batch(&[(Arc::from(address), Bytes::copy_from_slice(record))])
            .await
    }

    async fn put_sender_keys_batch(&self, sender_keys: &[(Arc<str>, Bytes)]) -> Result<()> {
        let (addresses, records) = last_wins(sender_keys.iter().map(|(a, r)| (&**a, &r[..])));
        self.write_one(
            "INSERT INTO wa_sender_keys (bot_id, address, record)
             SELECT $1, a, r FROM UNNEST($2::text[], $3::bytea[]) AS t(a, r)
             ON CONFLICT (bot_id, address) DO UPDATE SET record = excluded.record",
            &[&self.bot, &addresses, &records],
        )
        .await
        .map(drop)
    }

    async fn get_sender_key(&self, address: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .read_one(
                "SELECT record FROM wa_sender_keys WHERE bot_id = $1 AND address = $2",
                &[&self.bot, &address],
            )
            .await?
            .map(|r| r.get(0)))
    }

    async fn delete_sender_key(&self, address: &str) -> Result<()> {
        self.write_one(
            "DELETE FROM wa_sender_keys WHERE bot_id = $1 AND address = $2",
            &[&self.bot, &address],
        )
        .await
        .map(drop)
    }
}

/// The sent messages (for retry receipts) and the inbound buffer, whose trait is the
/// protocol store's but whose rows sit with the Signal state.
impl PgDevice {
    pub(super) async fn store_sent(&self, chat: &str, id: &str, payload: &[u8]) -> Result<()> {
        self.write_one(
            "INSERT INTO wa_sent_messages (bot_id, chat, id, payload, created_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (bot_id, chat, id) DO UPDATE SET payload = excluded.payload,
                created_at = excluded.created_at",
            &[&self.bot, &chat, &id, &payload, &now_secs()],
        )
        .await
        .map(drop)
    }

    /// Read and delete at once: a retry receipt consumes it (no double retry).
    pub(super) async fn take_sent(&self, chat: &str, id: &str) -> Result<Option<Vec<u8>>> {
        let (_, rows) = self
            .write(&[(
                "DELETE FROM wa_sent_messages WHERE bot_id = $1 AND chat = $2 AND id = $3
                 RETURNING payload",
                &[&self.bot, &chat, &id],
            )])
            .await?;
        Ok(rows.into_iter().next().map(|r| r.get(0)))
    }

    pub(super) async fn delete_sent_before(&self, cutoff: i64) -> Result<u32> {
        self.write_one(
            "DELETE FROM wa_sent_messages WHERE bot_id = $1 AND created_at < $2 RETURNING 1",
            &[&self.bot, &cutoff],
        )
        .await
        .map(count)
    }

    pub(super) async fn store_inbound(&self, rows: &[PendingInboundRow<'_>]) -> Result<()> {
        let mut last: HashMap<(&str, &str, &str), &[u8]> = HashMap::new();
        for r in rows {
            last.insert((r.chat, r.sender, r.id), r.message);
        }
        let chats: Vec<&str> = last.keys().map(|k| k.0).collect();
        let senders: Vec<&str> = last.keys().map(|k| k.1).collect();
        let ids: Vec<&str> = last.keys().map(|k| k.2).collect();
        let messages: Vec<&[u8]> = last.values().copied().collect();
        self.write_one(
            "INSERT INTO wa_pending_inbound (bot_id, chat, sender, id, message, inserted_at)
             SELECT $1, c, s, i, m, $6
             FROM UNNEST($2::text[], $3::text[], $4::text[], $5::bytea[]) AS t(c, s, i, m)
             ON CONFLICT (bot_id, chat, sender, id) DO UPDATE SET message = excluded.message,
                inserted_at = excluded.inserted_at",
            &[&self.bot, &chats, &senders, &ids, &messages, &now_secs()],
        )
        .await
        .map(drop)
    }

    pub(super) async fn get_inbound(
        &self,
        chat: &str,
        sender: &str,
        id: &str,
    ) -> Result<Option<Vec<u8>>> {
        Ok(self
            .read_one(
                "SELECT message FROM wa_pending_inbound
                 WHERE bot_id = $1 AND chat = $2 AND sender = $3 AND id = $4",
                &[&self.bot, &chat, &sender, &id],
            )
            .await?
            .map(|r| r.get(0)))
    }

    pub(super) async fn delete_inbound(&self, keys: &[PendingInboundKey<'_>]) -> Result<()> {
        let chats: Vec<&str> = keys.iter().map(|k| k.chat).collect();
        let senders: Vec<&str> = keys.iter().map(|k| k.sender).collect();
        let ids: Vec<&str> = keys.iter().map(|k| k.id).collect();
        self.write_one(
            "DELETE FROM wa_pending_inbound p
             USING UNNEST($2::text[], $3::text[], $4::text[]) AS t(c, s, i)
             WHERE p.bot_id = $1 AND p.chat = t.c AND p.sender = t.s AND p.id = t.i",
            &[&self.bot, &chats, &senders, &ids],
        )
        .await
        .map(drop)
    }

    pub(super) async fn delete_inbound_before(&self, cutoff: i64) -> Result<u32> {
        self.write_one(
            "DELETE FROM wa_pending_inbound WHERE bot_id = $1 AND inserted_at < $2 RETURNING 1",
            &[&self.bot, &cutoff],
        )
        .await
        .map(count)
    }
}
