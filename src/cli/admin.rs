//! Set-up commands (federation, node), classify, and serve.

use super::output::print_json;
use crate::ApiTarget;
use anyhow::Context;
use cirfed::cir::{self, ClassificationInput, Role};
use cirfed::identity::{self, Federation};
use cirfed::node::unix_now;
use cirfed::server::{self, Overrides};
use clap::{Args, Subcommand};
use serde_json::json;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// A revocation without `--at` starts at the current hour, the coarsest time a record carries by default.
pub const REVOCATION_GRANULARITY_SECS: i64 = 3_600;

/// `cirfed classify`
#[derive(Args)]
pub struct ClassifyArgs {
    /// ENISA incident impact 0-4.
    #[arg(long)]
    pub enisa: Option<cir::EnisaImpact>,
    /// NIST functional impact: none, low, medium, high.
    #[arg(long)]
    pub nist_functional: Option<cir::NistFunctionalImpact>,
    /// NIST information impact: none, privacy, proprietary, integrity.
    #[arg(long)]
    pub nist_information: Option<cir::NistInformationImpact>,
    /// TR 62 service category: a, b, c, d.
    #[arg(long)]
    pub tr62: Option<cir::Tr62Category>,
}

#[derive(Subcommand)]
pub enum FederationCommand {
    /// Create a federation: X.509 CA, authority key and the federation file.
    Init {
        /// Operator directory to create.
        #[arg(long)]
        dir: PathBuf,
        /// Name of the federation.
        #[arg(long, default_value = "cirfed")]
        name: String,
        /// Replace an existing federation in --dir.
        #[arg(long)]
        force: bool,
    },
    /// Admit a node: issue its TLS certificate and member card. With
    /// --renew, answer a member's renewal request (same member id).
    Admit {
        /// Operator directory.
        #[arg(long)]
        dir: PathBuf,
        /// The node's join-request.json (renewal-request.json with --renew).
        request: PathBuf,
        /// The request is a renewal from `cirfed node renew`.
        #[arg(long)]
        renew: bool,
        /// Where to write the admission for the node.
        #[arg(long)]
        out: PathBuf,
        /// Roles granted, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "publish,read")]
        roles: Vec<Role>,
        /// Days the admission is valid.
        #[arg(long, default_value_t = identity::DEFAULT_ADMISSION_DAYS)]
        valid_days: u32,
        /// Replace an existing --out file.
        #[arg(long)]
        force: bool,
    },
    /// Revoke a member: sign a revocation that nodes import (`cirfed import`)
    /// and spread. The member's records from the revocation time on are
    /// refused; earlier ones stay, flagged in lookups.
    Revoke {
        /// Operator directory.
        #[arg(long)]
        dir: PathBuf,
        /// The member id to revoke (as `admit` printed it).
        member_id: String,
        /// Why, for the members who relied on its records.
        #[arg(long)]
        reason: String,
        /// Revoked from (RFC 3339 or unix seconds; default: the start of the current hour).
        #[arg(long)]
        at: Option<String>,
        /// Where to write the signed revocation (one base64 envelope line).
        #[arg(long)]
        out: PathBuf,
    },
    /// Re-issue the operator's CRL (every certificate revoked so far) with a
    /// fresh next update, before the last one's passes.
    Crl {
        /// Operator directory.
        #[arg(long)]
        dir: PathBuf,
        /// Where to write the CRL (PEM); it is also kept as FED/crl.pem.
        #[arg(long)]
        out: PathBuf,
        /// Days until its next update (default: crl_valid_days of FED/operator.toml).
        #[arg(long)]
        valid_days: Option<u32>,
    },
    /// Start a new sharing-key epoch: keyed hashes are made under the new key
    /// from each member's next admission or renewal on; earlier epochs keep
    /// matching. A revoked member gets no later epoch.
    RotateSharingKey {
        /// Operator directory.
        #[arg(long)]
        dir: PathBuf,
    },
}

