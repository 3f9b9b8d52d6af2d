//! The `speedlayer` command line: argument shapes ([`args`]), parsing of family specs and
//! columns ([`spec`]), rendering as aligned tables or JSON lines ([`output`]), and
//! [`run`], which executes one command against a server.
//!
//! Errors are returned, not printed: the binary prints them to stderr and exits non-zero.

pub mod args;
pub mod output;
pub mod selection;
pub mod shell;
pub mod spec;

use std::io::Write;

use bytes::Bytes;
use speedlayer_proto::{
    Durability, GetRequest, MutationOp, Put, RowMutation, ScanRequest, mutation_op::Op,
};

use crate::client::Client;
use crate::error::ClientError;
use crate::filter_expr::parse_filter;
pub use args::{
    AdminCommand, BulkFormat, Cli, ClusterCommand, Command, LoadArgs, ScanArgs, TimeFormat,
};

fn csv_format(columns: &str, delimiter: char) -> Result<crate::bulk::LineFormat, ClientError> {
    let d = u8::try_from(delimiter)
        .ok()
        .filter(u8::is_ascii)
        .ok_or_else(|| {
            ClientError::BadArgument("--delimiter must be one ASCII character".into())
        })?;
    Ok(crate::bulk::LineFormat::Csv(
        crate::bulk::CsvMapping::parse(columns, d)?,
    ))
}

/// `bulkload` and `import`: checks the table has the format's families, then loads each
/// file as one atomic load and prints what it did.
async fn bulk_command(
    client: &Client,
    table: &str,
    files: &[std::path::PathBuf],
    format: crate::bulk::LineFormat,
    load: &LoadArgs,
    out: &mut dyn Write,
) -> Result<(), ClientError> {
    use std::io::IsTerminal;
    let io = |e: std::io::Error| ClientError::NotDone(format!("writing output: {e}"));
    let desc = client.describe_table(table).await?;
    let have: Vec<&str> = desc
        .schema
        .as_ref()
        .map(|s| s.families.iter().map(|f| f.name.as_str()).collect())
        .unwrap_or_default();
    if let Some(missing) = format
        .families()
        .iter()
        .find(|f| !have.contains(&f.as_str()))
    {
        return Err(ClientError::BadArgument(format!(
            "table '{table}' has no family '{missing}' (it has {})",
            have.join(", ")
        )));
    }
    let mut opts = crate::bulk::LoadOptions::new(format);
    opts.memory_budget = load.memory_mb.max(1).saturating_mul(1 << 20);
    if let Some(d) = &load.spill_dir {
        opts.spill_dir = d.clone();
    }
    opts.bad_lines = load.bad_lines.clone();
    opts.progress = !load.no_progress && std::io::stderr().is_terminal();
    opts.retries = load.retries;
    for file in files {
        let r = crate::bulk::load_file(client, table, file, &opts).await?;
        let bad = match &r.bad_file {
            Some(p) => format!("{} bad lines -> {}", r.bad_lines, p.display()),
            None => "0 bad lines".to_string(),
        };
        let secs = (r.read_time + r.load_time).as_secs_f64().max(1e-6);
        writeln!(
            out,
            "loaded {} into {table}: {} lines, {} cells in {} files over {} regions ({:.1} MB), \
             {bad}, {} duplicates, {} spill runs, {} retries, {:.2} s ({:.0} lines/s; \
             read and sort {:.2} s, merge and load {:.2} s){}",
            file.display(),
            r.lines,
            r.adopted.cells,
            r.adopted.parts,
            r.adopted.regions,
            r.adopted.bytes as f64 / 1e6,
            r.duplicates,
            r.spill_runs,
            r.retries,
            secs,
            r.lines as f64 / secs,
            r.read_time.as_secs_f64(),
            r.load_time.as_secs_f64(),
            r.peak_rss_kib
                .map(|k| format!(", peak RSS {:.1} MiB", k as f64 / 1024.0))
                .unwrap_or_default(),
        )
        .map_err(io)?;
    }
    Ok(())
}

/// `speedlayer cluster …`: read from etcd, not from a server.
async fn cluster(command: &ClusterCommand, out: &mut dyn Write) -> Result<(), ClientError> {
    let io = |e: std::io::Error| ClientError::NotDone(format!("writing output: {e}"));
    match command {
        ClusterCommand::Status {
            etcd,
            cluster,
            etcd_ca,
            json,
        } => {
            let mut cfg = speedlayer_cluster::ClusterConfig::new(
                speedlayer_cluster::ClusterConfig::parse_endpoints(etcd),
            );
            cfg.name = cluster.clone();
            cfg.etcd_ca = etcd_ca.clone();
            let status = speedlayer_cluster::ClusterStatus::read(&cfg).await?;
            output::cluster_status(out, &status, *json).map_err(io)
        }
    }
}

