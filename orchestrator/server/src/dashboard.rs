//! The dashboard: a single page (vanilla HTML, CSS and JavaScript embedded
//! in the binary, no build step, no CDN) served at `/`.
//!
//! | path | what |
//! |---|---|
//! | `/`, `/ui`, `/ui/runs/{id}` | the page; it routes on `#/runs/<id>` or `/ui/runs/<id>` |
//! | `/ui/assets/dashboard.css`, `/ui/assets/dashboard.js` | its style and script |
//!
//! The page reads the JSON API (`GET /runs`, `GET /runs/{id}`,
//! `GET /experts`), follows a run with `EventSource` on
//! `GET /runs/{id}/events` (the browser resumes with `Last-Event-ID` after a
//! reconnect, and the server's events carry their sequence number as `id`),
//! and posts approval decisions to `POST /runs/{id}/approvals/{binding}`.
//! Everything it shows comes from those APIs, whose payloads are redacted
//! server-side; the script inserts text with `textContent` only, never as
//! HTML.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

/// The page.
const INDEX_HTML: &str = include_str!("../assets/dashboard.html");
/// Its style sheet.
const DASHBOARD_CSS: &str = include_str!("../assets/dashboard.css");
/// Its script.
const DASHBOARD_JS: &str = include_str!("../assets/dashboard.js");

/// The dashboard router (stateless: the page talks to the JSON API).
pub fn router() -> Router {
    Router::new()
        .route("/", get(index))
        .route("/ui", get(index))
        .route("/ui/runs/{id}", get(index))
        .route("/ui/assets/dashboard.css", get(css))
        .route("/ui/assets/dashboard.js", get(script))
}

/// Security headers for every dashboard response: no framing, no sniffing,
/// and a policy that only allows the page's own script, style and API.
const SECURITY_HEADERS: [(header::HeaderName, &str); 3] = [
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (
        header::CONTENT_SECURITY_POLICY,
        "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    ),
];

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    let [nosniff, frame, policy] = SECURITY_HEADERS;
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            nosniff,
            frame,
            policy,
        ],
        body,
    )
}

async fn index() -> impl IntoResponse {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

async fn css() -> impl IntoResponse {
    asset("text/css; charset=utf-8", DASHBOARD_CSS)
}

async fn script() -> impl IntoResponse {
    asset("text/javascript; charset=utf-8", DASHBOARD_JS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_only_its_own_assets() {
        assert!(INDEX_HTML.contains("/ui/assets/dashboard.js"));
        assert!(INDEX_HTML.contains("/ui/assets/dashboard.css"));
        for text in [INDEX_HTML, DASHBOARD_CSS, DASHBOARD_JS] {
            // The SVG namespace is a name, not something the page loads.
            let text = text.replace("\"http://www.w3.org/2000/svg\"", "");
            assert!(
                !text.contains("http://") && !text.contains("https://"),
                "no external URLs"
            );
        }
    }

    #[test]
    fn the_script_never_inserts_html() {
        for sink in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
        ] {
            assert!(!DASHBOARD_JS.contains(sink), "dashboard.js uses `{sink}`");
        }
    }
}
