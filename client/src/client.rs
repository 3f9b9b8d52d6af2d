//! The async client of the region server: one HTTP/2 channel per server, reused by every
//! call; region lookups through [`RegionCache`]; retries with capped backoff on transient
//! codes (see [`RetryPolicy`]). It knows only the `proto` crate, never the storage engine.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use speedlayer_proto::{
    BalanceRequest, BalanceResponse, BulkLoadRequest, BulkLoadResponse, CheckAndMutateRequest,
    CompactRequest, CompactionKind, CreateTableRequest, DeleteTableRequest, DescribeTableRequest,
    DescribeTableResponse, Durability, FlushRequest, GetRequest, ListTablesRequest,
    LocateRegionRequest, MoveRegionRequest, MoveRegionResponse, MutateRequest, RegionLocation,
    RegionStatsRequest, RegionStatsResponse, Row, RowMutation, ScanRequest, ScanResponse,
    TableSchema, admin_client::AdminClient, data_client::DataClient,
};
use tonic::Code;
use tonic::transport::{Channel, Endpoint};

use crate::error::ClientError;
use crate::region_cache::RegionCache;
use crate::retry::RetryPolicy;

/// Default largest message the client sends or accepts: 64 MiB, the server's batch limit.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// Connection and retry settings.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Largest encoded request or reply, in bytes; default 64 MiB.
    pub max_message_bytes: usize,
    /// Retries on `UNAVAILABLE` / `RESOURCE_EXHAUSTED`.
    pub retry: RetryPolicy,
    /// Time allowed to open a TCP connection; default 5 s.
    pub connect_timeout: Duration,
    /// Deadline of each unary call; default 60 s (flush and compaction can take a while).
    pub request_timeout: Duration,
    /// The CA certificate(s), PEM, that sign the servers' TLS certificates; needed for
    /// `https://` addresses (there is no fallback to system roots).
    pub tls_ca_pem: Option<Vec<u8>>,
    /// The bearer token sent with every request (`authorization: Bearer <token>`), for a
    /// server started with `--grpc-token-file`.
    pub token: Option<String>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            retry: RetryPolicy::default(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(60),
            tls_ca_pem: None,
            token: None,
        }
    }
}

/// A handle to a region server. Cheap to clone; clones share channels and the region cache.
#[derive(Clone, Debug)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    addr: String,
    opts: ClientOptions,
    /// `Bearer <token>`, ready to send.
    token: Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>,
    default_channel: Channel,
    channels: Mutex<HashMap<String, Channel>>,
    regions: RegionCache,
}

impl Client {
    /// Connects to `addr` (`http://127.0.0.1:16020` or `127.0.0.1:16020`) with default
    /// options.
    ///
    /// # Errors
    /// [`ClientError::BadAddress`] or [`ClientError::Connect`].
    pub async fn connect(addr: &str) -> Result<Client, ClientError> {
        Client::connect_with(addr, ClientOptions::default()).await
    }

    /// Connects to `addr` with the given options. The connection is opened now, so a wrong
    /// address fails here rather than on the first call.
    ///
    /// # Errors
    /// [`ClientError::BadAddress`] or [`ClientError::Connect`].
    pub async fn connect_with(addr: &str, opts: ClientOptions) -> Result<Client, ClientError> {
        let addr = normalize_addr(addr);
        let token = match &opts.token {
            Some(t) => Some(
                format!("Bearer {}", t.trim())
                    .parse::<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>()
                    .ok()
                    .filter(|_| !t.trim().is_empty())
                    .ok_or_else(|| {
                        ClientError::NotDone(
                            "the bearer token is empty or not printable ASCII".into(),
                        )
                    })?,
            ),
            None => None,
        };
        let endpoint = endpoint(&addr, &opts)?;
        let channel = endpoint
            .connect()
            .await
            .map_err(|source| ClientError::Connect {
                addr: addr
                    .split_once("://")
                    .map_or(addr.as_str(), |(_, rest)| rest)
                    .trim_end_matches('/')
                    .to_string(),
                source,
            })?;
        Ok(Client {
            inner: Arc::new(Inner {
                addr,
                opts,
                token,
                default_channel: channel,
                channels: Mutex::new(HashMap::new()),
                regions: RegionCache::default(),
            }),
        })
    }

