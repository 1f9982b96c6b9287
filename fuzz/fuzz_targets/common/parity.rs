//! Shared by the targets that read engine types from fuzzed JSON.

use inbox_rules::read::{self, FromJson};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Asserts that the engine's reader reads `T` from `value` as `serde_json`
/// does, messages included, except for what it refuses on purpose: a
/// struct written as an array, which `serde_json` reads field by field.
pub fn reads_as_serde_json<T: FromJson + DeserializeOwned + PartialEq + std::fmt::Debug>(
    value: &Value,
) {
    let ours = read::from_value::<T>(value).map_err(|e| e.to_string());
    let on_purpose =
        matches!(&ours, Err(m) if m.starts_with("invalid type: sequence, expected struct"));
    if !on_purpose {
        let theirs = serde_json::from_value::<T>(value.clone()).map_err(|e| e.to_string());
        assert_eq!(ours, theirs, "{value}");
    }
}
