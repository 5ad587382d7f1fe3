//! The callback's query: each parameter at most once, each bounded.

use super::{MAX_PARAM_BYTES, MAX_QUERY_BYTES, bad};
use crate::error::AuthError;

/// The callback's parameters: each at most once, each bounded.
#[derive(Debug, Default)]
pub(super) struct CallbackQuery {
    pub(super) code: Option<String>,
    pub(super) state: Option<String>,
    pub(super) error: Option<String>,
    pub(super) iss: Option<String>,
}

impl CallbackQuery {
    pub(super) fn parse(query: &str) -> Result<Self, AuthError> {
        if query.len() > MAX_QUERY_BYTES {
            return Err(bad("oauth: callback query too large"));
        }
        let mut q = CallbackQuery::default();
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            if v.len() > MAX_PARAM_BYTES {
                return Err(bad("oauth: callback parameter too large"));
            }
            let slot = match &*k {
                "code" => &mut q.code,
                "state" => &mut q.state,
                "error" => &mut q.error,
                "iss" => &mut q.iss,
                _ => continue,
            };
            if slot.replace(v.into_owned()).is_some() {
                return Err(bad("oauth: repeated callback parameter"));
            }
        }
        Ok(q)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_query_rules() {
        assert!(CallbackQuery::parse("code=a&state=b").is_ok());
        assert_eq!(
            crate::error::reason_of(CallbackQuery::parse("code=a&code=b&state=c")),
            "oauth: repeated callback parameter"
        );
        assert_eq!(
            crate::error::reason_of(CallbackQuery::parse(&format!("code={}", "a".repeat(5000)))),
            "oauth: callback parameter too large"
        );
        assert_eq!(
            crate::error::reason_of(CallbackQuery::parse(&"a=b&".repeat(3000))),
            "oauth: callback query too large"
        );
        let q = CallbackQuery::parse("error=access_denied&state=s&other=1").unwrap();
        assert_eq!(q.error.as_deref(), Some("access_denied"));
    }
}