/// Client options from `--tls-ca` and `--token-file`.
///
/// # Errors
/// A file that cannot be read.
pub fn options(
    tls_ca: &Option<std::path::PathBuf>,
    token_file: &Option<std::path::PathBuf>,
) -> Result<crate::ClientOptions, ClientError> {
    let read = |p: &std::path::Path, what: &str| {
        std::fs::read(p)
            .map_err(|e| ClientError::NotDone(format!("reading the {what} {}: {e}", p.display())))
    };
    let mut opts = crate::ClientOptions::default();
    if let Some(p) = tls_ca {
        opts.tls_ca_pem = Some(read(p, "CA certificate")?);
    }
    if let Some(p) = token_file {
        let bytes = read(p, "token file")?;
        opts.token = Some(String::from_utf8_lossy(&bytes).trim().to_owned());
    }
    Ok(opts)
}

/// Runs one parsed command, writing its output to `out`.
///
/// # Errors
/// Bad arguments, connection failures and server errors.
pub async fn run(cli: Cli, out: &mut dyn Write) -> Result<(), ClientError> {
    let io = |e: std::io::Error| ClientError::NotDone(format!("writing output: {e}"));
    // Commands that need no server, and the question drop-table asks before connecting.
    match &cli.command {
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(*shell, &mut Cli::command(), "speedlayer", out);
            return Ok(());
        }
        Command::DropTable { table, yes } => confirm_drop(table, *yes)?,
        Command::Shell => {
            let target = shell::Target {
                addr: cli.addr.clone(),
                tls_ca: cli.tls_ca.clone(),
                token_file: cli.token_file.clone(),
            };
            return shell::run(&target, cli.time_format, out).await;
        }
        Command::Cluster { command } => return cluster(command, out).await,
        _ => {}
    }
    let client = Client::connect_with(&cli.addr, options(&cli.tls_ca, &cli.token_file)?).await?;
    let times = cli.time_format;
    match cli.command {
        Command::CreateTable {
            table,
            families,
            splits,
        } => {
            let families = families
                .iter()
                .map(|f| spec::parse_family(f))
                .collect::<Result<Vec<_>, _>>()?;
            let splits = splits
                .iter()
                .map(|s| spec::unescape("split key", s))
                .collect::<Result<Vec<_>, _>>()?;
            client
                .create_table_split(
                    speedlayer_proto::TableSchema {
                        name: table.clone(),
                        families,
                    },
                    splits,
                )
                .await?;
            writeln!(out, "created table {table}").map_err(io)?;
        }
        Command::Tables { json } => {
            let tables = client.list_tables().await?;
            output::tables(out, &tables, json).map_err(io)?;
        }
        Command::Describe { table, json } => {
            let desc = client.describe_table(&table).await?;
            output::describe(out, &desc, json).map_err(io)?;
        }
        Command::DropTable { table, .. } => {
            client.drop_table(&table).await?;
            writeln!(out, "dropped table {table}").map_err(io)?;
        }
        Command::Put {
            table,
            row,
            column,
            value,
            value_file,
            ts,
            durability,
        } => {
            let (family, qualifier) = spec::parse_column(&column)?;
            let qualifier = qualifier.ok_or_else(|| ClientError::BadColumn(column.clone()))?;
            let value = match (value, value_file) {
                (_, Some(path)) => read_value_file(&path)?,
                (Some(text), None) => spec::unescape("value", &text)?,
                (None, None) => {
                    return Err(ClientError::BadArgument(
                        "put needs a VALUE or --value-file PATH".into(),
                    ));
                }
            };
            let m = RowMutation {
                row: spec::unescape("row key", &row)?,
                ops: vec![MutationOp {
                    op: Some(Op::Put(Put {
                        family,
                        qualifier,
                        timestamp: ts,
                        value,
                    })),
                }],
            };
            client.mutate(&table, vec![m], durability.into()).await?;
            writeln!(out, "ok").map_err(io)?;
        }
        Command::Get {
            table,
            row,
            columns,
            versions,
            json,
        } => {
            let request = GetRequest {
                table,
                row: spec::unescape("row key", &row)?,
                columns: spec::parse_columns(&columns)?,
                time_range: None,
                max_versions: versions,
                filter: None,
            };
            let rows: Vec<_> = client.get(request).await?.into_iter().collect();
            output::rows(out, &rows, json, times).map_err(io)?;
        }
        Command::Scan(scan) => scan_command(&client, scan, times, out).await?,
        Command::Count {
            table,
            prefix,
            start,
            stop,
        } => {
            let request = ScanRequest {
                table,
                start: key_arg("--start", start)?,
                stop: key_arg("--stop", stop)?,
                prefix: key_arg("--prefix", prefix)?,
                ..Default::default()
            };
            let mut stream = client.scan(request).await?;
            let mut rows: u64 = 0;
            while stream.next().await?.is_some() {
                rows += 1;
            }
            writeln!(out, "{rows}").map_err(io)?;
        }
        Command::Delete { table, row, column } => {
            let op = match column {
                Some(c) => {
                    let (family, qualifier) = spec::parse_column(&c)?;
                    match qualifier {
                        Some(qualifier) => Op::DeleteColumn(speedlayer_proto::DeleteColumn {
                            family,
                            qualifier,
                            timestamp: None,
                        }),
                        None => Op::DeleteFamily(speedlayer_proto::DeleteFamily {
                            family,
                            timestamp: None,
                        }),
                    }
                }
                None => Op::DeleteRow(speedlayer_proto::DeleteRow { timestamp: None }),
            };
            let m = RowMutation {
                row: spec::unescape("row key", &row)?,
                ops: vec![MutationOp { op: Some(op) }],
            };
            client.mutate(&table, vec![m], Durability::Sync).await?;
            writeln!(out, "ok").map_err(io)?;
        }
        Command::Flush { table } => {
            client.flush(&table).await?;
            writeln!(out, "flushed {table}").map_err(io)?;
        }
        Command::Compact { table, major } => {
            client.compact(&table, major).await?;
            let kind = if major { "major" } else { "minor" };
            writeln!(out, "compacted {table} ({kind})").map_err(io)?;
        }
        Command::Stats { table, json } => {
            let stats = client.region_stats(table.as_deref()).await?;
            output::stats(out, &stats, json).map_err(io)?;
        }
        Command::Admin { command } => admin(&client, command, out).await?,
        Command::Bulkload {
            table,
            files,
            format,
            columns,
            delimiter,
            load,
        } => {
            let format = match (format, columns) {
                (BulkFormat::Status, None) => crate::bulk::LineFormat::Status,
                (BulkFormat::Status, Some(_)) => {
                    return Err(ClientError::BadArgument(
                        "--columns applies to --format csv only".into(),
                    ));
                }
                (BulkFormat::Csv, None) => {
                    return Err(ClientError::BadArgument(
                        "--format csv needs --columns".into(),
                    ));
                }
                (BulkFormat::Csv, Some(c)) => csv_format(&c, delimiter)?,
            };
            bulk_command(&client, &table, &files, format, &load, out).await?;
        }
        Command::Import {
            table,
            files,
            format: args::ImportFormat::Csv,
            columns,
            delimiter,
            load,
        } => {
            let format = csv_format(&columns, delimiter)?;
            bulk_command(&client, &table, &files, format, &load, out).await?;
        }
        // Answered before connecting.
        Command::Completions { .. } | Command::Shell | Command::Cluster { .. } => {}
    }
    Ok(())
}

