//! WhatsApp Web's own bookkeeping: who has the group sender keys, LID↔phone mappings, base keys
//! of retried messages, device lists, group metadata, trusted-contact tokens; and (rows kept in
//! `signal.rs`) sent messages and the inbound buffer.

use super::{PgDevice, count, from_json, json, signal::last_wins};
use whatsapp_rust::{
    async_trait,
    wacore::store::{
        error::Result,
        traits::{
            DeviceListRecord, LidPnMappingEntry, PendingInboundKey, PendingInboundRow,
            ProtocolStore, TcTokenEntry,
        },
    },
};

const MAPPING: &str = "lid, phone_number, created_at, updated_at, learning_source";

fn mapping(r: &tokio_postgres::Row) -> LidPnMappingEntry {
    LidPnMappingEntry {
        lid: r.get(0),
        phone_number: r.get(1),
        created_at: r.get(2),
        updated_at: r.get(3),
        learning_source: r.get(4),
    }
}

#[async_trait]
impl ProtocolStore for PgDevice {
    async fn get_sender_key_devices(&self, group_jid: &str) -> Result<Vec<(String, bool)>> {
        let rows = self
            .read(
                "SELECT device_jid, has_key FROM wa_sender_key_devices
                 WHERE bot_id = $1 AND group_jid = $2",
                &[&self.bot, &group_jid],
            )
            .await?;
        Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    async fn set_sender_key_status(&self, group_jid: &str, entries: &[(&str, bool)]) -> Result<()> {
        let (devices, has) = last_wins(entries.iter().map(|(d, h)| (*d, h)));
        let has: Vec<bool> = has.into_iter().copied().collect();
        self.write_one(
            "INSERT INTO wa_sender_key_devices (bot_id, group_jid, device_jid, has_key)
             SELECT $1, $2, d, h FROM UNNEST($3::text[], $4::bool[]) AS t(d, h)
             ON CONFLICT (bot_id, group_jid, device_jid) DO UPDATE SET has_key = excluded.has_key",
            &[&self.bot, &group_jid, &devices, &has],
        )
        .await
        .map(drop)
    }

    async fn clear_sender_key_devices(&self, group_jid: &str) -> Result<()> {
        self.write_one(
            "DELETE FROM wa_sender_key_devices WHERE bot_id = $1 AND group_jid = $2",
            &[&self.bot, &group_jid],
        )
        .await
        .map(drop)
    }

    async fn delete_sender_key_device_rows(&self, device_jids: &[&str]) -> Result<()> {
        if device_jids.is_empty() {
            return Ok(());
        }
        self.write_one(
            "DELETE FROM wa_sender_key_devices WHERE bot_id = $1 AND device_jid = ANY($2)",
            &[&self.bot, &device_jids],
        )
        .await
        .map(drop)
    }

    async fn clear_all_sender_key_devices(&self) -> Result<()> {
        self.write_one(
            "DELETE FROM wa_sender_key_devices WHERE bot_id = $1",
            &[&self.bot],
        )
        .await
        .map(drop)
    }

    async fn get_lid_mapping(&self, lid: &str) -> Result<Option<LidPnMappingEntry>> {
        Ok(self
            .read_one(
                &format!("SELECT {MAPPING} FROM wa_lid_mappings WHERE bot_id = $1 AND lid = $2"),
                &[&self.bot, &lid],
            )
            .await?
            .as_ref()
            .map(mapping))
    }

    async fn get_pn_mapping(&self, phone: &str) -> Result<Option<LidPnMappingEntry>> {
        // The most recent LID for the number.
        Ok(self
            .read_one(
                &format!(
                    "SELECT {MAPPING} FROM wa_lid_mappings WHERE bot_id = $1 AND phone_number = $2
                     ORDER BY updated_at DESC LIMIT 1"
                ),
                &[&self.bot, &phone],
            )
            .await?
            .as_ref()
            .map(mapping))
    }

    async fn put_lid_mapping(&self, entry: &LidPnMappingEntry) -> Result<()> {
        self.put_lid_mappings(std::slice::from_ref(entry)).await
    }

    async fn put_lid_mappings(&self, entries: &[LidPnMappingEntry]) -> Result<()> {
        let (lids, last) = last_wins(entries.iter().map(|e| (e.lid.as_str(), e)));
        let phones: Vec<&str> = last.iter().map(|e| e.phone_number.as_str()).collect();
        let created: Vec<i64> = last.iter().map(|e| e.created_at).collect();
        let updated: Vec<i64> = last.iter().map(|e| e.updated_at).collect();
        let sources: Vec<&str> = last.iter().map(|e| e.learning_source.as_str()).collect();
        // When it was first learned stays; the rest is the newest word.
        self.write_one(
            "INSERT INTO wa_lid_mappings (bot_id, lid, phone_number, created_at, updated_at,
                learning_source)
             SELECT $1, l, p, c, u, s
             FROM UNNEST($2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::text[])
                AS t(l, p, c, u, s)
             ON CONFLICT (bot_id, lid) DO UPDATE SET phone_number = excluded.phone_number,
                updated_at = excluded.updated_at, learning_source = excluded.learning_source",
            &[&self.bot, &lids, &phones, &created, &updated, &sources],
        )
        .await
        .map(drop)
    }

