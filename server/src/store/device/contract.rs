//! What a whatsapp-rust device store must do, checked against the library's own stores (its
//! `InMemoryBackend` and `SqliteStore`: a check they fail is a wrong check) and against ours on
//! PostgreSQL (`scripts/cluster-test`, which starts one); and, for ours, that every write under
//! a lost fence is refused and changes nothing.

use std::{collections::HashMap, sync::Arc};
use whatsapp_rust::{
    bytes::Bytes,
    wacore::{
        appstate::{hash::HashState, processor::AppStateMutationMAC},
        store::{
            Device,
            traits::{
                AppStateSyncKey, Backend, DeviceInfo, DeviceListRecord, LidPnMappingEntry,
                MsgSecretEntry, PendingInboundKey, PendingInboundRow, TcTokenEntry,
            },
        },
    },
};

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn arc(s: &str) -> Arc<str> {
    Arc::from(s)
}

pub async fn check(s: &dyn Backend) {
    if !s.exists().await.unwrap() {
        s.create().await.unwrap();
    }
    assert!(s.exists().await.unwrap());
    device(s).await;
    signal(s).await;
    prekeys(s).await;
    app_sync(s).await;
    protocol(s).await;
    tc_tokens(s).await;
    sent_and_inbound(s).await;
    secrets(s).await;
}

async fn device(s: &dyn Backend) {
    let mut d = Device::new();
    d.push_name = "Contract".into();
    d.registration_id = 4242;
    s.save(&d).await.unwrap();
    let back = s.load().await.unwrap().expect("a saved device loads");
    assert_eq!(
        (back.push_name.as_str(), back.registration_id),
        ("Contract", 4242)
    );
    assert_eq!(back.identity_key.public_key, d.identity_key.public_key);
    assert_eq!(back.adv_secret_key, d.adv_secret_key);
}

async fn signal(s: &dyn Backend) {
    s.put_identity("111@s.whatsapp.net", [1; 32]).await.unwrap();
    s.put_identities_batch(&[
        (arc("222:3@lid"), [2; 32]),
        (arc("111@s.whatsapp.net"), [3; 32]),
    ])
    .await
    .unwrap();
    assert_eq!(
        s.load_identity("111@s.whatsapp.net").await.unwrap(),
        Some([3; 32]),
        "upserted"
    );
    assert_eq!(s.load_identity("222:3@lid").await.unwrap(), Some([2; 32]));
    s.delete_identity("222:3@lid").await.unwrap();
    assert_eq!(s.load_identity("222:3@lid").await.unwrap(), None);

    s.put_session("333@s.whatsapp.net", b"one").await.unwrap();
    s.put_sessions_batch(&[
        (arc("333@s.whatsapp.net"), b("two")),
        (arc("333:7@s.whatsapp.net"), b("three")),
    ])
    .await
    .unwrap();
    assert_eq!(
        s.get_session("333@s.whatsapp.net").await.unwrap(),
        Some(b("two"))
    );
    assert!(s.has_session("333:7@s.whatsapp.net").await.unwrap());
    s.delete_session("333:7@s.whatsapp.net").await.unwrap();
    assert!(!s.has_session("333:7@s.whatsapp.net").await.unwrap());
    // By user part, across devices, sessions and identities alike; never a prefix of another.
    assert!(s.has_signal_state_for_user("333").await.unwrap());
    assert!(s.has_signal_state_for_user("111").await.unwrap());
    assert!(!s.has_signal_state_for_user("33").await.unwrap());
    assert!(!s.has_signal_state_for_user("999").await.unwrap());

    s.put_sender_key("g1::444", b"sk1").await.unwrap();
    s.put_sender_keys_batch(&[(arc("g1::444"), b("sk2")), (arc("g1::555"), b("sk3"))])
        .await
        .unwrap();
    assert_eq!(
        s.get_sender_key("g1::444").await.unwrap().as_deref(),
        Some(&b"sk2"[..])
    );
    s.delete_sender_key("g1::555").await.unwrap();
    assert_eq!(s.get_sender_key("g1::555").await.unwrap(), None);
}

