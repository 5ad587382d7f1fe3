//! An MCP (Model Context Protocol) server behind portcullis, the way MCP clients expect a
//! protected resource to behave: RFC 9728 metadata, a `resource_metadata` pointer in
//! every 401, tokens bound to this resource's audience, and a scope step-up.
//!
//! ```text
//! cargo run --example mcp_server
//! ```
//!
//! - `POST /mcp`: JSON-RPC 2.0 (`initialize`, `tools/list`, `tools/call`), the
//!   streamable HTTP transport's request/response form; any valid token for this
//!   resource may list tools, calling `create_task` needs scope `tasks:write` (403
//!   `insufficient_scope`, `scope="tasks:write"`, with the metadata URL);
//! - `GET /.well-known/oauth-protected-resource/mcp`: the metadata, naming the
//!   authorization server (`AUTH_ISSUER`, or an in-process dev issuer on loopback whose
//!   keys are the test kit's public ones: printed as such);
//! - tokens must name `<PUBLIC_URL>/mcp` in `aud` (RFC 8707).
//!
//! An MCP client starts with an unauthenticated request, reads `resource_metadata`
//! from the 401, fetches the metadata, finds the authorization server there, gets a
//! token for this resource, and retries; the test below walks exactly that.

use axum::routing::post;
use axum::{Json, Router};
use portcullis::jwt::{
    Algorithm, BearerAuth, Issuer, JwtVerifier, KeySource, TokenCache, Validation,
};
use portcullis::resource::ProtectedResource;
use portcullis::{AuthContext, AuthError, AuthLayer};
use serde_json::{Value, json};

/// The app: `/mcp` behind bearer tokens for `resource`, and the metadata.
fn app(resource: &ProtectedResource, keys: impl Into<KeySource>, issuer: &str) -> Router {
    // No `with_audience`: the resource identifier is the audience.
    let validation = Validation::new([Algorithm::RS256, Algorithm::ES256]).with_issuer(issuer);
    let verifier =
        JwtVerifier::new(Issuer::new(keys, validation)).with_token_cache(TokenCache::new());
    let bearer = BearerAuth::new("mcp", verifier).with_resource(resource);
    let rpc = {
        let resource = resource.clone();
        move |ctx: AuthContext, Json(req): Json<Value>| {
            let resource = resource.clone();
            async move { handle(&resource, &ctx, req) }
        }
    };
    Router::new()
        .route("/mcp", post(rpc))
        .layer(AuthLayer::required(bearer))
        .merge(resource.router())
}

