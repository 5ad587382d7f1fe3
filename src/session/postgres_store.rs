//! [`PostgresStore`] (feature `postgres`): sessions in a PostgreSQL table.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::Row;
use sqlx::postgres::{PgPool, PgPoolOptions};

use super::store::{SessionRecord, SessionStore};
use crate::StoreError;
use crate::authenticator::BoxFuture;
use crate::clock::unix_secs;

fn err(e: sqlx::Error) -> StoreError {
    let kind = match &e {
        sqlx::Error::PoolTimedOut => "pool timed out",
        sqlx::Error::Io(_) => "io",
        sqlx::Error::Database(_) => "database",
        sqlx::Error::PoolClosed => "pool closed",
        _ => "other",
    };
    StoreError::new(format!("postgres: {kind}"))
}

/// Sessions in a table (created if missing):
///
/// ```sql
/// CREATE TABLE portcullis_sessions (
///   id_hash TEXT PRIMARY KEY, subject TEXT NOT NULL, record TEXT NOT NULL,
///   expires_at BIGINT NOT NULL, version BIGINT NOT NULL DEFAULT 0);
/// ```
///
/// A write is an `UPDATE ... WHERE version = <the one read>`, a rotation an
/// `UPDATE ... SET id_hash`. A login deletes its subject's expired rows; all expired
/// rows are deleted every 100 creations and by
/// [`cleanup_expired`](PostgresStore::cleanup_expired).
///
/// ```no_run
/// # async fn f() -> Result<(), portcullis::StoreError> {
/// let store = portcullis::session::PostgresStore::connect("postgres://127.0.0.1/test").await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    table: Arc<str>,
    creates: Arc<AtomicU64>,
}

/// Settings for [`PostgresStore`]; see [`PostgresStore::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct PostgresStoreBuilder {
    url: String,
    table: String,
    connect_timeout: Duration,
}

impl PostgresStoreBuilder {
    /// Table name (`[a-z_][a-z0-9_]*`, at most 63 bytes; default `portcullis_sessions`).
    pub fn with_table(mut self, table: &str) -> Self {
        self.table = table.to_owned();
        self
    }
    /// How long getting a pooled connection may take (default 5 s). The deadline a
    /// request waits on the store is
    /// [`SessionConfig::with_store_timeout`](super::SessionConfig::with_store_timeout).
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }
    /// Connects (a pool of 10) and creates the table if missing; fails on a bad table
    /// name or when PostgreSQL does not answer.
    pub async fn connect(self) -> Result<PostgresStore, StoreError> {
        let table = self.table.as_str();
        let valid = !table.is_empty()
            && table.len() <= 63
            && table
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            && !table.as_bytes()[0].is_ascii_digit();
        if !valid {
            return Err(StoreError::new(
                "invalid table name (use [a-z_][a-z0-9_]*, at most 63 bytes)",
            ));
        }
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(self.connect_timeout)
            .connect(&self.url)
            .await
            .map_err(err)?;
        let store = PostgresStore {
            pool,
            table: table.into(),
            creates: Arc::default(),
        };
        store.migrate().await?;
        Ok(store)
    }
}

