//! End-to-end tests of infragraph and what they run against: simulators of providers
//! ([`sim`]) that serve on loopback ports, so no test reaches the network.
//!
//! Plugins and guests are not dependencies of this crate: tests load them as built
//! WebAssembly components.

pub mod bench;
pub mod bolt;
pub mod cli;
pub mod conformance;
pub mod graph;
pub mod harness;
pub mod leak;
pub mod logs;
pub mod registry;
pub mod sim;