async fn prekeys(s: &dyn Backend) {
    s.store_prekey(7, b"pk7", false).await.unwrap();
    s.store_prekeys_batch(&[(8, b("pk8")), (9, b("pk9"))], true)
        .await
        .unwrap();
    assert_eq!(s.load_prekey(8).await.unwrap(), Some(b("pk8")));
    assert_eq!(s.get_max_prekey_id().await.unwrap(), 9);
    let mut found = s.load_prekeys_batch(&[9, 7, 100]).await.unwrap();
    found.sort_by_key(|(id, _)| *id);
    assert_eq!(
        found,
        vec![(7, b("pk7")), (9, b("pk9"))],
        "only those that exist"
    );
    // Marking never brings a consumed key back.
    s.remove_prekey(9).await.unwrap();
    s.mark_prekeys_uploaded(&[7, 9]).await.unwrap();
    assert_eq!(s.load_prekey(9).await.unwrap(), None);
    assert_eq!(s.load_prekey(7).await.unwrap(), Some(b("pk7")));

    s.store_signed_prekey(1, b"spk1").await.unwrap();
    s.store_signed_prekey(2, b"spk2").await.unwrap();
    s.store_signed_prekey(1, b"spk1b").await.unwrap();
    assert_eq!(
        s.load_signed_prekey(1).await.unwrap().as_deref(),
        Some(&b"spk1b"[..])
    );
    let mut all = s.load_all_signed_prekeys().await.unwrap();
    all.sort();
    assert_eq!(all, vec![(1, b"spk1b".to_vec()), (2, b"spk2".to_vec())]);
    s.remove_signed_prekey(2).await.unwrap();
    assert_eq!(s.load_signed_prekey(2).await.unwrap(), None);
}

async fn app_sync(s: &dyn Backend) {
    let key = |n: u8| AppStateSyncKey {
        key_data: vec![n; 32],
        fingerprint: vec![n, n],
        timestamp: i64::from(n),
    };
    // In increasing key order: "the latest" is the last stored and the highest alike.
    s.set_sync_key(&[0, 0, 1], key(1)).await.unwrap();
    s.set_sync_key(&[0, 0, 2], key(2)).await.unwrap();
    assert_eq!(
        s.get_sync_key(&[0, 0, 1]).await.unwrap().unwrap().key_data,
        vec![1; 32]
    );
    assert_eq!(
        s.get_sync_key(&[9]).await.unwrap().map(|k| k.timestamp),
        None
    );
    assert_eq!(
        s.get_latest_sync_key_id().await.unwrap(),
        Some(vec![0, 0, 2])
    );

    assert_eq!(
        s.get_version("regular").await.unwrap().version,
        0,
        "none yet"
    );
    let mut state = HashState {
        version: 5,
        ..Default::default()
    };
    state.hash[0] = 9;
    state.index_value_map.insert("k".into(), vec![1, 2]);
    s.set_version("regular", state).await.unwrap();
    let back = s.get_version("regular").await.unwrap();
    assert_eq!((back.version, back.hash[0]), (5, 9));
    assert_eq!(back.index_value_map.get("k"), Some(&vec![1, 2]));

    let mac = |i: u8, v: u8| AppStateMutationMAC {
        index_mac: vec![i; 32],
        value_mac: vec![v; 32],
    };
    s.put_mutation_macs("regular", 5, &[mac(1, 10), mac(2, 20)])
        .await
        .unwrap();
    s.put_mutation_macs("critical", 5, &[mac(1, 30)])
        .await
        .unwrap();
    assert_eq!(
        s.get_mutation_mac("regular", &[1; 32]).await.unwrap(),
        Some(vec![10; 32])
    );
    let batch = s
        .get_mutation_macs("regular", &[[1; 32], [2; 32], [3; 32]])
        .await
        .unwrap();
    assert_eq!(
        batch,
        HashMap::from([([1; 32], vec![10; 32]), ([2; 32], vec![20; 32])])
    );
    s.delete_mutation_macs("regular", &[vec![2; 32]])
        .await
        .unwrap();
    assert_eq!(s.get_mutation_mac("regular", &[2; 32]).await.unwrap(), None);
    s.clear_mutation_macs("regular").await.unwrap();
    assert_eq!(s.get_mutation_mac("regular", &[1; 32]).await.unwrap(), None);
    assert_eq!(
        s.get_mutation_mac("critical", &[1; 32]).await.unwrap(),
        Some(vec![30; 32]),
        "only the named collection"
    );
}

