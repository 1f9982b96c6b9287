//! The work behind each command-line command.

pub mod admin;
pub mod rules;