/// One JSON-RPC request.
fn handle(
    resource: &ProtectedResource,
    ctx: &AuthContext,
    req: Value,
) -> Result<Json<Value>, AuthError> {
    let id = req.get("id").cloned().unwrap_or(Value::Null);
    let ok = |result: Value| Ok(Json(json!({"jsonrpc": "2.0", "id": id, "result": result})));
    match req.get("method").and_then(Value::as_str) {
        Some("initialize") => ok(json!({
            "protocolVersion": "2025-06-18",
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "portcullis-mcp-example", "version": "0.1.0"}
        })),
        Some("tools/list") => ok(json!({"tools": [{
            "name": "create_task",
            "description": "Create a task (needs scope tasks:write)",
            "inputSchema": {"type": "object", "properties": {"title": {"type": "string"}}}
        }]})),
        Some("tools/call") if req["params"]["name"] == "create_task" => {
            // Step-up: this tool needs more than the token may carry.
            if !ctx.has_scope("tasks:write") {
                return Err(resource.insufficient_scope("mcp", "tasks:write"));
            }
            let title = req["params"]["arguments"]["title"]
                .as_str()
                .unwrap_or("untitled");
            ok(
                json!({"content": [{"type": "text", "text": format!("created {title:?} for {}", ctx.subject())}]}),
            )
        }
        _ => Ok(Json(json!({
            "jsonrpc": "2.0", "id": id,
            "error": {"code": -32601, "message": "method not found"}
        }))),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    use portcullis::testing::{KeyServer, TestKey, TokenBuilder, jwks, now};
    let addr = std::env::var("PORTCULLIS_ADDR").unwrap_or_else(|_| "127.0.0.1:3001".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let public = std::env::var("PUBLIC_URL").unwrap_or_else(|_| {
        format!(
            "http://{}",
            listener.local_addr().unwrap_or_else(|_| unreachable!())
        )
    });
    let (keys, issuer, dev): (KeySource, String, Option<KeyServer>) =
        match std::env::var("AUTH_ISSUER") {
            Ok(issuer) => {
                let jwks = portcullis::jwt::RemoteJwks::discover(
                    &issuer,
                    [Algorithm::RS256, Algorithm::ES256],
                    portcullis::jwt::JwksOptions::default(),
                )?;
                (jwks.into(), issuer, None)
            }
            Err(_) => {
                let server = KeyServer::start(jwks(&[TestKey::Rs256])).await;
                (
                    TestKey::Rs256.key_set().into(),
                    server.issuer(),
                    Some(server),
                )
            }
        };
    let resource = ProtectedResource::new(&format!("{}/mcp", public.trim_end_matches('/')))?
        .with_authorization_server(&issuer)?
        .with_scopes(["tasks:read", "tasks:write"])
        .with_name("portcullis MCP example");
    println!(
        "MCP server on {public}/mcp, metadata at {}",
        resource.metadata_url()
    );
    if dev.is_some() {
        let token = |scope: &str| {
            TokenBuilder::new(TestKey::Rs256)
                .with_claim("iss", issuer.clone())
                .with_claim("aud", resource.identifier())
                .with_claim("sub", "alice")
                .with_claim("scope", scope)
                .with_claim("exp", now() + 3600)
                .sign()
        };
        println!(
            "DEV: tokens signed with the test kit's public key (set AUTH_ISSUER for a real one)"
        );
        println!(
            "curl -si -X POST {public}/mcp -H 'content-type: application/json' -d '{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}}'"
        );
        println!("TOKEN={}", token("tasks:read"));
        println!("WRITE_TOKEN={}", token("tasks:read tasks:write"));
    }
    let router = app(&resource, keys, &issuer);
    axum::serve(listener, router).await?;
    drop(dev);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis::testing::{KeyServer, TestKey, TokenBuilder, jwks, now};

    struct Running {
        base: String,
        idp: KeyServer,
        http: reqwest::Client,
    }

    async fn start() -> Running {
        let idp = KeyServer::start(jwks(&[TestKey::Rs256])).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let resource = ProtectedResource::new(&format!("{base}/mcp"))
            .unwrap()
            .with_authorization_server(&idp.issuer())
            .unwrap()
            .with_scopes(["tasks:read", "tasks:write"]);
        let router = app(&resource, TestKey::Rs256.key_set(), &idp.issuer());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Running {
            base,
            idp,
            http: reqwest::Client::new(),
        }
    }

    fn challenge_param(header: &str, name: &str) -> Option<String> {
        let start = header.find(&format!("{name}=\""))? + name.len() + 2;
        Some(header[start..].split('"').next()?.to_owned())
    }

    /// What an MCP client does: call, read the 401's `resource_metadata`, fetch the
    /// metadata, find the authorization server, get a token for this resource, retry;
    /// then step up when a tool needs another scope.
    #[tokio::test]
    async fn an_mcp_client_discovers_everything_from_the_first_401() {
        let r = start().await;
        let rpc = |method: &str, params: Value| json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let call = async |token: Option<&str>, body: Value| {
            let mut req = r.http.post(format!("{}/mcp", r.base)).json(&body);
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            req.send().await.unwrap()
        };
        // 1. No token: 401 pointing at the metadata.
        let first = call(None, rpc("initialize", json!({}))).await;
        assert_eq!(first.status(), 401);
        let www = first.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        let metadata_url = challenge_param(&www, "resource_metadata").expect("resource_metadata");
        assert_eq!(
            metadata_url,
            format!("{}/.well-known/oauth-protected-resource/mcp", r.base)
        );
        // 2. The metadata names the resource and its authorization server.
        let meta: Value = r
            .http
            .get(&metadata_url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(meta["resource"], format!("{}/mcp", r.base));
        let as_issuer = meta["authorization_servers"][0]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(as_issuer, r.idp.issuer());
        // 3. The authorization server's own metadata (a client would run the login there).
        let as_meta: Value = r
            .http
            .get(format!("{as_issuer}/.well-known/openid-configuration"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(as_meta["token_endpoint"].is_string());
        // 4. A token the authorization server issued for this resource (RFC 8707).
        let token = |aud: &str, scope: &str| {
            TokenBuilder::new(TestKey::Rs256)
                .with_claim("iss", as_issuer.clone())
                .with_claim("aud", aud)
                .with_claim("sub", "alice")
                .with_claim("scope", scope)
                .with_claim("exp", now() + 600)
                .sign()
        };
        let read = token(meta["resource"].as_str().unwrap(), "tasks:read");
        let init = call(Some(&read), rpc("initialize", json!({}))).await;
        assert_eq!(init.status(), 200);
        let tools: Value = call(Some(&read), rpc("tools/list", json!({})))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(tools["result"]["tools"][0]["name"], "create_task");
        // A token for another resource is refused (audience binding).
        let elsewhere = token("https://other.example.com/mcp", "tasks:read tasks:write");
        let refused = call(Some(&elsewhere), rpc("tools/list", json!({}))).await;
        assert_eq!(refused.status(), 401);
        assert!(
            refused.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .contains("resource_metadata="),
        );
        // 5. Step-up: the tool needs tasks:write.
        let create = rpc(
            "tools/call",
            json!({"name": "create_task", "arguments": {"title": "ship"}}),
        );
        let denied = call(Some(&read), create.clone()).await;
        assert_eq!(denied.status(), 403);
        let www = denied.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(
            challenge_param(&www, "error").as_deref(),
            Some("insufficient_scope")
        );
        assert_eq!(
            challenge_param(&www, "scope").as_deref(),
            Some("tasks:write")
        );
        assert_eq!(
            challenge_param(&www, "resource_metadata"),
            Some(metadata_url)
        );
        let write = token(meta["resource"].as_str().unwrap(), "tasks:read tasks:write");
        let created: Value = call(Some(&write), create).await.json().await.unwrap();
        assert!(
            created["result"]["content"][0]["text"]
                .as_str()
                .unwrap()
                .contains("ship")
        );
    }
}
