//! Multi-tenant notes: the tenant comes from the verified context (never from the URL
//! alone) and selects the data partition; rows are readable by owner, by the users they
//! are shared with, and by tenant admins; writable by owner or tenant admin.
//!
//! ```text
//! cargo run --example multi_tenant
//! ```
//!
//! Tokens for three users in two tenants are printed at start (dev issuer on loopback).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use portcullis::jwt::{
    Algorithm, BearerAuth, ClaimsMapping, Issuer, JwksOptions, JwtVerifier, RemoteJwks, Validation,
};
use portcullis::policy::{PolicyLayer, Rule};
use portcullis::testing::{KeyServer, TestKey, TokenBuilder, jwks, now};
use portcullis::{AuthContext, AuthLayer};
use serde_json::json;

#[derive(Clone)]
struct Note {
    owner: String,
    shared_with: Vec<String>,
    text: String,
}

/// tenant -> note id -> note: one partition per tenant.
type Db = Arc<RwLock<HashMap<String, HashMap<String, Note>>>>;

fn tenant_of(ctx: &AuthContext) -> Result<&str, StatusCode> {
    ctx.tenant().ok_or(StatusCode::FORBIDDEN)
}

async fn read(
    State(db): State<Db>,
    ctx: AuthContext,
    Path((tenant, id)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, StatusCode> {
    // The route's tenant must be the caller's (also enforced by the policy layer).
    if tenant_of(&ctx)? != tenant {
        return Err(StatusCode::FORBIDDEN);
    }
    let note = db
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .get(&tenant)
        .and_then(|t| t.get(&id))
        .cloned();
    let note = note.ok_or(StatusCode::NOT_FOUND)?;
    if !note.shared_with.iter().any(|s| s == ctx.subject()) {
        ctx.require_owner(&note.owner, &["admin"])
            .map_err(|e| e.status())?;
    }
    Ok(Json(
        json!({"tenant": tenant, "id": id, "owner": note.owner, "text": note.text}),
    ))
}

async fn write(
    State(db): State<Db>,
    ctx: AuthContext,
    Path((tenant, id)): Path<(String, String)>,
    body: String,
) -> Result<StatusCode, StatusCode> {
    if tenant_of(&ctx)? != tenant {
        return Err(StatusCode::FORBIDDEN);
    }
    let mut db = db.write().unwrap_or_else(|p| p.into_inner());
    let partition = db.entry(tenant).or_default();
    match partition.get_mut(&id) {
        Some(note) => {
            ctx.require_owner(&note.owner, &["admin"])
                .map_err(|e| e.status())?;
            note.text = body;
            Ok(StatusCode::OK)
        }
        None => {
            partition.insert(
                id,
                Note {
                    owner: ctx.subject().to_owned(),
                    shared_with: vec![],
                    text: body,
                },
            );
            Ok(StatusCode::CREATED)
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = KeyServer::start(jwks(&[TestKey::Rs256])).await;
    let issuer = server.base_url();
    let keys = RemoteJwks::new(
        &server.url("/jwks.json"),
        [Algorithm::RS256],
        JwksOptions::default(),
    )?;
    let verifier = JwtVerifier::new(
        Issuer::new(
            keys,
            Validation::new([Algorithm::RS256])
                .with_issuer(issuer.clone())
                .with_audience("notes"),
        )
        .with_mapping(ClaimsMapping::default().with_tenant_claim("org_id")),
    );
    let db: Db = Arc::new(RwLock::new(HashMap::from([
        (
            "acme".into(),
            HashMap::from([(
                "1".into(),
                Note {
                    owner: "alice".into(),
                    shared_with: vec!["bob".into()],
                    text: "acme plan".into(),
                },
            )]),
        ),
        (
            "globex".into(),
            HashMap::from([(
                "1".into(),
                Note {
                    owner: "carol".into(),
                    shared_with: vec![],
                    text: "globex secret".into(),
                },
            )]),
        ),
    ])));
    let app = Router::new()
        .route("/t/{tenant}/notes/{id}", get(read).put(write))
        .route_layer(PolicyLayer::new(Rule::tenant_from_path("tenant")))
        .layer(AuthLayer::required(BearerAuth::new("notes", verifier)))
        .with_state(db);

    let addr = std::env::var("PORTCULLIS_ADDR").unwrap_or_else(|_| "127.0.0.1:3005".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let base = format!("http://{}", listener.local_addr()?);
    let token = |sub: &str, org: &str, roles: &[&str]| {
        TokenBuilder::new(TestKey::Rs256)
            .with_claim("iss", issuer.clone())
            .with_claim("aud", "notes")
            .with_claim("sub", sub)
            .with_claim("org_id", org)
            .with_claim("roles", json!(roles))
            .with_claim("exp", now() + 3600)
            .sign()
    };
    println!("multi_tenant on {base}");
    println!(
        "curl -s -H 'Authorization: Bearer {}' {base}/t/acme/notes/1    # bob: shared",
        token("bob", "acme", &[])
    );
    println!(
        "curl -s -H 'Authorization: Bearer {}' {base}/t/globex/notes/1  # bob: other tenant, 403",
        token("bob", "acme", &[])
    );
    println!(
        "curl -s -X PUT -d x -H 'Authorization: Bearer {}' {base}/t/acme/notes/1  # dave, acme admin",
        token("dave", "acme", &["admin"])
    );
    axum::serve(listener, app).await?;
    Ok(())
}
