//! The host side of each imported interface, one module per interface, all implemented
//! on the store's data ([`PluginState`]). They depend only on the leaves: the run's
//! state, the emission channel, the limits and the bindings.

mod emit;
mod http;
mod log;
mod state;

use crate::run_state::PluginState;
use crate::wit::since_v0_1_0::types;

impl types::Host for PluginState {}