async fn protocol(s: &dyn Backend) {
    let (d1, d2) = ("444:1@s.whatsapp.net", "444:2@s.whatsapp.net");
    s.set_sender_key_status("g@g.us", &[(d1, true), (d2, false)])
        .await
        .unwrap();
    s.set_sender_key_status("h@g.us", &[(d1, true)])
        .await
        .unwrap();
    let mut devices = s.get_sender_key_devices("g@g.us").await.unwrap();
    devices.sort();
    assert_eq!(devices, vec![(d1.to_owned(), true), (d2.to_owned(), false)]);
    s.delete_sender_key_device_rows(&[d1]).await.unwrap();
    assert_eq!(
        s.get_sender_key_devices("g@g.us").await.unwrap(),
        vec![(d2.to_owned(), false)]
    );
    assert!(
        s.get_sender_key_devices("h@g.us").await.unwrap().is_empty(),
        "in every group"
    );
    s.clear_sender_key_devices("g@g.us").await.unwrap();
    assert!(s.get_sender_key_devices("g@g.us").await.unwrap().is_empty());
    s.set_sender_key_status("h@g.us", &[(d2, true)])
        .await
        .unwrap();
    s.clear_all_sender_key_devices().await.unwrap();
    assert!(s.get_sender_key_devices("h@g.us").await.unwrap().is_empty());

    let entry = |phone: &str, updated: i64| LidPnMappingEntry {
        lid: "100000012345678".into(),
        phone_number: phone.into(),
        created_at: 1,
        updated_at: updated,
        learning_source: "usync".into(),
    };
    s.put_lid_mapping(&entry("559980000001", 2)).await.unwrap();
    assert_eq!(
        s.get_pn_mapping("559980000001")
            .await
            .unwrap()
            .map(|e| e.lid),
        Some("100000012345678".into())
    );
    s.put_lid_mappings(&[entry("559980000002", 3)])
        .await
        .unwrap();
    let now = s.get_lid_mapping("100000012345678").await.unwrap().unwrap();
    assert_eq!(
        (now.phone_number.as_str(), now.updated_at),
        ("559980000002", 3)
    );
    assert!(
        s.get_pn_mapping("559980000001").await.unwrap().is_none(),
        "the old number no longer maps"
    );
    assert_eq!(s.get_all_lid_mappings().await.unwrap().len(), 1);

    s.save_base_key("555@s.whatsapp.net", "M1", b"base")
        .await
        .unwrap();
    assert!(
        s.has_same_base_key("555@s.whatsapp.net", "M1", b"base")
            .await
            .unwrap()
    );
    assert!(
        !s.has_same_base_key("555@s.whatsapp.net", "M1", b"other")
            .await
            .unwrap()
    );
    s.delete_base_key("555@s.whatsapp.net", "M1").await.unwrap();
    assert!(
        !s.has_same_base_key("555@s.whatsapp.net", "M1", b"base")
            .await
            .unwrap()
    );

    let list = |user: &str, n: u32| DeviceListRecord {
        user: user.into(),
        devices: (0..n).map(|i| DeviceInfo::new(i, Some(i))).collect(),
        timestamp: 10,
        phash: Some("2:abc".into()),
        raw_id: Some(7),
    };
    s.update_device_list(list("666", 1)).await.unwrap();
    s.update_device_lists(vec![list("666", 3), list("777", 2)])
        .await
        .unwrap();
    let got = s.get_devices("666").await.unwrap().unwrap();
    assert_eq!(
        (got.devices.len(), got.raw_id, got.phash.as_deref()),
        (3, Some(7), Some("2:abc"))
    );
    s.delete_devices("777").await.unwrap();
    assert!(s.get_devices("777").await.unwrap().is_none());

    s.put_group_metadata("g@g.us", b"meta").await.unwrap();
    // A store may keep no group metadata (the trait's default): then it reads none.
    if let Some(meta) = s.get_group_metadata("g@g.us").await.unwrap() {
        assert_eq!(meta, b"meta");
        s.delete_group_metadata("g@g.us").await.unwrap();
        assert!(s.get_group_metadata("g@g.us").await.unwrap().is_none());
    }
}