    /// The address this client was connected to, as a URL (`http://host:port`).
    pub fn addr(&self) -> &str {
        &self.inner.addr
    }

    fn admin(&self) -> AdminClient<Channel> {
        self.admin_at(self.inner.default_channel.clone())
    }

    fn admin_at(&self, channel: Channel) -> AdminClient<Channel> {
        let max = self.inner.opts.max_message_bytes;
        AdminClient::new(channel)
            .max_decoding_message_size(max)
            .max_encoding_message_size(max)
    }

    fn data_at(&self, channel: Channel) -> DataClient<Channel> {
        let max = self.inner.opts.max_message_bytes;
        DataClient::new(channel)
            .max_decoding_message_size(max)
            .max_encoding_message_size(max)
    }

    /// The channel to a region's server: the default one when the region lives on the
    /// server this client connected to (or names none), else a lazily connected one.
    fn channel_for(&self, server_addr: &str) -> Result<Channel, ClientError> {
        if server_addr.is_empty() || server_addr == self.inner.addr {
            return Ok(self.inner.default_channel.clone());
        }
        let mut channels = self.inner.channels.lock();
        if let Some(c) = channels.get(server_addr) {
            return Ok(c.clone());
        }
        let channel = endpoint(&normalize_addr(server_addr), &self.inner.opts)?.connect_lazy();
        channels.insert(server_addr.to_string(), channel.clone());
        Ok(channel)
    }

    /// Runs `call` with retries on transient codes and capped exponential backoff.
    async fn retrying<T, F, Fut>(&self, op: &'static str, call: F) -> Result<T, ClientError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        self.retrying_unless(op, false, call).await
    }

