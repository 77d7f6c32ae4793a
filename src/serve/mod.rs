//! `recover serve`: the cold-start board in a browser, from the binary, with no external assets.
//!
//! The server runs the baseline's gates itself (as `check --watch`: every `--interval`
//! seconds, at most `--max-attempts` passes) and keeps the last report; every browser reads
//! that report, so probes run once per interval however many browsers watch. Pages update
//! live over server-sent events. Runs, backups and saved plans are read from the state
//! folder (the run logs, as `recover history` reads them).
//!
//! Safe by default: it listens on loopback unless told otherwise, and any other address
//! needs `--tls-cert` and `--tls-key`; every response carries a strict Content-Security-Policy
//! (scripts and styles from the server only, no inline code); everything from a host, a run
//! log or a file is escaped by the page templates; a run is found by its id among the run
//! logs (a URL never names a path).

mod auth;
mod board;
mod graph;
mod pages;
mod runs;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{Form, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio_stream::StreamExt;

/// Every response's Content-Security-Policy: nothing but the server's own script and style.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// What `recover serve` was told (see `recover serve --help`).
pub struct Config {
    /// Checked by [`check_listen`] (loopback, or TLS given).
    pub addr: SocketAddr,
    pub tls: Option<(PathBuf, PathBuf)>,
    pub interval: u64,
    pub max_attempts: Option<u32>,
    pub parallel: usize,
}

/// What every request reads.
pub(crate) struct App {
    pub board: Arc<board::Board>,
    pub sessions: auth::Sessions,
    pub tls: bool,
}

/// The address to listen on: any but loopback needs TLS.
pub fn check_listen(listen: &str, tls: bool) -> anyhow::Result<SocketAddr> {
    let addr: SocketAddr = listen.parse().map_err(|e| anyhow::anyhow!("--listen {listen}: {e} (give ADDR:PORT, e.g. 127.0.0.1:8470)"))?;
    if !addr.ip().is_loopback() && !tls {
        anyhow::bail!("--listen {addr}: not a loopback address, and the board shows the fleet's state and takes approvals: give --tls-cert and --tls-key (PEM) to serve it over TLS, or listen on 127.0.0.1");
    }
    Ok(addr)
}

/// Serves the board until stopped: the gates of `baseline` over the hosts of `sources`.
pub async fn run(c: Config, baseline: crate::baseline::Baseline, sources: Arc<crate::executor::VarSources>) -> anyhow::Result<i32> {
    let addr = c.addr;
    let board = board::Board::start(baseline, sources, c.interval, c.max_attempts, c.parallel);
    let app = Arc::new(App { board, sessions: auth::Sessions::default(), tls: c.tls.is_some() });
    let router = router(app);
    match &c.tls {
        Some((cert, key)) => {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key).await.map_err(|e| anyhow::anyhow!("--tls-cert {} / --tls-key {}: {e}", cert.display(), key.display()))?;
            eprintln!("recover serve: https://{addr}/");
            axum_server::bind_rustls(addr, config).serve(router.into_make_service()).await?;
        }
        _ => {
            let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| anyhow::anyhow!("--listen {addr}: {e}"))?;
            eprintln!("recover serve: http://{}/", listener.local_addr()?);
            axum::serve(listener, router).await?;
        }
    }
    Ok(0)
}

fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(board_page))
        .route("/board.json", get(board_json))
        .route("/events/board", get(board_events))
        .route("/runs", get(runs_page))
        .route("/runs/{id}", get(run_page))
        .route("/events/runs/{id}", get(run_events))
        .route("/backups", get(backups_page))
        .route("/plans", get(plans_page))
        .route("/login", get(login_page).post(login))
        .route("/logout", axum::routing::post(logout))
        .route("/plans/approve", axum::routing::post(approve))
        .route("/static/app.js", get(|| async { asset("text/javascript; charset=utf-8", include_str!("assets/app.js")) }))
        .route("/static/app.css", get(|| async { asset("text/css; charset=utf-8", include_str!("assets/app.css")) }))
        .fallback(|| async { page_response(StatusCode::NOT_FOUND, pages::not_found()) })
        .layer(axum::middleware::map_response(secure_headers))
        .with_state(app)
}

/// The headers of every response: the CSP, no sniffing, no referrer, no caching, no framing.
async fn secure_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    r
}

fn asset(kind: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, "max-age=300")], body).into_response()
}

