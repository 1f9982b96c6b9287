//! Webhooks: validated and compiled once, then decided against events.
//!
//! [`CompiledWebhook::decide`] is the one evaluation behind both matching
//! and explaining: a [`Probe`] watches it, and matching's probe lets it stop
//! at the first failed check while the explainer's records every step.

use std::sync::Arc;

use crate::catalog::{
    MAX_CONDITION_ID, MAX_CONDITIONS, MAX_LIST_ITEMS, MAX_PATTERN_WEIGHT, MAX_RATE_LIMIT,
    MAX_URL_CHARS, MAX_VALUE_CHARS,
};
use crate::condition::{CompiledCondition, EventView};
use crate::diagnostic::{Code, Diagnostic, Report};
use crate::expression;
use crate::model::{EventType, MatchMode, Webhook};
use crate::plan::Plan;

/// A webhook ready to decide events.
#[derive(Debug, Clone)]
pub(crate) struct CompiledWebhook {
    pub(crate) id: String,
    pub(crate) enabled: bool,
    /// Bit `i` set: subscribed to `EventType::ALL[i]`.
    events: u8,
    pub(crate) channels: Vec<String>,
    pub(crate) accounts: Vec<String>,
    /// Shared with the rule set's numbered conditions.
    pub(crate) conditions: Vec<Arc<CompiledCondition>>,
    pub(crate) mode: MatchMode,
    /// The match mode over the conditions, condition `i` numbered `i`.
    plan: Plan,
}

/// One of the checks a webhook makes, in the order it makes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    Enabled,
    Event,
    Subscription,
    Conditions,
}

/// Watches a decision. `EXHAUSTIVE` probes see every check and condition,
/// even after the answer is known.
pub(crate) trait Probe {
    const EXHAUSTIVE: bool;
    fn check(&mut self, check: Check, passed: bool);
    fn condition(&mut self, index: usize, holds: bool);
    /// Whether the probe has seen condition `index` already.
    fn seen(&self, _index: usize) -> bool {
        false
    }
}

/// The probe of plain matching: records nothing, stops early.
pub(crate) struct Quick;

impl Probe for Quick {
    const EXHAUSTIVE: bool = false;
    fn check(&mut self, _: Check, _: bool) {}
    fn condition(&mut self, _: usize, _: bool) {}
}

/// Whether `c` is a control character or a bidirectional override or
/// isolate (U+202A–U+202E, U+2066–U+2069): characters that are invisible
/// in a list of names, or that make one name display as another.
pub fn hidden(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// The pattern of `conditions[index]` (condition `id`, weighing `weight`)
/// takes the webhook's patterns to `total`, past their limit.
fn too_costly(index: usize, id: u32, weight: u32, total: u32) -> Diagnostic {
    Diagnostic::at(
        format!("conditions[{index}].value"),
        Code::TooCostly,
        format!(
            "this pattern weighs {weight}, which takes the webhook's patterns to {total}, \
             past the {MAX_PATTERN_WEIGHT} they may weigh together: use `*` or `+` instead \
             of a large {{n,m}}, or fewer patterns"
        ),
    )
    // A condition that compiled has a valid id.
    .for_condition(id)
}

/// The problems of one of a webhook's lists: more entries than
/// [`MAX_LIST_ITEMS`] (then nothing else is looked at), or an entry listed
/// again, reported where it repeats.
fn list_problems(list: &str, items: &[String]) -> Vec<Diagnostic> {
    if items.len() > MAX_LIST_ITEMS {
        return vec![Diagnostic::at(
            list,
            Code::TooManyItems,
            format!(
                "`{list}` holds at most {MAX_LIST_ITEMS} entries; this one has {}",
                items.len()
            ),
        )];
    }
    repeats(items.iter().map(String::as_str))
        .map(|(i, first)| {
            Diagnostic::at(
                format!("{list}[{i}]"),
                Code::DuplicateValue,
                format!("`{}` is listed twice (also {list}[{first}])", items[i]),
            )
        })
        .collect()
}

/// Each entry that repeats an earlier one: its index, and the earlier
/// one's. Quadratic, for lists of at most [`MAX_LIST_ITEMS`].
pub(crate) fn repeats<'a>(
    items: impl Iterator<Item = &'a str> + Clone,
) -> impl Iterator<Item = (usize, usize)> {
    let earlier = items.clone();
    items.enumerate().filter_map(move |(i, item)| {
        earlier
            .clone()
            .take(i)
            .position(|other| other == item)
            .map(|first| (i, first))
    })
}