    /// As [`retrying`](Self::retrying); with `relocatable`, an `UNAVAILABLE` answer is
    /// returned at once instead of retried: the call went to a cluster member other than
    /// the one this client connected to, and a member that does not answer is dead or
    /// fenced — its regions reopen elsewhere, so the caller locates again (retrying the
    /// dead address would spend the whole retry budget, 2.3 s by default, before looking).
    async fn retrying_unless<T, F, Fut>(
        &self,
        op: &'static str,
        relocatable: bool,
        mut call: F,
    ) -> Result<T, ClientError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let mut retry = 0;
        loop {
            match call().await {
                Ok(resp) => return Ok(resp.into_inner()),
                Err(status) if relocatable && status.code() == Code::Unavailable => {
                    return Err(ClientError::status(op, status));
                }
                Err(status) if RetryPolicy::is_retryable(status.code()) => {
                    match self.inner.opts.retry.backoff(retry) {
                        Some(pause) => {
                            tracing::debug!(op, code = ?status.code(), retry, ?pause, "retrying");
                            tokio::time::sleep(pause).await;
                            retry += 1;
                        }
                        None => return Err(ClientError::status(op, status)),
                    }
                }
                Err(status) => return Err(ClientError::status(op, status)),
            }
        }
    }

    fn request<T>(&self, msg: T) -> tonic::Request<T> {
        let mut req = self.authorized(msg);
        req.set_timeout(self.inner.opts.request_timeout);
        req
    }

    /// A request carrying the bearer token, if one is set (streams: no deadline).
    fn authorized<T>(&self, msg: T) -> tonic::Request<T> {
        let mut req = tonic::Request::new(msg);
        if let Some(t) = &self.inner.token {
            req.metadata_mut().insert("authorization", t.clone());
        }
        req
    }

    /// Creates a table.
    ///
    /// # Errors
    /// `ALREADY_EXISTS` if it exists, `INVALID_ARGUMENT` on a bad schema.
    pub async fn create_table(&self, schema: TableSchema) -> Result<(), ClientError> {
        self.create_table_split(schema, Vec::new()).await
    }

    /// Creates a table pre-split at `split_keys` (cluster mode: its regions are spread over
    /// the servers from the start).
    ///
    /// # Errors
    /// As [`Client::create_table`]; `INVALID_ARGUMENT` for split keys on a single server.
    pub async fn create_table_split(
        &self,
        schema: TableSchema,
        split_keys: Vec<Bytes>,
    ) -> Result<(), ClientError> {
        let msg = CreateTableRequest {
            schema: Some(schema),
            split_keys,
        };
        self.retrying("CreateTable", || {
            let mut c = self.admin();
            let req = self.request(msg.clone());
            async move { c.create_table(req).await }
        })
        .await?;
        Ok(())
    }

    /// Drops a table and its data.
    ///
    /// # Errors
    /// `NOT_FOUND` if the table does not exist.
    pub async fn drop_table(&self, table: &str) -> Result<(), ClientError> {
        let msg = DeleteTableRequest {
            table: table.to_string(),
        };
        self.inner.regions.invalidate(table);
        self.retrying("DeleteTable", || {
            let mut c = self.admin();
            let req = self.request(msg.clone());
            async move { c.delete_table(req).await }
        })
        .await?;
        Ok(())
    }

    /// Every table's schema.
    ///
    /// # Errors
    /// Transport or server failures.
    pub async fn list_tables(&self) -> Result<Vec<TableSchema>, ClientError> {
        let resp = self
            .retrying("ListTables", || {
                let mut c = self.admin();
                let req = self.request(ListTablesRequest {});
                async move { c.list_tables(req).await }
            })
            .await?;
        Ok(resp.tables)
    }

    /// A table's schema and regions; refreshes the region cache.
    ///
    /// # Errors
    /// `NOT_FOUND` if the table does not exist.
    pub async fn describe_table(&self, table: &str) -> Result<DescribeTableResponse, ClientError> {
        let msg = DescribeTableRequest {
            table: table.to_string(),
        };
        let resp = self
            .retrying("DescribeTable", || {
                let mut c = self.admin();
                let req = self.request(msg.clone());
                async move { c.describe_table(req).await }
            })
            .await?;
        self.inner.regions.insert(table, resp.regions.clone());
        Ok(resp)
    }

    /// Flushes the table's memstores to files and waits.
    ///
    /// # Errors
    /// `NOT_FOUND` if the table does not exist.
    pub async fn flush(&self, table: &str) -> Result<(), ClientError> {
        let msg = FlushRequest {
            table: table.to_string(),
        };
        self.retrying("Flush", || {
            let mut c = self.admin();
            let req = self.request(msg.clone());
            async move { c.flush(req).await }
        })
        .await?;
        Ok(())
    }

    /// Compacts the table (major: one file per store, deletes and excess versions dropped).
    ///
    /// # Errors
    /// `NOT_FOUND` if the table does not exist.
    pub async fn compact(&self, table: &str, major: bool) -> Result<(), ClientError> {
        let kind = if major {
            CompactionKind::Major
        } else {
            CompactionKind::Minor
        };
        let msg = CompactRequest {
            table: table.to_string(),
            kind: kind as i32,
        };
        self.retrying("Compact", || {
            let mut c = self.admin();
            let req = self.request(msg.clone());
            async move { c.compact(req).await }
        })
        .await?;
        Ok(())
    }

    /// Per-region statistics of one table, or of all tables.
    ///
    /// # Errors
    /// `NOT_FOUND` for an unknown table.
    pub async fn region_stats(
        &self,
        table: Option<&str>,
    ) -> Result<RegionStatsResponse, ClientError> {
        let msg = RegionStatsRequest {
            table: table.map(str::to_string),
        };
        self.retrying("RegionStats", || {
            let mut c = self.admin();
            let req = self.request(msg.clone());
            async move { c.region_stats(req).await }
        })
        .await
    }

    /// Cluster mode: moves region `id` (of `table`, or of whichever table holds it when
    /// `table` is empty) to `server` (a member id or its gRPC address) and waits until it
    /// is open there.
    ///
    /// # Errors
    /// `NOT_FOUND`, `FAILED_PRECONDITION` (a single server; a split region),
    /// `DEADLINE_EXCEEDED`.
    pub async fn move_region(
        &self,
        table: &str,
        id: u64,
        server: &str,
    ) -> Result<MoveRegionResponse, ClientError> {
        let msg = MoveRegionRequest {
            table: table.to_string(),
            region_id: id,
            server: server.to_string(),
        };
        self.retrying("MoveRegion", || {
            let mut c = self.admin();
            let req = self.request(msg.clone());
            async move { c.move_region(req).await }
        })
        .await
    }

    /// Cluster mode: runs the balancer once and waits until its moves are done.
    ///
    /// # Errors
    /// `FAILED_PRECONDITION` on a single server, `DEADLINE_EXCEEDED`.
    pub async fn balance(&self) -> Result<BalanceResponse, ClientError> {
        self.retrying("Balance", || {
            let mut c = self.admin();
            let req = self.request(BalanceRequest {});
            async move { c.balance(req).await }
        })
        .await
    }

    /// The region holding `row`, from the cache or from the server.
    ///
    /// # Errors
    /// `NOT_FOUND` for an unknown table.
    pub async fn locate(&self, table: &str, row: &[u8]) -> Result<RegionLocation, ClientError> {
        if let Some(region) = self.inner.regions.lookup(table, row) {
            return Ok(region);
        }
        self.describe_table(table).await?;
        if let Some(region) = self.inner.regions.lookup(table, row) {
            return Ok(region);
        }
        // The cached list has a gap (a split in progress): ask the server for this row.
        let msg = LocateRegionRequest {
            table: table.to_string(),
            row: Bytes::copy_from_slice(row),
        };
        let resp = self
            .retrying("LocateRegion", || {
                let mut c = self.admin();
                let req = self.request(msg.clone());
                async move { c.locate_region(req).await }
            })
            .await?;
        resp.location.ok_or_else(|| {
            ClientError::Protocol(format!(
                "the server named no region holding row '{}' of table '{table}'",
                String::from_utf8_lossy(row)
            ))
        })
    }

    /// Runs a data call against the server holding `row`; on `NOT_FOUND` the table's
    /// region cache is refreshed and the call tried once more (the region may have moved).
    async fn routed<T, F, Fut>(
        &self,
        op: &'static str,
        table: &str,
        row: &[u8],
        call: F,
    ) -> Result<T, ClientError>
    where
        F: Fn(DataClient<Channel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        self.routed_with(op, table, row, MAX_REFRESHES, call).await
    }

    /// As [`routed`](Self::routed), re-locating at most `max_refreshes` times.
    async fn routed_with<T, F, Fut>(
        &self,
        op: &'static str,
        table: &str,
        row: &[u8],
        max_refreshes: u32,
        call: F,
    ) -> Result<T, ClientError>
    where
        F: Fn(DataClient<Channel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let mut refreshes = 0u32;
        let started = tokio::time::Instant::now();
        // More tries while within the budget, for callers that allow more than one.
        let may_retry = |refreshes: u32| {
            refreshes < max_refreshes || (max_refreshes > 1 && started.elapsed() < RELOCATE_BUDGET)
        };
        loop {
            let region = self.locate(table, row).await?;
            let data = self.data_at(self.channel_for(&region.server_addr)?);
            let relocatable =
                region.server_addr != self.inner.addr && !region.server_addr.is_empty();
            match self
                .retrying_unless(op, relocatable, || call(data.clone()))
                .await
            {
                Err(e) if e.code() == Some(Code::NotFound) && may_retry(refreshes) => {
                    self.inner.regions.invalidate(table);
                    if !is_not_serving(&e) && refreshes > 0 {
                        return Err(e);
                    }
                    // A cluster region between servers: give the move a moment.
                    if is_not_serving(&e) {
                        tokio::time::sleep(relocate_pause(refreshes)).await;
                    }
                    refreshes += 1;
                }
                // Cluster mode: the region's server is gone (killed, or cut off and fenced)
                // or stopped answering within the request deadline (paused; tonic reports
                // its own deadline as CANCELLED "Timeout expired"): meta
                // reassigns its regions, so locate again rather than give up.
                Err(e)
                    if matches!(
                        e.code(),
                        Some(Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled)
                    ) && region.server_addr != self.inner.addr
                        && !region.server_addr.is_empty()
                        && may_retry(refreshes) =>
                {
                    self.inner.regions.invalidate(table);
                    tokio::time::sleep(relocate_pause(refreshes)).await;
                    refreshes += 1;
                }
                other => return other,
            }
        }
    }

    /// Applies a batch of row mutations with the given durability; returns the number of
    /// cells written. Rows are grouped by the server holding them, one call per server.
    ///
    /// # Errors
    /// `NOT_FOUND` (table or family), `INVALID_ARGUMENT` (empty row, oversize),
    /// `RESOURCE_EXHAUSTED` after retries. On error some servers' groups may have been
    /// applied; each row is atomic.
    pub async fn mutate(
        &self,
        table: &str,
        mutations: Vec<RowMutation>,
        durability: Durability,
    ) -> Result<u64, ClientError> {
        let mut cells = 0;
        let mut pending = mutations;
        let mut round = 0u32;
        let started = tokio::time::Instant::now();
        while !pending.is_empty() {
            let mut groups: Vec<(String, Bytes, Vec<RowMutation>)> = Vec::new();
            for m in std::mem::take(&mut pending) {
                let region = self.locate(table, &m.row).await?;
                match groups.iter_mut().find(|g| g.0 == region.server_addr) {
                    Some(g) => g.2.push(m),
                    None => groups.push((region.server_addr, m.row.clone(), vec![m])),
                }
            }
            for (server, first_row, rows) in groups {
                let msg = MutateRequest {
                    table: table.to_string(),
                    mutations: rows,
                    durability: durability as i32,
                };
                // One location here: on a refusal the rows are grouped again below (a
                // group may span regions that moved apart).
                let result = self
                    .routed_with("Mutate", table, &first_row, 1, |mut c| {
                        let req = self.request(msg.clone());
                        async move { c.mutate(req).await }
                    })
                    .await;
                let within_budget = round < MAX_REFRESHES || started.elapsed() < RELOCATE_BUDGET;
                match result {
                    Ok(resp) => cells += resp.cells,
                    // Cluster mode: the group's rows now live on several servers (regions
                    // moved or split); nothing of the group was applied (a server checks
                    // every row's region before writing). Group them again.
                    Err(e) if is_not_serving(&e) && within_budget => {
                        pending.extend(msg.mutations);
                    }
                    // Cluster mode: that server is gone, paused or fenced; its regions
                    // reopen elsewhere. Locate and group again.
                    Err(e)
                        if is_relocatable(&e)
                            && server != self.inner.addr
                            && !server.is_empty()
                            && within_budget =>
                    {
                        pending.extend(msg.mutations);
                    }
                    Err(e) => return Err(e),
                }
            }
            if !pending.is_empty() {
                tokio::time::sleep(relocate_pause(round)).await;
            }
            round += 1;
        }
        Ok(cells)
    }

    /// Streams one bulk load (`storage/docs/bulk_load.md`) to the server this client
    /// connected to: `chunks` in store order, the first naming the table. The server adopts
    /// the load atomically once the stream ends; no deadline applies (a load takes as long
    /// as its input). Not retried here: the loader sends the whole stream again.
    ///
    /// # Errors
    /// `ABORTED` (region boundaries changed: nothing adopted), `INVALID_ARGUMENT` (cells
    /// out of order, oversize, cluster mode), `NOT_FOUND` (table or family), transport
    /// errors.
    pub async fn bulk_load_stream<S>(&self, chunks: S) -> Result<BulkLoadResponse, ClientError>
    where
        S: futures::Stream<Item = BulkLoadRequest> + Send + 'static,
    {
        let mut c = self.data_at(self.inner.default_channel.clone());
        c.bulk_load(self.authorized(chunks))
            .await
            .map(tonic::Response::into_inner)
            .map_err(|s| ClientError::status("BulkLoad", s))
    }

    /// Reads one row; `None` when it has no visible cell.
    ///
    /// # Errors
    /// `NOT_FOUND` (table or family), `INVALID_ARGUMENT` (bad filter).
    pub async fn get(&self, request: GetRequest) -> Result<Option<Row>, ClientError> {
        let table = request.table.clone();
        let row = request.row.clone();
        let resp = self
            .routed("Get", &table, &row, |mut c| {
                let req = self.request(request.clone());
                async move { c.get(req).await }
            })
            .await?;
        Ok(resp.row)
    }

    /// Starts a scan; rows arrive through [`ScanStream::next`] as the server streams them.
    /// The server holding the start row drives the scan across its regions.
    ///
    /// # Errors
    /// `NOT_FOUND`, `INVALID_ARGUMENT` (bad filter or range) — possibly only from `next`.
    pub async fn scan(&self, request: ScanRequest) -> Result<ScanStream, ClientError> {
        // A segment planned from stale locations (a region moved or split) is refused as
        // not serving: plan the segments again from fresh locations.
        let mut replans = 0u32;
        let (mut stream, segments, first) = loop {
            let mut segments = self.scan_segments(&request).await?;
            let first = segments.pop_front().unwrap_or_else(|| request.clone());
            match self.scan_one(first.clone()).await {
                Ok(stream) => break (stream, segments, first),
                Err(e) if is_not_serving(&e) && replans < MAX_REFRESHES => {
                    self.inner.regions.invalidate(&request.table);
                    if replans > 0 {
                        tokio::time::sleep(Duration::from_millis(50 << replans.min(5))).await;
                    }
                    replans += 1;
                }
                Err(e) => return Err(e),
            }
        };
        stream.rest = segments;
        stream.limit_left = first.limit;
        stream.client = Some(self.clone());
        stream.original = Some(request);
        Ok(stream)
    }

    /// Cluster mode: a scan whose range spans regions on several servers becomes one scan
    /// per run of consecutive regions on one server, in scan order, each bounded to its
    /// run. Empty when one server holds the whole range (it scans across its regions).
    async fn scan_segments(
        &self,
        request: &ScanRequest,
    ) -> Result<VecDeque<ScanRequest>, ClientError> {
        let table = &request.table;
        if self.inner.regions.regions(table).is_none() {
            self.describe_table(table).await?;
        }
        let regions = self.inner.regions.regions(table).unwrap_or_default();
        let mut lo: Bytes = request.start.clone().unwrap_or_default();
        let mut hi: Option<Bytes> = request.stop.clone().filter(|s| !s.is_empty());
        if let Some(p) = &request.prefix {
            if p[..] > lo[..] {
                lo = p.clone();
            }
            if let Some(end) = prefix_end(p) {
                hi = Some(match hi {
                    Some(h) if h < end => h,
                    _ => end,
                });
            }
        }
        // Runs of overlapping regions on one server: (server, run start, run end).
        let mut runs: Vec<(String, Bytes, Bytes)> = Vec::new();
        for r in &regions {
            let before_lo = !r.end_key.is_empty() && r.end_key[..] <= lo[..];
            let after_hi = hi.as_ref().is_some_and(|h| r.start_key[..] >= h[..]);
            if before_lo || after_hi {
                continue;
            }
            match runs.last_mut() {
                Some(last) if last.0 == r.server_addr => last.2 = r.end_key.clone(),
                _ => runs.push((
                    r.server_addr.clone(),
                    r.start_key.clone(),
                    r.end_key.clone(),
                )),
            }
        }
        if runs.len() <= 1 {
            return Ok(VecDeque::new());
        }
        let mut out: VecDeque<ScanRequest> = runs
            .into_iter()
            .map(|(_, start, end)| {
                let mut seg = request.clone();
                seg.start = Some(if start[..] > lo[..] {
                    start
                } else {
                    lo.clone()
                });
                seg.stop = match (&hi, end.is_empty()) {
                    (Some(h), false) => Some(if end[..] < h[..] { end } else { h.clone() }),
                    (Some(h), true) => Some(h.clone()),
                    (None, false) => Some(end),
                    (None, true) => None,
                };
                seg
            })
            .collect();
        if request.reversed {
            out = out.into_iter().rev().collect();
        }
        Ok(out)
    }

    async fn scan_one(&self, request: ScanRequest) -> Result<ScanStream, ClientError> {
        let table = request.table.clone();
        let anchor = request
            .start
            .clone()
            .or_else(|| request.prefix.clone())
            .unwrap_or_default();
        // One re-location here at most: `scan` plans the segments again on a refusal.
        let stream = self
            .routed_with("Scan", &table, &anchor, 1, |mut c| {
                // Streams are not retried mid-way; only the opening call is.
                let req = self.authorized(request.clone());
                async move { c.scan(req).await }
            })
            .await?;
        Ok(ScanStream {
            stream,
            buffered: VecDeque::new(),
            rest: VecDeque::new(),
            limit_left: None,
            client: None,
            original: None,
            last_row: None,
            replans: 0,
        })
    }

    /// Runs a scan to the end and returns every row (bounded by the scan's `limit`, if any).
    ///
    /// # Errors
    /// As [`Client::scan`].
    pub async fn scan_all(&self, request: ScanRequest) -> Result<Vec<Row>, ClientError> {
        let mut stream = self.scan(request).await?;
        let mut rows = Vec::new();
        while let Some(row) = stream.next().await? {
            rows.push(row);
        }
        Ok(rows)
    }

    /// Atomically checks one column of a row and applies the mutation if the check holds.
    ///
    /// # Errors
    /// `NOT_FOUND`, `INVALID_ARGUMENT` (the mutation's row differs from the checked row).
    pub async fn check_and_mutate(
        &self,
        request: CheckAndMutateRequest,
    ) -> Result<bool, ClientError> {
        let table = request.table.clone();
        let row = request.row.clone();
        let resp = self
            .routed("CheckAndMutate", &table, &row, |mut c| {
                let req = self.request(request.clone());
                async move { c.check_and_mutate(req).await }
            })
            .await?;
        Ok(resp.applied)
    }
}

