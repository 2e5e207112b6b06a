//! `cirfed demo`: a narrated tour on loopback with generated keys: the
//! operator admits a CSP, its node publishes indicators and a lesson, an
//! analyst looks observables up, a retraction takes effect. Cleans up after itself.

use super::client::status_error;
use cirfed::cir::{Category, Role, Tlp};
use cirfed::identity::{self, Federation};
use cirfed::node::unix_now;
use cirfed::normalize::ObservableType;
use cirfed::proto::{
    self, draft, node_client::NodeClient, Draft, Indicator, Lesson, LookupRequest, PhaseAction, PublishRequest,
};
use cirfed::server::{self, Overrides};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;
use tonic::transport::Channel;

/// `cirfed demo`
#[derive(Args)]
pub struct DemoArgs {
    /// Keep the demo's directories here instead of a temporary one.
    #[arg(long)]
    pub keep: Option<PathBuf>,
}

/// Narrates one step with the time it took.
struct Narrator {
    started: Instant,
}

impl Narrator {
    fn step(&self, text: &str) {
        println!("\n[{:>7.3}s] {text}", self.started.elapsed().as_secs_f64());
    }

    fn detail(&self, text: impl std::fmt::Display) {
        println!("           {text}");
    }
}

/// The sample feed: what CSP A learned from an access-key compromise.
fn sample_indicators() -> Vec<(ObservableType, &'static str, u32, &'static str)> {
    vec![
        (ObservableType::Cidr, "203.0.113.0/24", 4, "crypto-mining pool proxies"),
        (ObservableType::Domain, "evil-cloud.example", 4, "phishing kit imitating a cloud console"),
        (ObservableType::Url, "https://evil-cloud.example/console/login", 4, "credential harvesting page"),
        (ObservableType::Sha256, "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", 3, "miner binary"),
        (ObservableType::CloudAccessKeyId, "AKIAIOSFODNN7EXAMPLE", 5, "leaked access key used from the pool"),
        (
            ObservableType::UserAgent,
            "aws-cli/1.16.312 Python/3.6.0 Linux/4.15.0 botocore/1.13.48 minerkit",
            3,
            "tooling of the intruder",
        ),
    ]
}

fn indicator_draft(kind: ObservableType, value: &str, level: u32, description: &str) -> Draft {
    Draft {
        tlp: Tlp::Green.code(),
        body: Some(draft::Body::Indicator(Indicator {
            r#type: i32::from(kind.code()),
            value: value.to_string(),
            cir_level: level,
            categories: vec![Category::CredentialTheft.code(), Category::Malware.code()],
            confidence: 85,
            description: description.to_string(),
            first_seen: unix_now() - 86_400,
            last_seen: unix_now(),
            ..Default::default()
        })),
    }
}

fn lesson_draft() -> Draft {
    Draft {
        tlp: Tlp::Green.code(),
        body: Some(draft::Body::Lesson(Lesson {
            title: "Leaked access key used for crypto-mining".into(),
            summary: "A long-lived access key committed to a public repository was used to start mining instances."
                .into(),
            cir_level: 4,
            categories: vec![Category::CredentialTheft.code()],
            service_model: cirfed::cir::ServiceModel::Iaas.code(),
            detection_method: "billing anomaly alert".into(),
            time_to_detect_secs: 5 * 3600,
            time_to_contain_secs: 3600,
            time_to_recover_secs: 8 * 3600,
            root_cause: "static credentials without rotation or secret scanning".into(),
            went_well: vec!["billing alert fired within hours".into()],
            to_improve: vec!["secret scanning on every push".into()],
            recommended_actions: vec![PhaseAction {
                phase: cirfed::cir::Phase::Preparation.code(),
                action: "replace static keys with short-lived role credentials".into(),
            }],
            ..Default::default()
        })),
    }
}

