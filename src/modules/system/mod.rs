//! The host's system: users and groups, cron, hostname, known_hosts, reboot, systemd and service,
//! service_facts, getent, setup.

pub mod cron;
pub mod getent;
pub mod hostname;
pub mod known_hosts;
pub mod reboot;
pub mod service;
pub mod service_facts;
pub mod setup;
pub mod systemd;
pub mod user;
