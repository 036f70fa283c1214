use infragraph_core::{NodeRef, is_pascal_case, is_snake_case};

use crate::emission::{Emission, Stopped};

/// Longer reasons are cut: a reason is a sentence for the report, and a plugin may mark
/// many labels incomplete.
const MAX_REASON: usize = 4096;
use crate::run_state::{ContractViolation, PluginState};
use crate::wit::since_v0_1_0::{batch, emit, types};

impl emit::Host for PluginState {
    async fn declare_scope(&mut self, scope: types::NodeRef) -> wasmtime::Result<()> {
        let run = self.run("declare-scope")?;
        let scope = NodeRef::from(scope);
        if !is_pascal_case(&scope.label) || !is_snake_case(&scope.key) || scope.value.is_empty() {
            return Err(ContractViolation(format!(
                "declare-scope: {scope} is not a valid node reference (PascalCase label, \
                 snake_case key, non-empty value)"
            ))
            .into());
        }
        if !run.schema.has_label(&scope.label) {
            return Err(ContractViolation(format!(
                "declare-scope (the SDK's `cx.scope(..)`) names label {:?}, which is not one \
                 of the plugin's node kinds: declare it in the manifest, or scope the sync by \
                 one that is",
                scope.label
            ))
            .into());
        }
        match &run.scope {
            Some(s) if *s != scope => Err(ContractViolation(format!(
                "declare-scope called again with {scope} after {s}; a sync covers one scope"
            ))
            .into()),
            Some(_) => Ok(()),
            None => {
                run.scope = Some(scope.clone());
                run.out.send(Emission::Scope(scope)).await?;
                // Nothing more goes out, requests included, until the consumer says
                // whether the run may have this scope (another run may hold it).
                if let Some(accepted) = run.scope_accepted.take() {
                    // Waiting for the scope's lease (`--wait`, another run holding it) is
                    // not the plugin's time: it may be as long as that run's.
                    run.deadline.pause();
                    let verdict = accepted.await;
                    run.deadline.resume();
                    verdict.map_err(|_| Stopped)?;
                }
                Ok(())
            }
        }
    }

    async fn emit_nodes(&mut self, batch: emit::NodeBatch) -> wasmtime::Result<()> {
        let (run, _) = self.scoped("emit-nodes")?;
        // Counted from the raw batch (one id per row), before decoding copies it row by
        // row: a batch past the quota costs no more host memory than it already has.
        run.admit_records(batch.ids.ends.len())?;
        let mut batch = batch::nodes(batch)
            .map_err(|e| ContractViolation(format!("emit-nodes: malformed batch: {e}")))?;
        run.schema
            .check_nodes(&mut batch, run.limits.property_value_bytes)?;
        run.counts.nodes += batch.rows.len() as u64;
        run.counts.node_batches += 1;
        Ok(run.out.send(Emission::Nodes(batch)).await?)
    }

    async fn emit_edges(&mut self, batch: emit::EdgeBatch) -> wasmtime::Result<()> {
        let (run, _) = self.scoped("emit-edges")?;
        // Counted from the raw batch (one start per row), before decoding.
        run.admit_records(batch.from.ends.len())?;
        let mut batch = batch::edges(batch)
            .map_err(|e| ContractViolation(format!("emit-edges: malformed batch: {e}")))?;
        run.schema
            .check_edges(&mut batch, run.limits.property_value_bytes)?;
        run.counts.edges += batch.rows.len() as u64;
        run.counts.edge_batches += 1;
        Ok(run.out.send(Emission::Edges(batch)).await?)
    }

    async fn mark_incomplete(
        &mut self,
        label: String,
        parent: Option<types::NodeRef>,
        reason: String,
    ) -> wasmtime::Result<()> {
        let (run, _) = self.scoped("mark-incomplete")?;
        if !run.schema.has_label(&label) {
            return Err(ContractViolation(format!(
                "mark-incomplete: label {label:?} is not in the plugin's schema"
            ))
            .into());
        }
        let reason = run.fetcher.redact_capped(&reason, MAX_REASON);
        let parent = parent.map(NodeRef::from);
        let incomplete = Emission::Incomplete {
            label,
            parent,
            reason,
        };
        Ok(run.out.send(incomplete).await?)
    }
}
