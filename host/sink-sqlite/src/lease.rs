//! The lease of one plugin and scope: a row of `leases` that a run takes before its first
//! write, renews while it runs and deletes at its end.

use std::time::Duration;

use infragraph_core::{Holder, WriteScope};
use rusqlite::{Connection, OptionalExtension, params};

use crate::error::{Error, ErrorKind, Fail};
use crate::write::now_ms;

/// Fails when another run holds the lease of `w`'s plugin and scope, as `conn` sees it.
/// Called first on the read connection, so that a run that cannot have the lease says so
/// at once rather than wait for the write lock (which a run writing directly holds for
/// its whole life, renewing its lease in its own transaction); then again in the write
/// transaction, which decides.
pub(crate) fn check(
    conn: &Connection,
    w: &WriteScope,
    holder: &Holder,
    ttl: Duration,
) -> Result<(), Fail> {
    // Cached: every run asks at least twice, and preparing meant parsing the statement
    // each time (0.9% of the engine threads' CPU samples in a sync of 200 connections).
    let current: Option<(String, String, i64)> = conn
        .prepare_cached(
            "SELECT holder, token, expires FROM leases WHERE plugin = ?1 AND scope = ?2",
        )?
        .query_row(params![w.plugin, w.scope], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?;
    let Some((other, token, expires)) = current else {
        return Ok(());
    };
    if token == holder.token {
        return Ok(());
    }
    let other: Option<Holder> = serde_json::from_str(&other).ok();
    let gone = other.as_ref().is_some_and(Holder::is_gone);
    // A run of this machine that is still there holds it even past its expiry: a run
    // writing directly renews it in a transaction no one else sees until it ends.
    let running = other.as_ref().is_some_and(Holder::is_running_here);
    if !gone && (expires > now_ms() || running) {
        let who = other.map_or_else(|| "another run".to_owned(), |h| h.to_string());
        return Err(Fail::Done(Error::new(
            ErrorKind::Leased,
            format!(
                "plugin {:?} in scope {:?} is being synced by {who}; wait for it to \
                 finish (or pass --wait), or stop it; a crashed run lets go within {} s",
                w.plugin,
                w.scope,
                ttl.as_secs()
            ),
        )));
    }
    tracing::info!(plugin = %w.plugin, scope = %w.scope, "the lease's holder is gone or late");
    Ok(())
}

/// Takes or renews the lease of `w`'s plugin and scope for `holder`, until `ttl` from
/// now, in the caller's write transaction. See `GraphSink::lease`.
pub(crate) fn take(
    tx: &Connection,
    w: &WriteScope,
    holder: &Holder,
    ttl: Duration,
) -> Result<(), Fail> {
    check(tx, w, holder, ttl)?;
    let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    tx.execute(
        "INSERT INTO leases (plugin, scope, holder, token, expires) VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT (plugin, scope) DO UPDATE SET holder = excluded.holder, \
         token = excluded.token, expires = excluded.expires",
        params![
            w.plugin,
            w.scope,
            serde_json::to_string(holder)?,
            holder.token,
            now_ms().saturating_add(ttl_ms)
        ],
    )?;
    Ok(())
}

/// Deletes the lease of `w`'s plugin and scope if `holder` still has it.
pub(crate) fn release(conn: &Connection, w: &WriteScope, holder: &Holder) -> rusqlite::Result<()> {
    conn.execute(
        "DELETE FROM leases WHERE plugin = ?1 AND scope = ?2 AND token = ?3",
        params![w.plugin, w.scope, holder.token],
    )
    .map(drop)
}
