//! `latchkey-harness`: generate and check the vectors, run them against an implementation,
//! serve the reference as a shim, fuzz frames.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use latchkey::crypto::provider::{RsaProvider, rsa_provider_by_name, rsa_providers};
use latchkey_harness::broken::{BrokenIut, Fault};
use latchkey_harness::iut::Iut;
use latchkey_harness::iut::reference::ReferenceIut;
use latchkey_harness::iut::shim_client::ShimProcess;
use latchkey_harness::model::Verdict;
use latchkey_harness::runner::{Filter, selected};
use latchkey_harness::{coverage, fuzz, generate, report, runner, vectors};
use serde_json::Value;

/// Conformance harness of the Latchkey BLE unlock protocol.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate or check the vector files.
    Vectors {
        #[command(subcommand)]
        action: VectorsAction,
    },
    /// Print requirement coverage of the vectors; exit 1 if a testable requirement lacks an
    /// accepting or a rejecting case.
    Coverage {
        /// Vector directory (default: $LATCHKEY_VECTORS or the source tree's vectors/).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Replay the vectors against an implementation.
    Run(RunArgs),
    /// Serve the reference implementation over the shim protocol on stdin/stdout.
    Shim {
        /// Serve a deliberately broken variant instead (to see the harness catch it).
        #[arg(long, value_enum)]
        broken: Option<Fault>,
        /// RSA provider of the reference (see `run --provider`).
        #[arg(long, default_value = "rustcrypto")]
        provider: String,
    },
    /// Mutate valid frames from the vectors and check the implementation rejects each.
    Fuzz {
        /// Implementation to fuzz: a shim command (default: the reference in process).
        #[arg(long)]
        shim: Option<String>,
        /// Seed of the mutations (the same seed reproduces the same inputs).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Number of mutated frames.
        #[arg(long, default_value_t = 2000)]
        iterations: u64,
        /// Per-call timeout of the shim, in milliseconds.
        #[arg(long, default_value_t = 5000)]
        timeout_ms: u64,
        /// RSA provider of the in-process reference (see `run --provider`).
        #[arg(long, default_value = "rustcrypto")]
        provider: String,
        /// Vector directory.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum VectorsAction {
    /// Write the vector files from the reference (fixed keys, seeded randomness).
    Generate {
        /// Output directory (default: the source tree's vectors/).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Regenerate in memory and fail if the checked-in files differ (drift).
    Check {
        /// Vector directory.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// Implementation under test: a command started with `sh -c` that speaks the shim
    /// protocol (harness/SHIM.md). Default: the reference, in process.
    #[arg(long)]
    shim: Option<String>,
    /// Per-call timeout for the shim, in milliseconds; a shim that exceeds it is killed and
    /// restarted, and the case fails.
    #[arg(long, default_value_t = 5000)]
    timeout_ms: u64,
    /// RSA provider of the in-process reference: `rustcrypto` (the default, which generates
    /// the vectors) or `aws-lc-rs` (harness feature `aws-lc-rs`, on by default). aws-lc-rs
    /// draws PSS salts and OAEP seeds from its own DRBG; the runner checks those outputs by
    /// verifying and unwrapping them, so every case must give the same verdict.
    #[arg(long, default_value = "rustcrypto")]
    provider: String,
    /// Only cases of this role (lock, guest, issuer, any); repeatable.
    #[arg(long = "role")]
    roles: Vec<String>,
    /// Only cases covering this requirement id (e.g. LK-ADV-4); repeatable.
    #[arg(long = "req")]
    requirements: Vec<String>,
    /// Only cases whose id contains this text; repeatable.
    #[arg(long = "case")]
    cases: Vec<String>,
    /// List the selected cases and exit.
    #[arg(long)]
    list: bool,
    /// Write the JSON report here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the JUnit XML report here.
    #[arg(long)]
    junit: Option<PathBuf>,
    /// Write the HTML report here.
    #[arg(long)]
    html: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    no_progress: bool,
    /// Vector directory.
    #[arg(long)]
    dir: Option<PathBuf>,
}

fn main() -> ExitCode {
    match real_main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("latchkey-harness: {e}");
            ExitCode::from(2)
        }
    }
}

fn load(dir: Option<PathBuf>) -> Result<Vec<latchkey_harness::model::VectorFile>, String> {
    let dir = dir.unwrap_or_else(vectors::default_dir);
    vectors::load_all(&dir).map_err(|e| e.to_string())
}

fn rsa_provider(name: &str) -> Result<&'static dyn RsaProvider, String> {
    rsa_provider_by_name(name).ok_or_else(|| {
        let known: Vec<&str> = rsa_providers().iter().map(|p| p.name()).collect();
        format!(
            "unknown RSA provider `{name}`; compiled in: {}",
            known.join(", ")
        )
    })
}

fn open_iut(shim: Option<String>, timeout_ms: u64, provider: &str) -> Result<Box<dyn Iut>, String> {
    let provider = rsa_provider(provider)?;
    Ok(match shim {
        Some(cmd) => Box::new(
            ShimProcess::spawn(&cmd, Duration::from_millis(timeout_ms))
                .map_err(|e| e.to_string())?,
        ),
        None => Box::new(ReferenceIut::with_provider(provider)),
    })
}

