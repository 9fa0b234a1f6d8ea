//! `sisyctl token create | ls | revoke`: personal tokens for signing in to the web dashboard.
//! The token is shown once, here; the database keeps only its SHA-256.

use clap::Subcommand;
use sisyphus_client::Client;

use crate::output::{self, opt, time};
use crate::{parse_duration, say, Failure};

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Make a token for a person (yourself, or anyone if you are an admin) and print it once.
    Create {
        /// The person's login.
        #[arg(long)]
        user: String,
        /// How long it works (e.g. 30d, 12h); without it, until revoked.
        #[arg(long, value_parser = parse_duration)]
        expires: Option<std::time::Duration>,
        /// What it is for, shown by `token ls`.
        #[arg(long)]
        label: Option<String>,
    },
    /// List tokens (your own; admins all): never the tokens themselves.
    Ls,
    /// Revoke a token at once: every session signed in with it ends.
    Revoke { id: i64 },
}

pub async fn run(client: &Client, command: TokenCommand, json: bool) -> Result<(), Failure> {
    match command {
        TokenCommand::Create {
            user,
            expires,
            label,
        } => {
            let (id, token) = client
                .create_token(&user, expires, label.as_deref())
                .await?;
            if json {
                output::json(&serde_json::json!({ "id": id, "login": user, "token": token }))?;
            } else {
                say!("{token}")?;
                eprintln!(
                    "token {id} for {user}: shown only now; sign in at the dashboard with it"
                );
            }
        }
        TokenCommand::Ls => {
            let tokens = client.tokens().await?;
            if json {
                output::json(&tokens)?;
            } else {
                let rows: Vec<Vec<String>> = tokens
                    .iter()
                    .map(|t| {
                        vec![
                            t.id.to_string(),
                            t.login.clone(),
                            opt(t.label.as_deref()),
                            time(Some(t.created_at)),
                            time(t.expires_at),
                            time(t.revoked_at),
                            time(t.last_used_at),
                        ]
                    })
                    .collect();
                output::table(
                    &[
                        "ID",
                        "LOGIN",
                        "LABEL",
                        "CREATED",
                        "EXPIRES",
                        "REVOKED",
                        "LAST USED",
                    ],
                    &rows,
                )?;
            }
        }
        TokenCommand::Revoke { id } => {
            let revoked = client.revoke_token(id).await?;
            crate::cmd::job::report(json, revoked, "revoked", "no such live token")?;
        }
    }
    Ok(())
}