impl CompiledWebhook {
    /// Validates `webhook` and compiles it, or returns the report of every
    /// problem. The report's warnings are returned with the webhook.
    pub(crate) fn compile(webhook: &Webhook) -> Result<(Self, Vec<Diagnostic>), Report> {
        let mut errors = Vec::new();
        let mut warnings = Vec::new();

        if webhook.name.trim().is_empty() || webhook.name.chars().count() > 200 {
            errors.push(Diagnostic::at(
                "name",
                Code::InvalidValue,
                "give the webhook a name of 1 to 200 characters",
            ));
        } else if let Some(c) = webhook.name.chars().find(|&c| hidden(c)) {
            errors.push(Diagnostic::at(
                "name",
                Code::InvalidValue,
                format!(
                    "a name cannot hold control or text-direction characters (U+{:04X})",
                    u32::from(c)
                ),
            ));
        }
        if let Err(message) = check_url(&webhook.url) {
            errors.push(Diagnostic::at("url", Code::InvalidUrl, message));
        }
        if webhook
            .rate_limit
            .is_some_and(|limit| !(1..=MAX_RATE_LIMIT).contains(&limit))
        {
            errors.push(Diagnostic::at(
                "rateLimit",
                Code::InvalidValue,
                format!("a rate limit is 1 to {MAX_RATE_LIMIT} deliveries a second"),
            ));
        }

        let mut events = 0u8;
        if webhook.events.is_empty() {
            errors.push(Diagnostic::at(
                "events",
                Code::InvalidValue,
                "choose at least one event",
            ));
        }
        let lists = [
            ("events", &webhook.events),
            ("channels", &webhook.channels),
            ("accounts", &webhook.accounts),
        ];
        let mut too_long = [false; 3];
        for ((list, items), too_long) in lists.iter().zip(&mut too_long) {
            let problems = list_problems(list, items);
            *too_long = problems.iter().any(|d| d.code == Code::TooManyItems);
            errors.extend(problems);
        }
        if !too_long[0] {
            for (i, name) in webhook.events.iter().enumerate() {
                match EventType::parse(name) {
                    Some(e) => events |= 1 << e.index(),
                    None => errors.push(EventType::unknown(format!("events[{i}]"), name)),
                }
            }
        }
        for ((list, items), too_long) in lists.iter().zip(too_long).skip(1) {
            if too_long {
                continue;
            }
            for (i, item) in items.iter().enumerate() {
                if item.is_empty() || item.chars().count() > MAX_VALUE_CHARS {
                    errors.push(Diagnostic::at(
                        format!("{list}[{i}]"),
                        Code::InvalidValue,
                        format!("each entry needs 1 to {MAX_VALUE_CHARS} characters"),
                    ));
                }
            }
        }

        if webhook.conditions.len() > MAX_CONDITIONS {
            errors.push(Diagnostic::at(
                "conditions",
                Code::TooManyConditions,
                format!(
                    "a webhook has at most {MAX_CONDITIONS} conditions; this one has {}",
                    webhook.conditions.len()
                ),
            ));
        }
        let mut conditions = Vec::with_capacity(webhook.conditions.len());
        // Where each id in range was first defined (an id out of range is
        // an error of its own, `invalid_id`): a table, not a map, so a
        // long list costs one look-up a condition.
        let mut first_index = [None::<usize>; MAX_CONDITION_ID as usize + 1];
        // The weight of the patterns so far; the condition that takes it
        // past the limit is the one reported.
        let mut patterns = 0u32;
        for (i, condition) in webhook.conditions.iter().enumerate() {
            let slot = usize::try_from(condition.id)
                .ok()
                .filter(|&id| id >= 1)
                .and_then(|id| first_index.get_mut(id));
            let earlier = slot.and_then(|slot| match *slot {
                Some(first) => Some(first),
                None => {
                    *slot = Some(i);
                    None
                }
            });
            if let Some(first) = earlier {
                let mut d = Diagnostic::at(
                    format!("conditions[{i}].id"),
                    Code::DuplicateId,
                    format!(
                        "condition {} is defined twice (also conditions[{first}])",
                        condition.id
                    ),
                );
                if let Ok(id) = u32::try_from(condition.id) {
                    d = d.for_condition(id);
                }
                errors.push(d);
            }
            match CompiledCondition::compile(condition, i) {
                Ok(c) => {
                    let weight = c.pattern_weight();
                    if weight > 0 && patterns <= MAX_PATTERN_WEIGHT {
                        patterns = patterns.saturating_add(weight);
                        if patterns > MAX_PATTERN_WEIGHT {
                            errors.push(too_costly(i, c.id, weight, patterns));
                        }
                    }
                    conditions.push(Arc::new(c));
                }
                Err(found) => errors.extend(found),
            }
        }

        let mode = MatchMode::parse(&webhook.match_mode);
        if mode.is_none() {
            errors.push(Diagnostic::at(
                "match",
                Code::InvalidValue,
                format!(
                    "`{}` is not a match mode; use `all`, `any` or `expression`",
                    webhook.match_mode
                ),
            ));
        }
        let mut expression = None;
        // Past the conditions' limit the expression waits: the ids it may
        // use are not settled, and checking it against them all is work
        // without a bound.
        if mode == Some(MatchMode::Expression) && webhook.conditions.len() <= MAX_CONDITIONS {
            let ids: Vec<u32> = webhook
                .conditions
                .iter()
                .filter_map(|c| u32::try_from(c.id).ok())
                .collect();
            let text = webhook.expression.as_deref().unwrap_or("");
            let (report, parsed) = expression::analyse(text, &ids);
            let at_expression = |mut d: Diagnostic| {
                d.path = Some("expression".to_owned());
                d
            };
            errors.extend(report.errors.into_iter().map(at_expression));
            warnings.extend(report.warnings.into_iter().map(at_expression));
            expression = parsed;
        }

        if !errors.is_empty() {
            return Err(Report::new(errors, warnings));
        }
        // Conditions are addressed by position from here on.
        let position = |id: u32| {
            let at = conditions
                .iter()
                .position(|c: &Arc<CompiledCondition>| c.id == id);
            u32::try_from(at.unwrap_or(0)).unwrap_or(0)
        };
        let plan = match (mode, expression) {
            _ if conditions.is_empty() => Plan::flat(false, 0),
            (Some(MatchMode::Expression), Some(expression)) => {
                Plan::expression(&expression, position)
            }
            (Some(MatchMode::Any), _) => Plan::flat(true, conditions.len()),
            _ => Plan::flat(false, conditions.len()),
        };
        let compiled = Self {
            id: webhook.id.clone(),
            enabled: webhook.enabled,
            events,
            channels: webhook.channels.clone(),
            accounts: webhook.accounts.clone(),
            conditions,
            mode: mode.unwrap_or(MatchMode::All),
            plan,
        };
        Ok((compiled, warnings))
    }

