//! Precedence and error messages of the configuration, in figment's jail
//! (a temporary directory and environment per test).
#![allow(
    clippy::result_large_err,
    reason = "figment's jail returns figment's error"
)]

use std::path::Path;

use figment::Jail;

use super::{Config, Overrides};

#[test]
fn defaults_hold_without_any_source() {
    Jail::expect_with(|_| {
        let config = Config::load(None, &Overrides::default()).expect("defaults");
        assert_eq!(config, Config::default());
        assert_eq!(config.database_url(), "sqlite://./data/inbox.db");
        Ok(())
    });
}

#[test]
fn file_then_environment_then_flags() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "inbox.toml",
            r#"
                bind = "127.0.0.1:9000"
                data_dir = "/srv/inbox"
                secret_overlap = "1h"
                rate_limit_burst = 7
            "#,
        )?;
        jail.set_env("INBOX_BIND", "127.0.0.1:9001");
        jail.set_env("INBOX_DATA_DIR", "/var/inbox");
        let flags = Overrides {
            data_dir: Some("/flag/dir".into()),
            ..Overrides::default()
        };
        let config = Config::load(Some(Path::new("inbox.toml")), &flags).expect("config");
        assert_eq!(config.bind.port(), 9001, "environment beats the file");
        assert_eq!(
            config.data_dir,
            Path::new("/flag/dir"),
            "flags beat the environment"
        );
        assert_eq!(
            config.secret_overlap.as_secs(),
            3600,
            "the file beats the defaults"
        );
        assert_eq!(config.rate_limit_burst, 7);
        assert_eq!(
            config.rate_limit_per_second, 50,
            "untouched settings keep their default"
        );
        Ok(())
    });
}

#[test]
fn a_bad_value_names_the_setting_and_its_source() {
    Jail::expect_with(|jail| {
        jail.set_env("INBOX_BIND", "not-an-address");
        let error = Config::load(None, &Overrides::default()).expect_err("bad bind");
        let text = error.to_string();
        assert!(text.contains("invalid bind (INBOX_BIND)"), "{text}");
        assert!(text.contains("environment variable"), "{text}");
        Ok(())
    });
}

#[test]
fn a_bad_duration_in_the_file_names_the_file() {
    Jail::expect_with(|jail| {
        jail.create_file("inbox.toml", "secret_overlap = \"soon\"")?;
        let error = Config::load(Some(Path::new("inbox.toml")), &Overrides::default())
            .expect_err("bad duration");
        let text = error.to_string();
        assert!(text.contains("invalid secret_overlap"), "{text}");
        assert!(text.contains("\"soon\" is not a duration"), "{text}");
        assert!(text.contains("inbox.toml"), "{text}");
        Ok(())
    });
}

#[test]
fn unknown_keys_in_the_file_are_refused() {
    Jail::expect_with(|jail| {
        jail.create_file("inbox.toml", "bnd = \"127.0.0.1:1\"")?;
        let error =
            Config::load(Some(Path::new("inbox.toml")), &Overrides::default()).expect_err("typo");
        assert!(error.to_string().contains("bnd"), "{error}");
        Ok(())
    });
}

#[test]
fn a_missing_file_is_an_error_not_a_silent_default() {
    Jail::expect_with(|_| {
        let error = Config::load(Some(Path::new("nope.toml")), &Overrides::default())
            .expect_err("missing file");
        assert!(error.to_string().contains("nope.toml"), "{error}");
        Ok(())
    });
}

#[test]
fn sense_checks_name_the_setting() {
    Jail::expect_with(|jail| {
        jail.set_env("INBOX_RATE_LIMIT_PER_SECOND", "0");
        let error = Config::load(None, &Overrides::default()).expect_err("zero rate");
        assert!(
            error.to_string().contains("rate_limit_per_second"),
            "{error}"
        );
        jail.set_env("INBOX_RATE_LIMIT_PER_SECOND", "5");
        jail.set_env("INBOX_DATABASE_URL", "mysql://db");
        let error = Config::load(None, &Overrides::default()).expect_err("mysql");
        assert!(error.to_string().contains("INBOX_DATABASE_URL"), "{error}");
        Ok(())
    });
}