#[derive(Subcommand)]
pub enum NodeCommand {
    /// Create a node: signing key, TLS key, config and a join request.
    Init {
        /// Node directory to create.
        #[arg(long)]
        dir: PathBuf,
        /// The CSP's name for itself (seen by the operator only).
        #[arg(long)]
        name: String,
        /// Host name or address peers reach this node at; repeat for several.
        #[arg(long = "host", default_values_t = [String::from("localhost"), String::from("127.0.0.1")])]
        hosts: Vec<String>,
        /// Replace an existing node in --dir.
        #[arg(long)]
        force: bool,
    },
    /// Ask for a renewed certificate and card (same member id): writes a new
    /// TLS key beside the current one and NODE/renewal-request.json for the operator.
    Renew {
        /// Node directory.
        #[arg(long)]
        dir: PathBuf,
        /// Replace a renewal already waiting for its answer.
        #[arg(long)]
        force: bool,
        /// Also move to a new signing key: the new card replaces the old key
        /// (records it signed before then stay valid, later ones are refused).
        #[arg(long)]
        rotate_signing_key: bool,
    },
    /// Install the admission the operator returned (or its renewal; a running
    /// node uses a renewal from its next handshake, with no restart).
    Join {
        /// Node directory.
        #[arg(long)]
        dir: PathBuf,
        /// The admission file.
        admission: PathBuf,
        /// Replace an existing admission.
        #[arg(long)]
        force: bool,
    },
    /// Make a token for a client of the HTTP listener (a SIEM, a TIP, a
    /// firewall): prints the token once, and the `[[taxii.users]]` entry, with
    /// only its SHA-256, to add to node.toml.
    HttpUser {
        /// The user's name (also its HTTP Basic user name).
        name: String,
        /// Scopes it may read: analysts, community, misp-feed, blocklist or *; repeatable.
        #[arg(long = "read")]
        read: Vec<String>,
        /// Collections it may write to (POST objects); repeatable.
        #[arg(long = "write")]
        write: Vec<String>,
    },
}

#[derive(Subcommand)]
pub enum PeerCommand {
    /// Start dialing a peer now (host:port of its peer service), until the node stops.
    Add {
        /// host:port of the peer's peer service.
        addr: String,
        #[command(flatten)]
        target: ApiTarget,
    },
}

/// `cirfed serve`
#[derive(Args)]
pub struct ServeArgs {
    /// Node directory.
    #[arg(long)]
    pub dir: PathBuf,
    /// Local API address, overriding api.listen (port 0 picks a free port).
    #[arg(long)]
    pub api_listen: Option<SocketAddr>,
    /// Peer service address, overriding federation.listen (port 0 picks a free port).
    #[arg(long)]
    pub federation_listen: Option<SocketAddr>,
    /// A peer to dial (host:port) besides federation.peers; repeat for several.
    #[arg(long = "peer")]
    pub peers: Vec<String>,
}

pub fn classify(args: ClassifyArgs, json: bool) -> anyhow::Result<ExitCode> {
    let input = ClassificationInput {
        enisa: args.enisa,
        nist_functional: args.nist_functional,
        nist_information: args.nist_information,
        tr62: args.tr62,
    };
    let classification = cir::classify(&input)?;
    if json {
        print_json(&serde_json::to_value(&classification)?);
    } else {
        println!("{}", classification.explain());
    }
    Ok(ExitCode::SUCCESS)
}

