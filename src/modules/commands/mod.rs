//! Commands on the host: command and shell, script, raw, async_status, wait_for,
//! wait_for_connection, ping.

pub mod async_status;
pub mod command;
pub mod ping;
pub mod raw;
pub mod script;
pub mod wait_for;
pub mod wait_for_connection;
