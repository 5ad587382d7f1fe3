//! A WebSocket authenticated as strictly as any HTTP route.
//!
//! ```text
//! cargo run --example websocket
//! ```
//!
//! - `GET /ws` upgrades for a session cookie (log in with `POST /login`) or for a bearer
//!   token sent as the subprotocol entry `bearer.<token>` (browsers cannot set
//!   `Authorization` on a WebSocket): `new WebSocket(url, ["chat", "bearer." + token])`;
//! - the handshake answers with the protocol the app speaks, `chat`, never the token;
//! - cross-site upgrades carrying the cookie are refused (403);
//! - the socket task gets the `AuthContext`: the first message is its JSON, then it
//!   echoes, and it closes with code 4001 when the context expires.

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use portcullis::jwt::{Algorithm, BearerAuth, Issuer, JwtVerifier, KeySet, Validation};
use portcullis::session::{MemoryStore, NewSession, SessionConfig, SessionManager, Sessions};
use portcullis::{AuthContext, AuthError, AuthLayer};

/// The subprotocol the app speaks.
const PROTOCOL: &str = "chat";
/// The close code sent when the credential expires: the client re-authenticates.
const EXPIRED: u16 = 4001;

/// `/ws` behind a session cookie or a bearer subprotocol, and a demo `/login`.
fn app(
    keys: KeySet,
    audience: &str,
    manager: SessionManager,
) -> Result<Router, portcullis::ConfigError> {
    let validation = Validation::new([Algorithm::RS256]).with_audience(audience);
    let bearer = BearerAuth::new("chat", JwtVerifier::new(Issuer::new(keys, validation)))
        .with_websocket_protocol("bearer.")?;
    Ok(Router::new()
        .route("/ws", get(upgrade))
        .layer(AuthLayer::required(manager.authenticator()).or(bearer))
        .route("/login", post(login))
        .layer(Extension(manager)))
}

async fn upgrade(ws: WebSocketUpgrade, ctx: AuthContext) -> Response {
    ws.protocols([PROTOCOL])
        .on_upgrade(move |socket| serve(socket, ctx))
}

/// Sends the context, echoes text, and closes (4001) when the context expires.
async fn serve(mut socket: WebSocket, ctx: AuthContext) {
    let hello = serde_json::to_string(&ctx).unwrap_or_default();
    if socket.send(Message::Text(hello.into())).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            () = ctx.expired() => {
                let frame = CloseFrame { code: EXPIRED, reason: "authentication expired".into() };
                let _ = socket.send(Message::Close(Some(frame))).await;
                return;
            }
            msg = socket.recv() => match msg {
                Some(Ok(Message::Text(t))) => {
                    if socket.send(Message::Text(t)).await.is_err() {
                        return;
                    }
                }
                Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
        }
    }
}

