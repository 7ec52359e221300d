//! The `marketplace` command: serve (default), migrate, create-admin.

use std::{io::BufRead, process::ExitCode};

use clap::{Parser, Subcommand};
use marketplace::{
    auth::services::{check_password, create_user, normalize_email},
    config::{Secret, Settings},
    core::logging::{self, LogTargets},
    db::enums::UserRole,
    error::AppError,
    seed::Amounts,
    server,
    state::AppState,
};

#[derive(Parser)]
#[command(version, about = "Backend of a service marketplace")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Create the database if needed, migrate, and serve HTTP (the default).
    Serve,
    /// Create the database if needed and apply pending migrations, then exit.
    Migrate,
    /// Create an admin account (admins are never self-registered).
    CreateAdmin {
        #[arg(long)]
        email: String,
        /// Read the password from the first line of standard input (never from argv,
        /// where other users could see it).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Print the OpenAPI document (what `/api/v1/openapi.json` serves) and exit; reads
    /// no configuration and touches no database, so client generators can run anywhere.
    Openapi,
    /// Fill the database with demo data (KYC-approved workers, listings, clients).
    Seed {
        #[arg(long, default_value_t = 100)]
        workers: usize,
        #[arg(long, default_value_t = 1000)]
        services: usize,
        #[arg(long, default_value_t = 100)]
        clients: usize,
        /// The password every seeded account gets.
        #[arg(long, default_value = "marketplace-demo")]
        password: String,
    },
}

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(cli.command, Some(Command::Openapi)) {
        println!("{}", marketplace::routes::document());
        return ExitCode::SUCCESS;
    }
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("{err}");
            return ExitCode::from(2);
        }
    };
    // Files this process creates (logs, uploads, mail) are for its own user only: logs
    // carry client addresses and user ids, documents are identity papers.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let _log_guard = match logging::init(&LogTargets {
        level: &settings.log_level,
        dir: &settings.log_dir,
        max_files: settings.log_max_files,
        stdout: Some(settings.log_format),
    }) {
        Ok(guard) => guard,
        Err(err) => {
            eprintln!("cannot set up logging in {}: {err}", settings.log_dir);
            return ExitCode::FAILURE;
        }
    };
    let command = cli.command.unwrap_or(Command::Serve);
    let serving = matches!(command, Command::Serve);
    let result = runtime.block_on(async move {
        match command {
            Command::Openapi => unreachable!("answered before the configuration is read"),
            Command::Serve => server::serve(settings).await,
            Command::Migrate => {
                let applied = server::migrate(&settings).await?;
                println!("applied {} migration(s)", applied.len());
                Ok(())
            }
            Command::CreateAdmin { email, .. } => create_admin(settings, &email).await,
            Command::Seed {
                workers,
                services,
                clients,
                password,
            } => {
                seed(
                    settings,
                    Amounts {
                        workers,
                        services,
                        clients,
                    },
                    &password,
                )
                .await
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // Once: a server's operators read its log, a command's user its terminal.
        Err(err) if serving => {
            tracing::error!(error = %format!("{err:#}"), "failed");
            ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn seed(settings: Settings, amounts: Amounts, password: &str) -> anyhow::Result<()> {
    server::migrate(&settings).await?;
    let state = AppState::new(settings).await?;
    let started = std::time::Instant::now();
    let seeded = marketplace::seed::seed(&state, amounts, password, true).await?;
    println!(
        "seeded {} workers, {} clients, {} services in {:.1} s",
        amounts.workers,
        amounts.clients,
        seeded.services,
        started.elapsed().as_secs_f64()
    );
    for (role, email) in [
        ("worker", &seeded.worker_email),
        ("client", &seeded.client_email),
    ] {
        if let Some(email) = email {
            println!("  log in as a {role}: {email} / {}", seeded.password);
        }
    }
    Ok(())
}

async fn create_admin(settings: Settings, email: &str) -> anyhow::Result<()> {
    let mut password = String::new();
    std::io::stdin().lock().read_line(&mut password)?;
    let password = password.trim_end_matches(['\r', '\n']).to_owned();
    let email = normalize_email(email).map_err(|e| anyhow::anyhow!("--email {}", e.message))?;
    check_password("password", &password, &[&email])
        .map_err(|e| anyhow::anyhow!("password {}", e.message))?;
    server::migrate(&settings).await?;
    let state = AppState::new(settings).await?;
    match create_user(
        &state,
        &email,
        Secret::new(password),
        "Administrator",
        UserRole::Admin,
    )
    .await
    {
        Ok(user) => {
            println!("created admin {} ({})", user.email, user.id);
            Ok(())
        }
        Err(AppError::Conflict { .. }) => anyhow::bail!("a user with email {email} already exists"),
        Err(err) => Err(err.into()),
    }
}
