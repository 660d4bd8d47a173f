//! The secrets of messages sent, for the add-ons (reactions, poll votes, edits) that answer them.

use super::{PgDevice, array, count};
use std::{collections::HashMap, sync::Arc};
use whatsapp_rust::{
    async_trait,
    wacore::store::{
        error::Result,
        traits::{
            MsgSecretEntry, MsgSecretStore, merge_msg_secret_expiry, merge_msg_secret_message_ts,
        },
    },
};

#[async_trait]
impl MsgSecretStore for PgDevice {
    async fn put_msg_secrets(&self, entries: Vec<MsgSecretEntry>) -> Result<usize> {
        let stored = entries.len();
        // One row per key, merged as the database merges it with what is stored.
        let mut rows: HashMap<(Arc<str>, Arc<str>, Arc<str>), MsgSecretEntry> = HashMap::new();
        for e in entries {
            let key = (e.chat.clone(), e.sender.clone(), e.msg_id.clone());
            match rows.get_mut(&key) {
                Some(old) => {
                    old.secret = e.secret;
                    old.expires_at = merge_msg_secret_expiry(old.expires_at, e.expires_at);
                    old.message_ts = merge_msg_secret_message_ts(old.message_ts, e.message_ts);
                }
                None => {
                    rows.insert(key, e);
                }
            }
        }
        let rows: Vec<&MsgSecretEntry> = rows.values().collect();
        let chats: Vec<&str> = rows.iter().map(|e| &*e.chat).collect();
        let senders: Vec<&str> = rows.iter().map(|e| &*e.sender).collect();
        let ids: Vec<&str> = rows.iter().map(|e| &*e.msg_id).collect();
        let secrets: Vec<&[u8]> = rows.iter().map(|e| &e.secret[..]).collect();
        let expires: Vec<i64> = rows.iter().map(|e| e.expires_at).collect();
        let times: Vec<i64> = rows.iter().map(|e| e.message_ts).collect();
        // A redelivery never shortens a window (0 = never), nor forgets a known parent time.
        self.write_one(
            "INSERT INTO wa_msg_secrets AS m (bot_id, chat, sender, msg_id, secret, expires_at,
                message_ts)
             SELECT $1, c, s, i, k, e, t
             FROM UNNEST($2::text[], $3::text[], $4::text[], $5::bytea[], $6::bigint[],
                $7::bigint[]) AS u(c, s, i, k, e, t)
             ON CONFLICT (bot_id, chat, sender, msg_id) DO UPDATE SET secret = excluded.secret,
                expires_at = CASE WHEN m.expires_at = 0 OR excluded.expires_at = 0 THEN 0
                                  ELSE GREATEST(m.expires_at, excluded.expires_at) END,
                message_ts = GREATEST(m.message_ts, excluded.message_ts)",
            &[
                &self.bot, &chats, &senders, &ids, &secrets, &expires, &times,
            ],
        )
        .await?;
        Ok(stored)
    }

    async fn get_msg_secret(
        &self,
        chat: &str,
        sender: &str,
        msg_id: &str,
    ) -> Result<Option<Vec<u8>>> {
        Ok(self
            .get_msg_secret_with_ts(chat, sender, msg_id)
            .await?
            .map(|(secret, _)| secret))
    }

    async fn get_msg_secret_with_ts(
        &self,
        chat: &str,
        sender: &str,
        msg_id: &str,
    ) -> Result<Option<(Vec<u8>, i64)>> {
        self.read_one(
            "SELECT secret, message_ts FROM wa_msg_secrets
             WHERE bot_id = $1 AND chat = $2 AND sender = $3 AND msg_id = $4",
            &[&self.bot, &chat, &sender, &msg_id],
        )
        .await?
        .map(|r| {
            let secret: [u8; 32] = array(r.get(0), "a message secret")?;
            Ok((secret.to_vec(), r.get(1)))
        })
        .transpose()
    }

    async fn delete_expired_msg_secrets(&self, cutoff_timestamp: i64) -> Result<u32> {
        self.write_one(
            "DELETE FROM wa_msg_secrets
             WHERE bot_id = $1 AND expires_at <> 0 AND expires_at <= $2 RETURNING 1",
            &[&self.bot, &cutoff_timestamp],
        )
        .await
        .map(count)
    }
}