async fn tc_tokens(s: &dyn Backend) {
    let jid = "888@lid";
    s.touch_tc_token_sender_timestamp(jid, 100).await.unwrap();
    let placeholder = s.get_tc_token(jid).await.unwrap().unwrap();
    assert!(placeholder.token.is_empty());
    assert_eq!(placeholder.sender_timestamp, Some(100));
    s.store_received_tc_token(jid, b"real", 50).await.unwrap();
    s.store_received_tc_token(jid, b"stale", 40).await.unwrap();
    s.touch_tc_token_sender_timestamp(jid, 90).await.unwrap();
    let t = s.get_tc_token(jid).await.unwrap().unwrap();
    assert_eq!(
        (t.token.as_slice(), t.token_timestamp, t.sender_timestamp),
        (&b"real"[..], 50, Some(100))
    );
    s.put_tc_token(
        "999@lid",
        &TcTokenEntry {
            token: b"x".to_vec(),
            token_timestamp: 500,
            sender_timestamp: None,
        },
    )
    .await
    .unwrap();
    let mut jids = s.get_all_tc_token_jids().await.unwrap();
    jids.sort();
    assert_eq!(jids, vec!["888@lid".to_owned(), "999@lid".to_owned()]);
    // 888's token (50) and sender bucket (100) are both stale; 999's token lives.
    assert_eq!(s.delete_expired_tc_tokens(60, 200).await.unwrap(), 1);
    assert!(s.get_tc_token(jid).await.unwrap().is_none());
    s.delete_tc_token("999@lid").await.unwrap();
    assert!(s.get_all_tc_token_jids().await.unwrap().is_empty());
}

async fn sent_and_inbound(s: &dyn Backend) {
    s.store_sent_message("c@s.whatsapp.net", "S1", b"p1")
        .await
        .unwrap();
    s.store_sent_message("c@s.whatsapp.net", "S2", b"p2")
        .await
        .unwrap();
    assert_eq!(
        s.take_sent_message("c@s.whatsapp.net", "S1").await.unwrap(),
        Some(b"p1".to_vec())
    );
    assert_eq!(
        s.take_sent_message("c@s.whatsapp.net", "S1").await.unwrap(),
        None,
        "taken once"
    );
    assert_eq!(s.delete_expired_sent_messages(0).await.unwrap(), 0);
    let later = crate::store::now_ms() / 1000 + 3600;
    assert_eq!(s.delete_expired_sent_messages(later).await.unwrap(), 1);

    s.store_pending_inbound("c", "s", "I1", b"m1")
        .await
        .unwrap();
    s.store_pending_inbound_batch(&[
        PendingInboundRow {
            chat: "c",
            sender: "s",
            id: "I2",
            message: b"m2",
        },
        PendingInboundRow {
            chat: "c",
            sender: "t",
            id: "I2",
            message: b"m3",
        },
    ])
    .await
    .unwrap();
    assert_eq!(
        s.get_pending_inbound("c", "s", "I2").await.unwrap(),
        Some(b"m2".to_vec())
    );
    assert_eq!(
        s.get_pending_inbound("c", "t", "I2").await.unwrap(),
        Some(b"m3".to_vec()),
        "keyed by sender too"
    );
    s.delete_pending_inbound("c", "s", "I1").await.unwrap();
    s.delete_pending_inbound_batch(&[PendingInboundKey {
        chat: "c",
        sender: "s",
        id: "I2",
    }])
    .await
    .unwrap();
    assert_eq!(s.get_pending_inbound("c", "s", "I1").await.unwrap(), None);
    assert_eq!(s.get_pending_inbound("c", "s", "I2").await.unwrap(), None);
    assert_eq!(s.delete_expired_pending_inbound(later).await.unwrap(), 1);
}