pub fn federation(command: FederationCommand, json: bool) -> anyhow::Result<ExitCode> {
    match command {
        FederationCommand::Init { dir, name, force } => {
            let federation = Federation::init(&dir, &name, force)?;
            let file = federation.file();
            if json {
                print_json(&json!({ "dir": dir, "name": file.name, "authority_key": file.authority_key }));
            } else {
                println!("federation '{}' created in {}", file.name, dir.display());
                println!("authority key {}", file.authority_key);
                println!("admit nodes with: cirfed federation admit --dir {} REQUEST --out ADMISSION", dir.display());
            }
        }
        FederationCommand::Admit { dir, request, renew: true, out, roles, valid_days, force } => {
            let federation = Federation::open(&dir)?;
            let request = identity::renewal::read_renewal_request(&request)?;
            let admission = federation.renew(&request, &roles, valid_days, unix_now())?;
            identity::write_admission(&out, &admission, force)?;
            if json {
                print_json(&json!({ "member_id": admission.member_id, "admission": out, "renewal": true }));
            } else {
                println!("renewed member {} for {valid_days} days", admission.member_id);
                println!("send {} to the node: cirfed node join --dir NODE {}", out.display(), out.display());
            }
        }
        FederationCommand::Admit { dir, request, renew: false, out, roles, valid_days, force } => {
            let federation = Federation::open(&dir)?;
            let request = identity::read_join_request(&request)?;
            let admission = federation.admit(&request, &roles, valid_days, unix_now())?;
            identity::write_admission(&out, &admission, force)?;
            if json {
                print_json(&json!({ "member_id": admission.member_id, "admission": out }));
            } else {
                println!("admitted '{}' as member {}", request.name, admission.member_id);
                println!("send {} to the node: cirfed node join --dir NODE {}", out.display(), out.display());
            }
        }
        FederationCommand::Revoke { dir, member_id, reason, at, out } => {
            use base64::Engine as _;
            let federation = Federation::open(&dir)?;
            let now = unix_now();
            // Records carry times coarsened to the hour, so "now" would let a
            // revoked key keep publishing under this hour's time: revoke from its start.
            let revoked_at = match at {
                Some(at) => super::drafts::parse_time(&at, "at")?,
                None => now - now.rem_euclid(REVOCATION_GRANULARITY_SECS),
            };
            let revoked = federation.revoke_member(&member_id, revoked_at, &reason, now)?;
            let line =
                base64::engine::general_purpose::STANDARD.encode(prost::Message::encode_to_vec(&revoked.envelope));
            std::fs::write(&out, format!("{line}\n")).with_context(|| format!("cannot write {}", out.display()))?;
            let crl_path = dir.join(identity::CRL_FILE);
            if json {
                print_json(&json!({
                    "member_id": member_id, "revocation": hex::encode(revoked.id.0), "out": out,
                    "revoked_at": revoked_at, "crl": crl_path, "crl_serials": revoked.crl_serials,
                }));
            } else {
                println!("revoked member {member_id} from {}", super::output::time(revoked_at));
                println!("crl with {} revoked certificate(s) written to {}", revoked.crl_serials, crl_path.display());
                println!(
                    "import the revocation at any node; it spreads with the crl: cirfed import {} --node NODE",
                    out.display()
                );
            }
        }
        FederationCommand::Crl { dir, out, valid_days } => {
            let federation = Federation::open(&dir)?;
            let now = unix_now();
            let pem = federation.issue_crl(now, valid_days)?;
            std::fs::write(&out, &pem).with_context(|| format!("cannot write {}", out.display()))?;
            let crl = identity::crl::authenticate(pem.as_bytes(), &federation.file().ca_cert)?;
            if json {
                print_json(&json!({
                    "out": out, "number": crl.number, "revoked": crl.revoked,
                    "this_update": crl.this_update, "next_update": crl.next_update,
                }));
            } else {
                println!(
                    "crl {} with {} revoked certificate(s), next update {}, written to {}",
                    crl.number,
                    crl.revoked,
                    super::output::time(crl.next_update),
                    out.display()
                );
                println!(
                    "install it as NODE/{} on each node; running nodes load it within federation.crl_reload_secs",
                    identity::CRL_FILE
                );
            }
        }
        FederationCommand::RotateSharingKey { dir } => {
            let mut federation = Federation::open(&dir)?;
            let epoch = federation.rotate_sharing_key(unix_now())?.epoch;
            if json {
                print_json(&json!({ "epoch": epoch }));
            } else {
                println!("sharing-key epoch {epoch} started");
                println!("members take it with their next renewal: cirfed node renew, cirfed federation admit --renew");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn node(command: NodeCommand, json: bool) -> anyhow::Result<ExitCode> {
    match command {
        NodeCommand::Init { dir, name, hosts, force } => {
            identity::init_node(&dir, &name, &hosts, force)?;
            let request = dir.join(identity::JOIN_REQUEST_FILE);
            if json {
                print_json(&json!({ "dir": dir, "join_request": request }));
            } else {
                println!("node '{name}' created in {}", dir.display());
                println!("send {} to the federation operator", request.display());
            }
        }
        NodeCommand::Renew { dir, force, rotate_signing_key } => {
            let request = identity::renewal::renew_node(&dir, force, rotate_signing_key)?;
            let path = dir.join(identity::renewal::RENEWAL_REQUEST_FILE);
            if json {
                print_json(&json!({ "member_id": request.member_id, "renewal_request": path }));
            } else {
                println!("renewal request for member {} written to {}", request.member_id, path.display());
                println!(
                    "the operator answers it with: cirfed federation admit --renew --dir FED {} --out FILE",
                    path.display()
                );
            }
        }
        NodeCommand::Join { dir, admission, force } => {
            let admission = identity::read_admission(&admission)?;
            identity::join_node(&dir, &admission, force)?;
            if json {
                print_json(
                    &json!({ "dir": dir, "member_id": admission.member_id, "federation": admission.federation.name }),
                );
            } else {
                println!("joined federation '{}' as member {}", admission.federation.name, admission.member_id);
                println!("start the node with: cirfed serve --dir {}", dir.display());
            }
        }
        NodeCommand::HttpUser { name, read, write } => http_user(&name, &read, &write, json)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn http_user(name: &str, read: &[String], write: &[String], json: bool) -> anyhow::Result<()> {
    use cirfed::http::config::UserSection;
    anyhow::ensure!(!read.is_empty() || !write.is_empty(), "give at least one --read or --write scope");
    let (token, hash) = cirfed::http::auth::new_token();
    let user = UserSection { name: name.to_string(), token_sha256: hash, read: read.to_vec(), write: write.to_vec() };
    // Checked now, so a typo in a scope is caught before it reaches node.toml.
    cirfed::http::auth::Users::from_sections(std::slice::from_ref(&user)).map_err(|e| anyhow::anyhow!(e))?;
    let entry = toml::to_string(&user)?;
    if json {
        print_json(&json!({ "name": name, "token": token, "config": format!("[[taxii.users]]\n{entry}") }));
    } else {
        println!("token for {name} (shown once; give it to the client, it is not stored):\n\n    {token}\n");
        println!("add to node.toml, then restart the node:\n\n[[taxii.users]]\n{entry}");
    }
    Ok(())
}

pub async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let overrides = Overrides {
        api_listen: args.api_listen,
        federation_listen: args.federation_listen,
        peers: args.peers,
        http_listen: None,
    };
    let running = server::start(&args.dir, overrides)
        .await
        .with_context(|| format!("cannot start the node in {}", args.dir.display()))?;
    let status = running.node.status();
    tracing::info!(member = %status.member_id, api = %running.api_addr, records = status.last_seq, "node serving");
    println!(
        "cirfed node {} serving the local API on {} and the peer service on {}",
        status.member_id, running.api_addr, running.federation_addr
    );
    running.run_until(shutdown_signal()).await?;
    tracing::info!("node stopped");
    Ok(ExitCode::SUCCESS)
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("signal handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}

pub async fn peer(command: PeerCommand, json: bool) -> anyhow::Result<ExitCode> {
    let PeerCommand::Add { addr, target } = command;
    let mut client = super::client::connect(&target).await?;
    let reply = client
        .add_peer(cirfed::proto::AddPeerRequest { addr: addr.clone() })
        .await
        .map_err(super::client::status_error)?;
    let added = reply.into_inner().added;
    if json {
        print_json(&json!({ "addr": addr, "added": added }));
    } else if added {
        println!("dialing {addr}; see `cirfed status` for the link");
    } else {
        println!("already dialing {addr}");
    }
    Ok(ExitCode::SUCCESS)
}