pub async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let temp = tempfile::TempDir::with_prefix("cirfed-demo-")?;
    let root = args.keep.clone().unwrap_or_else(|| temp.path().to_path_buf());
    let say = Narrator { started: Instant::now() };
    println!("cirfed demo: one federation, one CSP node, on loopback (files in {})", root.display());

    say.step("The federation operator creates the federation: an X.509 CA for transport and an ed25519 authority for content.");
    let federation = Federation::init(&root.join("operator"), "demo-federation", true)?;
    say.detail(format!("authority key {}", &federation.file().authority_key[..16]));

    say.step("CSP A creates its node: a signing key, a TLS key and a join request. The request carries no secret.");
    let node_dir = root.join("csp-a");
    let request = identity::init_node(&node_dir, "CSP A", &["localhost".into(), "127.0.0.1".into()], true)?;

    say.step("The operator admits CSP A: a TLS certificate and a member card under a pseudonym. Peers never see the name 'CSP A'.");
    let admission = federation.admit(&request, &[Role::Publish, Role::Read], 30, unix_now())?;
    identity::join_node(&node_dir, &admission, true)?;
    say.detail(format!("CSP A is member {}", admission.member_id));

    say.step("CSP A starts its node: RocksDB feed, match engine, local API on loopback.");
    let running = server::start(&node_dir, Overrides::loopback()).await?;
    say.detail(format!("local API on {}", running.api_addr));
    let mut client = NodeClient::connect(format!("http://{}", running.api_addr)).await?;

    let ids = publish_feed(&say, &mut client).await?;
    look_up(
        &say,
        &mut client,
        &[
            "203.0.113.77",
            "login.evil-cloud.example",
            "https://EVIL-cloud.example:443/console/login#x",
            "AKIAIOSFODNN7EXAMPLE",
            "198.51.100.1",
        ],
    )
    .await?;

    say.step("A duplicate publish is a no-op: same bytes, same id.");
    let again = client
        .publish(PublishRequest {
            drafts: vec![indicator_draft(ObservableType::Cidr, "203.0.113.0/24", 4, "crypto-mining pool proxies")],
        })
        .await
        .map_err(status_error)?
        .into_inner();
    let outcome = &again.outcomes[0];
    say.detail(format!("id {} created={}", &hex::encode(&outcome.id)[..16], outcome.created));

    say.step("CSP A retracts the domain indicator (a false positive, say); lookups stop matching it.");
    let retraction = Draft {
        tlp: Tlp::Green.code(),
        body: Some(draft::Body::Retraction(proto::Retraction {
            target_id: ids[1].clone(),
            reason: "false positive".into(),
        })),
    };
    client.publish(PublishRequest { drafts: vec![retraction] }).await.map_err(status_error)?;
    look_up(&say, &mut client, &["login.evil-cloud.example"]).await?;

    let status = client.status(proto::StatusRequest {}).await.map_err(status_error)?.into_inner();
    say.step(
        format!("Node status: {} records, {} active indicators.", status.records, status.active_indicators).as_str(),
    );
    running.stop().await?;
    say.step("Done. Federation between nodes (propagation, catch-up) comes with the peer service.");
    if args.keep.is_none() {
        drop(temp);
    }
    Ok(ExitCode::SUCCESS)
}

async fn publish_feed(say: &Narrator, client: &mut NodeClient<Channel>) -> anyhow::Result<Vec<Vec<u8>>> {
    say.step(
        "CSP A publishes what it learned from an incident: six indicators and a post-mortem, TLP:GREEN, each signed.",
    );
    let mut drafts: Vec<Draft> =
        sample_indicators().into_iter().map(|(k, v, l, d)| indicator_draft(k, v, l, d)).collect();
    drafts.push(lesson_draft());
    let reply = client.publish(PublishRequest { drafts }).await.map_err(status_error)?.into_inner();
    let mut ids = Vec::new();
    for ((kind, value, _, _), outcome) in sample_indicators().iter().zip(&reply.outcomes) {
        anyhow::ensure!(outcome.error.is_empty(), "demo indicator refused: {}", outcome.error);
        say.detail(format!(
            "{:<24} {:<44} id {}",
            kind.to_string(),
            truncate(value, 44),
            &hex::encode(&outcome.id)[..16]
        ));
        ids.push(outcome.id.clone());
    }
    let lesson = reply.outcomes.last().expect("lesson outcome");
    say.detail(format!(
        "{:<24} {:<44} id {}",
        "lesson",
        "Leaked access key used for crypto-mining",
        &hex::encode(&lesson.id)[..16]
    ));
    Ok(ids)
}

async fn look_up(say: &Narrator, client: &mut NodeClient<Channel>, values: &[&str]) -> anyhow::Result<()> {
    say.step("A SOC analyst looks observables up (normalised first: case, default port, fragment).");
    let values: Vec<String> = values.iter().map(|v| v.to_string()).collect();
    let started = Instant::now();
    let reply = client
        .lookup(LookupRequest { values: values.clone(), r#type: 0, details: true })
        .await
        .map_err(status_error)?
        .into_inner();
    for (index, value) in values.iter().enumerate() {
        match reply.results.iter().find(|r| r.index as usize == index) {
            Some(result) if !result.matches.is_empty() => {
                let m = &result.matches[0];
                say.detail(format!(
                    "{:<48} MATCH {} {} (level {}, confidence {})",
                    truncate(value, 48),
                    super::output::match_kind(m.kind),
                    m.indicator_value,
                    result.max_cir_level,
                    result.confidence
                ));
            }
            Some(result) if !result.error.is_empty() => {
                say.detail(format!("{:<48} invalid: {}", truncate(value, 48), result.error))
            }
            _ => say.detail(format!("{:<48} no match", truncate(value, 48))),
        }
    }
    say.detail(format!("({} values in {:.1} ms)", values.len(), started.elapsed().as_secs_f64() * 1000.0));
    Ok(())
}

fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let cut: String = text.chars().take(width - 1).collect();
    format!("{cut}…")
}
