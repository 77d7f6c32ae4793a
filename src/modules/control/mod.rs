//! The run itself, no host change: debug, assert, set_fact, set_stats, meta, pause, add_host,
//! group_by, validate_argument_spec.

pub mod add_host;
pub mod assert;
pub mod debug;
pub mod group_by;
pub mod meta;
pub mod pause;
pub mod set_fact;
pub mod set_stats;
pub mod validate_argument_spec;