    pub(crate) fn wants(&self, event: EventType) -> bool {
        self.events & (1 << event.index()) != 0
    }

    pub(crate) fn event_types(&self) -> impl Iterator<Item = EventType> + '_ {
        EventType::ALL.into_iter().filter(|e| self.wants(*e))
    }

    /// Whether the ticket's channel or account is subscribed to.
    pub(crate) fn subscribed(&self, view: &EventView<'_>) -> bool {
        let ticket = &view.event.ticket;
        let listed = |list: &[String], value: &Option<String>| {
            value.as_ref().is_some_and(|v| list.contains(v))
        };
        (self.channels.is_empty() && self.accounts.is_empty())
            || listed(&self.channels, &ticket.channel)
            || listed(&self.accounts, &ticket.account_id)
    }

    /// Decides whether the webhook fires for the event; the probe sees each
    /// step. This is the only place the rules of SPEC §5 are written down.
    pub(crate) fn decide<P: Probe>(&self, view: &EventView<'_>, probe: &mut P) -> bool {
        let mut fires = true;
        let mut step = |check: Check, passed: bool, probe: &mut P| {
            probe.check(check, passed);
            fires &= passed;
            fires || P::EXHAUSTIVE
        };
        let checks = [
            (Check::Enabled, self.enabled),
            (Check::Event, view.event_type.is_some_and(|e| self.wants(e))),
            (Check::Subscription, self.subscribed(view)),
        ];
        for (check, passed) in checks {
            if !step(check, passed, probe) {
                return false;
            }
        }
        let held = self.conditions_hold(view, probe);
        step(Check::Conditions, held, probe);
        fires
    }

    /// What decides the conditions for a webhook the rule set's index found
    /// for the event, condition `i` numbered `numbers[i]`: the index lists
    /// only enabled webhooks under the event types, channels and accounts
    /// they subscribe to, which answers the first three checks of
    /// [`Self::decide`]. The property tests hold the two to the same
    /// answers.
    pub(crate) fn plan(&self, numbers: &[u32]) -> Plan {
        self.plan.renumbered(numbers)
    }

    /// The webhook's match mode over its conditions, asking `holds` for
    /// each condition it needs and stopping as soon as the answer is known.
    fn combine(&self, holds: &mut impl FnMut(usize) -> bool) -> bool {
        self.plan.decide(&mut |i| holds(i as usize))
    }

    fn conditions_hold<P: Probe>(&self, view: &EventView<'_>, probe: &mut P) -> bool {
        let result = self.combine(&mut |index: usize| -> bool {
            let result = self.conditions[index].holds(view);
            probe.condition(index, result);
            result
        });
        if P::EXHAUSTIVE {
            // Evaluate what the short-circuit skipped, for the record.
            for i in 0..self.conditions.len() {
                if !probe.seen(i) {
                    let result = self.conditions[i].holds(view);
                    probe.condition(i, result);
                }
            }
        }
        result
    }
}

