//! Multi-tenant notes: each tenant has its own issuer (a Keycloak-style realm,
//! `<idp>/realms/<tenant>`), resolved per token from an allowlist that can grow while the
//! app runs; the tenant comes from the issuer that verified the token (never from a claim
//! or the URL alone) and selects the data partition. Rows are readable by owner, by the
//! users they are shared with, and by tenant admins; writable by owner or tenant admin.
//!
//! ```text
//! cargo run --example multi_tenant
//! ```
//!
//! A dev identity provider on loopback serves three realms (acme, globex, initech, each
//! with its own key); tokens for users of each are printed at start. initech is not a
//! customer until `POST /tenants/initech` (unauthenticated here, an operator's action in
//! a real app) adds it: its tokens get 401 until then, and no request for an unlisted
//! realm makes the app fetch anything.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use portcullis::jwt::{Algorithm, BearerAuth, JwtVerifier, Tenants, Validation};
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
    // The dev IdP: one realm, with its own key, per tenant.
    let idp = KeyServer::start(jwks(&[TestKey::Rs256])).await;
    let realms = [
        ("acme", TestKey::Rs256),
        ("globex", TestKey::Es256),
        ("initech", TestKey::EdDsa),
    ];
    for (realm, key) in realms {
        idp.add_realm(realm, jwks(&[key]));
    }
    // The customers: a table the app can add to while it runs.
    let customers: Arc<RwLock<HashSet<String>>> = Arc::new(RwLock::new(HashSet::from([
        "acme".to_owned(),
        "globex".to_owned(),
    ])));
    let allowed = customers.clone();
    let tenants = Tenants::new(
        &format!("{}/realms/{{tenant}}", idp.base_url()),
        Validation::new([Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA])
            .with_audience("notes"),
    )?
    .with_allow_fn(move |tenant| {
        allowed
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(tenant)
    })
    .with_max_tenants(10_000);
    let verifier = JwtVerifier::for_tenants(tenants);
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
    let notes = Router::new()
        .route("/t/{tenant}/notes/{id}", get(read).put(write))
        .route_layer(PolicyLayer::new(Rule::tenant_from_path("tenant")))
        .layer(AuthLayer::required(BearerAuth::new("notes", verifier)))
        .with_state(db);
    let onboarding = Router::new().route(
        "/tenants/{name}",
        post(move |Path(name): Path<String>| async move {
            customers
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .insert(name);
            StatusCode::CREATED
        }),
    );
    let app = notes.merge(onboarding);

    let addr = std::env::var("PORTCULLIS_ADDR").unwrap_or_else(|_| "127.0.0.1:3005".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let base = format!("http://{}", listener.local_addr()?);
    let token = |sub: &str, tenant: &str, roles: &[&str]| {
        let key = realms
            .iter()
            .find(|(realm, _)| *realm == tenant)
            .map_or(TestKey::Rs256, |(_, key)| *key);
        TokenBuilder::new(key)
            .with_claim("iss", format!("{}/realms/{tenant}", idp.base_url()))
            .with_claim("aud", "notes")
            .with_claim("sub", sub)
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
    println!(
        "curl -s -X PUT -d x -H 'Authorization: Bearer {}' {base}/t/initech/notes/1  # 401 until: curl -X POST {base}/tenants/initech",
        token("peter", "initech", &[])
    );
    axum::serve(listener, app).await?;
    Ok(())
}