/// How many times a request locates its region again after `NOT_FOUND` "not serving"
/// (cluster mode: the region moved or is moving) before giving up.
const MAX_REFRESHES: u32 = 6;

/// Past [`MAX_REFRESHES`], a request keeps locating its region again for up to this long
/// (a failover takes the lease TTL plus reopening; a split under load can take seconds),
/// pausing at most [`MAX_RELOCATE_PAUSE`] between tries, as HBase clients retry for
/// their operation timeout.
const RELOCATE_BUDGET: Duration = Duration::from_secs(30);

/// Longest pause between two locations of one request: a failover ends when meta names
/// the new owner, and a client should see that within a quarter second.
const MAX_RELOCATE_PAUSE: Duration = Duration::from_millis(250);

/// Whether a cluster server's error means its regions may be elsewhere now: gone
/// (UNAVAILABLE), or not answering within the deadline (tonic reports its own deadline as
/// CANCELLED "Timeout expired").
fn is_relocatable(e: &ClientError) -> bool {
    matches!(
        e.code(),
        Some(Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled)
    )
}

/// The pause before the `n`-th location again (0: none).
fn relocate_pause(n: u32) -> Duration {
    if n == 0 {
        Duration::ZERO
    } else {
        Duration::from_millis(50 << n.min(5)).min(MAX_RELOCATE_PAUSE)
    }
}

