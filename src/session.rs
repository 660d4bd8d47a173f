//! The session (PROTOCOL.md §1 `Session`), kept in `localStorage["botlink.session"]` so tabs
//! share one user and a reload keeps it.
//!
//! Requests are single-flight by kind (`single_flight.rs`): concurrent refreshes share one
//! `POST /api/auth/refresh`, a sign-in never takes a refresh's answer, and a
//! token that another tab already replaced is adopted instead of refreshed again (the old one
//! would answer 401 and end a perfectly good session). This is the auth-refresh race DESIGN.md
//! warns about, closed here.

use crate::http::{self, ApiError};
use crate::json::BrowserJson;
use crate::single_flight::SingleFlight;
use futures::future::FutureExt;
use gloo_net::http::Request;
use leptos::prelude::*;
use protocol::Session;
use protocol::json::Json;
use std::rc::Rc;

const KEY: &str = "botlink.session";
/// Who was signed in last: "Sign in again" asks for the same user, so their bots are still theirs.
const LAST_USER_KEY: &str = "botlink.lastUser";

/// What a session request asks for: a refresh never answers a sign-in, nor the reverse.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ask {
    SignIn,
    Refresh,
}

#[derive(Clone, Default)]
pub struct SessionStore {
    inner: Rc<Inner>,
}

#[derive(Default)]
struct Inner {
    flights: SingleFlight<Ask, Result<Session, ApiError>>,
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok()?
}

fn load() -> Option<Session> {
    let raw = storage()?.get_item(KEY).ok()??;
    BrowserJson.read(&raw).ok()
}

fn save(session: &Session) {
    if let Some(s) = storage() {
        let raw = BrowserJson.write(session);
        // A full or disabled storage only costs the next reload a new session.
        let _ = s.set_item(KEY, &raw);
        let _ = s.set_item(LAST_USER_KEY, &session.user_id);
    }
}

fn last_user() -> Option<String> {
    storage()?.get_item(LAST_USER_KEY).ok()?
}

fn forget() {
    if let Some(s) = storage() {
        let _ = s.remove_item(KEY);
    }
}

impl SessionStore {
    pub fn current(&self) -> Option<Session> {
        load()
    }

    /// The current token, signing in first if there is none.
    pub async fn token(&self) -> Result<String, ApiError> {
        match load() {
            Some(s) => Ok(s.token),
            None => Ok(self.sign_in().await?.token),
        }
    }

    /// A new session (`POST /api/auth/session`) for the last user, if there was one, replacing
    /// whatever was stored.
    pub async fn sign_in(&self) -> Result<Session, ApiError> {
        let fut = async {
            let request = Request::post(&http::url("/api/auth/session"));
            let request = match load().map(|s| s.user_id).or_else(last_user) {
                Some(user_id) => http::with_json(
                    request,
                    &protocol::http::NewSession {
                        user_id: Some(user_id),
                    },
                ),
                None => request.build().map_err(|_| ApiError::Network),
            };
            let resp = request?.send().await.map_err(|_| ApiError::Network)?;
            if resp.status() != 200 {
                return Err(http::error_of(resp).await);
            }
            let session: Session = http::read_body(resp).await.map_err(|_| ApiError::Network)?;
            save(&session);
            Ok(session)
        };
        self.inner
            .flights
            .run(Ask::SignIn, move || fut.boxed_local())
            .await
    }

    /// Trades `stale` for a new token, unless another caller or tab already did.
    pub async fn refresh(&self, stale: &str) -> Result<String, ApiError> {
        if let Some(s) = load().filter(|s| s.token != stale) {
            return Ok(s.token);
        }
        let stale = stale.to_owned();
        let fut = async move {
            let resp = Request::post(&http::url("/api/auth/refresh"))
                .header("Authorization", &format!("Bearer {stale}"))
                .send()
                .await
                .map_err(|_| ApiError::Network)?;
            match resp.status() {
                200 => {
                    let session: Session =
                        http::read_body(resp).await.map_err(|_| ApiError::Network)?;
                    save(&session);
                    Ok(session)
                }
                401 => {
                    forget();
                    Err(ApiError::Unauthorized)
                }
                _ => Err(http::error_of(resp).await),
            }
        };
        let session = self
            .inner
            .flights
            .run(Ask::Refresh, move || fut.boxed_local())
            .await?;
        Ok(session.token)
    }

    /// Refreshes whatever token is current (the connection owner's `RefreshSession`).
    pub async fn refresh_current(&self) -> Result<String, ApiError> {
        match load() {
            Some(s) => self.refresh(&s.token).await,
            None => Ok(self.sign_in().await?.token),
        }
    }
}

/// The session store, shared by every page. A newtype so the context is unambiguous.
#[derive(Clone, Copy)]
pub struct SessionContext(StoredValue<SessionStore, LocalStorage>);

impl SessionContext {
    pub fn get(&self) -> SessionStore {
        self.0.get_value()
    }
}

/// Provides `session` to the components below (the app does it once, at its root).
pub fn provide_session(session: SessionStore) -> SessionContext {
    let ctx = SessionContext(StoredValue::new_local(session));
    provide_context(ctx);
    ctx
}

/// The app's session. Panics only if the app forgot to provide it, a programming error.
pub fn expect_session() -> SessionContext {
    expect_context::<SessionContext>()
}
