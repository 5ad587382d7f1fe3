//! Passwords: the user table ([`Users`]) that Basic auth and session logins check
//! against, and the fixed pool of argon2 workers that verifies them.

mod users;
mod workers;

pub use self::users::{User, Users, hash_password};
