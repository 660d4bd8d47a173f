//! Moving a device kept by an earlier botlink (whatsapp-rust's SQLite store, one file per bot in
//! the node's data directory) into PostgreSQL. The `Backend` trait cannot list sessions,
//! identities, sender keys or mutation MACs, so their keys are read from whatsapp-rust-sqlite-
//! storage 0.7's own tables; every value is then read through that store (which decodes what it
//! encoded) and written through ours, under the importing holder's fence.

use super::PgDevice;
use rusqlite::{Connection, OpenFlags, params};
use std::{path::Path, sync::Arc};
use whatsapp_rust::{
    bytes::Bytes,
    store::SqliteStore,
    wacore::{
        appstate::processor::AppStateMutationMAC,
        store::traits::{
            AppSyncStore, DeviceStore, MsgSecretEntry, MsgSecretStore, ProtocolStore, SignalStore,
        },
    },
};

/// The device of whatsapp-rust's `SqliteStore::new` (its single-account id).
const DEVICE: i32 = 1;

/// What an import moved.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Imported {
    pub registered: bool,
    pub rows: usize,
}

/// Copies the device in `file` into `to`. Nothing is written unless the file holds a device;
/// the file itself is left as it is (the caller renames it once the import is done).
pub async fn import(file: &Path, to: &PgDevice) -> Result<Imported, String> {
    let path = file.to_path_buf();
    let keys = tokio::task::spawn_blocking(move || keys_of(&path))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("{}: {e}", file.display()))?;
    let from = SqliteStore::new(&file.to_string_lossy())
        .await
        .map_err(|e| e.to_string())?;
    let Some(device) = from.load().await.map_err(|e| e.to_string())? else {
        return Ok(Imported::default());
    };
    let e = |e: whatsapp_rust::wacore::store::error::StoreError| e.to_string();
    to.save(&device).await.map_err(e)?;
    let mut rows = 1;
    for address in &keys.identities {
        if let Some(key) = from.load_identity(address).await.map_err(e)? {
            to.put_identity(address, key).await.map_err(e)?;
            rows += 1;
        }
    }
    let mut sessions = Vec::new();
    for address in &keys.sessions {
        if let Some(record) = from.get_session(address).await.map_err(e)? {
            sessions.push((Arc::<str>::from(address.as_str()), record));
        }
    }
    rows += sessions.len();
    to.put_sessions_batch(&sessions).await.map_err(e)?;
    for (id, uploaded) in &keys.prekeys {
        if let Some(record) = from.load_prekey(*id).await.map_err(e)? {
            to.store_prekey(*id, &record, *uploaded).await.map_err(e)?;
            rows += 1;
        }
    }
    for (id, record) in from.load_all_signed_prekeys().await.map_err(e)? {
        to.store_signed_prekey(id, &record).await.map_err(e)?;
        rows += 1;
    }
    let mut sender_keys = Vec::new();
    for address in &keys.sender_keys {
        if let Some(record) = from.get_sender_key(address).await.map_err(e)? {
            sender_keys.push((Arc::<str>::from(address.as_str()), Bytes::from(record)));
        }
    }
    rows += sender_keys.len();
    to.put_sender_keys_batch(&sender_keys).await.map_err(e)?;
    for key_id in &keys.sync_keys {
        if let Some(key) = from.get_sync_key(key_id).await.map_err(e)? {
            to.set_sync_key(key_id, key).await.map_err(e)?;
            rows += 1;
        }
    }
    for name in &keys.versions {
        to.set_version(name, from.get_version(name).await.map_err(e)?)
            .await
            .map_err(e)?;
        rows += 1;
    }
    for (name, version, index_mac) in &keys.mutation_macs {
        if let Some(value_mac) = from.get_mutation_mac(name, index_mac).await.map_err(e)? {
            let mac = AppStateMutationMAC {
                index_mac: index_mac.clone(),
                value_mac,
            };
            to.put_mutation_macs(name, *version, &[mac])
                .await
                .map_err(e)?;
            rows += 1;
        }
    }
    for group in &keys.sender_key_groups {
        let devices = from.get_sender_key_devices(group).await.map_err(e)?;
        let entries: Vec<(&str, bool)> = devices.iter().map(|(d, k)| (d.as_str(), *k)).collect();
        to.set_sender_key_status(group, &entries).await.map_err(e)?;
        rows += entries.len();
    }
    let mappings = from.get_all_lid_mappings().await.map_err(e)?;
    rows += mappings.len();
    to.put_lid_mappings(&mappings).await.map_err(e)?;
    for (address, message_id, base_key) in &keys.base_keys {
        to.save_base_key(address, message_id, base_key)
            .await
            .map_err(e)?;
        rows += 1;
    }
    let mut lists = Vec::new();
    for user in &keys.device_lists {
        if let Some(list) = from.get_devices(user).await.map_err(e)? {
            lists.push(list);
        }
    }
    rows += lists.len();
    to.update_device_lists(lists).await.map_err(e)?;
    for group in &keys.group_metadata {
        if let Some(blob) = from.get_group_metadata(group).await.map_err(e)? {
            to.put_group_metadata(group, &blob).await.map_err(e)?;
            rows += 1;
        }
    }
    for jid in from.get_all_tc_token_jids().await.map_err(e)? {
        if let Some(token) = from.get_tc_token(&jid).await.map_err(e)? {
            to.put_tc_token(&jid, &token).await.map_err(e)?;
            rows += 1;
        }
    }
    for (chat, id, payload) in &keys.sent {
        to.store_sent_message(chat, id, payload).await.map_err(e)?;
        rows += 1;
    }
    for (chat, sender, id) in &keys.inbound {
        if let Some(message) = from
            .get_pending_inbound(chat, sender, id)
            .await
            .map_err(e)?
        {
            to.store_pending_inbound(chat, sender, id, &message)
                .await
                .map_err(e)?;
            rows += 1;
        }
    }
    let mut secrets = Vec::new();
    for (chat, sender, id, expires_at) in &keys.secrets {
        if let Some((secret, message_ts)) = from
            .get_msg_secret_with_ts(chat, sender, id)
            .await
            .map_err(e)?
            && let Ok(secret) = secret.try_into()
        {
            secrets.push(MsgSecretEntry {
                chat: Arc::from(chat.as_str()),
                sender: Arc::from(sender.as_str()),
                msg_id: Arc::from(id.as_str()),
                secret,
                expires_at: *expires_at,
                message_ts,
            });
        }
    }
    rows += secrets.len();
    to.put_msg_secrets(secrets).await.map_err(e)?;
    // Everything in the main file, so that it stands alone once renamed (kept as it was).
    drop(from);
    let path = file.to_path_buf();
    tokio::task::spawn_blocking(move || {
        Connection::open(&path)?.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| format!("{}: {e}", file.display()))?;
    Ok(Imported {
        registered: device.pn.is_some(),
        rows,
    })
}

