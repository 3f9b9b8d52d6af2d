//! The web console's files, embedded in the binary at build time (no CDN, no runtime
//! fetch, no build step): `server/assets/console/` holds the page, its script and style,
//! and the vendored chart library (uPlot, pinned and checked by
//! `scripts/vendor-console.sh`, its LICENSE beside it).
//!
//! The index page carries a server-rendered summary of the tables and regions (readable
//! without JavaScript); the script then draws the live pages from the JSON under `/api/`.
//! This module serves files only.

use axum::Router;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use speedlayer_storage::DbStats;

const INDEX: &str = include_str!("../../assets/console/index.html");
const APP_JS: &str = include_str!("../../assets/console/app.js");
const APP_CSS: &str = include_str!("../../assets/console/app.css");
const FAVICON: &str = include_str!("../../assets/console/favicon.svg");
const UPLOT_JS: &str = include_str!("../../assets/console/vendor/uPlot.iife.min.js");
const UPLOT_CSS: &str = include_str!("../../assets/console/vendor/uPlot.min.css");
const UPLOT_LICENSE: &str = include_str!("../../assets/console/vendor/uPlot.LICENSE");

/// Where the server-rendered summary goes in `index.html`.
const SUMMARY_MARK: &str = "<!--SUMMARY-->";

fn file(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// The static files' routes (state-free, merged into the server's router).
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            "/console/app.js",
            get(|| async { file("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/favicon.ico",
            get(|| async { file("image/svg+xml", FAVICON) }),
        )
        .route(
            "/console/favicon.svg",
            get(|| async { file("image/svg+xml", FAVICON) }),
        )
        .route(
            "/console/app.css",
            get(|| async { file("text/css; charset=utf-8", APP_CSS) }),
        )
        .route(
            "/console/vendor/uPlot.iife.min.js",
            get(|| async { file("text/javascript; charset=utf-8", UPLOT_JS) }),
        )
        .route(
            "/console/vendor/uPlot.min.css",
            get(|| async { file("text/css; charset=utf-8", UPLOT_CSS) }),
        )
        .route(
            "/console/vendor/uPlot.LICENSE",
            get(|| async { file("text/plain; charset=utf-8", UPLOT_LICENSE) }),
        )
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The index page with a summary of `stats` (tables, regions, sizes) rendered in.
pub fn index(stats: &DbStats) -> Html<String> {
    let mut summary = String::from(
        "<table><tr><th>table</th><th>region</th><th>start</th><th>end</th>\
         <th>memstore</th><th>files</th><th>file bytes</th></tr>",
    );
    for t in &stats.tables {
        for r in &t.regions {
            let files: u64 = r.stores.iter().map(|s| s.files).sum();
            let bytes: u64 = r.stores.iter().map(|s| s.file_bytes).sum();
            summary.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&t.name),
                r.id,
                esc(&super::api::printable(&r.start)),
                esc(&super::api::printable(&r.end)),
                r.memstore_bytes,
                files,
                bytes
            ));
        }
    }
    summary.push_str("</table>");
    Html(INDEX.replacen(SUMMARY_MARK, &summary, 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_has_the_summary_mark_and_escapes_names() {
        assert!(INDEX.contains(SUMMARY_MARK));
        let mut stats = DbStats::default();
        stats.tables.push(speedlayer_storage::db::TableStats {
            name: "a<b".into(),
            regions: vec![speedlayer_storage::region::RegionStats::default()],
        });
        let Html(page) = index(&stats);
        assert!(page.contains("<td>a&lt;b</td>"), "{page}");
        assert!(!page.contains(SUMMARY_MARK));
    }
}