fn page_response(code: StatusCode, html: Result<String, askama::Error>) -> Response {
    match html {
        Ok(h) => (code, Html(h)).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("page error: {e}")).into_response(),
    }
}

async fn board_page(State(app): State<Arc<App>>) -> Response {
    page_response(StatusCode::OK, pages::board(&app.board.snapshot()))
}

async fn board_json(State(app): State<Arc<App>>) -> Response {
    let s = app.board.snapshot();
    let body = serde_json::json!({"passes": s.passes, "report": s.report}).to_string();
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The board's live part, sent again after every gate pass.
async fn board_events(State(app): State<Arc<App>>) -> Response {
    let board = app.board.clone();
    let stream = tokio_stream::wrappers::WatchStream::new(app.board.subscribe()).map(move |_| {
        let html = pages::board_live(&board.snapshot()).unwrap_or_else(|e| format!("page error: {e}"));
        Ok::<_, std::convert::Infallible>(SseEvent::default().event("update").data(html))
    });
    Sse::new(stream).keep_alive(KeepAlive::default()).into_response()
}

async fn runs_page(Query(f): Query<runs::Filter>) -> Response {
    let list = tokio::task::spawn_blocking(move || runs::list(&f)).await.unwrap_or_default();
    page_response(StatusCode::OK, pages::runs(&list))
}

async fn run_page(Path(id): Path<String>) -> Response {
    match tokio::task::spawn_blocking(move || runs::one(&id)).await.ok().flatten() {
        Some(run) => page_response(StatusCode::OK, pages::run(&run)),
        None => page_response(StatusCode::NOT_FOUND, pages::not_found()),
    }
}

/// One run's grid, sent again whenever its run log grows (a run in progress).
async fn run_events(Path(id): Path<String>) -> Response {
    let Some(path) = runs::log_of(&id) else {
        return page_response(StatusCode::NOT_FOUND, pages::not_found());
    };
    let ticks = tokio_stream::wrappers::IntervalStream::new(tokio::time::interval(std::time::Duration::from_millis(500)));
    let chain = tokio::task::spawn_blocking(runs::chain).await.unwrap_or_default();
    let mut last = None;
    let stream = ticks.filter_map(move |_| {
        let len = std::fs::metadata(&path).map(|m| m.len()).ok();
        if len == last {
            return None;
        }
        last = len;
        let mut run = runs::read(&path)?;
        run.chain = chain.clone();
        let html = pages::run_live(&run).unwrap_or_else(|e| format!("page error: {e}"));
        Some(Ok::<_, std::convert::Infallible>(SseEvent::default().event("update").data(html)))
    });
    Sse::new(stream).keep_alive(KeepAlive::default()).into_response()
}

async fn backups_page() -> Response {
    let list = tokio::task::spawn_blocking(crate::report::backup_records).await.unwrap_or_default();
    page_response(StatusCode::OK, pages::backups(&list))
}

#[derive(serde::Deserialize, Default)]
struct PlansQuery {
    approved: Option<String>,
}

async fn plans_page(State(app): State<Arc<App>>, headers: HeaderMap, Query(q): Query<PlansQuery>) -> Response {
    let list = tokio::task::spawn_blocking(runs::plans).await.unwrap_or_default();
    let note = q.approved.map(|d| format!("Approved plan {}.", d.chars().filter(char::is_ascii_hexdigit).take(12).collect::<String>()));
    page_response(StatusCode::OK, pages::plans(&list, app.sessions.of(&headers).as_ref(), note.as_deref()))
}

async fn login_page() -> Response {
    page_response(StatusCode::OK, pages::login(None))
}

#[derive(serde::Deserialize)]
struct LoginForm {
    name: String,
    secret: String,
}

/// A board approver signs in with the secret `recover serve add-approver` showed once.
async fn login(State(app): State<Arc<App>>, Form(f): Form<LoginForm>) -> Response {
    let (name, secret) = (f.name.clone(), f.secret.clone());
    let ok = tokio::task::spawn_blocking(move || crate::plan::board_approvers::check(&name, &secret)).await.unwrap_or(false);
    let name = crate::plan::approver_name(&f.name).ok().filter(|_| ok);
    let Some(name) = name else {
        // A wrong secret costs time: guessing is slow.
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        return page_response(StatusCode::FORBIDDEN, pages::login(Some("Wrong name or secret.")));
    };
    match app.sessions.start(&name) {
        Ok(token) => ([(header::SET_COOKIE, auth::set_cookie(&token, app.tls)), (header::LOCATION, "/plans".to_string())], StatusCode::SEE_OTHER).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e).into_response(),
    }
}

