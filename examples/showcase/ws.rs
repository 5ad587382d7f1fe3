//! `GET /ws`: a WebSocket for any scheme; the first message is the context JSON, then
//! it echoes, and it closes (4001) when the context expires.

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use portcullis::AuthContext;

/// Upgrades, speaking subprotocol `chat` (the `bearer.<token>` entry is never echoed).
pub async fn upgrade(ws: WebSocketUpgrade, ctx: AuthContext) -> Response {
    ws.protocols(["chat"])
        .on_upgrade(move |socket| serve(socket, ctx))
}

async fn serve(mut socket: WebSocket, ctx: AuthContext) {
    let hello = serde_json::to_string(&ctx).unwrap_or_default();
    if socket.send(Message::Text(hello.into())).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            () = ctx.expired() => {
                let frame = CloseFrame { code: 4001, reason: "authentication expired".into() };
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