#[test]
fn lists_come_as_text_from_the_environment_and_as_arrays_from_the_file() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "inbox.toml",
            r#"
                retry_schedule = ["1s", "1m"]
                allowed_targets = ["10.0.0.0/8"]
            "#,
        )?;
        let config =
            Config::load(Some(Path::new("inbox.toml")), &Overrides::default()).expect("config");
        assert_eq!(config.retry_schedule.len(), 2);
        assert_eq!(config.allowed_targets[0].to_string(), "10.0.0.0/8");

        jail.set_env("INBOX_RETRY_SCHEDULE", "1s, 2s,5s");
        jail.set_env("INBOX_ALLOWED_TARGETS", "192.168.1.0/24,fd00::/8");
        let config =
            Config::load(Some(Path::new("inbox.toml")), &Overrides::default()).expect("config");
        let secs: Vec<u64> = config.retry_schedule.iter().map(|d| d.as_secs()).collect();
        assert_eq!(secs, [1, 2, 5]);
        assert_eq!(config.allowed_targets.len(), 2);

        jail.set_env("INBOX_RETRY_SCHEDULE", "1s,later");
        let error = Config::load(None, &Overrides::default()).expect_err("bad step");
        assert!(
            error.to_string().contains("INBOX_RETRY_SCHEDULE"),
            "{error}"
        );
        jail.set_env("INBOX_RETRY_SCHEDULE", "1s");
        jail.set_env("INBOX_ALLOWED_TARGETS", "intranet");
        let error = Config::load(None, &Overrides::default()).expect_err("bad network");
        assert!(
            error.to_string().contains("\"intranet\" is not a network"),
            "{error}"
        );
        Ok(())
    });
}

#[test]
fn the_default_retry_schedule_is_the_contracts() {
    let steps: Vec<String> = Config::default()
        .retry_schedule
        .iter()
        .map(|d| humantime::format_duration(*d).to_string())
        .collect();
    assert_eq!(steps, ["5s", "5m", "30m", "2h", "5h", "10h", "10h"]);
}

#[test]
fn delivery_network_settings_come_from_the_environment() {
    Jail::expect_with(|jail| {
        jail.set_env("INBOX_EXTRA_CA_FILE", "/etc/inbox/ca.pem");
        jail.set_env("INBOX_DELIVERY_PROXY", "http://proxy.internal:3128");
        jail.set_env("INBOX_SECRET_KEY_FILE", "/etc/inbox/secret.key");
        jail.set_env("INBOX_TENANT_CONCURRENCY", "10");
        let config = Config::load(None, &Overrides::default()).expect("config");
        assert_eq!(
            config.extra_ca_file.as_deref(),
            Some(Path::new("/etc/inbox/ca.pem"))
        );
        assert_eq!(
            config
                .delivery_proxy()
                .expect("proxy")
                .map(|u| u.to_string()),
            Some("http://proxy.internal:3128/".to_owned())
        );
        assert_eq!(config.secret_key_file(), Path::new("/etc/inbox/secret.key"));
        assert_eq!(config.tenant_concurrency(), 10);
        Ok(())
    });
}

#[test]
fn unset_delivery_settings_take_their_defaults() {
    let config = Config {
        data_dir: "/srv/inbox".into(),
        delivery_concurrency: 256,
        ..Config::default()
    };
    assert_eq!(config.secret_key_file(), Path::new("/srv/inbox/secret.key"));
    assert_eq!(config.tenant_concurrency(), 64, "a quarter of the slots");
    assert_eq!(config.delivery_proxy().expect("none"), None);
}

#[test]
fn a_bad_proxy_or_tenant_limit_names_the_setting() {
    Jail::expect_with(|jail| {
        jail.set_env("INBOX_DELIVERY_PROXY", "proxy.internal:3128");
        let error = Config::load(None, &Overrides::default()).expect_err("no scheme");
        assert!(
            error.to_string().contains("INBOX_DELIVERY_PROXY"),
            "{error}"
        );
        jail.set_env("INBOX_DELIVERY_PROXY", "");
        jail.set_env("INBOX_TENANT_CONCURRENCY", "0");
        let error = Config::load(None, &Overrides::default()).expect_err("zero");
        assert!(
            error.to_string().contains("INBOX_TENANT_CONCURRENCY"),
            "{error}"
        );
        Ok(())
    });
}
