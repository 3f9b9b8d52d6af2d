//! The shape of the `speedlayer` command line (clap derive). Scripts and the acceptance
//! suite rely on these exact names; change them only together with the README.

use clap::{Args, Parser, Subcommand, ValueEnum};
use speedlayer_proto::Durability;

/// speedlayer: talk to a Speedlayer region server.
#[derive(Debug, Parser)]
#[command(name = "speedlayer", version, about)]
pub struct Cli {
    /// gRPC address of the region server: HOST:PORT, as its READY line prints it, or
    /// http://HOST:PORT.
    #[arg(
        long,
        global = true,
        env = "SPEEDLAYER_ADDR",
        default_value = "http://127.0.0.1:16020"
    )]
    pub addr: String,

    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// One CLI command.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a table: --family NAME[:versions=N][:ttl=SECONDS][:compression=lz4|none][:bloom=row|rowcol|none]
    CreateTable {
        /// Table name.
        table: String,
        /// A column family and its options; repeat for several.
        #[arg(long = "family", required = true)]
        families: Vec<String>,
    },
    /// List tables.
    Tables,
    /// Show a table's families and regions.
    Describe {
        /// Table name.
        table: String,
    },
    /// Drop a table and its data.
    DropTable {
        /// Table name.
        table: String,
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
