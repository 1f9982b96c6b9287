//! Black-box tests of the HTTP API: the real server on port 0 with a
//! temporary SQLite database, driven over HTTP, one module per resource.

mod hostile;
mod keys;
mod rules;
mod system;
mod webhooks;
