//! The lease of one plugin and scope: an `InfragraphLease` node a run takes before its
//! first write, renews while it runs and deletes at its end. Taken by compare-and-set on
//! its `token`, so two runs racing for an expired lease cannot both win.

use std::time::Duration;

use infragraph_core::{Holder, WriteScope};
use neo4rs::query;

use crate::error::{Error, ErrorKind};
use crate::sink::{Neo4jSink, now_ms};

/// Creates the lease when there is none; returns the lease as it stands.
const READ: &str = "MERGE (l:`InfragraphLease` {`id`: $id}) \
    ON CREATE SET l.`token` = $token, l.`holder` = $holder, l.`expires` = $expires \
    RETURN l.`token` AS token, l.`holder` AS holder, l.`expires` AS expires";

/// Takes the lease over from the token last seen on it; `n` is 0 when it changed since.
const SET: &str = "MATCH (l:`InfragraphLease` {`id`: $id}) WHERE l.`token` = $seen \
    SET l.`token` = $token, l.`holder` = $holder, l.`expires` = $expires \
    RETURN count(l) AS n";

const DROP: &str = "MATCH (l:`InfragraphLease` {`id`: $id}) WHERE l.`token` = $token DELETE l";

/// The uniqueness the MERGE above relies on when two runs create the lease at once.
pub(crate) const CONSTRAINT: &str = "CREATE CONSTRAINT `infragraph_lease_id` IF NOT EXISTS \
    FOR (l:`InfragraphLease`) REQUIRE l.`id` IS UNIQUE";

fn lease_id(w: &WriteScope) -> String {
    // Plugin names have no `/`; scopes may, which is fine after the first one.
    format!("{}/{}", w.plugin, w.scope)
}

impl Neo4jSink {
    pub(crate) async fn take_lease(
        &self,
        w: &WriteScope,
        holder: &Holder,
        ttl: Duration,
    ) -> Result<(), Error> {
        let what = format!(
            "taking the lease of plugin {:?} in scope {:?}",
            w.plugin, w.scope
        );
        let id = lease_id(w);
        let me = serde_json::to_string(holder).unwrap_or_default();
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        // A lost race for an expired lease is tried again: the winner is then the holder.
        for _ in 0..3 {
            let expires = now_ms().saturating_add(ttl_ms);
            let rows = self
                .tx_retried(&what, || {
                    vec![
                        query(READ)
                            .param("id", id.as_str())
                            .param("token", holder.token.as_str())
                            .param("holder", me.as_str())
                            .param("expires", expires),
                    ]
                })
                .await?;
            let row = rows.into_iter().flatten().next().ok_or_else(|| {
                Error::new(
                    ErrorKind::Query,
                    format!("neo4j {}: {what}: no lease", self.uri),
                )
            })?;
            let token: String = row.get("token").unwrap_or_default();
            let current_expires: i64 = row.get("expires").unwrap_or(0);
            if token != holder.token {
                let other: Option<Holder> = row
                    .get::<String>("holder")
                    .ok()
                    .and_then(|h| serde_json::from_str(&h).ok());
                let gone = other.as_ref().is_some_and(Holder::is_gone);
                if current_expires > now_ms() && !gone {
                    let who = other.map_or_else(|| "another run".to_owned(), |h| h.to_string());
                    return Err(Error::new(
                        ErrorKind::Leased,
                        format!(
                            "neo4j {}: plugin {:?} in scope {:?} is being synced by {who}; \
                             wait for it to finish (or pass --wait), or stop it; a crashed run \
                             lets go within {} s",
                            self.uri,
                            w.plugin,
                            w.scope,
                            ttl.as_secs()
                        ),
                    ));
                }
            }
            // Ours already (renew) or free to take over: set it, if it is as we saw it.
            let rows = self
                .tx_retried(&what, || {
                    vec![
                        query(SET)
                            .param("id", id.as_str())
                            .param("seen", token.as_str())
                            .param("token", holder.token.as_str())
                            .param("holder", me.as_str())
                            .param("expires", expires),
                    ]
                })
                .await?;
            let n: i64 = rows
                .into_iter()
                .flatten()
                .next()
                .and_then(|r| r.get("n").ok())
                .unwrap_or(0);
            if n > 0 {
                return Ok(());
            }
        }
        Err(Error::new(
            ErrorKind::Leased,
            format!(
                "neo4j {}: {what}: other runs keep taking it; try again",
                self.uri
            ),
        ))
    }

    pub(crate) async fn drop_lease(&self, w: &WriteScope, holder: &Holder) -> Result<(), Error> {
        let what = format!(
            "releasing the lease of plugin {:?} in scope {:?}",
            w.plugin, w.scope
        );
        let id = lease_id(w);
        self.tx_retried(&what, || {
            vec![
                query(DROP)
                    .param("id", id.as_str())
                    .param("token", holder.token.as_str()),
            ]
        })
        .await?;
        Ok(())
    }
}
