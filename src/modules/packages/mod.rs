//! Packages and their sources: apt (and package), apt_key, apt_repository, deb822_repository,
//! debconf, dpkg_selections, pip, package_facts.

pub mod apt;
pub mod apt_key;
pub mod apt_repository;
pub mod deb822_repository;
pub mod debconf;
pub mod dpkg_selections;
pub mod package_facts;
pub mod pip;
