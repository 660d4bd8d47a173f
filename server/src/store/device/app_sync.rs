//! App-state sync: its keys, each collection's version, and the mutation MACs.

use super::{PgDevice, from_json, json};
use std::collections::HashMap;
use whatsapp_rust::{
    async_trait,
    wacore::{
        appstate::{hash::HashState, processor::AppStateMutationMAC},
        store::{
            error::Result,
            traits::{AppStateSyncKey, AppSyncStore},
        },
    },
};

#[async_trait]
impl AppSyncStore for PgDevice {
    async fn get_sync_key(&self, key_id: &[u8]) -> Result<Option<AppStateSyncKey>> {
        Ok(self
            .read_one(
                "SELECT key_data, fingerprint, timestamp FROM wa_sync_keys
                 WHERE bot_id = $1 AND key_id = $2",
                &[&self.bot, &key_id],
            )
            .await?
            .map(|r| AppStateSyncKey {
                key_data: r.get(0),
                fingerprint: r.get(1),
                timestamp: r.get(2),
            }))
    }

    async fn set_sync_key(&self, key_id: &[u8], key: AppStateSyncKey) -> Result<()> {
        self.write_one(
            "INSERT INTO wa_sync_keys (bot_id, key_id, key_data, fingerprint, timestamp)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (bot_id, key_id) DO UPDATE SET key_data = excluded.key_data,
                fingerprint = excluded.fingerprint, timestamp = excluded.timestamp",
            &[
                &self.bot,
                &key_id,
                &key.key_data,
                &key.fingerprint,
                &key.timestamp,
            ],
        )
        .await
        .map(drop)
    }

    async fn get_version(&self, name: &str) -> Result<HashState> {
        match self
            .read_one(
                "SELECT state FROM wa_app_state_versions WHERE bot_id = $1 AND name = $2",
                &[&self.bot, &name],
            )
            .await?
        {
            Some(r) => from_json(&r.get::<_, Vec<u8>>(0)),
            None => Ok(HashState::default()),
        }
    }

    async fn set_version(&self, name: &str, state: HashState) -> Result<()> {
        self.write_one(
            "INSERT INTO wa_app_state_versions (bot_id, name, state) VALUES ($1, $2, $3)
             ON CONFLICT (bot_id, name) DO UPDATE SET state = excluded.state",
            &[&self.bot, &name, &json(&state)?],
        )
        .await
        .map(drop)
    }

    async fn put_mutation_macs(
        &self,
        name: &str,
        version: u64,
        mutations: &[AppStateMutationMAC],
    ) -> Result<()> {
        let mut last: HashMap<&[u8], &[u8]> = HashMap::new();
        for m in mutations {
            last.insert(&m.index_mac, &m.value_mac);
        }
        let index: Vec<&[u8]> = last.keys().copied().collect();
        let value: Vec<&[u8]> = last.values().copied().collect();
        let version = i64::try_from(version).unwrap_or(i64::MAX);
        self.write_one(
            "INSERT INTO wa_mutation_macs (bot_id, name, index_mac, version, value_mac)
             SELECT $1, $2, i, $3, v FROM UNNEST($4::bytea[], $5::bytea[]) AS t(i, v)
             ON CONFLICT (bot_id, name, index_mac) DO UPDATE SET version = excluded.version,
                value_mac = excluded.value_mac",
            &[&self.bot, &name, &version, &index, &value],
        )
        .await
        .map(drop)
    }

    async fn get_mutation_mac(&self, name: &str, index_mac: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self
            .read_one(
                "SELECT value_mac FROM wa_mutation_macs
                 WHERE bot_id = $1 AND name = $2 AND index_mac = $3",
                &[&self.bot, &name, &index_mac],
            )
            .await?
            .map(|r| r.get(0)))
    }

    async fn get_mutation_macs(
        &self,
        name: &str,
        index_macs: &[[u8; 32]],
    ) -> Result<HashMap<[u8; 32], Vec<u8>>> {
        let wanted: Vec<&[u8]> = index_macs.iter().map(|m| &m[..]).collect();
        let rows = self
            .read(
                "SELECT index_mac, value_mac FROM wa_mutation_macs
                 WHERE bot_id = $1 AND name = $2 AND index_mac = ANY($3)",
                &[&self.bot, &name, &wanted],
            )
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| Some((r.get::<_, Vec<u8>>(0).try_into().ok()?, r.get(1))))
            .collect())
    }

    async fn delete_mutation_macs(&self, name: &str, index_macs: &[Vec<u8>]) -> Result<()> {
        let gone: Vec<&[u8]> = index_macs.iter().map(Vec::as_slice).collect();
        self.write_one(
            "DELETE FROM wa_mutation_macs WHERE bot_id = $1 AND name = $2 AND index_mac = ANY($3)",
            &[&self.bot, &name, &gone],
        )
        .await
        .map(drop)
    }

    async fn clear_mutation_macs(&self, name: &str) -> Result<()> {
        self.write_one(
            "DELETE FROM wa_mutation_macs WHERE bot_id = $1 AND name = $2",
            &[&self.bot, &name],
        )
        .await
        .map(drop)
    }

    async fn get_latest_sync_key_id(&self) -> Result<Option<Vec<u8>>> {
        // The highest key id, as whatsapp-rust's SQLite store answers (WhatsApp's key ids grow).
        Ok(self
            .read_one(
                "SELECT key_id FROM wa_sync_keys WHERE bot_id = $1 ORDER BY key_id DESC LIMIT 1",
                &[&self.bot],
            )
            .await?
            .map(|r| r.get(0)))
    }
}
