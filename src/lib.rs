//! `recover`: inventory-driven remote execution and remediation for
//! cold-start recovery of a small fleet. See `DESIGN.md` in the shared docs and
//! the README for the architecture; each module's doc says what it owns.

pub mod ansible_cfg;
pub mod assets;
pub mod baseline;
pub mod cli;
pub mod docker;
pub mod error;
pub mod executor;
pub mod facts;
pub mod gather;
pub mod gates;
pub mod inventory;
pub mod modules;
pub mod plan;
pub mod playbook;
pub mod report;
pub mod safety;
pub mod template;
pub mod transport;
pub mod vault;
pub mod yaml;
