//! The forward-auth endpoint behind a real nginx (`auth_request`), started by this test
//! on loopback with its own configuration and temp directory, and stopped by its PID.
//! Skipped (with a notice) without nginx, unless `PORTCULLIS_REQUIRE_NGINX` is set
//! (`.ci/run` installs Debian's nginx-light and sets it).

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::http::HeaderMap;
use portcullis::basic::BasicAuth;
use portcullis::gateway::ForwardAuth;
use portcullis::jwt::{Algorithm, BearerAuth, Issuer, JwtVerifier, Validation};
use portcullis::policy::{RouteRules, Rule};
use portcullis::revocation::Revocations;
use portcullis::session::{MemoryStore, NewSession, SessionConfig, SessionManager};
use portcullis::testing::{TestKey, TokenBuilder, now};
use portcullis::{AuthLayer, User};
use reqwest::StatusCode;
use serde_json::{Value, json};

struct Nginx(Child);
impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn nginx_binary() -> Option<&'static str> {
    ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
}

async fn serve(app: Router) -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    port
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn config(dir: &std::path::Path, port: u16, auth: u16, upstream: u16) -> String {
    let d = dir.display();
    format!(
        r#"
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
user root;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  server {{
    listen 127.0.0.1:{port};
    location = /_auth {{
      internal;
      proxy_pass http://127.0.0.1:{auth}/auth/forward;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-URI $request_uri;
      proxy_set_header X-Original-Method $request_method;
      proxy_set_header X-Forwarded-Host $http_host;
      proxy_set_header X-Forwarded-Proto $scheme;
    }}
    location / {{
      auth_request /_auth;
      auth_request_set $auth_subject $upstream_http_x_auth_subject;
      auth_request_set $auth_roles $upstream_http_x_auth_roles;
      auth_request_set $auth_scopes $upstream_http_x_auth_scopes;
      auth_request_set $auth_email $upstream_http_x_auth_email;
      auth_request_set $auth_tenant $upstream_http_x_auth_tenant;
      auth_request_set $auth_scheme $upstream_http_x_auth_scheme;
      auth_request_set $auth_issuer $upstream_http_x_auth_issuer;
      proxy_set_header X-Auth-Subject $auth_subject;
      proxy_set_header X-Auth-Roles $auth_roles;
      proxy_set_header X-Auth-Scopes $auth_scopes;
      proxy_set_header X-Auth-Email $auth_email;
      proxy_set_header X-Auth-Tenant $auth_tenant;
      proxy_set_header X-Auth-Scheme $auth_scheme;
      proxy_set_header X-Auth-Issuer $auth_issuer;
      proxy_pass http://127.0.0.1:{upstream};
    }}
  }}
}}
"#
    )
}