    async fn get_all_lid_mappings(&self) -> Result<Vec<LidPnMappingEntry>> {
        let rows = self
            .read(
                &format!("SELECT {MAPPING} FROM wa_lid_mappings WHERE bot_id = $1"),
                &[&self.bot],
            )
            .await?;
        Ok(rows.iter().map(mapping).collect())
    }

    async fn save_base_key(&self, address: &str, message_id: &str, base_key: &[u8]) -> Result<()> {
        self.write_one(
            "INSERT INTO wa_base_keys (bot_id, address, message_id, base_key)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (bot_id, address, message_id) DO UPDATE SET base_key = excluded.base_key",
            &[&self.bot, &address, &message_id, &base_key],
        )
        .await
        .map(drop)
    }

    async fn has_same_base_key(
        &self,
        address: &str,
        message_id: &str,
        current_base_key: &[u8],
    ) -> Result<bool> {
        Ok(self
            .read_one(
                "SELECT 1 FROM wa_base_keys
                 WHERE bot_id = $1 AND address = $2 AND message_id = $3 AND base_key = $4",
                &[&self.bot, &address, &message_id, &current_base_key],
            )
            .await?
            .is_some())
    }

    async fn delete_base_key(&self, address: &str, message_id: &str) -> Result<()> {
        self.write_one(
            "DELETE FROM wa_base_keys WHERE bot_id = $1 AND address = $2 AND message_id = $3",
            &[&self.bot, &address, &message_id],
        )
        .await
        .map(drop)
    }

    async fn update_device_list(&self, record: DeviceListRecord) -> Result<()> {
        self.update_device_lists(vec![record]).await
    }

    async fn update_device_lists(&self, records: Vec<DeviceListRecord>) -> Result<()> {
        let (users, last) = last_wins(records.iter().map(|r| (r.user.as_str(), r)));
        let blobs = last.iter().map(json).collect::<Result<Vec<_>>>()?;
        self.write_one(
            "INSERT INTO wa_device_lists (bot_id, user_id, record)
             SELECT $1, u, r FROM UNNEST($2::text[], $3::bytea[]) AS t(u, r)
             ON CONFLICT (bot_id, user_id) DO UPDATE SET record = excluded.record",
            &[&self.bot, &users, &blobs],
        )
        .await
        .map(drop)
    }

    async fn get_devices(&self, user: &str) -> Result<Option<DeviceListRecord>> {
        self.read_one(
            "SELECT record FROM wa_device_lists WHERE bot_id = $1 AND user_id = $2",
            &[&self.bot, &user],
        )
        .await?
        .map(|r| from_json(&r.get::<_, Vec<u8>>(0)))
        .transpose()
    }

    async fn delete_devices(&self, user: &str) -> Result<()> {
        self.write_one(
            "DELETE FROM wa_device_lists WHERE bot_id = $1 AND user_id = $2",
            &[&self.bot, &user],
        )
        .await
        .map(drop)
    }

