//! The shape of the `speedlayer` command line (clap derive). Scripts and the acceptance
//! suite rely on these exact names; change them only together with the README.

use clap::{Args, Parser, Subcommand, ValueEnum};
use speedlayer_proto::Durability;

/// The Speedlayer command line: create and inspect tables, put, get, scan, count and delete
/// cells, flush and compact, read region statistics, on a running speedlayer-server.
#[derive(Debug, Parser)]
#[command(
    name = "speedlayer",
    version,
    after_help = "Keys, qualifiers and values are printed with \\xNN for bytes that are not \
printable UTF-8 and \\\\ for a backslash; the same escapes are accepted as input.\n\n\
Examples:\n  \
speedlayer --addr 127.0.0.1:16020 tables\n  \
speedlayer create-table driving --family cf1:versions=3:ttl=604800\n  \
speedlayer put driving V0042-20261122143015 cf1:speed 87\n  \
speedlayer scan driving --prefix V0042 --filter \"cf1:speed > 80\" --json\n  \
speedlayer count driving --prefix V0042"
)]
pub struct Cli {
    /// gRPC address of the region server: HOST:PORT, as its READY line prints it, or
    /// http://HOST:PORT (https://HOST:PORT for a server with TLS, with --tls-ca).
    #[arg(
        long,
        global = true,
        env = "SPEEDLAYER_ADDR",
        default_value = "http://127.0.0.1:16020"
    )]
    pub addr: String,

    /// The CA certificate (PEM) that signed the server's TLS certificate, for an
    /// https:// address (a server started with --grpc-tls-cert).
    #[arg(long, global = true, env = "SPEEDLAYER_TLS_CA", value_name = "PEM")]
    pub tls_ca: Option<std::path::PathBuf>,

    /// A file holding the bearer token, for a server started with --grpc-token-file.
    #[arg(
        long,
        global = true,
        env = "SPEEDLAYER_TOKEN_FILE",
        value_name = "FILE"
    )]
    pub token_file: Option<std::path::PathBuf>,

    /// How cell timestamps are printed: milliseconds since the epoch, or ISO 8601 (UTC).
    #[arg(long, global = true, value_enum, default_value_t = TimeFormat::Ms)]
    pub time_format: TimeFormat,

    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// One CLI command.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a table with one or more column families.
    #[command(after_help = FAMILY_OPTIONS)]
    CreateTable {
        /// Table name.
        table: String,
        /// A column family and its options, NAME[:OPTION=VALUE]... (see below); repeat
        /// for several.
        #[arg(long = "family", required = true, value_name = "SPEC")]
        families: Vec<String>,
        /// Cluster mode: start with a region boundary at this row key (repeat, in
        /// increasing order); the regions are spread over the servers.
        #[arg(long = "split", value_name = "ROW")]
        splits: Vec<String>,
    },
    /// List tables.
    Tables {
        /// One JSON object per table, one per line.
        #[arg(long)]
        json: bool,
    },
    /// Show a table's families and regions.
    Describe {
        /// Table name.
        table: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Drop a table and all its data. On a terminal it asks first; elsewhere it needs --yes.
    DropTable {
        /// Table name.
        table: String,
        /// Drop without asking.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Put one cell. Keys, qualifiers and values may use the escapes the output prints:
    /// \xNN for a byte, \\ for a backslash.
    Put {
        /// Table name.
        table: String,
        /// Row key.
        row: String,
        /// FAMILY:QUALIFIER.
        column: String,
        /// Value (or give --value-file).
        #[arg(required_unless_present = "value_file", conflicts_with = "value_file")]
        value: Option<String>,
        /// Read the value's bytes, unchanged, from this file; "-" reads standard input.
        #[arg(long, value_name = "PATH")]
        value_file: Option<std::path::PathBuf>,
        /// Timestamp in milliseconds (default: the server's clock).
        #[arg(long)]
        ts: Option<u64>,
        /// How durable the write is before the reply.
        #[arg(long, value_enum, default_value_t = DurabilityArg::Sync)]
        durability: DurabilityArg,
    },
    /// Read one row.
    Get {
        /// Table name.
        table: String,
        /// Row key.
        row: String,
        /// Only these columns (FAMILY:QUALIFIER or FAMILY); repeatable.
        #[arg(long = "column")]
        columns: Vec<String>,
        /// Versions per column (default 1).
        #[arg(long)]
        versions: Option<u32>,
        /// One JSON object per row, one per line.
        #[arg(long)]
        json: bool,
    },
    /// Read rows in key order.
    Scan(ScanArgs),
    /// Count the rows of a table, or of a key range.
    Count {
        /// Table name.
        table: String,
        /// Only rows starting with this prefix.
        #[arg(long)]
        prefix: Option<String>,
        /// First row (inclusive).
        #[arg(long)]
        start: Option<String>,
        /// Stop row (exclusive).
        #[arg(long)]
        stop: Option<String>,
    },
    /// Delete a row, or one column's versions with --column.
    Delete {
        /// Table name.
        table: String,
        /// Row key.
        row: String,
        /// FAMILY:QUALIFIER (all its versions) or FAMILY (the whole family).
        #[arg(long)]
        column: Option<String>,
    },
    /// Flush the table's memstores to files.
    Flush {
        /// Table name.
        table: String,
    },
    /// Compact the table's files.
    Compact {
        /// Table name.
        table: String,
        /// Major compaction: one file per store; deleted and expired cells dropped.
        #[arg(long)]
        major: bool,
    },
    /// Region statistics of one table or all.
    Stats {
        /// Table name (default: all tables).
        table: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script, e.g. `speedlayer completions bash > /etc/bash_completion.d/speedlayer`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// An interactive shell: each line is a command as above, without `speedlayer`
    /// (`exit`, `quit` or Ctrl-D to leave). Tab completes commands, flags, table names and
    /// family names; history is kept in $SPEEDLAYER_HISTORY (default ~/.speedlayer_history,
    /// the last 1000 lines).
    Shell,
    /// Cluster mode: operators' actions, through any server of the cluster.
    Admin {
        /// What to do.
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Bulk-load files: each FILE is parsed, sorted with bounded memory (spilling to disk
    /// beyond --memory-mb) and streamed to the server, which writes HFiles at its region
    /// boundaries and adopts them atomically: after any crash, all rows of a file are
    /// visible or none. Bad lines go to FILE.bad with their reason, counted, never dropped.
    /// At the same row, column and timestamp a stored cell wins over a loaded one.
    #[command(after_help = "Example: speedlayer bulkload car_status spool/status-20261122.csv")]
    Bulkload {
        /// Table name.
        table: String,
        /// Input files, one atomic load each.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<std::path::PathBuf>,
        /// Line format: `status` (SPEC §1 car status events as car_status rows) or `csv`
        /// (needs --columns, as for import).
        #[arg(long, value_enum, default_value_t = BulkFormat::Status)]
        format: BulkFormat,
        /// CSV only: what each field is (see import).
        #[arg(long, value_name = "FIELDS")]
        columns: Option<String>,
        /// CSV only: the field separator.
        #[arg(long, default_value_t = ',')]
        delimiter: char,
        /// Load options.
        #[command(flatten)]
        load: LoadArgs,
    },
    /// Import CSV files into any table through the bulk-load path (atomic per file, bad
    /// lines to FILE.bad): --columns says what each field is, in order: `:key` (part of the
    /// row key; several are joined with #), `:ts` (cell timestamp: yyyyMMddHHmmss UTC or
    /// milliseconds; default the import's start time), `-` (ignored) or FAMILY:QUALIFIER.
    #[command(
        after_help = "Example: speedlayer import history --format csv --columns ':ts,:key,cf1:speed,-,cf1:area' old.csv"
    )]
    Import {
        /// Table name.
        table: String,
        /// Input files, one atomic load each.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<std::path::PathBuf>,
        /// Input format (only csv).
        #[arg(long, value_enum, default_value_t = ImportFormat::Csv)]
        format: ImportFormat,
        /// What each field is, comma-separated: :key, :ts, - or FAMILY:QUALIFIER.
        #[arg(long, required = true, value_name = "FIELDS")]
        columns: String,
        /// The field separator.
        #[arg(long, default_value_t = ',')]
        delimiter: char,
        /// Load options.
        #[command(flatten)]
        load: LoadArgs,
    },
    /// Cluster mode: the cluster's state as etcd holds it (needs no running server).
    Cluster {
        /// What to show.
        #[command(subcommand)]
        command: ClusterCommand,
    },
}

/// `speedlayer admin …`.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Move a region to another server: its server flushes and closes it, the target
    /// opens it. Waits until it is open there and prints how long it was unavailable.
    Move {
        /// The region: its id (unique in the cluster, as `describe` lists it) or TABLE/ID.
        region: String,
        /// The target server: its member id or gRPC address (`speedlayer cluster status`).
        server: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Run the balancer once and wait until its moves are done: regions per server made to
    /// differ by at most one; when they already do, one region moved by size if a server
    /// holds more than twice the bytes of another (and `--balance-min-mb` more). Prints the
    /// regions per server.
    Balance {
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

/// `bulkload --format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BulkFormat {
    /// SPEC §1 car status events, stored as car_status rows (row key car#time#crc).
    Status,
    /// Any CSV, mapped by --columns.
    Csv,
}

/// `import --format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ImportFormat {
    /// Delimited text, one record per line.
    Csv,
}

/// Options of `bulkload` and `import`.
#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// Memory budget of the loader's sort, in MiB: a larger input is sorted in runs
    /// spilled to --spill-dir and merged (peak memory stays near the budget).
    #[arg(long, default_value_t = 256, value_name = "MIB")]
    pub memory_mb: usize,
    /// Where sort runs are spilled (default: the system temp directory).
    #[arg(long, value_name = "DIR")]
    pub spill_dir: Option<std::path::PathBuf>,
    /// Dead-letter file for bad lines (default: FILE.bad next to each input).
    #[arg(long, value_name = "PATH")]
    pub bad_lines: Option<std::path::PathBuf>,
    /// No progress line on stderr (it is shown only on a terminal anyway).
    #[arg(long)]
    pub no_progress: bool,
    /// Times a load the server refused without adopting anything (a region split meanwhile,
    /// server unavailable) is sent again.
    #[arg(long, default_value_t = 5)]
    pub retries: u32,
}

/// `speedlayer cluster …`.
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Members (with their gRPC, HTTP and RESP addresses) and the master.
    Status {
        /// etcd client URLs, comma-separated, as given to the servers' --etcd.
        #[arg(long, env = "SPEEDLAYER_ETCD", value_name = "URL[,URL...]")]
        etcd: String,
        /// Cluster name, as given to the servers' --cluster.
        #[arg(long, default_value = speedlayer_cluster::DEFAULT_CLUSTER)]
        cluster: String,
        /// The CA certificate (PEM) that signed etcd's, for https:// endpoints.
        #[arg(long, env = "SPEEDLAYER_ETCD_CA", value_name = "PEM")]
        etcd_ca: Option<std::path::PathBuf>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

/// The `--family` options, listed under `create-table --help`.
const FAMILY_OPTIONS: &str = "Family options (--family NAME[:OPTION=VALUE]...):
  versions=N          versions kept per column (default 1)
  ttl=SECONDS         cells older than this are dropped (default: kept forever)
  compression=C       block compression: lz4 or none (default lz4)
  bloom=B             bloom filter: row, rowcol or none (default row)
  blocksize=BYTES     target uncompressed block size (default 65536)

Example: speedlayer create-table driving --family cf1:versions=3:ttl=604800 --family cf2";

/// `--time-format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum TimeFormat {
    /// Milliseconds since the Unix epoch.
    #[default]
    Ms,
    /// ISO 8601 in UTC with milliseconds, e.g. 2026-11-22T14:30:15.000Z.
    Iso,
}

/// Options of `scan`.
#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Table name.
    pub table: String,
    /// Only rows starting with this prefix.
    #[arg(long)]
    pub prefix: Option<String>,
    /// First row (inclusive; the highest row when --reversed).
    #[arg(long)]
    pub start: Option<String>,
    /// Stop row (exclusive; the lowest row, still exclusive, when --reversed).
    #[arg(long)]
    pub stop: Option<String>,
    /// Descending key order.
    #[arg(long)]
    pub reversed: bool,
    /// At most this many rows.
    #[arg(long)]
    pub limit: Option<u64>,
    /// Only these columns (FAMILY:QUALIFIER or FAMILY); repeatable.
    #[arg(long = "column")]
    pub columns: Vec<String>,
    /// Only versions with FROM <= timestamp < TO (milliseconds).
    #[arg(long = "time-range", value_name = "FROM,TO")]
    pub time_range: Option<String>,
    /// Versions per column (default 1).
    #[arg(long)]
    pub versions: Option<u32>,
    /// Row filter, e.g. "cf1:speed > 80 AND (cf1:area_number = 'A07' OR cf1:turn_signal = 'L')".
    #[arg(long)]
    pub filter: Option<String>,
    /// One JSON object per row, one per line.
    #[arg(long)]
    pub json: bool,
}

/// `--durability` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DurabilityArg {
    /// Memstore only.
    Skip,
    /// WAL, fsynced within the server's interval.
    Async,
    /// WAL fsynced before the reply.
    Sync,
}

impl From<DurabilityArg> for Durability {
    fn from(d: DurabilityArg) -> Durability {
        match d {
            DurabilityArg::Skip => Durability::SkipWal,
            DurabilityArg::Async => Durability::Async,
            DurabilityArg::Sync => Durability::Sync,
        }
    }
}
