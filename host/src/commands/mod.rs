//! The work behind each command-line command.

pub mod rules;