async fn secrets(s: &dyn Backend) {
    let entry = |id: &str, expires_at: i64, message_ts: i64| MsgSecretEntry {
        chat: arc("c@s.whatsapp.net"),
        sender: arc("d@s.whatsapp.net"),
        msg_id: arc(id),
        secret: [id.len() as u8; 32],
        expires_at,
        message_ts,
    };
    s.put_msg_secret("c@s.whatsapp.net", "d@s.whatsapp.net", "A", &[7; 32])
        .await
        .unwrap();
    assert_eq!(
        s.get_msg_secret("c@s.whatsapp.net", "d@s.whatsapp.net", "A")
            .await
            .unwrap(),
        Some(vec![7; 32])
    );
    assert_eq!(
        s.put_msg_secrets(vec![entry("BB", 100, 5), entry("CCC", 100, 0)])
            .await
            .unwrap(),
        2
    );
    // Merged: a later deadline wins, a 0 parent time never clobbers a known one.
    s.put_msg_secrets(vec![entry("BB", 200, 0), entry("CCC", 50, 9)])
        .await
        .unwrap();
    let with_ts = |id: &'static str| async move {
        s.get_msg_secret_with_ts("c@s.whatsapp.net", "d@s.whatsapp.net", id)
            .await
            .unwrap()
    };
    assert_eq!(with_ts("BB").await.map(|(_, ts)| ts), Some(5));
    assert_eq!(with_ts("CCC").await.map(|(_, ts)| ts), Some(9));
    // At 150: CCC (deadline 100) goes; BB (200) and A (never) stay.
    assert_eq!(s.delete_expired_msg_secrets(150).await.unwrap(), 1);
    assert!(with_ts("CCC").await.is_none());
    assert!(with_ts("BB").await.is_some());
    assert!(with_ts("A").await.is_some());
}

#[tokio::test]
async fn whatsapp_rusts_in_memory_store_keeps_the_contract() {
    check(&whatsapp_rust::wacore::store::InMemoryBackend::new()).await;
}

#[tokio::test]
async fn whatsapp_rusts_sqlite_store_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("device.sqlite");
    let store = whatsapp_rust::store::SqliteStore::new(&file.to_string_lossy())
        .await
        .unwrap();
    check(&store).await;
}