/// A demo login (any name): a real app checks a password or an OAuth login first.
async fn login(
    sessions: Sessions,
    Json(name): Json<String>,
) -> Result<impl IntoResponse, AuthError> {
    sessions.login(NewSession::new(name)).await
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    use portcullis::testing::{TEST_AUDIENCE, TestKey, TokenBuilder, now};
    let manager = SessionManager::new(
        MemoryStore::new(),
        SessionConfig::default().with_insecure_dev_cookie(),
    );
    let router = app(TestKey::Rs256.key_set(), TEST_AUDIENCE, manager)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3001").await?;
    let token = TokenBuilder::new(TestKey::Rs256)
        .with_claim("sub", "alice")
        .with_claim("aud", TEST_AUDIENCE)
        .with_claim("exp", now() + 120)
        .sign();
    println!(
        "ws://127.0.0.1:3001/ws with subprotocols [\"chat\", \"bearer.{token}\"] (expires in 2 minutes)"
    );
    axum::serve(listener, router).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::{SinkExt, StreamExt};
    use portcullis::testing::{TEST_AUDIENCE, TestKey, TokenBuilder, now};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    use tokio_tungstenite::tungstenite::{Error as WsError, Message as WsMessage};

    async fn start() -> String {
        let manager = SessionManager::new(
            MemoryStore::new(),
            SessionConfig::default().with_insecure_dev_cookie(),
        );
        let router = app(TestKey::Rs256.key_set(), TEST_AUDIENCE, manager).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        addr.to_string()
    }

    fn token(ttl: u64) -> String {
        TokenBuilder::new(TestKey::Rs256)
            .with_claim("sub", "alice")
            .with_claim("aud", TEST_AUDIENCE)
            .with_claim("exp", now() + ttl)
            .sign()
    }

    fn request(
        addr: &str,
        headers: &[(&'static str, String)],
    ) -> tokio_tungstenite::tungstenite::handshake::client::Request {
        let mut req = format!("ws://{addr}/ws").into_client_request().unwrap();
        for (k, v) in headers {
            req.headers_mut().insert(*k, v.parse().unwrap());
        }
        req
    }

    #[tokio::test]
    async fn bearer_subprotocol_opens_the_socket_and_expiry_closes_it() {
        let addr = start().await;
        let req = request(
            &addr,
            &[(
                "sec-websocket-protocol",
                format!("chat, bearer.{}", token(3)),
            )],
        );
        let (mut ws, resp) = tokio_tungstenite::connect_async(req).await.unwrap();
        assert_eq!(
            resp.headers()["sec-websocket-protocol"],
            "chat",
            "never the token"
        );
        let Some(Ok(WsMessage::Text(hello))) = ws.next().await else {
            panic!("no hello")
        };
        let ctx: serde_json::Value = serde_json::from_str(&hello).unwrap();
        assert_eq!(ctx["subject"], "alice");
        ws.send(WsMessage::Text("ping".into())).await.unwrap();
        assert_eq!(
            ws.next().await.unwrap().unwrap(),
            WsMessage::Text("ping".into())
        );
        // The token lives a few more seconds: then the server closes with 4001.
        let closed = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
            .await
            .unwrap();
        match closed {
            Some(Ok(WsMessage::Close(Some(frame)))) => {
                assert_eq!(frame.code, CloseCode::from(4001))
            }
            other => panic!("expected a close frame, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn cookie_sessions_open_the_socket_but_not_from_another_site() {
        let addr = start().await;
        let res = reqwest::Client::new()
            .post(format!("http://{addr}/login"))
            .json(&"bob")
            .send()
            .await
            .unwrap();
        let cookie = res.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let same = request(
            &addr,
            &[
                ("cookie", cookie.clone()),
                ("origin", format!("http://{addr}")),
            ],
        );
        let (mut ws, _) = tokio_tungstenite::connect_async(same).await.unwrap();
        let Some(Ok(WsMessage::Text(hello))) = ws.next().await else {
            panic!("no hello")
        };
        assert!(hello.contains("\"subject\":\"bob\""), "{hello}");
        let cross = request(
            &addr,
            &[
                ("cookie", cookie),
                ("origin", "https://evil.example".into()),
            ],
        );
        match tokio_tungstenite::connect_async(cross).await {
            Err(WsError::Http(resp)) => assert_eq!(resp.status(), 403),
            other => panic!("cross-site upgrade not refused: {other:?}"),
        }
    }

    #[tokio::test]
    async fn no_or_bad_credentials_get_no_socket() {
        let addr = start().await;
        for headers in [
            vec![],
            vec![("sec-websocket-protocol", "chat".to_owned())],
            vec![(
                "sec-websocket-protocol",
                "chat, bearer.not-a-token".to_owned(),
            )],
            vec![(
                "sec-websocket-protocol",
                format!("chat, bearer.{}", token(0).replace('.', "")),
            )],
        ] {
            match tokio_tungstenite::connect_async(request(&addr, &headers)).await {
                Err(WsError::Http(resp)) => assert!(resp.status().is_client_error(), "{headers:?}"),
                other => panic!("upgrade not refused for {headers:?}: {other:?}"),
            }
        }
    }
}
