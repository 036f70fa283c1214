use crate::run_state::{ContractViolation, PluginState};
use crate::wit::since_v0_1_0::state;

/// Bounds from `wit/since_v0.1.0/state.wit`: state is for cursors and seeds, not data.
const MAX_KEY: usize = 256;
const MAX_VALUE: usize = 64 << 10;
const MAX_KEYS: usize = 1024;

impl state::Host for PluginState {
    async fn get(&mut self, key: String) -> wasmtime::Result<Option<Vec<u8>>> {
        let plugin = self.plugin.clone();
        let (run, scope) = self.scoped("state.get")?;
        if let Some(staged) = run.staged.get(&key) {
            return Ok(staged.clone());
        }
        Ok(run.state.get(&plugin, &scope, &key).await?)
    }

    async fn set(&mut self, key: String, value: Option<Vec<u8>>) -> wasmtime::Result<()> {
        let (run, _) = self.scoped("state.set")?;
        if key.is_empty() || key.len() > MAX_KEY {
            return Err(ContractViolation(format!(
                "state.set: key must be 1 to {MAX_KEY} bytes, got {}",
                key.len()
            ))
            .into());
        }
        if let Some(v) = &value
            && v.len() > MAX_VALUE
        {
            return Err(ContractViolation(format!(
                "state.set: value of {key:?} is {} bytes; at most {MAX_VALUE} are kept",
                v.len()
            ))
            .into());
        }
        if !run.staged.contains_key(&key) && run.staged.len() >= MAX_KEYS {
            return Err(ContractViolation(format!(
                "state.set: more than {MAX_KEYS} keys written in one sync"
            ))
            .into());
        }
        run.staged.insert(key, value);
        Ok(())
    }
}