/// Whether the server said it does not hold the region (cluster mode): the storage
/// engine's `NotServing`, which the server sends as `NOT_FOUND` with a message starting
/// "not serving:" (the contract in `speedlayer.proto`'s header).
fn is_not_serving(e: &ClientError) -> bool {
    matches!(e, ClientError::Status { code: Code::NotFound, message, .. } if message.starts_with("not serving:"))
}

/// A server address as a URL: `host:port` (as the server's `READY` line prints it) gets
/// `http://` in front; anything with a scheme is kept as is.
pub fn normalize_addr(addr: &str) -> String {
    let addr = addr.trim();
    if addr.contains("://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    }
}

fn endpoint(addr: &str, opts: &ClientOptions) -> Result<Endpoint, ClientError> {
    let endpoint =
        Endpoint::from_shared(addr.to_string()).map_err(|e| ClientError::BadAddress {
            addr: addr.to_string(),
            reason: e.to_string(),
        })?;
    let endpoint = endpoint
        .connect_timeout(opts.connect_timeout)
        .tcp_nodelay(true);
    if !addr.starts_with("https://") {
        return Ok(endpoint);
    }
    let Some(ca) = &opts.tls_ca_pem else {
        return Err(ClientError::BadAddress {
            addr: addr.to_string(),
            reason:
                "an https:// address needs the CA certificate that signed the server's (--tls-ca)"
                    .into(),
        });
    };
    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(ca));
    endpoint
        .tls_config(tls)
        .map_err(|e| ClientError::BadAddress {
            addr: addr.to_string(),
            reason: format!("TLS: {e}"),
        })
}

