//! How the resource server authenticates to the introspection endpoint, and the
//! request that carries it.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};

use super::Introspection;

/// How this resource server authenticates to the introspection endpoint.
#[derive(Clone)]
#[non_exhaustive]
pub enum ClientAuth {
    /// HTTP Basic with the client id and secret, each form-urlencoded first
    /// (`client_secret_basic`, RFC 6749 §2.3.1).
    Basic {
        /// The client id.
        id: String,
        /// The client secret.
        secret: String,
    },
    /// The client id and secret in the form body (`client_secret_post`).
    Post {
        /// The client id.
        id: String,
        /// The client secret.
        secret: String,
    },
    /// A bearer token of the resource server's own (some providers protect the endpoint
    /// this way).
    Bearer(String),
}

impl ClientAuth {
    /// `client_secret_basic` with `id` and `secret`.
    pub fn basic(id: impl Into<String>, secret: impl Into<String>) -> Self {
        ClientAuth::Basic {
            id: id.into(),
            secret: secret.into(),
        }
    }
}

impl fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientAuth::Basic { id, .. } => write!(f, "Basic({id}, <redacted>)"),
            ClientAuth::Post { id, .. } => write!(f, "Post({id}, <redacted>)"),
            ClientAuth::Bearer(_) => f.write_str("Bearer(<redacted>)"),
        }
    }
}

impl Introspection {
    /// The request asking the endpoint about `token`, with the client's credentials.
    pub(super) fn request(&self, token: &str) -> reqwest::RequestBuilder {
        let mut req = self
            .inner
            .s
            .client
            .post(self.inner.s.endpoint.clone())
            .timeout(self.inner.s.egress.timeout)
            .header(ACCEPT, "application/json")
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded");
        let body = {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("token", token)
                .append_pair("token_type_hint", "access_token");
            match &self.inner.s.auth {
                ClientAuth::Basic { id, secret } => {
                    let enc = |s: &str| {
                        url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
                    };
                    let pair = format!("{}:{}", enc(id), enc(secret));
                    req = req.header(AUTHORIZATION, format!("Basic {}", STANDARD.encode(pair)));
                }
                ClientAuth::Post { id, secret } => {
                    form.append_pair("client_id", id)
                        .append_pair("client_secret", secret);
                }
                ClientAuth::Bearer(t) => req = req.header(AUTHORIZATION, format!("Bearer {t}")),
            }
            form.finish()
        };
        req.body(body)
    }
}