/// `speedlayer admin …`.
async fn admin(
    client: &Client,
    command: AdminCommand,
    out: &mut dyn Write,
) -> Result<(), ClientError> {
    let io = |e: std::io::Error| ClientError::NotDone(format!("writing output: {e}"));
    match command {
        AdminCommand::Move {
            region,
            server,
            json,
        } => {
            let (table, id) = match region.rsplit_once('/') {
                Some((t, id)) => (t, id),
                None => ("", region.as_str()),
            };
            let id: u64 = id.parse().map_err(|_| {
                ClientError::NotDone(format!(
                    "region {region:?} is neither an id nor TABLE/ID (`speedlayer describe TABLE` lists the ids)"
                ))
            })?;
            let r = client.move_region(table, id, &server).await?;
            let ms = r.unavailable_micros as f64 / 1000.0;
            if json {
                let v = serde_json::json!({
                    "region": id,
                    "from": r.from_server,
                    "to": r.to_server,
                    "epoch": r.epoch,
                    "unavailable_ms": ms,
                });
                writeln!(out, "{v}").map_err(io)?;
            } else if r.from_server == r.to_server {
                writeln!(out, "region {id} is already open on {}", r.to_server).map_err(io)?;
            } else {
                writeln!(
                    out,
                    "moved region {id} from {} to {} (epoch {}); unavailable {ms:.1} ms",
                    r.from_server, r.to_server, r.epoch
                )
                .map_err(io)?;
            }
        }
        AdminCommand::Balance { json } => {
            let r = client.balance().await?;
            if json {
                let servers: serde_json::Map<String, serde_json::Value> = r
                    .servers
                    .iter()
                    .map(|s| (s.server.clone(), s.regions.into()))
                    .collect();
                let v = serde_json::json!({ "moved": r.moved, "servers": servers });
                writeln!(out, "{v}").map_err(io)?;
            } else {
                writeln!(out, "balanced: {} region(s) moved", r.moved).map_err(io)?;
                for s in &r.servers {
                    writeln!(out, "  {:<40} {} region(s)", s.server, s.regions).map_err(io)?;
                }
            }
        }
    }
    Ok(())
}

