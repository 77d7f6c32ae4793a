//! Signing in to approve plans: board approvers (`recover serve add-approver NAME`) sign in with
//! their secret; a session is a random token in an HttpOnly, SameSite=Strict cookie, kept in
//! memory (a restart signs everyone out) for 8 hours; every form that changes anything carries
//! the session's own CSRF token, and a request without it is refused.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;

const COOKIE: &str = "recover_session";
const LIFE: Duration = Duration::from_secs(8 * 3600);

#[derive(Clone)]
pub struct Session {
    pub name: String,
    pub csrf: String,
    until: Instant,
}

#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// A new session for `name`: the cookie's value.
    pub fn start(&self, name: &str) -> Result<String, String> {
        let token = crate::plan::board_approvers::token()?;
        let csrf = crate::plan::board_approvers::token()?;
        if let Ok(mut m) = self.map.lock() {
            let now = Instant::now();
            m.retain(|_, s| s.until > now);
            m.insert(token.clone(), Session { name: name.to_string(), csrf, until: now + LIFE });
        }
        Ok(token)
    }
    /// The session of a request's cookie, if it holds.
    pub fn of(&self, headers: &HeaderMap) -> Option<Session> {
        let token = cookie(headers)?;
        let m = self.map.lock().ok()?;
        m.get(&token).filter(|s| s.until > Instant::now()).cloned()
    }
    pub fn end(&self, headers: &HeaderMap) {
        if let (Some(t), Ok(mut m)) = (cookie(headers), self.map.lock()) {
            m.remove(&t);
        }
    }
}

fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

/// The Set-Cookie of a session (`secure` over TLS).
pub fn set_cookie(token: &str, secure: bool) -> String {
    format!("{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}", LIFE.as_secs(), if secure { "; Secure" } else { "" })
}

pub fn clear_cookie() -> String {
    format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0")
}
