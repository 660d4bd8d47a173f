//! The answer to every IQ the client sends, in the shape it parses: an unanswered IQ stalls
//! whatsapp-rust for up to 75 s, and a wrong shape makes it log a parse warning (or, for
//! app-state sync, never fire `Connected`). The pairing code's companion side is here too: it
//! arrives as IQs.

use super::{
    CodeExchange, ConnId, PHONE_ROUND_TRIP, World, now_s,
    phone_actions::{send_pair_success, share_app_state_key},
    random_token,
};
use crate::{
    Double,
    accounts::{DeviceState, split_jid},
    conn::{Cmd, Outbox},
    nodes::{self, attr, child, el, result_to},
    phone,
};
use wacore_binary::Node;

/// The answer to one IQ from the client (`None`: it was sent already, or comes later).
pub(super) fn answer_iq(
    double: &Double,
    w: &mut World,
    id: ConnId,
    iq: &Node,
    out: &Outbox,
) -> Option<Node> {
    let xmlns = attr(iq, "xmlns").unwrap_or_default();
    let first = iq.children().and_then(|c| c.first());
    let first_tag = first.map(|c| c.tag.as_ref()).unwrap_or("");
    Some(match (xmlns.as_str(), first_tag) {
        ("w:p", _) => el("iq")
            .attr("type", "result")
            .attr("from", nodes::SERVER)
            .attr("id", attr(iq, "id").unwrap_or_default())
            .attr("t", now_s())
            .build(),
        ("abt", _) => result_to(
            iq,
            vec![
                el("props")
                    .attr("protocol", "1")
                    .attr("hash", "double")
                    .build(),
            ],
        ),
        ("privacy", _) => result_to(iq, vec![el("privacy").build()]),
        ("blocklist", _) => result_to(iq, vec![el("list").build()]),
        ("usync", _) => result_to(iq, vec![el("usync").children([el("list").build()]).build()]),
        ("encrypt", "count") => result_to(iq, vec![el("count").attr("value", "812").build()]),
        ("encrypt", "registration") => {
            // The device's prekeys: the phone can now open a Signal session to it. A device
            // uploads them after pairing, so this is when the phone shares the app-state key
            // (the client waits up to 10 s for it before its first sync).
            let noise = w.conns.get(&id).map(|c| c.noise.clone());
            if let (Some(noise), Some(keys)) = (noise, crate::signal::parse_upload(iq)) {
                match w.keys.get_mut(&noise) {
                    Some(k) => k.merge(keys),
                    None => {
                        w.keys.insert(noise.clone(), keys);
                    }
                }
                let _ = out.send(Cmd::Send(result_to(iq, vec![])));
                if let Err(e) = share_app_state_key(w, &noise) {
                    tracing::warn!(%noise, "no app-state key share: {e}");
                }
                return None;
            }
            result_to(iq, vec![])
        }
        ("encrypt", "rotate") => {
            if let Some(noise) = w.conns.get(&id).map(|c| c.noise.clone())
                && let Some(k) = w.keys.get_mut(&noise)
            {
                k.apply_rotate(iq);
            }
            result_to(iq, vec![])
        }
        ("w:sync:app:state", _) => {
            // Every collection asked for, answered as empty and complete: the client counts it
            // synced (version 0, nothing to decrypt).
            let names: Vec<Node> = first
                .map(|sync| {
                    nodes::children(sync, "collection")
                        .filter_map(|c| attr(c, "name"))
                        .map(|name| el("collection").attr("name", name).build())
                        .collect()
                })
                .unwrap_or_default();
            result_to(iq, vec![el("sync").children(names).build()])
        }
        ("md", "link_code_companion_reg") => return code_request(double, w, id, iq, out),
        ("md", "remove-companion-device") => {
            // The bot logged out: the device is gone, as when the phone removes it.
            if let Some(noise) = w.conns.get(&id).map(|c| c.noise.clone())
                && let Some(d) = w.saved.device_mut(&noise)
            {
                d.state = DeviceState::Removed;
            }
            result_to(iq, vec![])
        }
        // passive/active, prekey upload and digest, dirty bits, rotation…: a plain result is
        // what the client expects (it parses none of them).
        _ => result_to(iq, vec![]),
    })
}

/// The companion's side of a pairing code: `companion_hello` (it asks to link to a phone
/// number) and `companion_finish` (its key bundle, after the phone typed the code).
fn code_request(
    double: &Double,
    w: &mut World,
    id: ConnId,
    iq: &Node,
    out: &Outbox,
) -> Option<Node> {
    let reg = child(iq, "link_code_companion_reg")?;
    let stage = attr(reg, "stage").unwrap_or_default();
    let bytes_of = |tag: &str| child(reg, tag).and_then(nodes::bytes).map(<[u8]>::to_vec);
    match stage.as_str() {
        "companion_hello" => {
            let phone = attr(reg, "jid").and_then(|j| split_jid(&j)).map(|(u, _)| u);
            let (Some(phone), Some(wrapped)) = (
                phone,
                bytes_of("link_code_pairing_wrapped_companion_ephemeral_pub"),
            ) else {
                return Some(nodes::error_to(iq, 400, "bad-request"));
            };
            let reference = random_token(24).into_bytes();
            let noise = w.conns.get(&id)?.noise.clone();
            w.witness.code_requested(&noise);
            if let Some(c) = w.conns.get_mut(&id) {
                c.code = Some(CodeExchange {
                    phone,
                    reference: reference.clone(),
                    wrapped_companion_ephemeral: wrapped,
                    hello: None,
                });
            }
            Some(result_to(
                iq,
                vec![
                    el("link_code_companion_reg")
                        .children([el("link_code_pairing_ref").bytes(reference).build()])
                        .build(),
                ],
            ))
        }
        "companion_finish" => {
            let bundle = bytes_of("link_code_pairing_wrapped_key_bundle")?;
            let live = w.conns.get_mut(&id)?;
            let noise = live.noise.clone();
            let Some(CodeExchange {
                phone,
                hello: Some((hello, _code)),
                ..
            }) = live.code.take()
            else {
                return Some(nodes::error_to(iq, 400, "bad-request"));
            };
            let account = w.saved.account(&phone).cloned()?;
            let account_key = phone::key_pair(&crate::accounts::unb64(&account.identity_private)?)?;
            match hello.open_bundle(&account_key, &bundle) {
                Ok((companion_identity, adv)) => {
                    let answer = result_to(iq, vec![]);
                    let _ = out.send(Cmd::Send(answer));
                    // The phone's own round trip to WhatsApp before `<pair-success>` comes
                    // back (a few hundred ms in life). whatsapp-rust stores the code's adv
                    // secret through its persistence queue as it sends `companion_finish`: an
                    // instant `<pair-success>` can be checked against the old secret.
                    let handle = double.handle();
                    tokio::spawn(async move {
                        tokio::time::sleep(PHONE_ROUND_TRIP).await;
                        if let Some(d) = handle.upgrade() {
                            let mut w = d.world();
                            send_pair_success(
                                &mut w,
                                id,
                                &noise,
                                &phone,
                                companion_identity,
                                &adv,
                                false,
                            );
                            d.save(&w);
                        }
                    });
                    None
                }
                Err(e) => {
                    tracing::info!("pairing code: {e}");
                    Some(nodes::error_to(iq, 400, "bad-request"))
                }
            }
        }
        _ => Some(result_to(iq, vec![])),
    }
}
