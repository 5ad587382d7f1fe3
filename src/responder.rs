//! [`ErrorResponder`]: how rejected requests are rendered (JSON by default).

use axum::extract::OriginalUri;
use axum::response::{IntoResponse, Response};
use http::header::{ACCEPT, LOCATION};
use http::request::Parts;
use http::{HeaderValue, Method, StatusCode};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

use crate::error::{AuthError, ErrorKind};

/// Renders an [`AuthError`] into a response. Plug your own into any layer with
/// `with_responder` to return problem+json, HTML, or a redirect to a login page.
///
/// Closures `Fn(&AuthError, &Parts) -> Response` implement it.
///
/// ```
/// use axum::response::{IntoResponse, Response};
/// use portcullis::{AuthError, ErrorResponder};
///
/// let html = |err: &AuthError, _req: &http::request::Parts| -> Response {
///     let mut res = (err.status(), "<h1>Please sign in</h1>").into_response();
///     err.apply_headers(&mut res);
///     res
/// };
/// fn takes(_: impl ErrorResponder) {}
/// takes(html);
/// ```
pub trait ErrorResponder: Send + Sync + 'static {
    /// Build the response for `error` on the request described by `request`.
    fn respond(&self, error: &AuthError, request: &Parts) -> Response;
}

impl<F> ErrorResponder for F
where
    F: Fn(&AuthError, &Parts) -> Response + Send + Sync + 'static,
{
    fn respond(&self, error: &AuthError, request: &Parts) -> Response {
        self(error, request)
    }
}

/// The default responder: terse JSON `{"error": "...", "message": "..."}` with the
/// right status, `WWW-Authenticate`, `Retry-After` and `Cache-Control: no-store`.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonResponder;

impl ErrorResponder for JsonResponder {
    fn respond(&self, error: &AuthError, _request: &Parts) -> Response {
        error.to_json_response()
    }
}

/// For browser apps: a `GET`/`HEAD` that accepts HTML and lacks valid credentials is
/// redirected (303) to a login page with `?next=<path>`; everything else gets JSON.
///
/// `next` is the request's own path and query as the client sent it (axum's
/// `OriginalUri`, so routers under `nest` keep their prefix), and only when it is a
/// same-origin relative path (see [`LoginRedirect::safe_next`]); otherwise `next` is
/// `/`. Validate `next` again when the login form comes back: it is user input there.
///
/// ```
/// use portcullis::LoginRedirect;
/// let responder = LoginRedirect::new("/login");
/// // In the login handler, after a successful sign-in:
/// assert_eq!(LoginRedirect::safe_next(Some("/notes/7?tab=2")), "/notes/7?tab=2");
/// assert_eq!(LoginRedirect::safe_next(Some("//evil.example/x")), "/");
/// # let _ = responder;
/// ```
#[derive(Debug, Clone)]
pub struct LoginRedirect {
    login_path: String,
}

impl LoginRedirect {
    /// Redirect to `login_path` (a local path such as `/login`).
    ///
    /// # Panics
    /// When `login_path` does not start with a single `/` (an off-site redirect).
    pub fn new(login_path: impl Into<String>) -> Self {
        let login_path = login_path.into();
        assert!(
            login_path.starts_with('/') && !login_path.starts_with("//"),
            "LoginRedirect needs a local path like /login"
        );
        LoginRedirect { login_path }
    }
}

impl LoginRedirect {
    /// `next` when it is a same-origin relative path, else `/`: it must start with a
    /// single `/`, and hold no `//` at the start, no backslash and no control character
    /// (browsers read `/\\host` and `/<tab>/host` as another site).
    pub fn safe_next(next: Option<&str>) -> &str {
        match next {
            Some(n) if is_local_path(n) => n,
            _ => "/",
        }
    }
}

/// A same-origin relative path: see [`LoginRedirect::safe_next`].
pub(crate) fn is_local_path(p: &str) -> bool {
    p.starts_with('/')
        && !p.starts_with("//")
        && p.len() <= 2048
        && !p.chars().any(|c| c == '\\' || c.is_control())
}

impl ErrorResponder for LoginRedirect {
    fn respond(&self, error: &AuthError, request: &Parts) -> Response {
        let wants_html = request
            .headers
            .get(ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/html"));
        let redirectable = matches!(
            error.kind(),
            ErrorKind::MissingCredentials | ErrorKind::InvalidCredentials
        );
        if !(wants_html && redirectable && matches!(request.method, Method::GET | Method::HEAD)) {
            return error.to_json_response();
        }
        let uri = request
            .extensions
            .get::<OriginalUri>()
            .map_or(&request.uri, |o| &o.0);
        let next = Self::safe_next(uri.path_and_query().map(|p| p.as_str()));
        let location = format!(
            "{}?next={}",
            self.login_path,
            utf8_percent_encode(next, NON_ALPHANUMERIC)
        );
        match HeaderValue::from_str(&location) {
            Ok(v) => {
                let mut res = StatusCode::SEE_OTHER.into_response();
                res.headers_mut().insert(LOCATION, v);
                res
            }
            Err(_) => error.to_json_response(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_is_a_local_path_or_root() {
        let ok = ["/", "/a", "/a/b?c=d&e=//f", "/%2F%2Fevil.example", "/a//b"];
        for p in ok {
            assert_eq!(LoginRedirect::safe_next(Some(p)), p);
        }
        let bad = [
            "",
            "a",
            "//evil.example",
            "///evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "https://evil.example",
            "javascript:alert(1)",
        ];
        for p in bad {
            assert_eq!(LoginRedirect::safe_next(Some(p)), "/", "{p:?}");
        }
        assert_eq!(LoginRedirect::safe_next(None), "/");
        assert_eq!(
            LoginRedirect::safe_next(Some(&format!("/{}", "a".repeat(3000)))),
            "/"
        );
    }
}
