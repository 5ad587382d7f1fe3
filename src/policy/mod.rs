//! Authorization, separate from authentication: [`Rule`]s over the [`AuthContext`](crate::AuthContext),
//! enforced by [`PolicyLayer`], optionally per route with [`RouteRules`].
//!
//! For checks that need the loaded row, use [`AuthContext::require_owner`](crate::AuthContext::require_owner)
//! in the handler.

mod layer;
mod owner;
mod routes;
mod rule;

pub use self::layer::{PolicyFuture, PolicyLayer, PolicyService};
pub use self::owner::OwnerKey;
pub use self::routes::RouteRules;
pub use self::rule::{PolicyInput, Rule, Verdict};