/// Rows of a running scan, in scan order.
#[derive(Debug)]
pub struct ScanStream {
    stream: tonic::Streaming<ScanResponse>,
    buffered: VecDeque<Row>,
    /// Cluster mode: the scans of the following servers' runs of regions.
    rest: VecDeque<ScanRequest>,
    /// Rows the scan may still return (its `limit`), across segments.
    limit_left: Option<u64>,
    client: Option<Client>,
    /// The whole scan as asked, to plan the rest again after a region moved mid-scan.
    original: Option<ScanRequest>,
    /// The last row returned (a forward scan resumes after it).
    last_row: Option<Bytes>,
    /// Times the rest of the scan was planned again.
    replans: u32,
}

impl ScanStream {
    /// The next row, or `None` at the end of the scan.
    ///
    /// # Errors
    /// A status the server sent mid-scan.
    pub async fn next(&mut self) -> Result<Option<Row>, ClientError> {
        loop {
            if let Some(row) = self.buffered.pop_front() {
                if let Some(n) = &mut self.limit_left {
                    if *n == 0 {
                        return Ok(None);
                    }
                    *n -= 1;
                }
                self.last_row = Some(row.row.clone());
                return Ok(Some(row));
            }
            match self.stream.message().await {
                Ok(Some(chunk)) => self.buffered.extend(chunk.rows),
                Ok(None) => {
                    if self.limit_left == Some(0) {
                        return Ok(None);
                    }
                    let (Some(client), Some(mut next)) =
                        (self.client.clone(), self.rest.pop_front())
                    else {
                        return Ok(None);
                    };
                    next.limit = self.limit_left;
                    match client.scan_one(next).await {
                        Ok(s) => self.stream = s.stream,
                        // The next segment was planned from locations that went stale
                        // while this one streamed (a move, split or failover): plan the
                        // rest again, as for an error mid-segment.
                        Err(e) => match self.replan(&e).await? {
                            true => continue,
                            false => return Err(e),
                        },
                    }
                }
                Err(status) => {
                    let e = ClientError::status("Scan", status);
                    match self.replan(&e).await? {
                        true => continue,
                        false => return Err(e),
                    }
                }
            }
        }
    }

