//! `speedlayer shell`: the CLI's commands one line at a time, as the HBase shell and
//! redis-cli offer them interactively.
//!
//! A line is split as a POSIX shell would (quotes, backslashes) and parsed by the same clap
//! definition as the command line, so every command, flag and escape works exactly as it
//! does there; a failing command prints its error and the shell goes on. Tab completes
//! command names, their flags, table names (second word) and `family:` (later words), from
//! names read at start and re-read after `create-table` and `drop-table`. History: the last
//! [`HISTORY_LINES`] lines in `$SPEEDLAYER_HISTORY`, else `~/.speedlayer_history`. On a
//! pipe instead of a terminal the shell reads plain lines (scripts, tests).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use clap::{CommandFactory, Parser};
use rustyline::completion::Completer;
use rustyline::config::Config;
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::FileHistory;
use rustyline::validate::Validator;
use rustyline::{Context, Editor, Helper};

use super::args::{Cli, Command, TimeFormat};
use crate::client::Client;
use crate::error::ClientError;

/// Lines of history kept.
pub const HISTORY_LINES: usize = 1000;

/// What completion knows: command names, each command's flags, tables and their families.
#[derive(Debug, Default, Clone)]
pub struct Names {
    pub commands: Vec<String>,
    pub flags: BTreeMap<String, Vec<String>>,
    pub families: BTreeMap<String, Vec<String>>,
}

impl Names {
    /// Commands and flags from the CLI's own definition; no tables yet.
    pub fn from_cli() -> Names {
        let cli = Cli::command();
        let global: Vec<String> = cli
            .get_arguments()
            .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
            .collect();
        let mut names = Names::default();
        for sub in cli.get_subcommands() {
            let name = sub.get_name().to_string();
            if name == "shell" {
                continue;
            }
            let mut flags: Vec<String> = sub
                .get_arguments()
                .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
                .chain(global.iter().cloned())
                .collect();
            flags.sort();
            flags.dedup();
            names.flags.insert(name.clone(), flags);
            names.commands.push(name);
        }
        names
            .commands
            .extend(["exit".to_string(), "quit".to_string()]);
        names.commands.sort();
        names
    }

    /// Re-reads the tables and their families from the server (kept as they were if the
    /// server cannot be reached: completion is a convenience).
    async fn refresh(&mut self, target: &Target) {
        let Ok(opts) = super::options(&target.tls_ca, &target.token_file) else {
            return;
        };
        let Ok(client) = Client::connect_with(&target.addr, opts).await else {
            return;
        };
        if let Ok(tables) = client.list_tables().await {
            self.families = tables
                .into_iter()
                .map(|t| (t.name, t.families.into_iter().map(|f| f.name).collect()))
                .collect();
        }
    }
}

/// Commands whose first argument is not a table.
const NO_TABLE: [&str; 5] = ["tables", "completions", "help", "exit", "quit"];

/// Completion of the text before the cursor: where the completed word starts, and the
/// candidates for it, sorted.
pub fn complete(names: &Names, before: &str) -> (usize, Vec<String>) {
    let start = before.rfind(char::is_whitespace).map_or(0, |i| {
        i + before[i..].chars().next().map_or(1, char::len_utf8)
    });
    let word = &before[start..];
    let prior: Vec<&str> = before[..start].split_whitespace().collect();
    let pick = |all: &mut dyn Iterator<Item = String>| -> Vec<String> {
        let mut v: Vec<String> = all.filter(|c| c.starts_with(word)).collect();
        v.sort();
        v
    };
    let candidates = match prior.first() {
        None => pick(&mut names.commands.iter().cloned()),
        Some(cmd) if word.starts_with('-') => {
            pick(&mut names.flags.get(*cmd).into_iter().flatten().cloned())
        }
        Some(cmd) if prior.len() == 1 && !NO_TABLE.contains(cmd) => {
            pick(&mut names.families.keys().cloned())
        }
        Some(_) if prior.len() >= 2 && !word.contains(':') => pick(
            &mut names
                .families
                .get(prior[1])
                .into_iter()
                .flatten()
                .map(|f| format!("{f}:")),
        ),
        Some(_) => Vec::new(),
    };
    (start, candidates)
}

/// The line editor's helper: completion only.
struct ShellHelper {
    names: Names,
}

impl Completer for ShellHelper {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        Ok(complete(&self.names, line.get(..pos).unwrap_or(line)))
    }
}

impl Hinter for ShellHelper {
    type Hint = String;
}
impl Highlighter for ShellHelper {}
impl Validator for ShellHelper {}
impl Helper for ShellHelper {}

fn history_path() -> Option<PathBuf> {
    std::env::var_os("SPEEDLAYER_HISTORY")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".speedlayer_history")))
}

