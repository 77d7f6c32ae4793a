//! Docker containers on the host: container_facts, restart_policy, container_remove,
//! docker_container_exec.

pub mod container;
pub mod docker_exec;