    /// Cluster mode: a segment's server no longer holds part of its range (a region moved
    /// or split mid-scan). A forward scan is planned again from the row after the last one
    /// returned, with fresh locations. `Ok(false)`: not that case (the error stands).
    async fn replan(&mut self, e: &ClientError) -> Result<bool, ClientError> {
        let (Some(client), Some(original)) = (self.client.clone(), self.original.clone()) else {
            return Ok(false);
        };
        if !is_not_serving(e) || original.reversed || self.replans >= MAX_REFRESHES {
            return Ok(false);
        }
        client.inner.regions.invalidate(&original.table);
        if self.replans > 0 {
            tokio::time::sleep(Duration::from_millis(50 << self.replans.min(5))).await;
        }
        self.replans += 1;
        let mut next = original;
        if let Some(last) = &self.last_row {
            let mut after = last.to_vec();
            after.push(0);
            next.start = Some(Bytes::from(after));
        }
        next.limit = self.limit_left;
        let fresh = Box::pin(client.scan(next)).await?;
        self.stream = fresh.stream;
        self.rest = fresh.rest;
        self.buffered.clear();
        Ok(true)
    }
}

/// The smallest key above every key starting with `prefix`; `None` if there is none
/// (the prefix is all 0xff).
fn prefix_end(prefix: &[u8]) -> Option<Bytes> {
    let mut p = prefix.to_vec();
    while let Some(last) = p.pop() {
        if last < 0xff {
            p.push(last + 1);
            return Some(Bytes::from(p));
        }
    }
    None
}