#[tokio::test]
async fn forward_auth_behind_nginx() {
    let Some(bin) = nginx_binary() else {
        assert!(
            std::env::var_os("PORTCULLIS_REQUIRE_NGINX").is_none(),
            "nginx is required (apt-get install nginx-light)"
        );
        eprintln!("skip: nginx not installed (apt-get install nginx-light)");
        return;
    };
    let revocations = Revocations::memory();
    let bearer = BearerAuth::new(
        "api",
        JwtVerifier::new(Issuer::new(
            TestKey::Rs256.key_set(),
            Validation::new([Algorithm::RS256]).with_audience("api"),
        ))
        .with_revocations(revocations.clone()),
    );
    let basic = BasicAuth::new("apps")
        .with_user(
            "alice",
            User::plain("pw")
                .with_roles(["member"])
                .with_email("a@example.com"),
        )
        .with_user("root", User::plain("pw").with_roles(["admin"]));
    let rules = RouteRules::new()
        .with_any_method("/admin", Rule::role("admin"))
        .with_any_method("/admin/{*rest}", Rule::role("admin"))
        .with_fallback(Rule::authenticated());
    let sessions = SessionManager::new(MemoryStore::new(), SessionConfig::default());
    let session = sessions
        .login(&HeaderMap::new(), NewSession::new("carol"))
        .await
        .unwrap();
    let cookie = session.pair().to_owned();
    let layer = AuthLayer::required(basic)
        .or(bearer)
        .or(sessions.authenticator());
    let forward = ForwardAuth::new(layer, rules)
        .with_public(["/public/{*rest}"])
        .unwrap();
    let auth_port = serve(forward.router("/auth/forward")).await;
    let upstream = serve(Router::new().fallback(|headers: HeaderMap| async move {
        let mut seen = serde_json::Map::new();
        for (k, v) in &headers {
            let e = seen.entry(k.as_str()).or_insert_with(|| json!([]));
            e.as_array_mut()
                .unwrap()
                .push(json!(v.to_str().unwrap_or("?")));
        }
        Json(Value::Object(seen))
    }))
    .await;
    let dir = std::env::temp_dir().join(format!(
        "pc-nginx-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let port = free_port();
    std::fs::write(
        dir.join("nginx.conf"),
        config(&dir, port, auth_port, upstream),
    )
    .unwrap();
    let _nginx = Nginx(
        Command::new(bin)
            .args([
                "-p",
                dir.to_str().unwrap(),
                "-c",
                "nginx.conf",
                "-g",
                "daemon off;",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx starts"),
    );
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let start = Instant::now();
    while client.get(format!("{base}/public/x")).send().await.is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "nginx did not start: {}",
            std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let get = |path: &str| client.get(format!("{base}{path}"));

    // No credentials: the challenge reaches the client.
    let anon = get("/notes").send().await.unwrap();
    assert_eq!(anon.status(), StatusCode::UNAUTHORIZED);
    assert!(anon.headers().contains_key("www-authenticate"));
    // Public: reaches the upstream, with no identity.
    let open: Value = get("/public/x").send().await.unwrap().json().await.unwrap();
    assert!(open.get("x-auth-subject").is_none(), "{open}");
    // Basic, bearer: the identity reaches the upstream; client copies never do.
    let seen: Value = get("/notes")
        .basic_auth("alice", Some("pw"))
        .header("X-Auth-Subject", "root")
        .header("x-auth-subject", "root2")
        .header("X-AUTH-ROLES", "admin")
        .header("X_Auth_Roles", "admin")
        .header("Connection", "X-Auth-Subject")
        .header("X-Auth-Tenant", "evil")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(seen["x-auth-subject"], json!(["alice"]), "{seen}");
    assert_eq!(seen["x-auth-roles"], json!(["member"]), "{seen}");
    assert_eq!(seen["x-auth-email"], json!(["a@example.com"]), "{seen}");
    assert!(seen.get("x_auth_roles").is_none(), "{seen}");
    assert!(seen.get("x-auth-tenant").is_none(), "{seen}");
    // A session cookie: the identity reaches the upstream; a same-site POST judged by its
    // Origin (no Sec-Fetch-Site) passes, a cross-site one does not.
    let by_cookie: Value = get("/notes")
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(by_cookie["x-auth-subject"], json!(["carol"]), "{by_cookie}");
    assert_eq!(
        by_cookie["x-auth-scheme"],
        json!(["session"]),
        "{by_cookie}"
    );
    let post_from = |origin: &str| {
        client
            .post(format!("{base}/notes"))
            .header("cookie", &cookie)
            .header("origin", origin)
            .send()
    };
    assert_eq!(post_from(&base).await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        post_from("http://evil.example").await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    let token = TokenBuilder::new(TestKey::Rs256)
        .with_claim("aud", "api")
        .with_claim("sub", "bob")
        .with_claim("jti", "ngx-1")
        .with_claim("roles", json!(["member"]))
        .with_claim("exp", now() + 600)
        .sign();
    let by_token: Value = get("/notes")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(by_token["x-auth-subject"], json!(["bob"]));
    assert_eq!(by_token["x-auth-scheme"], json!(["bearer"]));
    // POST and HEAD.
    let post = client
        .post(format!("{base}/notes"))
        .basic_auth("alice", Some("pw"))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), StatusCode::OK);
    let head = client
        .head(format!("{base}/notes"))
        .basic_auth("alice", Some("pw"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    // Admin paths in every spelling: never 200 for a member, 200 for an admin.
    for path in [
        "/admin",
        "/admin/users",
        "/%61dmin",
        "//admin",
        "/./admin",
        "/x/../admin",
        "/admin;x=1",
    ] {
        let member = get(path)
            .basic_auth("alice", Some("pw"))
            .send()
            .await
            .unwrap();
        assert_ne!(member.status(), StatusCode::OK, "{path}");
        assert_eq!(member.status(), StatusCode::FORBIDDEN, "{path}");
        let admin = get(path)
            .basic_auth("root", Some("pw"))
            .send()
            .await
            .unwrap();
        assert_eq!(admin.status(), StatusCode::OK, "{path}");
    }
    // An encoded slash or backslash: not 200 (400 from the endpoint: nginx answers 500
    // for an auth_request status other than 2xx, 401 and 403).
    for path in ["/admin%2Fusers", "/x%2F..%2Fadmin", "/admin%5Cusers"] {
        let member = get(path)
            .basic_auth("alice", Some("pw"))
            .send()
            .await
            .unwrap();
        assert!(!member.status().is_success(), "{path}: {}", member.status());
    }
    // A revoked token.
    revocations
        .revoke_token("", "ngx-1", now() + 600)
        .await
        .unwrap();
    let revoked = get("/notes").bearer_auth(&token).send().await.unwrap();
    assert_eq!(revoked.status(), StatusCode::UNAUTHORIZED);
    let _ = std::fs::remove_dir_all(&dir);
}