#[derive(serde::Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn logout(State(app): State<Arc<App>>, headers: HeaderMap, Form(f): Form<CsrfForm>) -> Response {
    if app.sessions.of(&headers).is_none_or(|s| s.csrf != f.csrf) {
        return forbidden("Missing or wrong CSRF token: sign out from the board's own page.");
    }
    app.sessions.end(&headers);
    ([(header::SET_COOKIE, auth::clear_cookie()), (header::LOCATION, "/".to_string())], StatusCode::SEE_OTHER).into_response()
}

#[derive(serde::Deserialize)]
struct ApproveForm {
    #[serde(default)]
    csrf: String,
    digest: String,
    #[serde(default)]
    expires: String,
}

fn forbidden(why: &str) -> Response {
    page_response(StatusCode::FORBIDDEN, pages::refused(why))
}

/// A signed-in board approver approves one saved plan: the same record `recover approve`
/// writes (audit chain, shared folder, plan file), as `board:NAME`.
async fn approve(State(app): State<Arc<App>>, headers: HeaderMap, Form(f): Form<ApproveForm>) -> Response {
    let Some(session) = app.sessions.of(&headers) else {
        return forbidden("Sign in first: only a registered board approver approves plans.");
    };
    if f.csrf.is_empty() || f.csrf != session.csrf {
        return forbidden("Missing or wrong CSRF token: approve from the board's own plans page.");
    }
    let expires = if f.expires.trim().is_empty() { "1h".to_string() } else { f.expires.clone() };
    let name = session.name.clone();
    let r = tokio::task::spawn_blocking(move || approve_plan(&f.digest, &name, &expires)).await.unwrap_or_else(|e| Err(e.to_string()));
    match r {
        Ok(digest) => ([(header::LOCATION, format!("/plans?approved={digest}"))], StatusCode::SEE_OTHER).into_response(),
        Err(why) => page_response(StatusCode::CONFLICT, pages::refused(&why)),
    }
}

fn approve_plan(digest: &str, name: &str, expires: &str) -> Result<String, String> {
    use crate::plan::approval as approvers;
    let ttl = crate::plan::parse_duration(expires)?;
    if ttl > approvers::max_expiry() {
        return Err(format!("{expires}: longer than the longest approval allowed ({}s)", approvers::max_expiry()));
    }
    if !approvers::registered_keys()?.is_empty() {
        return Err("recover.yml registers approver keys: approvals are signed with them (recover approve --key), not made in the browser".into());
    }
    // The plan by its digest among those the run logs saved: a form never names a file.
    let plan = runs::plans().into_iter().find(|p| !digest.is_empty() && p.digest == digest).ok_or("no saved plan has that digest")?;
    let file = std::path::PathBuf::from(&plan.file);
    let mut pf = crate::plan::PlanFile::read(&file)?;
    if pf.digest != digest {
        return Err("the plan file changed since the page showed it: reload and review it again".into());
    }
    if pf.plan.recover_version != env!("CARGO_PKG_VERSION") {
        return Err(format!("made by recover {}, this is {}: make the plan again", pf.plan.recover_version, env!("CARGO_PKG_VERSION")));
    }
    if let Some(first) = approvers::applied(&pf.digest) {
        return Err(format!("this plan was applied already ({first})"));
    }
    let ap = crate::plan::Approval::new(&pf.digest, name, &crate::plan::board_approvers::identity(name), chrono::Utc::now(), ttl);
    approvers::attach(&file, &mut pf, &ap)?;
    Ok(pf.digest)
}

/// `recover history RUN --html FILE`: the run as one page that opens from disk (its style
/// inside, no script).
pub fn run_html(id: &str) -> anyhow::Result<String> {
    let run = runs::one(id).ok_or_else(|| anyhow::anyhow!("no run {id} in {}", crate::report::state_dir().display()))?;
    Ok(pages::run_file(&run)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_listens_without_tls() {
        assert!(check_listen("127.0.0.1:8470", false).is_ok());
        assert!(check_listen("[::1]:8470", false).is_ok());
        let e = check_listen("0.0.0.0:8470", false).unwrap_err().to_string();
        assert!(e.contains("--tls-cert"), "{e}");
        assert!(check_listen("192.0.2.1:8470", false).is_err());
        assert!(check_listen("0.0.0.0:8470", true).is_ok());
        assert!(check_listen("localhost", false).is_err());
    }
}