fn editor_error(e: ReadlineError) -> ClientError {
    ClientError::NotDone(format!("reading the shell's input: {e}"))
}

/// The server the shell talks to, and how.
#[derive(Debug, Clone)]
pub struct Target {
    /// Its address.
    pub addr: String,
    /// `--tls-ca`.
    pub tls_ca: Option<std::path::PathBuf>,
    /// `--token-file`.
    pub token_file: Option<std::path::PathBuf>,
}

/// Runs the shell against the server at `addr` until `exit`, `quit` or end of input.
///
/// # Errors
/// Only when the terminal cannot be read; a command's error is printed and the shell goes
/// on.
pub async fn run(
    target: &Target,
    times: TimeFormat,
    out: &mut dyn Write,
) -> Result<(), ClientError> {
    let mut names = Names::from_cli();
    names.refresh(target).await;
    let config = Config::builder()
        .max_history_size(HISTORY_LINES)
        .map_err(editor_error)?
        .auto_add_history(false)
        .build();
    let mut rl: Editor<ShellHelper, FileHistory> =
        Editor::with_config(config).map_err(editor_error)?;
    rl.set_helper(Some(ShellHelper { names }));
    let history = history_path();
    if let Some(h) = &history {
        // A missing history file is a first session, not an error.
        let _ = rl.load_history(h);
    }
    loop {
        let line = match rl.readline("speedlayer> ") {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(editor_error(e)),
        };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Err(e) = rl.add_history_entry(line) {
            eprintln!("warning: history: {e}");
        }
        if line == "exit" || line == "quit" {
            break;
        }
        let words = match shell_words::split(line) {
            Ok(w) => w,
            Err(e) => {
                eprintln!("error: {e}");
                continue;
            }
        };
        let mut cli =
            match Cli::try_parse_from(std::iter::once("speedlayer".to_string()).chain(words)) {
                Ok(cli) => cli,
                Err(e) => {
                    // Help and version requests are clap "errors" too; print them as clap does.
                    let _ = e.print();
                    continue;
                }
            };
        if matches!(cli.command, Command::Shell) {
            eprintln!("error: already in the shell");
            continue;
        }
        cli.addr = target.addr.clone();
        cli.tls_ca = cli.tls_ca.or_else(|| target.tls_ca.clone());
        cli.token_file = cli.token_file.or_else(|| target.token_file.clone());
        if cli.time_format == TimeFormat::Ms {
            cli.time_format = times;
        }
        let renames = matches!(
            cli.command,
            Command::CreateTable { .. } | Command::DropTable { .. }
        );
        if let Err(e) = Box::pin(super::run(cli, out)).await {
            eprintln!("error: {e}");
        }
        let _ = out.flush();
        if renames && let Some(h) = rl.helper_mut() {
            h.names.refresh(target).await;
        }
    }
    if let Some(h) = &history
        && let Err(e) = rl.save_history(h)
    {
        eprintln!("warning: history not saved to {}: {e}", h.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Names {
        let mut n = Names::from_cli();
        n.families
            .insert("driving".into(), vec!["cf1".into(), "cf2".into()]);
        n.families.insert("overspeed".into(), vec!["o".into()]);
        n
    }

    #[test]
    fn completes_commands_flags_tables_and_families() {
        let n = names();
        assert_eq!(complete(&n, "sc"), (0, vec!["scan".to_string()]));
        let (_, all) = complete(&n, "");
        assert!(all.contains(&"create-table".to_string()) && all.contains(&"exit".to_string()));
        assert!(
            !all.contains(&"shell".to_string()),
            "no shell inside the shell"
        );
        assert_eq!(complete(&n, "scan d"), (5, vec!["driving".to_string()]));
        assert_eq!(
            complete(&n, "get driving r1 c"),
            (15, vec!["cf1:".to_string(), "cf2:".to_string()])
        );
        assert_eq!(complete(&n, "get driving r1 cf1:q").1, Vec::<String>::new());
        let (start, flags) = complete(&n, "scan driving --pre");
        assert_eq!((start, flags), (13, vec!["--prefix".to_string()]));
        assert!(
            complete(&n, "scan driving --")
                .1
                .contains(&"--addr".to_string())
        );
        assert_eq!(complete(&n, "tables x").1, Vec::<String>::new());
        assert_eq!(complete(&n, "scan nosuch r ").1, Vec::<String>::new());
    }

    #[test]
    fn a_korean_row_key_does_not_break_word_boundaries() {
        let n = names();
        assert_eq!(
            complete(&n, "get driving 차량 c"),
            (
                "get driving 차량 ".len(),
                vec!["cf1:".to_string(), "cf2:".to_string()]
            )
        );
    }
}
