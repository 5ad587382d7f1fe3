//! How key fetches leave the process: proxies from the environment, extra root
//! certificates for a private CA, a caller-built client. Real servers on 127.0.0.1.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::routing::get;
use portcullis::egress::Egress;
use portcullis::jwt::{Algorithm, JwksOptions, RemoteJwks};
use portcullis::testing::{TestKey, jwks};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

/// A plain-HTTP forward proxy stand-in: it answers every proxied `GET` for a JWKS with
/// the test key set itself, and counts the requests that reached it.
async fn proxy() -> (SocketAddr, Arc<AtomicUsize>) {
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    let app = Router::new().route(
        "/jwks.json",
        get(move |uri: http::Uri| {
            let counter = counter.clone();
            async move {
                // A forward proxy receives the absolute URI of the origin.
                if uri.host() == Some("idp.example.invalid") {
                    counter.fetch_add(1, Ordering::SeqCst);
                }
                axum::Json(jwks(&[TestKey::Rs256]))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, seen)
}

/// Runs this test binary's test `name` in a child process with `env` (the environment of
/// this process must not change while other tests run in it).
fn run_child(name: &str, env: &[(&str, String)]) -> bool {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", name, "--nocapture", "--include-ignored"])
        .env("PORTCULLIS_EGRESS_CHILD", "1");
    for var in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "no_proxy",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let ok = out.status.success() && stdout.contains("1 passed");
    if !ok {
        eprintln!(
            "child {name}:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    ok
}

fn child_jwks(egress: Egress) -> RemoteJwks {
    RemoteJwks::new(
        "http://idp.example.invalid/jwks.json",
        [Algorithm::RS256],
        JwksOptions::default().with_egress(egress.with_insecure_http(true)),
    )
    .unwrap()
}

/// The fetch failed because the provider could not be reached (not a refusal of what
/// it answered).
fn unreachable(result: Result<usize, portcullis::ConfigError>) -> bool {
    result.is_err_and(|e| e.to_string().contains("request failed or timed out"))
}

/// In a child process with `HTTP_PROXY` set: the fetch of an unresolvable host succeeds
/// only through the proxy.
#[tokio::test]
#[ignore = "run by proxy_settings_from_the_environment_are_honoured in a child process"]
async fn child_fetch_through_env_proxy() {
    if std::env::var_os("PORTCULLIS_EGRESS_CHILD").is_none() {
        return;
    }
    assert_eq!(child_jwks(Egress::default()).fetch_now().await.unwrap(), 1);
}

#[tokio::test]
#[ignore = "run by proxy_settings_from_the_environment_are_honoured in a child process"]
async fn child_fetch_without_proxy() {
    if std::env::var_os("PORTCULLIS_EGRESS_CHILD").is_none() {
        return;
    }
    assert!(unreachable(
        child_jwks(Egress::default().without_proxy())
            .fetch_now()
            .await
    ));
}

#[tokio::test]
#[ignore = "run by proxy_settings_from_the_environment_are_honoured in a child process"]
async fn child_fetch_default() {
    if std::env::var_os("PORTCULLIS_EGRESS_CHILD").is_none() {
        return;
    }
    assert!(unreachable(child_jwks(Egress::default()).fetch_now().await));
}

// Multi-threaded: the proxy answers while this thread waits for the child.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_settings_from_the_environment_are_honoured() {
    let (addr, seen) = proxy().await;
    let proxy_url = format!("http://{addr}");
    let through = run_child(
        "child_fetch_through_env_proxy",
        &[("HTTP_PROXY", proxy_url.clone())],
    );
    assert!(through, "HTTP_PROXY was not used");
    assert_eq!(seen.load(Ordering::SeqCst), 1);
    // Opted out in code: the proxy is not used, so the made-up host cannot be reached.
    assert!(run_child(
        "child_fetch_without_proxy",
        &[("HTTP_PROXY", proxy_url.clone())]
    ));
    // NO_PROXY names the host: direct, so it fails.
    assert!(run_child(
        "child_fetch_default",
        &[
            ("HTTP_PROXY", proxy_url),
            ("NO_PROXY", "idp.example.invalid".into())
        ]
    ));
    assert_eq!(seen.load(Ordering::SeqCst), 1);
    // No proxy configured at all: direct, so it fails.
    assert!(run_child("child_fetch_default", &[]));
}

/// A private CA and a server certificate for 127.0.0.1 and localhost, signed by it.
fn private_ca() -> (
    String,
    rustls::pki_types::CertificateDer<'static>,
    rustls::pki_types::PrivateKeyDer<'static>,
) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
    (ca.pem(), leaf.der().clone(), key)
}

/// A TLS key server on 127.0.0.1 presenting `cert`.
async fn tls_key_server(
    cert: rustls::pki_types::CertificateDer<'static>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
) -> SocketAddr {
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let app = Router::new().route(
        "/jwks.json",
        get(|| async { axum::Json(jwks(&[TestKey::Rs256])) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    let service = hyper_util::service::TowerToHyperService::new(app);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                        .await;
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn a_private_ca_is_trusted_only_when_given() {
    let (ca_pem, cert, key) = private_ca();
    let addr = tls_key_server(cert, key).await;
    let url = format!("https://localhost:{}/jwks.json", addr.port());
    let plain = RemoteJwks::new(
        &url,
        [Algorithm::RS256],
        JwksOptions::default().with_egress(Egress::default().without_proxy()),
    )
    .unwrap();
    assert!(
        unreachable(plain.fetch_now().await),
        "an unknown CA must not be trusted"
    );
    let egress = Egress::default()
        .without_proxy()
        .with_root_certificates_pem(ca_pem.as_bytes())
        .unwrap();
    let opts = JwksOptions::default().with_egress(egress);
    let trusted = RemoteJwks::new(&url, [Algorithm::RS256], opts).unwrap();
    assert_eq!(trusted.fetch_now().await.unwrap(), 1);

    assert!(
        Egress::default()
            .with_root_certificates_pem(b"")
            .map(|_| ())
            .is_err_and(|e| e.to_string().contains("no certificate in the PEM"))
    );
    assert!(
        Egress::default()
            .with_root_certificates_pem(
                b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"
            )
            .map(|_| ())
            .is_err_and(|e| e.to_string().contains("root certificates"))
    );
}

#[tokio::test]
async fn a_caller_built_client_is_used() {
    let (ca_pem, cert, key) = private_ca();
    let addr = tls_key_server(cert, key).await;
    let client = reqwest::Client::builder()
        .no_proxy()
        .tls_certs_only([reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap()])
        .build()
        .unwrap();
    let url = format!("https://localhost:{}/jwks.json", addr.port());
    let jwks = RemoteJwks::new(
        &url,
        [Algorithm::RS256],
        JwksOptions::default().with_egress(Egress::default().with_http_client(client)),
    )
    .unwrap();
    assert_eq!(jwks.fetch_now().await.unwrap(), 1);
}