/// The keys of every row of the device, from the store's own tables.
#[derive(Default)]
struct Keys {
    identities: Vec<String>,
    sessions: Vec<String>,
    prekeys: Vec<(u32, bool)>,
    sender_keys: Vec<String>,
    sync_keys: Vec<Vec<u8>>,
    versions: Vec<String>,
    mutation_macs: Vec<(String, u64, Vec<u8>)>,
    sender_key_groups: Vec<String>,
    base_keys: Vec<(String, String, Vec<u8>)>,
    device_lists: Vec<String>,
    group_metadata: Vec<String>,
    sent: Vec<(String, String, Vec<u8>)>,
    inbound: Vec<(String, String, String)>,
    secrets: Vec<(String, String, String, i64)>,
}

fn keys_of(file: &Path) -> rusqlite::Result<Keys> {
    let db = Connection::open_with_flags(file, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    fn all<T>(
        db: &Connection,
        sql: &str,
        row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<Vec<T>> {
        let mut stmt = db.prepare(sql)?;
        let rows = stmt.query_map(params![DEVICE], row)?;
        rows.collect()
    }
    let text = |r: &rusqlite::Row<'_>| r.get::<_, String>(0);
    Ok(Keys {
        identities: all(
            &db,
            "SELECT address FROM identities WHERE device_id = ?1",
            text,
        )?,
        sessions: all(
            &db,
            "SELECT address FROM sessions WHERE device_id = ?1",
            text,
        )?,
        prekeys: all(
            &db,
            "SELECT id, uploaded FROM prekeys WHERE device_id = ?1",
            |r| Ok((r.get::<_, i64>(0)? as u32, r.get(1)?)),
        )?,
        sender_keys: all(
            &db,
            "SELECT address FROM sender_keys WHERE device_id = ?1",
            text,
        )?,
        sync_keys: all(
            &db,
            "SELECT key_id FROM app_state_keys WHERE device_id = ?1",
            |r| r.get(0),
        )?,
        versions: all(
            &db,
            "SELECT name FROM app_state_versions WHERE device_id = ?1",
            text,
        )?,
        mutation_macs: all(
            &db,
            "SELECT name, version, index_mac FROM app_state_mutation_macs WHERE device_id = ?1",
            |r| Ok((r.get(0)?, r.get::<_, i64>(1)?.max(0) as u64, r.get(2)?)),
        )?,
        sender_key_groups: all(
            &db,
            "SELECT DISTINCT group_jid FROM sender_key_devices WHERE device_id = ?1",
            text,
        )?,
        base_keys: all(
            &db,
            "SELECT address, message_id, base_key FROM base_keys WHERE device_id = ?1",
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?,
        device_lists: all(
            &db,
            "SELECT user_id FROM device_registry WHERE device_id = ?1",
            text,
        )?,
        group_metadata: all(
            &db,
            "SELECT group_jid FROM group_metadata WHERE device_id = ?1",
            text,
        )?,
        sent: all(
            &db,
            "SELECT chat_jid, message_id, payload FROM sent_messages WHERE device_id = ?1",
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?,
        inbound: all(
            &db,
            "SELECT chat, sender, id FROM pending_inbound_messages WHERE device_id = ?1",
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?,
        secrets: all(
            &db,
            "SELECT chat, sender, msg_id, expires_at FROM msg_secrets WHERE device_id = ?1",
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )?,
    })
}
