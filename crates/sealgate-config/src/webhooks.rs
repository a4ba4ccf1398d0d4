//! `[webhooks]`: how events are posted to the endpoints added with `sealgate webhooks add`.

use ipnet::IpNet;
use serde::Deserialize;

use crate::{HumanDuration, Problem};

/// `[webhooks]`. Endpoints themselves live in the database (every node posts to the same
/// ones); this section says how.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhooksConfig {
    /// Whether this node posts events (every node writes them). Default true; false keeps a
    /// node out of posting (events wait for the nodes that post).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// How long one post may take, connect to last byte. Default 15s.
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
    /// The waits between attempts after the first (which is immediate), with ±10 % jitter; an
    /// event still failing after the last is dead (listed, replayable). Default 5s, 5m, 30m,
    /// 2h, 5h, 10h, 14h, 20h, 24h: ten attempts over about 3 days and 4 hours.
    #[serde(default = "default_schedule")]
    pub retry_schedule: Vec<HumanDuration>,
    /// An endpoint failing without a success for this long is audited as an `alert` (once per
    /// streak). Default 6h.
    #[serde(default = "default_alert_after")]
    pub alert_after: HumanDuration,
    /// Networks that may be posted to although they are loopback, private, link-local,
    /// shared or otherwise not public (the SSRF guard refuses those by default, checked on
    /// the address connected to). Plain `http://` is allowed only to these networks.
    #[serde(default)]
    pub allow_networks: Vec<IpNet>,
    /// Posts in flight at once on this node. Default 64.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// How long delivered events stay listed (and replayable). Default 7d.
    #[serde(default = "default_keep_delivered")]
    pub keep_delivered: HumanDuration,
    /// How long dead events stay listed (and replayable). Default 30d.
    #[serde(default = "default_keep_dead")]
    pub keep_dead: HumanDuration,
    /// After `sealgate webhooks rotate`, how long the previous secret signs too. Default 24h.
    #[serde(default = "default_overlap")]
    pub rotation_overlap: HumanDuration,
    /// How often an idle node looks for due events. Default 250ms.
    #[serde(default = "default_poll")]
    pub poll_interval: HumanDuration,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            timeout: default_timeout(),
            retry_schedule: default_schedule(),
            alert_after: default_alert_after(),
            allow_networks: Vec::new(),
            concurrency: default_concurrency(),
            keep_delivered: default_keep_delivered(),
            keep_dead: default_keep_dead(),
            rotation_overlap: default_overlap(),
            poll_interval: default_poll(),
        }
    }
}

fn default_true() -> bool {
    true
}
fn default_timeout() -> HumanDuration {
    HumanDuration::from_secs(15)
}
fn default_schedule() -> Vec<HumanDuration> {
    [5, 300, 1800, 7200, 18_000, 36_000, 50_400, 72_000, 86_400]
        .into_iter()
        .map(HumanDuration::from_secs)
        .collect()
}
fn default_alert_after() -> HumanDuration {
    HumanDuration::from_secs(6 * 3600)
}
fn default_concurrency() -> usize {
    64
}
fn default_keep_delivered() -> HumanDuration {
    HumanDuration::from_secs(7 * 86_400)
}
fn default_keep_dead() -> HumanDuration {
    HumanDuration::from_secs(30 * 86_400)
}
fn default_overlap() -> HumanDuration {
    HumanDuration::from_secs(86_400)
}
fn default_poll() -> HumanDuration {
    HumanDuration(std::time::Duration::from_millis(250))
}

pub(crate) fn validate(w: &WebhooksConfig, problems: &mut Vec<Problem>) {
    let key = |k: &str| format!("webhooks.{k}");
    if w.timeout.0.is_zero() {
        problems.push(Problem::new(key("timeout"), "must be more than 0"));
    }
    if w.retry_schedule.iter().any(|d| d.0.is_zero()) {
        problems.push(Problem::new(
            key("retry_schedule"),
            "every wait must be more than 0",
        ));
    }
    if !(1..=1024).contains(&w.concurrency) {
        problems.push(Problem::new(
            key("concurrency"),
            &format!("{} is outside 1..=1024", w.concurrency),
        ));
    }
    if w.poll_interval.0.is_zero() {
        problems.push(Problem::new(key("poll_interval"), "must be more than 0"));
    }
}

#[cfg(test)]
mod example {
    use crate::Config;

    #[test]
    fn the_example_documents_every_webhooks_key_with_its_default() {
        let text = include_str!("../../../config/sealgate.example.toml");
        let example: Config = toml::from_str(text).expect("example parses");
        let table: toml::Table = text.parse().expect("example is TOML");
        let mut keys: Vec<&String> = table["webhooks"]
            .as_table()
            .expect("[webhooks]")
            .keys()
            .collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "alert_after",
                "allow_networks",
                "concurrency",
                "enabled",
                "keep_dead",
                "keep_delivered",
                "poll_interval",
                "retry_schedule",
                "rotation_overlap",
                "timeout"
            ]
        );
        assert_eq!(
            format!("{:?}", example.webhooks),
            format!("{:?}", Config::default().webhooks)
        );
    }
}
