//! Static files, embedded at build time. The CSS is built from Tailwind by
//! `make css` and committed, so building Postern needs no npm.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

const FILES: &[(&str, &str, &[u8])] = &[
    ("app.css", "text/css; charset=utf-8", include_bytes!("../../assets/app.css")),
    ("app.js", "text/javascript; charset=utf-8", include_bytes!("../../assets/app.js")),
    (
        "backfill.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/backfill.js"),
    ),
    (
        "purge.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/purge.js"),
    ),
    (
        "counts.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/counts.js"),
    ),
    (
        "alpine-csp.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/alpine-csp.min.js"),
    ),
    ("favicon.svg", "image/svg+xml", include_bytes!("../../assets/favicon.svg")),
];

pub(crate) async fn serve(Path(file): Path<String>) -> Response {
    let Some((_, mime, body)) = FILES.iter().find(|(n, _, _)| *n == file) else {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    };
    let mut r = (*body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    r
}

/// `/favicon.ico`: browsers ask for it on pages that name no icon (and on
/// error pages); a 404 there is noise in every browser console.
pub(crate) async fn favicon() -> Response {
    serve(Path("favicon.svg".to_string())).await
}
