//! RFC 9728 metadata through `ProtectedResource::router`: both paths, the document's
//! fields and headers, and only GET and HEAD answered.

mod common;

use axum::body::Body;
use common::{get, send};
use http::StatusCode;
use portcullis::resource::ProtectedResource;

fn resource() -> ProtectedResource {
    ProtectedResource::new("https://api.example.com/mcp")
        .unwrap()
        .with_authorization_server("https://login.example.com")
        .unwrap()
        .with_scopes(["tasks:read", "tasks:write"])
}

#[tokio::test]
async fn the_document_is_served_at_the_path_inserted_and_the_bare_well_known_path() {
    let app: axum::Router = resource().router();
    for path in [
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-protected-resource",
    ] {
        // Twice: each request gets the whole document, not a spent body.
        for _ in 0..2 {
            let a = send(&app, get(path).body(Body::empty()).unwrap()).await;
            assert_eq!(a.status, StatusCode::OK, "{path}");
            assert_eq!(a.headers["content-type"], "application/json", "{path}");
            assert_eq!(a.headers["cache-control"], "public, max-age=3600", "{path}");
            let doc = a.json();
            assert_eq!(doc["resource"], "https://api.example.com/mcp", "{path}");
            assert_eq!(
                doc["authorization_servers"],
                serde_json::json!(["https://login.example.com"])
            );
            assert_eq!(
                doc["scopes_supported"],
                serde_json::json!(["tasks:read", "tasks:write"])
            );
        }
    }
}

#[tokio::test]
async fn only_get_and_head_are_answered() {
    let app: axum::Router = resource().router();
    let path = "/.well-known/oauth-protected-resource/mcp";
    let head = send(&app, get(path).method("HEAD").body(Body::empty()).unwrap()).await;
    assert_eq!(head.status, StatusCode::OK);
    assert!(head.body.is_empty());
    for method in ["POST", "PUT", "DELETE"] {
        let a = send(&app, get(path).method(method).body(Body::empty()).unwrap()).await;
        assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
    }
}
