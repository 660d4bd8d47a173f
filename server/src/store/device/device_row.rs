//! The device itself: its keys and account, one row per bot, as whatsapp-rust serializes it.

use super::{PgDevice, from_json, json};
use whatsapp_rust::{
    async_trait,
    wacore::store::{Device, error::Result, traits::DeviceStore},
};

/// The one device of a bot's store (whatsapp-rust's multi-account ids do not apply).
const DEVICE_ID: i32 = 1;

#[async_trait]
impl DeviceStore for PgDevice {
    async fn save(&self, device: &Device) -> Result<()> {
        // `registered`: a phone linked it (the resume and adoption look only at those).
        self.write_one(
            "INSERT INTO wa_devices (bot_id, device, registered) VALUES ($1, $2, $3)
             ON CONFLICT (bot_id) DO UPDATE SET device = excluded.device,
                registered = excluded.registered",
            &[&self.bot, &json(device)?, &device.pn.is_some()],
        )
        .await
        .map(drop)
    }

    async fn load(&self) -> Result<Option<Device>> {
        self.read_one(
            "SELECT device FROM wa_devices WHERE bot_id = $1",
            &[&self.bot],
        )
        .await?
        .map(|r| from_json(&r.get::<_, Vec<u8>>(0)))
        .transpose()
    }

    async fn exists(&self) -> Result<bool> {
        Ok(self
            .read_one("SELECT 1 FROM wa_devices WHERE bot_id = $1", &[&self.bot])
            .await?
            .is_some())
    }

    async fn create(&self) -> Result<i32> {
        self.write_one(
            "INSERT INTO wa_devices (bot_id, device, registered) VALUES ($1, $2, false)
             ON CONFLICT (bot_id) DO NOTHING",
            &[&self.bot, &json(&Device::new())?],
        )
        .await?;
        Ok(DEVICE_ID)
    }
}