fn real_main() -> Result<ExitCode, String> {
    match Cli::parse().command {
        Command::Vectors {
            action: VectorsAction::Generate { out },
        } => {
            let dir = out.unwrap_or_else(vectors::default_dir);
            let all = generate::all(&dir.join("keys"))?;
            for (name, file) in &all {
                let path = dir.join(name);
                std::fs::write(&path, vectors::to_text(file))
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                println!("wrote {} ({} cases)", path.display(), file.cases.len());
            }
            let files: Vec<_> = all.into_iter().map(|(_, f)| f).collect();
            let path = dir.join("shim-transcript.jsonl");
            std::fs::write(&path, generate::transcript(&files))
                .map_err(|e| format!("{}: {e}", path.display()))?;
            println!("wrote {}", path.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Vectors {
            action: VectorsAction::Check { dir },
        } => {
            let dir = dir.unwrap_or_else(vectors::default_dir);
            let mut drift = false;
            for (name, file) in generate::all(&dir.join("keys"))? {
                let path = dir.join(&name);
                let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
                if on_disk != vectors::to_text(&file) {
                    eprintln!(
                        "drift: {} differs from what the reference generates now",
                        path.display()
                    );
                    drift = true;
                }
            }
            if drift {
                eprintln!(
                    "run `cargo run -p latchkey-harness -- vectors generate` and review the diff"
                );
                Ok(ExitCode::FAILURE)
            } else {
                println!("vectors up to date");
                Ok(ExitCode::SUCCESS)
            }
        }
        Command::Coverage { dir } => {
            let files = load(dir)?;
            let by = coverage::by_requirement(&files);
            for id in coverage::spec_requirements() {
                let (v, i) = by.get(&id).copied().unwrap_or_default();
                match coverage::exclusion(&id) {
                    Some(why) => println!("{id:<11} excluded: {why}"),
                    None => println!(
                        "{id:<11} accepting {v:>3}  rejecting {i:>3}{}",
                        if v == 0 || i == 0 {
                            "   <-- MISSING"
                        } else {
                            ""
                        }
                    ),
                }
            }
            let unknown = coverage::unknown_in_vectors(&files);
            let missing = coverage::uncovered_static(&files);
            if !unknown.is_empty() {
                println!(
                    "vectors cite requirements the spec does not define: {}",
                    unknown.join(", ")
                );
            }
            if missing.is_empty() && unknown.is_empty() {
                println!("coverage: every testable requirement has accepting and rejecting cases");
                Ok(ExitCode::SUCCESS)
            } else {
                println!("requirements without coverage: {}", missing.join(", "));
                Ok(ExitCode::FAILURE)
            }
        }
        Command::Run(a) => {
            let files = load(a.dir)?;
            let filter = Filter {
                roles: a.roles,
                requirements: a.requirements,
                cases: a.cases,
            };
            if a.list {
                for (f, c) in selected(&files, &filter) {
                    println!(
                        "{:<44} {:<10} {:<7} {:<7} {}",
                        c.id,
                        f.kind,
                        c.role,
                        format!("{:?}", c.result).to_lowercase(),
                        c.requirements.join(",")
                    );
                }
                return Ok(ExitCode::SUCCESS);
            }
            let mut iut = open_iut(a.shim, a.timeout_ms, &a.provider)?;
            let rep = runner::run(iut.as_mut(), &files, &filter, !a.no_progress);
            print!("{}", report::terminal::render(&rep));
            report::write_all(
                &rep,
                a.json.as_deref(),
                a.junit.as_deref(),
                a.html.as_deref(),
            )
            .map_err(|e| e.to_string())?;
            let _ = iut.call(&serde_json::json!({"op": "bye"}));
            Ok(if rep.count(Verdict::Failed) > 0 {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Shim { broken, provider } => {
            serve(broken, rsa_provider(&provider)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Fuzz {
            shim,
            seed,
            iterations,
            timeout_ms,
            provider,
            dir,
        } => {
            let files = load(dir)?;
            let mut iut = open_iut(shim, timeout_ms, &provider)?;
            let findings = fuzz::run(iut.as_mut(), &files, seed, iterations);
            for f in &findings {
                println!(
                    "FINDING iteration {} (seed {seed}): case {} step {}: {}\n  input: {}\n  outcome: {}",
                    f.iteration, f.case, f.step, f.mutation, f.input, f.outcome
                );
            }
            println!(
                "fuzz: {iterations} mutated frames against {}, {} findings",
                iut.name(),
                findings.len()
            );
            Ok(if findings.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

/// The shim loop: one JSON request per line on stdin, one JSON reply per line on stdout.
fn serve(broken: Option<Fault>, provider: &'static dyn RsaProvider) {
    let mut reference = ReferenceIut::with_provider(provider);
    let mut faulty = broken.map(BrokenIut::new);
    let stdin = std::io::stdin();
    let mut out = std::io::stdout().lock();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        let reply = match serde_json::from_str::<Value>(&line) {
            Ok(req) => {
                let bye = req["op"] == "bye";
                let r = match faulty.as_mut() {
                    Some(b) => b.handle(&req),
                    None => reference.handle(&req),
                };
                if bye {
                    let _ = writeln!(out, "{r}");
                    let _ = out.flush();
                    break;
                }
                r
            }
            Err(e) => {
                serde_json::json!({"ok": false, "error": format!("request is not JSON: {e}")})
            }
        };
        if writeln!(out, "{reply}").and_then(|_| out.flush()).is_err() {
            break;
        }
    }
}