    async fn get_group_metadata(&self, group_jid: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .read_one(
                "SELECT info FROM wa_group_metadata WHERE bot_id = $1 AND group_jid = $2",
                &[&self.bot, &group_jid],
            )
            .await?
            .map(|r| r.get(0)))
    }

    async fn put_group_metadata(&self, group_jid: &str, blob: &[u8]) -> Result<()> {
        self.write_one(
            "INSERT INTO wa_group_metadata (bot_id, group_jid, info) VALUES ($1, $2, $3)
             ON CONFLICT (bot_id, group_jid) DO UPDATE SET info = excluded.info",
            &[&self.bot, &group_jid, &blob],
        )
        .await
        .map(drop)
    }

    async fn delete_group_metadata(&self, group_jid: &str) -> Result<()> {
        self.write_one(
            "DELETE FROM wa_group_metadata WHERE bot_id = $1 AND group_jid = $2",
            &[&self.bot, &group_jid],
        )
        .await
        .map(drop)
    }

    async fn get_tc_token(&self, jid: &str) -> Result<Option<TcTokenEntry>> {
        Ok(self
            .read_one(
                "SELECT token, token_timestamp, sender_timestamp FROM wa_tc_tokens
                 WHERE bot_id = $1 AND jid = $2",
                &[&self.bot, &jid],
            )
            .await?
            .map(|r| TcTokenEntry {
                token: r.get(0),
                token_timestamp: r.get(1),
                sender_timestamp: r.get(2),
            }))
    }

    async fn put_tc_token(&self, jid: &str, entry: &TcTokenEntry) -> Result<()> {
        self.write_one(
            "INSERT INTO wa_tc_tokens (bot_id, jid, token, token_timestamp, sender_timestamp)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (bot_id, jid) DO UPDATE SET token = excluded.token,
                token_timestamp = excluded.token_timestamp,
                sender_timestamp = excluded.sender_timestamp",
            &[
                &self.bot,
                &jid,
                &entry.token,
                &entry.token_timestamp,
                &entry.sender_timestamp,
            ],
        )
        .await
        .map(drop)
    }

    async fn delete_tc_token(&self, jid: &str) -> Result<()> {
        self.write_one(
            "DELETE FROM wa_tc_tokens WHERE bot_id = $1 AND jid = $2",
            &[&self.bot, &jid],
        )
        .await
        .map(drop)
    }

    async fn get_all_tc_token_jids(&self) -> Result<Vec<String>> {
        let rows = self
            .read(
                "SELECT jid FROM wa_tc_tokens WHERE bot_id = $1",
                &[&self.bot],
            )
            .await?;
        Ok(rows.into_iter().map(|r| r.get(0)).collect())
    }

    async fn delete_expired_tc_tokens(&self, token_cutoff: i64, sender_cutoff: i64) -> Result<u32> {
        // Kept while either window lives: the token received, or the sender bucket.
        self.write_one(
            "DELETE FROM wa_tc_tokens WHERE bot_id = $1
                AND NOT (length(token) > 0 AND token_timestamp >= $2)
                AND NOT (sender_timestamp IS NOT NULL AND sender_timestamp >= $3)
             RETURNING 1",
            &[&self.bot, &token_cutoff, &sender_cutoff],
        )
        .await
        .map(count)
    }

    async fn touch_tc_token_sender_timestamp(
        &self,
        jid: &str,
        sender_timestamp: i64,
    ) -> Result<()> {
        // One statement: only ever forward, and a token stored meanwhile is kept.
        self.write_one(
            "INSERT INTO wa_tc_tokens AS t (bot_id, jid, token, token_timestamp, sender_timestamp)
             VALUES ($1, $2, ''::bytea, $3, $3)
             ON CONFLICT (bot_id, jid) DO UPDATE
                SET sender_timestamp = GREATEST(t.sender_timestamp, excluded.sender_timestamp)",
            &[&self.bot, &jid, &sender_timestamp],
        )
        .await
        .map(drop)
    }

    async fn store_received_tc_token(
        &self,
        jid: &str,
        token: &[u8],
        token_timestamp: i64,
    ) -> Result<()> {
        // Newer wins; a placeholder never blocks the first real token; the sender bucket stays.
        self.write_one(
            "INSERT INTO wa_tc_tokens AS t (bot_id, jid, token, token_timestamp, sender_timestamp)
             VALUES ($1, $2, $3, $4, NULL)
             ON CONFLICT (bot_id, jid) DO UPDATE
                SET token = excluded.token, token_timestamp = excluded.token_timestamp
                WHERE length(t.token) = 0 OR excluded.token_timestamp >= t.token_timestamp",
            &[&self.bot, &jid, &token, &token_timestamp],
        )
        .await
        .map(drop)
    }

    async fn store_sent_message(
        &self,
        chat_jid: &str,
        message_id: &str,
        payload: &[u8],
    ) -> Result<()> {
        self.store_sent(chat_jid, message_id, payload).await
    }

    async fn take_sent_message(&self, chat_jid: &str, message_id: &str) -> Result<Option<Vec<u8>>> {
        self.take_sent(chat_jid, message_id).await
    }

    async fn delete_expired_sent_messages(&self, cutoff_timestamp: i64) -> Result<u32> {
        self.delete_sent_before(cutoff_timestamp).await
    }

    async fn store_pending_inbound(
        &self,
        chat: &str,
        sender: &str,
        id: &str,
        message: &[u8],
    ) -> Result<()> {
        self.store_inbound(&[PendingInboundRow {
            chat,
            sender,
            id,
            message,
        }])
        .await
    }

    async fn get_pending_inbound(
        &self,
        chat: &str,
        sender: &str,
        id: &str,
    ) -> Result<Option<Vec<u8>>> {
        self.get_inbound(chat, sender, id).await
    }

    async fn delete_pending_inbound(&self, chat: &str, sender: &str, id: &str) -> Result<()> {
        self.delete_inbound(&[PendingInboundKey { chat, sender, id }])
            .await
    }

    async fn delete_expired_pending_inbound(&self, cutoff_timestamp: i64) -> Result<u32> {
        self.delete_inbound_before(cutoff_timestamp).await
    }

    async fn store_pending_inbound_batch(&self, rows: &[PendingInboundRow<'_>]) -> Result<()> {
        self.store_inbound(rows).await
    }

    async fn delete_pending_inbound_batch(&self, keys: &[PendingInboundKey<'_>]) -> Result<()> {
        self.delete_inbound(keys).await
    }
}
