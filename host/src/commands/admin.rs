//! `tenant …` and `key …`: the operator's commands. They open the same
//! database as the server (it may be running: SQLite's WAL lets both work),
//! and print keys once; only their digests are stored.

use std::io::Write;

use anyhow::{Context as _, bail};
use serde_json::json;

use crate::cli::{
    KeyCommand, KeyCreateArgs, KeyListArgs, KeyRevokeArgs, KindArg, ListArgs, StoreArgs,
    TenantCommand, TenantCreateArgs,
};
use crate::config::{Config, Overrides};
use crate::keys::{KeyKind, NewKey};
use crate::server::open_store;
use crate::store::StoreError;

/// The configuration for a command that opens the database.
pub fn config(store: &StoreArgs, bind: Option<String>) -> anyhow::Result<Config> {
    Config::load(
        store.config.as_deref(),
        &Overrides {
            bind,
            data_dir: store.data_dir.clone(),
            database_url: store.database_url.clone(),
        },
    )
}

async fn open(args: &StoreArgs) -> anyhow::Result<std::sync::Arc<dyn crate::store::Store>> {
    open_store(&config(args, None)?).await
}

/// Runs a `tenant` command.
pub async fn tenant(command: &TenantCommand, out: &mut dyn Write) -> anyhow::Result<()> {
    match command {
        TenantCommand::Create(args) => create_tenant(args, out).await,
        TenantCommand::List(args) => list_tenants(args, out).await,
    }
}

/// Runs a `key` command.
pub async fn key(command: &KeyCommand, out: &mut dyn Write) -> anyhow::Result<()> {
    match command {
        KeyCommand::Create(args) => create_key(args, out).await,
        KeyCommand::List(args) => list_keys(args, out).await,
        KeyCommand::Revoke(args) => revoke_key(args, out).await,
    }
}

/// A tenant id: 1 to 63 lower-case letters, digits and inner dashes.
pub fn check_tenant_id(id: &str) -> anyhow::Result<()> {
    let shape = id.len() <= 63
        && !id.is_empty()
        && !id.starts_with('-')
        && !id.ends_with('-')
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !shape {
        bail!(
            "invalid tenant id {id:?}: use 1 to 63 lower-case letters, digits and dashes, not at either end"
        );
    }
    Ok(())
}

/// The id a name gives: lower case, runs of anything else become one dash.
pub fn slug(name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug = slug.trim_end_matches('-');
    slug.chars()
        .take(63)
        .collect::<String>()
        .trim_end_matches('-')
        .to_owned()
}

async fn create_tenant(args: &TenantCreateArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let id = args.id.clone().unwrap_or_else(|| slug(&args.name));
    check_tenant_id(&id).context("pick one with --id")?;
    if args.name.trim().is_empty() {
        bail!("the tenant's name is empty");
    }
    if let Some(c) = args.name.chars().find(|&c| inbox_rules::hidden(c)) {
        bail!(
            "the tenant's name holds a control or text-direction character (U+{:04X})",
            u32::from(c)
        );
    }
    let store = open(&args.store).await?;
    let tenant = store.create_tenant(&id, args.name.trim()).await?;
    let admin = NewKey::generate(KeyKind::Admin);
    let ingest = NewKey::generate(KeyKind::Ingest);
    store.create_key(&tenant.id, KeyKind::Admin, &admin).await?;
    store
        .create_key(&tenant.id, KeyKind::Ingest, &ingest)
        .await?;
    store.close().await;
    if args.json {
        let answer = json!({
            "tenantId": tenant.id,
            "apiKey": admin.secret,
            "ingestKey": ingest.secret,
        });
        writeln!(out, "{answer}")?;
    } else {
        writeln!(out, "Created tenant {} ({}).", tenant.id, tenant.name)?;
        writeln!(out, "Keys, shown only now; store them somewhere safe:")?;
        writeln!(out, "  admin API key: {}", admin.secret)?;
        writeln!(out, "  ingest key:    {}", ingest.secret)?;
        writeln!(
            out,
            "Use them as `Authorization: Bearer <key>`: the admin key for /v1 and the control panel, the ingest key for POST /v1/events."
        )?;
    }
    Ok(())
}

async fn list_tenants(args: &ListArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let store = open(&args.store).await?;
    let tenants = store.tenants().await?;
    store.close().await;
    if args.json {
        writeln!(out, "{}", serde_json::to_string(&tenants)?)?;
    } else if tenants.is_empty() {
        writeln!(
            out,
            "No tenants yet: `inbox-webhooks tenant create <name>`."
        )?;
    } else {
        for tenant in tenants {
            writeln!(out, "{}\t{}", tenant.id, tenant.name)?;
        }
    }
    Ok(())
}

async fn create_key(args: &KeyCreateArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let kind = match args.kind {
        KindArg::Admin => KeyKind::Admin,
        KindArg::Ingest => KeyKind::Ingest,
    };
    let store = open(&args.store).await?;
    let key = NewKey::generate(kind);
    let record = store
        .create_key(&args.tenant, kind, &key)
        .await
        .map_err(|e| match e {
            StoreError::NotFound(_) => anyhow::anyhow!("there is no tenant {:?}", args.tenant),
            other => other.into(),
        })?;
    store.close().await;
    if args.json {
        let answer = json!({
            "keyId": record.id,
            "key": key.secret,
            "kind": kind.as_str(),
            "tenantId": record.tenant_id,
        });
        writeln!(out, "{answer}")?;
    } else {
        writeln!(
            out,
            "Created {} key {} for {}.",
            kind.as_str(),
            record.id,
            record.tenant_id
        )?;
        writeln!(out, "Key, shown only now: {}", key.secret)?;
    }
    Ok(())
}

async fn list_keys(args: &KeyListArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let store = open(&args.store).await?;
    let keys = store.keys(&args.tenant).await?;
    store.close().await;
    if args.json {
        writeln!(out, "{}", serde_json::to_string(&keys)?)?;
    } else {
        for key in keys {
            let state = if key.revoked_at.is_some() {
                "revoked"
            } else {
                "active"
            };
            writeln!(
                out,
                "{}\t{}\t{}\t{}",
                key.id,
                key.kind.as_str(),
                key.hint,
                state
            )?;
        }
    }
    Ok(())
}

async fn revoke_key(args: &KeyRevokeArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let store = open(&args.store).await?;
    let revoked = store.revoke_key(&args.key_id).await?;
    store.close().await;
    if !revoked {
        bail!("there is no active key {:?}", args.key_id);
    }
    writeln!(out, "Revoked {}; it no longer authenticates.", args.key_id)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{check_tenant_id, slug};

    #[test]
    fn names_become_ids() {
        assert_eq!(slug("Acme Support"), "acme-support");
        assert_eq!(slug("  Acme & Co. (EU) "), "acme-co-eu");
        assert_eq!(slug("***"), "");
        assert_eq!(slug(&"a".repeat(80)).len(), 63);
    }

    #[test]
    fn ids_are_checked() {
        for good in ["acme", "a", "acme-2", "0x"] {
            assert!(check_tenant_id(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "-acme",
            "acme-",
            "Acme",
            "ac me",
            "ac_me",
            &"a".repeat(64),
        ] {
            assert!(check_tenant_id(bad).is_err(), "{bad}");
        }
    }
}
