//! What modules share: the safe write (temp file, validate, rename, verify), modes, preserving
//! moves, and the arguments of ansible-core modules recover does not build.

pub mod args;
pub mod modes;
pub mod preserve;
pub mod unbuilt_args;
pub mod write;