/// Run by `scripts/cluster-test`, which starts a PostgreSQL and says where.
#[cfg(feature = "cluster-suite")]
mod postgres {
    use super::super::{Fence, Fenced, PgDevice};
    use crate::store::{Lease, PostgresStore, Store};
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };
    use whatsapp_rust::wacore::store::error::StoreError;
    use whatsapp_rust::wacore::store::traits::*;

    /// Whether a store error is a refused (fenced) write.
    fn is_fenced(e: &StoreError) -> bool {
        let mut layer: Option<&(dyn std::error::Error + 'static)> = Some(e);
        while let Some(l) = layer {
            if l.is::<Fenced>() {
                return true;
            }
            layer = l.source();
        }
        false
    }

    const LEASE: Lease<'static> = Lease {
        node: "contract",
        ttl_ms: 60_000,
    };

    async fn store(name: &str) -> PostgresStore {
        crate::store::postgres::tests::database_of_its_own(name).await
    }

    /// A new bot's device, under the fence its hold took.
    async fn device(db: &PostgresStore) -> (PgDevice, Arc<Fence>) {
        let bot = db.create_bot("contract-user", "Contract").await.unwrap();
        let (hold, _) = db
            .hold_device(&bot.id, "contract-user", LEASE, "http://contract")
            .await
            .unwrap();
        let fence = Fence::new(&bot.id, hold.fence.expect("a taken hold has a fence"));
        (
            PgDevice::new(db.device_pool().unwrap(), fence.clone()),
            fence,
        )
    }

    #[tokio::test]
    async fn the_postgres_device_store_keeps_the_contract() {
        let db = store("botlink_device_contract").await;
        let (s, fence) = device(&db).await;
        super::check(&s).await;
        assert!(!fence.is_lost());
    }

    /// Every row of the bot's device, as text, table by table.
    async fn rows_of(db: &PostgresStore, bot: &str) -> Vec<String> {
        let client = db.device_pool().unwrap().get().await.unwrap();
        let mut all = Vec::new();
        for table in TABLES {
            let row = client
                .query_one(
                    &format!("SELECT COALESCE(string_agg(t::text, '|' ORDER BY t::text), '') FROM {table} t WHERE bot_id = $1"),
                    &[&bot],
                )
                .await
                .unwrap();
            all.push(format!("{table}: {}", row.get::<_, String>(0)));
        }
        all
    }

    const TABLES: &[&str] = &[
        "wa_devices",
        "wa_identities",
        "wa_sessions",
        "wa_prekeys",
        "wa_signed_prekeys",
        "wa_sender_keys",
        "wa_sync_keys",
        "wa_app_state_versions",
        "wa_mutation_macs",
        "wa_sender_key_devices",
        "wa_lid_mappings",
        "wa_base_keys",
        "wa_device_lists",
        "wa_group_metadata",
        "wa_tc_tokens",
        "wa_sent_messages",
        "wa_pending_inbound",
        "wa_msg_secrets",
    ];

    #[tokio::test]
    async fn every_write_under_a_lost_fence_is_refused_and_changes_nothing() {
        let db = store("botlink_device_fences").await;
        let (s, fence) = device(&db).await;
        let lost = Arc::new(AtomicUsize::new(0));
        let seen = lost.clone();
        fence.on_lost(move || {
            seen.fetch_add(1, Ordering::SeqCst);
        });
        // Rows in every table, for the refused writes to find.
        super::check(&s).await;
        super::signal(&s).await;
        s.store_prekeys_batch(&[(1, super::b("k"))], false)
            .await
            .unwrap();
        s.store_sent_message("c", "m", b"p").await.unwrap();
        s.store_pending_inbound("c", "s", "i", b"m").await.unwrap();
        s.put_tc_token(
            "j",
            &TcTokenEntry {
                token: b"t".to_vec(),
                token_timestamp: 1,
                sender_timestamp: None,
            },
        )
        .await
        .unwrap();
        s.put_group_metadata("g@g.us", b"meta").await.unwrap();
        s.set_sender_key_status("g@g.us", &[("d", false)])
            .await
            .unwrap();
        s.save_base_key("a", "m", b"base").await.unwrap();
        let before = rows_of(&db, &fence.bot_id).await;
        assert!(
            before.iter().all(|t| !t.ends_with(": ")),
            "every table has rows: {before:#?}"
        );

        // Another node takes the device (a new fence in the hold's transaction).
        let (adopter, _) = db
            .hold_device(&fence.bot_id, "contract-user", LEASE, "http://contract")
            .await
            .unwrap();
        assert!(adopter.fence.unwrap() > fence.number);

        let d = whatsapp_rust::wacore::store::Device::new();
        let mac = whatsapp_rust::wacore::appstate::processor::AppStateMutationMAC {
            index_mac: vec![1; 32],
            value_mac: vec![2; 32],
        };
        let lid = LidPnMappingEntry {
            lid: "1".into(),
            phone_number: "2".into(),
            created_at: 1,
            updated_at: 1,
            learning_source: "x".into(),
        };
        let list = DeviceListRecord {
            user: "666".into(),
            devices: vec![],
            timestamp: 1,
            phash: None,
            raw_id: None,
        };
        let row = PendingInboundRow {
            chat: "c",
            sender: "s",
            id: "i",
            message: b"x",
        };
        let key = PendingInboundKey {
            chat: "c",
            sender: "s",
            id: "i",
        };
        let gone_macs = [vec![1; 32]];
        let token = TcTokenEntry {
            token: vec![],
            token_timestamp: 9,
            sender_timestamp: None,
        };
        let secret = MsgSecretEntry::new(
            &"1@s.whatsapp.net".parse().unwrap(),
            &"1@s.whatsapp.net".parse().unwrap(),
            "m",
            [1; 32],
            0,
            0,
        );
        type W<'a> = std::pin::Pin<
            Box<
                dyn std::future::Future<Output = whatsapp_rust::wacore::store::error::Result<()>>
                    + Send
                    + 'a,
            >,
        >;
        let writes: Vec<(&str, W<'_>)> = vec![
            ("save", Box::pin(s.save(&d))),
            ("create", Box::pin(async { s.create().await.map(drop) })),
            (
                "put_identity",
                Box::pin(s.put_identity("111@s.whatsapp.net", [9; 32])),
            ),
            (
                "put_identities_batch",
                Box::pin(s.put_identities_batch(&[])),
            ),
            (
                "delete_identity",
                Box::pin(s.delete_identity("111@s.whatsapp.net")),
            ),
            (
                "put_session",
                Box::pin(s.put_session("333@s.whatsapp.net", b"x")),
            ),
            ("put_sessions_batch", Box::pin(s.put_sessions_batch(&[]))),
            (
                "delete_session",
                Box::pin(s.delete_session("333@s.whatsapp.net")),
            ),
            ("store_prekey", Box::pin(s.store_prekey(1, b"x", true))),
            (
                "store_prekeys_batch",
                Box::pin(s.store_prekeys_batch(&[], true)),
            ),
            (
                "mark_prekeys_uploaded",
                Box::pin(s.mark_prekeys_uploaded(&[1])),
            ),
            ("remove_prekey", Box::pin(s.remove_prekey(1))),
            (
                "store_signed_prekey",
                Box::pin(s.store_signed_prekey(1, b"x")),
            ),
            ("remove_signed_prekey", Box::pin(s.remove_signed_prekey(1))),
            (
                "put_sender_key",
                Box::pin(s.put_sender_key("g1::444", b"x")),
            ),
            (
                "put_sender_keys_batch",
                Box::pin(s.put_sender_keys_batch(&[])),
            ),
            (
                "delete_sender_key",
                Box::pin(s.delete_sender_key("g1::444")),
            ),
            (
                "set_sync_key",
                Box::pin(s.set_sync_key(&[0, 0, 1], AppStateSyncKey::default())),
            ),
            (
                "set_version",
                Box::pin(s.set_version("regular", Default::default())),
            ),
            (
                "put_mutation_macs",
                Box::pin(s.put_mutation_macs("critical", 1, std::slice::from_ref(&mac))),
            ),
            (
                "delete_mutation_macs",
                Box::pin(s.delete_mutation_macs("critical", &gone_macs)),
            ),
            (
                "clear_mutation_macs",
                Box::pin(s.clear_mutation_macs("critical")),
            ),
            (
                "set_sender_key_status",
                Box::pin(s.set_sender_key_status("g@g.us", &[("d", true)])),
            ),
            (
                "clear_sender_key_devices",
                Box::pin(s.clear_sender_key_devices("g@g.us")),
            ),
            (
                "delete_sender_key_device_rows",
                Box::pin(s.delete_sender_key_device_rows(&["d"])),
            ),
            (
                "clear_all_sender_key_devices",
                Box::pin(s.clear_all_sender_key_devices()),
            ),
            ("put_lid_mapping", Box::pin(s.put_lid_mapping(&lid))),
            (
                "put_lid_mappings",
                Box::pin(s.put_lid_mappings(std::slice::from_ref(&lid))),
            ),
            ("save_base_key", Box::pin(s.save_base_key("a", "m", b"k"))),
            ("delete_base_key", Box::pin(s.delete_base_key("a", "m"))),
            (
                "update_device_list",
                Box::pin(s.update_device_list(list.clone())),
            ),
            (
                "update_device_lists",
                Box::pin(s.update_device_lists(vec![list.clone()])),
            ),
            ("delete_devices", Box::pin(s.delete_devices("666"))),
            (
                "put_group_metadata",
                Box::pin(s.put_group_metadata("g@g.us", b"x")),
            ),
            (
                "delete_group_metadata",
                Box::pin(s.delete_group_metadata("g@g.us")),
            ),
            ("put_tc_token", Box::pin(s.put_tc_token("j", &token))),
            ("delete_tc_token", Box::pin(s.delete_tc_token("j"))),
            (
                "delete_expired_tc_tokens",
                Box::pin(async {
                    s.delete_expired_tc_tokens(i64::MAX, i64::MAX)
                        .await
                        .map(drop)
                }),
            ),
            (
                "touch_tc_token_sender_timestamp",
                Box::pin(s.touch_tc_token_sender_timestamp("j", 99)),
            ),
            (
                "store_received_tc_token",
                Box::pin(s.store_received_tc_token("j", b"y", 99)),
            ),
            (
                "store_sent_message",
                Box::pin(s.store_sent_message("c", "m2", b"x")),
            ),
            (
                "take_sent_message",
                Box::pin(async { s.take_sent_message("c", "m").await.map(drop) }),
            ),
            (
                "delete_expired_sent_messages",
                Box::pin(async { s.delete_expired_sent_messages(i64::MAX).await.map(drop) }),
            ),
            (
                "store_pending_inbound",
                Box::pin(s.store_pending_inbound("c", "s", "i2", b"x")),
            ),
            (
                "store_pending_inbound_batch",
                Box::pin(s.store_pending_inbound_batch(std::slice::from_ref(&row))),
            ),
            (
                "delete_pending_inbound",
                Box::pin(s.delete_pending_inbound("c", "s", "i")),
            ),
            (
                "delete_pending_inbound_batch",
                Box::pin(s.delete_pending_inbound_batch(std::slice::from_ref(&key))),
            ),
            (
                "delete_expired_pending_inbound",
                Box::pin(async { s.delete_expired_pending_inbound(i64::MAX).await.map(drop) }),
            ),
            (
                "put_msg_secret",
                Box::pin(s.put_msg_secret("c", "d", "m", &[3; 32])),
            ),
            (
                "put_msg_secrets",
                Box::pin(async { s.put_msg_secrets(vec![secret.clone()]).await.map(drop) }),
            ),
            (
                "delete_expired_msg_secrets",
                Box::pin(async { s.delete_expired_msg_secrets(i64::MAX).await.map(drop) }),
            ),
        ];
        let count = writes.len();
        for (name, write) in writes {
            match write.await {
                Err(e) if is_fenced(&e) => {}
                other => panic!("{name} under a lost fence: {other:?}"),
            }
        }
        assert_eq!(
            rows_of(&db, &fence.bot_id).await,
            before,
            "the device's rows, byte for byte"
        );
        assert!(fence.is_lost());
        assert_eq!(
            lost.load(Ordering::SeqCst),
            1,
            "the holder is told once ({count} writes refused)"
        );
        // Reads need no fence.
        assert!(s.load().await.unwrap().is_some());
    }
}