impl PostgresStore {
    /// Connects to `url` with the defaults and creates the `portcullis_sessions` table.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::builder(url).connect().await
    }

    /// A store to configure before connecting.
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), portcullis::StoreError> {
    /// use portcullis::session::PostgresStore;
    /// let store = PostgresStore::builder("postgres://127.0.0.1/app").with_table("app_sessions").connect().await?;
    /// # Ok(()) }
    /// ```
    pub fn builder(url: &str) -> PostgresStoreBuilder {
        PostgresStoreBuilder {
            url: url.to_owned(),
            table: "portcullis_sessions".to_owned(),
            connect_timeout: Duration::from_secs(5),
        }
    }

    /// Uses an existing pool (the table is created if missing).
    pub async fn from_pool(pool: PgPool) -> Result<Self, StoreError> {
        let store = PostgresStore {
            pool,
            table: "portcullis_sessions".into(),
            creates: Arc::default(),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Creates the table and indexes. An advisory lock serialises concurrent starts
    /// (several instances, or parallel tests): plain `CREATE TABLE IF NOT EXISTS` races
    /// in PostgreSQL.
    async fn migrate(&self) -> Result<(), StoreError> {
        let t = &self.table;
        let mut tx = self.pool.begin().await.map_err(err)?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind(format!("portcullis-migrate-{t}"))
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        sqlx::raw_sql(&format!(
            "CREATE TABLE IF NOT EXISTS {t} (
                id_hash TEXT PRIMARY KEY,
                subject TEXT NOT NULL,
                record TEXT NOT NULL,
                expires_at BIGINT NOT NULL);
             ALTER TABLE {t} ADD COLUMN IF NOT EXISTS version BIGINT NOT NULL DEFAULT 0;
             CREATE INDEX IF NOT EXISTS {t}_subject ON {t} (subject);
             CREATE INDEX IF NOT EXISTS {t}_expires ON {t} (expires_at);"
        ))
        .execute(&mut *tx)
        .await
        .map_err(err)?;
        tx.commit().await.map_err(err)?;
        Ok(())
    }

    /// Deletes expired rows; returns how many.
    pub async fn cleanup_expired(&self) -> Result<u64, StoreError> {
        let r = sqlx::query(&format!(
            "DELETE FROM {} WHERE expires_at <= $1",
            self.table
        ))
        .bind(unix_secs() as i64)
        .execute(&self.pool)
        .await
        .map_err(err)?;
        Ok(r.rows_affected())
    }
}

impl SessionStore for PostgresStore {
    fn create<'a>(&'a self, record: &'a SessionRecord) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            if self.creates.fetch_add(1, Ordering::Relaxed) % 100 == 99 {
                self.cleanup_expired().await?;
            }
            let json = record.to_json()?;
            // The subject's ended sessions go in the same statement.
            sqlx::query(&format!(
                "WITH ended AS (DELETE FROM {t} WHERE subject = $2 AND expires_at <= $5)
                 INSERT INTO {t} (id_hash, subject, record, expires_at, version)
                 VALUES ($1, $2, $3, $4, $6)",
                t = self.table
            ))
            .bind(&record.id_hash)
            .bind(&record.subject)
            .bind(json)
            .bind(record.expires_at() as i64)
            .bind(unix_secs() as i64)
            .bind(record.version as i64)
            .execute(&self.pool)
            .await
            .map_err(err)?;
            Ok(())
        })
    }

    fn load<'a>(
        &'a self,
        id_hash: &'a str,
    ) -> BoxFuture<'a, Result<Option<SessionRecord>, StoreError>> {
        Box::pin(async move {
            let row = sqlx::query(&format!(
                "SELECT record, version FROM {} WHERE id_hash = $1",
                self.table
            ))
            .bind(id_hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(err)?;
            match row {
                None => Ok(None),
                Some(row) => {
                    let text: String = row.try_get("record").map_err(err)?;
                    let version: i64 = row.try_get("version").map_err(err)?;
                    let mut rec = SessionRecord::from_json(&text)?;
                    // The row is the truth: a rotated record keeps its old text.
                    rec.id_hash = id_hash.to_owned();
                    rec.version = version.max(0) as u64;
                    Ok(Some(rec))
                }
            }
        })
    }

    fn replace<'a>(&'a self, record: &'a SessionRecord) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let mut next = record.clone();
            next.version += 1;
            let json = next.to_json()?;
            // UPDATE, never INSERT: a session deleted meanwhile stays deleted; and only
            // over the version read: a change made meanwhile is never undone.
            let r = sqlx::query(&format!(
                "UPDATE {} SET record = $2, expires_at = $3, version = version + 1
                 WHERE id_hash = $1 AND version = $4",
                self.table
            ))
            .bind(&record.id_hash)
            .bind(json)
            .bind(record.expires_at() as i64)
            .bind(record.version as i64)
            .execute(&self.pool)
            .await
            .map_err(err)?;
            Ok(r.rows_affected() > 0)
        })
    }

    fn rotate<'a>(
        &'a self,
        record: &'a SessionRecord,
        new_id_hash: &'a str,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let r = sqlx::query(&format!(
                "UPDATE {} SET id_hash = $2 WHERE id_hash = $1",
                self.table
            ))
            .bind(&record.id_hash)
            .bind(new_id_hash)
            .execute(&self.pool)
            .await
            .map_err(err)?;
            Ok(r.rows_affected() > 0)
        })
    }

    fn delete<'a>(&'a self, id_hash: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let r = sqlx::query(&format!("DELETE FROM {} WHERE id_hash = $1", self.table))
                .bind(id_hash)
                .execute(&self.pool)
                .await
                .map_err(err)?;
            Ok(r.rows_affected() > 0)
        })
    }

    fn delete_all_for_subject<'a>(
        &'a self,
        subject: &'a str,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            let r = sqlx::query(&format!("DELETE FROM {} WHERE subject = $1", self.table))
                .bind(subject)
                .execute(&self.pool)
                .await
                .map_err(err)?;
            Ok(r.rows_affected())
        })
    }
}