/// Checks that `url` is an absolute http(s) URL with a host, within the
/// length limit. Whether its host may be reached is the server's call (its
/// SSRF guard), not the engine's.
fn check_url(url: &str) -> Result<(), String> {
    if url.is_empty() {
        return Err("give the URL deliveries are sent to, e.g. https://crm.example/hooks".into());
    }
    if url.chars().count() > MAX_URL_CHARS {
        return Err(format!("the URL is longer than {MAX_URL_CHARS} characters"));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("the URL contains spaces or control characters".into());
    }
    let rest = match url.split_once("://") {
        Some((scheme, rest))
            if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") =>
        {
            rest
        }
        _ => return Err("the URL must start with http:// or https://".into()),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or("");
    let (host, port) = if let Some(v6) = host_port.strip_prefix('[') {
        match v6.split_once(']') {
            Some((host, after)) => (host, after.strip_prefix(':')),
            None => return Err("the URL's IPv6 address lacks its closing `]`".into()),
        }
    } else {
        match host_port.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        }
    };
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '.' | '_' | ':'));
    if !host_ok {
        return Err("the URL has no valid host name".into());
    }
    if let Some(port) = port
        && !port.parse::<u16>().is_ok_and(|p| p != 0)
    {
        return Err(format!("`{port}` is not a port number (1 to 65535)"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_url;

    #[test]
    fn urls_need_http_and_a_host() {
        for ok in [
            "https://crm.example/hooks/cloudcx",
            "http://127.0.0.1:8080/x?y=1#z",
            "HTTPS://[::1]:443/",
            "https://user:pw@host.example",
        ] {
            assert_eq!(check_url(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "ftp://x.example",
            "https://",
            "https:///path",
            "https://host:0/",
            "https://host:99999/",
            "https://ho st/",
            "https://[::1/",
            "crm.example/hooks",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
        assert!(check_url(&format!("https://h.example/{}", "a".repeat(2048))).is_err());
    }
}
