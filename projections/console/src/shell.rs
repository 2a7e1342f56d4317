//! The pages: one HTML shell and its script and style sheet, compiled into the binary.

use axum::extract::OriginalUri;
use axum::http::{header, HeaderName, HeaderValue, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

const INDEX: &str = include_str!("../assets/index.html");
const SCRIPT: &str = include_str!("../assets/console.js");
const STYLE: &str = include_str!("../assets/console.css");

/// Only this origin's script, style and images; no framing.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'self'; frame-ancestors 'none'; form-action 'self'";

pub(crate) fn routes() -> Router {
    Router::new()
        .route("/", get(index))
        .route("/assets/console.js", get(script))
        .route("/assets/console.css", get(style))
}

fn with_headers(content_type: &'static str, body: String) -> Response {
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        HeaderName::from_static("referrer-policy"),
        HeaderValue::from_static("no-referrer"),
    );
    res
}

/// The shell, with a `<base>` naming where the console is mounted, so that its
/// relative links and API calls work under any prefix (`/admin`, `/ops/console`...).
async fn index(OriginalUri(original): OriginalUri, uri: Uri) -> Response {
    let base = mount_point(original.path(), uri.path());
    let html = INDEX.replace("{{BASE}}", &escape(&base));
    with_headers("text/html; charset=utf-8", html)
}

/// The path the router is nested at, with a trailing slash: the request's full path
/// without the part the console's router saw.
fn mount_point(original: &str, inner: &str) -> String {
    let prefix = original
        .strip_suffix(inner)
        .unwrap_or_else(|| original.trim_end_matches('/'));
    format!("{}/", prefix.trim_end_matches('/'))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

async fn script() -> Response {
    with_headers("text/javascript; charset=utf-8", SCRIPT.to_owned())
}

async fn style() -> Response {
    with_headers("text/css; charset=utf-8", STYLE.to_owned())
}

#[cfg(test)]
mod tests {
    use super::mount_point;

    #[test]
    fn the_mount_point_is_what_the_router_did_not_see() {
        assert_eq!(mount_point("/admin", "/"), "/admin/");
        assert_eq!(mount_point("/admin/", "/"), "/admin/");
        assert_eq!(mount_point("/ops/console/", "/"), "/ops/console/");
        assert_eq!(mount_point("/", "/"), "/");
    }
}