/// Asks on the terminal before a drop; refuses without `--yes` when no one can answer.
fn confirm_drop(table: &str, yes: bool) -> Result<(), ClientError> {
    use std::io::{BufRead, IsTerminal};
    if yes {
        return Ok(());
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(ClientError::NotDone(format!(
            "drop-table '{table}' deletes all its data and standard input is not a terminal \
             to ask; pass --yes to drop it"
        )));
    }
    eprint!("Drop table '{table}' and all its data? Type the table name to confirm: ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    stdin
        .lock()
        .read_line(&mut answer)
        .map_err(|e| ClientError::NotDone(format!("reading the confirmation: {e}")))?;
    if answer.trim() == table {
        Ok(())
    } else {
        Err(ClientError::NotDone(format!(
            "table '{table}' not dropped: the answer was not its name"
        )))
    }
}

/// `scan`: streams rows to `out` (JSON lines as they arrive, or one aligned table).
async fn scan_command(
    client: &Client,
    scan: ScanArgs,
    times: TimeFormat,
    out: &mut dyn Write,
) -> Result<(), ClientError> {
    let io = |e: std::io::Error| ClientError::NotDone(format!("writing output: {e}"));
    let filter = scan.filter.as_deref().map(parse_filter).transpose()?;
    let selection = selection::plan(spec::parse_columns(&scan.columns)?, filter.as_ref());
    // When the selection was widened for the filter, rows the server counts may be trimmed
    // away here, so the limit is applied here instead.
    let widened = selection.trim_to.is_some();
    let request = ScanRequest {
        table: scan.table,
        start: key_arg("--start", scan.start)?,
        stop: key_arg("--stop", scan.stop)?,
        prefix: key_arg("--prefix", scan.prefix)?,
        reversed: scan.reversed,
        columns: selection.request.clone(),
        time_range: scan
            .time_range
            .as_deref()
            .map(spec::parse_time_range)
            .transpose()?,
        max_versions: scan.versions,
        limit: if widened { None } else { scan.limit },
        filter,
        batch_rows: 0,
    };
    let mut stream = client.scan(request).await?;
    let mut rows = Vec::new();
    let mut shown: u64 = 0;
    while scan.limit.is_none_or(|l| shown < l) {
        let Some(row) = stream.next().await? else {
            break;
        };
        let Some(row) = selection.trim(row) else {
            continue;
        };
        shown += 1;
        if scan.json {
            output::json_row(out, &row, times).map_err(io)?;
        } else {
            rows.push(row);
        }
    }
    if !scan.json {
        output::rows(out, &rows, false, times).map_err(io)?;
    }
    Ok(())
}

/// An optional key argument, unescaped.
fn key_arg(what: &str, text: Option<String>) -> Result<Option<Bytes>, ClientError> {
    text.map(|t| spec::unescape(what, &t)).transpose()
}

/// The bytes of `--value-file`: the file, or standard input for `-`.
fn read_value_file(path: &std::path::Path) -> Result<Bytes, ClientError> {
    use std::io::Read;
    let mut bytes = Vec::new();
    let read = if path.as_os_str() == "-" {
        std::io::stdin().lock().read_to_end(&mut bytes).map(|_| ())
    } else {
        std::fs::File::open(path).and_then(|mut f| f.read_to_end(&mut bytes).map(|_| ()))
    };
    read.map_err(|e| ClientError::BadArgument(format!("--value-file '{}': {e}", path.display())))?;
    Ok(Bytes::from(bytes))
}
