//! What every store must do, checked against each implementation (SQLite in the unit tests,
//! PostgreSQL in the cluster suite).

use super::*;

/// Holds of two nodes (the PostgreSQL store's own tests use them too).
pub const A: Lease<'static> = Lease {
    node: "node-a",
    ttl_ms: 3_000,
};
pub const B: Lease<'static> = Lease {
    node: "node-b",
    ttl_ms: 3_000,
};

pub async fn check(store: &dyn Store) {
    sessions(store).await;
    bots(store).await;
    holds(store).await;
}

async fn holds(s: &dyn Store) {
    let bot = s.create_bot("u1", "Held").await.unwrap();
    let (h, anew) = s.hold_device(&bot.id, "u1", A, "http://a").await.unwrap();
    assert_eq!(
        (
            h.node.as_str(),
            h.url.as_str(),
            anew,
            h.live(),
            h.registered
        ),
        ("node-a", "http://a", true, true, false)
    );
    let (h, anew) = s.hold_device(&bot.id, "u1", B, "http://b").await.unwrap();
    assert_eq!(
        (h.node.as_str(), anew),
        ("node-a", false),
        "a live hold stays"
    );
    let (_, anew) = s.hold_device(&bot.id, "u1", A, "http://a").await.unwrap();
    assert!(!anew, "its holder renews it");
    s.show_on_hold(&bot.id, "node-b", Some(("not the holder", 60_000)), true)
        .await
        .unwrap();
    // A QR outlives its own life in no table: it holds the keys of the device being linked.
    s.show_on_hold(&bot.id, "node-a", Some(("{\"qr\":0}", 0)), false)
        .await
        .unwrap();
    assert_eq!(s.device_hold(&bot.id).await.unwrap().unwrap().view, None);
    s.show_on_hold(&bot.id, "node-a", Some(("{\"qr\":1}", 60_000)), false)
        .await
        .unwrap();
    let h = s.device_hold(&bot.id).await.unwrap().unwrap();
    assert_eq!(
        (h.view.as_deref(), h.registered),
        (Some("{\"qr\":1}"), false)
    );
    assert_eq!(s.renew_holds(A).await.unwrap(), vec![bot.id.clone()]);
    assert!(s.renew_holds(B).await.unwrap().is_empty());
    assert!(s.lapsed_holds().await.unwrap().is_empty());
    // A drain lets the holds lapse: told once, to one asker.
    s.lapse_holds("node-a").await.unwrap();
    let lapsed = s.lapsed_holds().await.unwrap();
    assert_eq!(lapsed.len(), 1);
    assert!(!lapsed[0].live());
    assert!(s.lapsed_holds().await.unwrap().is_empty(), "told once");
    // An unregistered device (a pairing nobody finished) may be taken over, anew.
    let (h, anew) = s.hold_device(&bot.id, "u1", B, "http://b").await.unwrap();
    assert_eq!((h.node.as_str(), anew, h.view), ("node-b", true, None));
    assert!(
        s.retake_hold(&bot.id, A, "http://a")
            .await
            .unwrap()
            .is_none(),
        "the old holder resumes nothing"
    );
    // A registered one stays with its node through a lapse, until it returns.
    s.show_on_hold(&bot.id, "node-b", None, true).await.unwrap();
    s.lapse_holds("node-b").await.unwrap();
    let (h, anew) = s.hold_device(&bot.id, "u1", A, "http://a").await.unwrap();
    assert_eq!((h.node.as_str(), anew, h.live()), ("node-b", false, false));
    let short = Lease {
        node: "node-b",
        ttl_ms: 50,
    };
    let back = s.retake_hold(&bot.id, short, "http://b2").await.unwrap();
    assert!(back.is_some_and(|h| h.live() && h.registered && h.url == "http://b2"));
    assert!(s.lapsed_holds().await.unwrap().is_empty(), "live again");
    // Not renewed, it runs out by the database's clock; a linked device is not "told" lapsed
    // (it is adopted, in a store that keeps devices).
    tokio::time::sleep(std::time::Duration::from_millis(120)).await;
    assert!(!s.device_hold(&bot.id).await.unwrap().unwrap().live());
    assert!(s.lapsed_holds().await.unwrap().is_empty());
    s.forget_hold(&bot.id).await.unwrap();
    assert!(s.device_hold(&bot.id).await.unwrap().is_none());
    s.hold_device(&bot.id, "u1", A, "http://a").await.unwrap();
    assert!(s.delete_bot("u1", &bot.id).await.unwrap());
    assert!(
        s.device_hold(&bot.id).await.unwrap().is_none(),
        "a deleted bot's hold goes"
    );
}

async fn sessions(s: &dyn Store) {
    let (t1, _) = s.create_session("u1", 60_000).await.unwrap();
    let (t2, user, _) = s.refresh(&t1, 60_000).await.unwrap().unwrap();
    assert_eq!(user, "u1");
    let valid = TokenCheck::Valid {
        user_id: "u1".into(),
    };
    let expired = TokenCheck::Expired {
        user_id: "u1".into(),
    };
    assert_eq!(
        s.check_token(&t1).await.unwrap(),
        expired,
        "a traded token authorizes nothing (its client refreshes)"
    );
    assert_eq!(s.check_token(&t2).await.unwrap(), valid);
    // The answer was lost: the client retries with the old token and is not logged out.
    let (t2b, ..) = s.refresh(&t1, 60_000).await.unwrap().unwrap();
    assert_ne!(t2b, t2);
    assert_eq!(s.check_token(&t2b).await.unwrap(), valid);
    assert_eq!(
        s.check_token(&t2).await.unwrap(),
        valid,
        "the first answer's token too"
    );
    s.expire_tokens("u1").await.unwrap();
    assert_eq!(s.check_token(&t2).await.unwrap(), expired);
    let (t3, ..) = s.refresh(&t2, 60_000).await.unwrap().unwrap();
    s.revoke_tokens("u1").await.unwrap();
    assert!(s.refresh(&t3, 60_000).await.unwrap().is_none());
    assert!(
        s.refresh(&t1, 60_000).await.unwrap().is_none(),
        "revoked, traded or not"
    );
}

async fn bots(s: &dyn Store) {
    let bot = s.create_bot("u1", "Support").await.unwrap();
    assert!(s.get_bot("u2", &bot.id).await.unwrap().is_none());
    assert!(!s.delete_bot("u2", &bot.id).await.unwrap());
    assert_eq!(s.list_bots("u1").await.unwrap(), vec![bot.clone()]);
    s.set_status(&bot.id, BotStatus::Connected, Some("+15550001"), None)
        .await
        .unwrap();
    assert_eq!(s.count_messages(&bot.id, 3).await.unwrap(), 3);
    let (owner, stored) = s.get_bot_any(&bot.id).await.unwrap().unwrap();
    assert_eq!(owner, "u1");
    assert_eq!(stored.status, BotStatus::Connected);
    assert_eq!(stored.phone.as_deref(), Some("+15550001"));
    assert_eq!(stored.messages, 3);
    assert!(s.delete_bot("u1", &bot.id).await.unwrap());
    assert!(s.all_bots().await.unwrap().is_empty());
}
