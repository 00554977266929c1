//! The `gateway` binary: parse flags, set up logging, run the subcommand, map errors to exit codes.
//!
//! Exit codes: 0 success; 1 runtime failure; 2 bad flags or configuration (one line on stderr
//! naming the flag).

use std::process::ExitCode;

use clap::Parser;
use gateway::BackendConfig;
use gateway::ServeConfig;
use gateway::cli::{Cli, Command};
use gateway::error::ConfigError;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(), // --help, --version
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            // `gateway` alone: the list of commands, as a usage error.
            eprint!("{}", e.render());
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("{}", gateway::cli::one_line_error(&e));
            return ExitCode::from(2);
        }
    };
    let log = match gateway::telemetry::init(cli.log_format, cli.log_level.as_deref()) {
        Ok(log) => log,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli.command));
    // Log lines are written by a thread of their own: what is queued goes out before the
    // error line and the exit.
    log.flush();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<ConfigError>().is_some() => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => {
            let config = ServeConfig::from_args(&args)?;
            let listener = tokio::net::TcpListener::bind(config.listen)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen on {} (--listen): {e}", config.listen))?;
            let admin = match config.admin_listen {
                Some(addr) => Some(
                    tokio::net::TcpListener::bind(addr)
                        .await
                        .map_err(|e| anyhow::anyhow!("cannot listen on {addr} (--admin-listen): {e}"))?,
                ),
                None => None,
            };
            gateway::serve(listener, admin, config, gateway::shutdown::signal()).await;
            Ok(())
        }
        Command::Seed(args) => {
            let plan = gateway::seed::plan_from_args(&args)?;
            let backend = BackendConfig::from_args(&args.backend)?;
            let purge =
                gateway::purge::PurgeTarget::from_args(args.purge_url.as_deref(), args.admin_token_file.as_deref())?;
            let outcome = gateway::seed::run(&backend, &plan).await?;
            if let Some(purge) = purge.filter(|_| outcome.changed()) {
                let report = purge.purge_all().await;
                for (addr, why) in &report.failed {
                    eprintln!(
                        "seed: warning: gateway {addr} did not purge: {why} (its copy ends with its --cache-ttl)"
                    );
                }
                println!("seed: purged {} gateway(s)", report.purged.len());
            }
            Ok(())
        }
        Command::Policies(args) => {
            let set = gateway::policies::PolicySet::load(&args.from)?;
            let backend = BackendConfig::from_args(&args.backend)?;
            gateway::policies::run(&backend, &set, args.wait).await?;
            Ok(())
        }
        Command::Certs(args) => {
            let pki = gateway::DevPki::generate(&args.server_names, &args.client_name, args.days)?;
            let mut written = pki.write_to(&args.out, args.force)?;
            for name in &args.extra_clients {
                written.extend(pki.write_client(&args.out, name, args.days, args.force)?);
            }
            let removed = if args.force {
                gateway::certs::remove_stale_clients(&args.out, &written)?
            } else {
                Vec::new()
            };
            for path in written {
                println!("wrote {}", path.display());
            }
            for path in removed {
                println!("removed {} (signed by the CA just replaced)", path.display());
            }
            Ok(())
        }
        #[cfg(feature = "demo")]
        Command::Demo(args) => gateway::demo::run(&args, gateway::shutdown::signal()).await,
    }
}
