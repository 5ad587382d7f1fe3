//! A real headless Chromium (Debian's `chromium` and `chromium-driver`) driven through
//! WebDriver: the `session_login` example's HTML form, the showcase's OIDC login against
//! its dev issuer, the cookie attributes as the browser stores them, a cross-site form
//! post from another site on another loopback port, and logout.
//!
//! Without chromedriver the test prints a notice and passes, unless
//! `PORTCULLIS_REQUIRE_BROWSER=1` (as `.ci/run` sets): then it fails saying so.

#[path = "../examples/session_login.rs"]
#[allow(dead_code)]
mod session_login;

#[path = "../examples/showcase/app.rs"]
#[allow(dead_code)]
mod showcase;

use std::net::TcpListener as StdListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::response::Html;
use axum::routing::get;
use fantoccini::{Client, ClientBuilder, Locator};
use portcullis::session::MemoryStore;
use portcullis::{User, Users, hash_password};
use serde_json::json;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// chromedriver on a free port, killed on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// chromedriver, when installed; `None` (after a notice) when it is not and the browser
/// is not required.
async fn driver() -> Option<Driver> {
    let installed =
        std::path::Path::new(CHROMEDRIVER).exists() && std::path::Path::new(CHROMIUM).exists();
    if !installed {
        if std::env::var("PORTCULLIS_REQUIRE_BROWSER").as_deref() == Ok("1") {
            panic!(
                "the browser test needs Debian's chromium and chromium-driver \
                 ({CHROMIUM}, {CHROMEDRIVER}): apt-get install -y chromium chromium-driver"
            );
        }
        eprintln!("skipping the browser test: {CHROMEDRIVER} or {CHROMIUM} is not installed");
        return None;
    }
    let port = free_port();
    // Killed and waited for when the Driver drops, the deadline below included.
    let driver = Driver {
        child: Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts"),
        url: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if reqwest::get(format!("{}/status", driver.url))
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Some(driver);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not answer within 20 s");
}

async fn browser(driver: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"],
        }),
    );
    let client = ClientBuilder::rustls()
        .expect("TLS roots for the WebDriver client")
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a Chromium session");
    client
        .update_timeouts(fantoccini::wd::TimeoutConfiguration::new(
            Some(Duration::from_secs(10)),
            Some(Duration::from_secs(20)),
            Some(Duration::from_secs(5)),
        ))
        .await
        .unwrap();
    client
}

/// Serves `router` on a free loopback port; its port.
async fn serve(router: Router) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    port
}

async fn body_text(c: &Client) -> String {
    c.find(Locator::Css("body"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_browser_logs_in_is_not_fooled_cross_site_and_logs_out() {
    let Some(driver) = driver().await else { return };
    let c = browser(&driver).await;

    // The session_login example, reached as localhost:<port>.
    let users = Arc::new(
        Users::new().with_user(
            "alice",
            User::hashed(&hash_password("correct horse").unwrap())
                .unwrap()
                .with_roles(["member"]),
        ),
    );
    let app_port = serve(session_login::app(users, Arc::new(MemoryStore::new()))).await;
    let app = format!("http://localhost:{app_port}");

    // Without a session, the page sends the browser to the login form.
    c.goto(&format!("{app}/")).await.unwrap();
    assert!(c.current_url().await.unwrap().path().starts_with("/login"));
    c.find(Locator::Css("input[name=username]"))
        .await
        .unwrap()
        .send_keys("alice")
        .await
        .unwrap();
    c.find(Locator::Css("input[name=password]"))
        .await
        .unwrap()
        .send_keys("correct horse")
        .await
        .unwrap();
    c.find(Locator::Css("button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .for_url(&url::Url::parse(&format!("{app}/")).unwrap())
        .await
        .unwrap();
    assert!(body_text(&c).await.contains("hello alice"));

    // The cookie as the browser keeps it.
    let cookie = c
        .get_named_cookie("session")
        .await
        .expect("session cookie stored");
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(format!("{:?}", cookie.same_site()), "Some(Lax)");
    assert_eq!(cookie.path(), Some("/"));
    let script_sees: String = c
        .execute("return document.cookie", vec![])
        .await
        .unwrap()
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        !script_sees.contains("session="),
        "HttpOnly cookie visible to scripts"
    );

    // Another site (127.0.0.1 is not localhost) posts a form to our logout.
    let target = format!("{app}/logout");
    let evil = Router::new().route(
        "/",
        get(move || {
            let target = target.clone();
            async move {
                Html(format!(
                    "<form id=f method=post action=\"{target}\"><button id=go>win a prize</button></form>"
                ))
            }
        }),
    );
    let evil_port = serve(evil).await;
    c.goto(&format!("http://127.0.0.1:{evil_port}/"))
        .await
        .unwrap();
    c.find(Locator::Id("go"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    c.goto(&format!("{app}/")).await.unwrap();
    assert!(
        body_text(&c).await.contains("hello alice"),
        "the cross-site post ended the session"
    );

    // The user's own logout ends it, in the browser and on the server.
    let stolen = c
        .get_named_cookie("session")
        .await
        .unwrap()
        .value()
        .to_owned();
    c.find(Locator::Css("button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(c.current_url().await.unwrap().path().starts_with("/login"));
    c.goto(&format!("{app}/")).await.unwrap();
    assert!(c.current_url().await.unwrap().path().starts_with("/login"));
    let replay = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{app}/"))
        .header("cookie", format!("session={stolen}"))
        .send()
        .await
        .unwrap();
    assert_ne!(
        replay.status(),
        reqwest::StatusCode::OK,
        "the old cookie still works"
    );

    // The showcase's OIDC login against its dev issuer, redirects followed by the browser.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let base = format!("http://localhost:{port}");
    let built = showcase::build(showcase::Config {
        admin_password: Some("admin-pass-123".into()),
        public_url: Some(base.clone()),
        ..showcase::Config::default()
    })
    .await
    .unwrap();
    let router = built
        .router
        .clone()
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    c.goto(&format!("{base}/oidc/login?return_to=/session/me"))
        .await
        .unwrap();
    c.wait()
        .for_url(&url::Url::parse(&format!("{base}/session/me")).unwrap())
        .await
        .unwrap();
    let page = body_text(&c).await;
    assert!(page.contains("\"subject\":\"alice\""), "{page}");
    assert!(page.contains("\"scheme\":\"session\""), "{page}");
    let session = c
        .get_named_cookie(&built.cookie_name)
        .await
        .expect("session cookie after OIDC");
    assert_eq!(session.http_only(), Some(true));
    assert_eq!(format!("{:?}", session.same_site()), "Some(Lax)");
    assert!(
        c.get_named_cookie("oauth-pending").await.is_err(),
        "the pending-login cookie outlived the login"
    );
    // A bad return_to is refused, in the browser too.
    c.goto(&format!("{base}/oidc/login?return_to=//evil.example"))
        .await
        .unwrap();
    assert!(
        body_text(&c).await.contains("bad_request")
            || c.current_url().await.unwrap().host_str() == Some("localhost")
    );

    c.close().await.unwrap();
}
