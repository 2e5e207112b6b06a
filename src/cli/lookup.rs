//! `cirfed lookup`: observables from the command line, or streamed from
//! standard input. The stream holds constant memory for any input length: a
//! reader thread cuts lines into chunks, a batcher sends them as LookupStream
//! batches (at most MAX_BATCHES_IN_FLIGHT unanswered), and answers print as
//! they come. Exit status is grep's: 0 a match, 1 none, 2 an error.

use super::client::{connect, status_error};
use super::errors::ClientError;
use super::output;
use crate::ApiTarget;
use anyhow::Context;
use cirfed::normalize::ObservableType;
use cirfed::proto::{self, node_client::NodeClient, LookupRequest};
use clap::Args;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

/// Most values in one LookupStream batch.
pub const STDIN_BATCH: usize = 10_000;
/// Most bytes of values in one batch: long values make smaller batches, so
/// a batch and its answer stay far below the API's message limit.
pub const STDIN_BATCH_BYTES: usize = 1 << 20;
/// How long a started batch waits for more input before it is sent: values
/// from a slow producer (`tail -f`) are answered within this, not at end of input.
pub const STDIN_LINGER: Duration = Duration::from_millis(50);
/// Batches sent and not yet answered; reading pauses while this many are out.
pub const MAX_BATCHES_IN_FLIGHT: usize = 4;
/// Longest line read; a longer one is reported and skipped, never held whole.
pub const MAX_LINE_BYTES: usize = 64 << 10;
/// Read buffer of standard input.
const READ_BUFFER_BYTES: usize = 64 << 10;
/// Chunks of lines queued between the reader thread and the batcher.
const CHUNKS_QUEUED: usize = 2;

/// `cirfed lookup`
#[derive(Args)]
pub struct LookupArgs {
    /// Observables to look up (IPs, domains, URLs, hashes, ...).
    #[arg(required_unless_present = "stdin")]
    pub values: Vec<String>,
    /// Read observables from standard input, one per line (streamed in batches;
    /// blank lines and lines starting with # are skipped).
    #[arg(long, conflicts_with = "values")]
    pub stdin: bool,
    /// Treat every value as this type instead of detecting it.
    #[arg(long = "type")]
    pub kind: Option<ObservableType>,
    /// With --stdin, print only values that matched or were invalid.
    #[arg(long)]
    pub hits_only: bool,
    #[command(flatten)]
    pub target: ApiTarget,
}

fn type_code(kind: Option<ObservableType>) -> i32 {
    kind.map_or(0, |k| i32::from(k.code()))
}

/// grep's status: 0 when a value matched, 1 when none did.
fn exit_status(matched: usize) -> ExitCode {
    if matched > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

pub async fn lookup(args: LookupArgs, json: bool) -> anyhow::Result<ExitCode> {
    let client = connect(&args.target).await?;
    if args.stdin {
        return lookup_stdin(client, args, json).await;
    }
    lookup_values(client, args, json).await
}

/// Looks up the command line's values with details (descriptions).
async fn lookup_values(mut client: NodeClient<Channel>, args: LookupArgs, json: bool) -> anyhow::Result<ExitCode> {
    let mut request =
        LookupRequest { values: args.values.clone(), r#type: type_code(args.kind), details: true, start: 0 };
    let mut reply = proto::LookupReply::default();
    // A reply is cut at the node's size limit: ask again from where it stopped.
    loop {
        let page = client.lookup(request.clone()).await.map_err(status_error)?.into_inner();
        let next = page.next_index;
        merge(&mut reply, page);
        if next == 0 {
            break;
        }
        request.start = next;
    }
    let results = by_index(args.values.len(), &reply);
    if json {
        for (value, result) in args.values.iter().zip(&results) {
            println!("{}", output::lookup_json(value, *result, &reply.descriptions));
        }
    } else {
        let mut table = output::table(&output::LOOKUP_HEADER);
        for (value, result) in args.values.iter().zip(&results) {
            output::lookup_rows(&mut table, value, *result);
        }
        println!("{table}");
    }
    Ok(exit_status(reply.results.iter().filter(|r| !r.matches.is_empty()).count()))
}

/// Adds a cut reply's page to the answer so far.
fn merge(reply: &mut proto::LookupReply, page: proto::LookupReply) {
    reply.results.extend(page.results);
    reply.descriptions.extend(page.descriptions);
    reply.looked_up += page.looked_up;
}

/// Each value's result, by its position in the request (None: no match).
fn by_index(count: usize, reply: &proto::LookupReply) -> Vec<Option<&proto::LookupResult>> {
    let mut results = vec![None; count];
    for result in &reply.results {
        if let Some(slot) = results.get_mut(result.index as usize) {
            *slot = Some(result);
        }
    }
    results
}

/// One value read from standard input, with its line number for reports.
struct Entry {
    line: u64,
    value: String,
}

/// Values gathered for one request, bounded in count and bytes.
#[derive(Default)]
struct Batch {
    entries: Vec<Entry>,
    bytes: usize,
}

impl Batch {
    fn push(&mut self, entry: Entry) {
        self.bytes += entry.value.len();
        self.entries.push(entry);
    }

    fn is_full(&self) -> bool {
        self.entries.len() >= STDIN_BATCH || self.bytes >= STDIN_BATCH_BYTES
    }

    fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// What one line of input is.
enum Line {
    Value(String),
    /// Blank or a comment.
    Nothing,
    /// Reported with the line number, then skipped.
    Bad(String),
}

fn parse_line(bytes: &[u8], too_long: bool) -> Line {
    if too_long {
        return Line::Bad(format!("longer than {MAX_LINE_BYTES} bytes, skipped"));
    }
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Line::Bad("not UTF-8, skipped".into());
    };
    match text.trim() {
        "" => Line::Nothing,
        comment if comment.starts_with('#') => Line::Nothing,
        value => Line::Value(value.to_string()),
    }
}

/// Reads one line into `line` without its newline, keeping at most
/// MAX_LINE_BYTES of it. None at end of input; else whether it was longer.
fn next_line(input: &mut impl BufRead, line: &mut Vec<u8>) -> std::io::Result<Option<bool>> {
    line.clear();
    let (mut any, mut too_long) = (false, false);
    loop {
        let buffer = match input.fill_buf() {
            Ok(buffer) => buffer,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buffer.is_empty() {
            return Ok(any.then_some(too_long));
        }
        any = true;
        let newline = buffer.iter().position(|b| *b == b'\n');
        let part = &buffer[..newline.unwrap_or(buffer.len())];
        let room = MAX_LINE_BYTES.saturating_sub(line.len());
        too_long |= part.len() > room;
        line.extend_from_slice(&part[..part.len().min(room)]);
        let used = newline.map_or(buffer.len(), |at| at + 1);
        input.consume(used);
        if newline.is_some() {
            return Ok(Some(too_long));
        }
    }
}

/// Reads standard input on its own thread (reads block), sending chunks of
/// values. A chunk goes out when full or when no more input is buffered, so
/// no value waits behind a read that blocks. Bad lines are reported here.
fn read_input(input: impl Read, chunks: mpsc::Sender<Batch>, bad_lines: &AtomicUsize) -> std::io::Result<()> {
    let mut input = BufReader::with_capacity(READ_BUFFER_BYTES, input);
    let (mut line, mut number, mut chunk) = (Vec::new(), 0u64, Batch::default());
    while let Some(too_long) = next_line(&mut input, &mut line)? {
        number += 1;
        match parse_line(&line, too_long) {
            Line::Value(value) => chunk.push(Entry { line: number, value }),
            Line::Nothing => {}
            Line::Bad(reason) => {
                eprintln!("line {number}: {reason}");
                bad_lines.fetch_add(1, Ordering::Relaxed);
            }
        }
        let drained = input.buffer().is_empty();
        if (chunk.is_full() || drained)
            && !chunk.is_empty()
            && chunks.blocking_send(std::mem::take(&mut chunk)).is_err()
        {
            return Ok(()); // the lookup ended early; its error is reported there
        }
    }
    if !chunk.is_empty() {
        let _ = chunks.blocking_send(chunk);
    }
    Ok(())
}

/// A sent batch waiting for its answer; dropping it frees a place in flight.
struct Pending {
    entries: Vec<Entry>,
    _in_flight: OwnedSemaphorePermit,
}

/// Where the batcher sends: the request stream, and the printer's queue.
struct Outbox {
    requests: mpsc::Sender<LookupRequest>,
    pending: mpsc::UnboundedSender<Pending>,
    in_flight: Arc<Semaphore>,
    kind: i32,
}

impl Outbox {
    /// Sends a batch once a place in flight is free; false when the lookup ended.
    async fn send(&self, batch: &mut Batch) -> bool {
        let Ok(permit) = self.in_flight.clone().acquire_owned().await else { return false };
        let entries = std::mem::take(batch).entries;
        let values = entries.iter().map(|e| e.value.clone()).collect();
        let request = LookupRequest { values, r#type: self.kind, details: false, start: 0 };
        self.pending.send(Pending { entries, _in_flight: permit }).is_ok() && self.requests.send(request).await.is_ok()
    }
}

/// Gathers chunks into batches: a batch is sent when full, at end of input,
/// or STDIN_LINGER after its first value.
async fn send_batches(mut chunks: mpsc::Receiver<Batch>, outbox: Outbox) {
    let mut batch = Batch::default();
    let mut deadline = Instant::now();
    loop {
        let chunk = tokio::select! {
            chunk = chunks.recv() => chunk,
            _ = tokio::time::sleep_until(deadline), if !batch.is_empty() => {
                if !outbox.send(&mut batch).await { return }
                continue;
            }
        };
        let Some(chunk) = chunk else { break };
        for entry in chunk.entries {
            if batch.is_full() && !outbox.send(&mut batch).await {
                return;
            }
            if batch.is_empty() {
                deadline = Instant::now() + STDIN_LINGER;
            }
            batch.push(entry);
        }
        if batch.is_full() && !outbox.send(&mut batch).await {
            return;
        }
    }
    if !batch.is_empty() {
        outbox.send(&mut batch).await;
    }
}

/// What a streamed lookup found.
#[derive(Default)]
struct Tally {
    looked_up: usize,
    matched: usize,
    invalid: usize,
}

/// Streams standard input through LookupStream; prints answers as they come.
async fn lookup_stdin(mut client: NodeClient<Channel>, args: LookupArgs, json: bool) -> anyhow::Result<ExitCode> {
    let bad_lines = Arc::new(AtomicUsize::new(0));
    let (chunks, chunks_in) = mpsc::channel(CHUNKS_QUEUED);
    let reader = {
        let bad_lines = bad_lines.clone();
        std::thread::spawn(move || read_input(std::io::stdin(), chunks, &bad_lines))
    };
    let (requests, requests_out) = mpsc::channel(MAX_BATCHES_IN_FLIGHT);
    let (pending, pending_in) = mpsc::unbounded_channel();
    let in_flight = Arc::new(Semaphore::new(MAX_BATCHES_IN_FLIGHT));
    tokio::spawn(send_batches(chunks_in, Outbox { requests, pending, in_flight, kind: type_code(args.kind) }));
    let replies = client.lookup_stream(ReceiverStream::new(requests_out)).await.map_err(status_error)?.into_inner();
    let printer = Printer { json, hits_only: args.hits_only, timeout: Duration::from_secs(args.target.timeout) };
    let Some(tally) = printer.print_answers(replies, pending_in).await? else {
        return Ok(ExitCode::SUCCESS); // stdout closed (`| head`): stop quietly, as grep does
    };
    // The batcher ended, so the reader has returned: joining does not block.
    reader
        .join()
        .map_err(|_| anyhow::anyhow!("the standard input reader failed"))?
        .context("cannot read standard input")?;
    let invalid = tally.invalid + bad_lines.load(Ordering::Relaxed);
    if !json {
        eprintln!("{} looked up, {} matched, {invalid} invalid", tally.looked_up, tally.matched);
    }
    Ok(exit_status(tally.matched))
}

/// Prints each batch's answers, in input order.
struct Printer {
    json: bool,
    hits_only: bool,
    /// How long an answer may take once its batch is sent.
    timeout: Duration,
}

impl Printer {
    /// Prints answers until every batch is answered; None when stdout closed.
    async fn print_answers(
        &self,
        mut replies: tonic::Streaming<proto::LookupReply>,
        mut pending: mpsc::UnboundedReceiver<Pending>,
    ) -> anyhow::Result<Option<Tally>> {
        let mut tally = Tally::default();
        while let Some(batch) = pending.recv().await {
            let reply = self.batch_reply(&mut replies).await?;
            match self.print_batch(&batch.entries, &reply, &mut tally) {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(None),
                result => result.context("cannot write standard output")?,
            }
        }
        // The end of the stream carries the node's final status.
        self.next_reply(&mut replies).await?;
        Ok(Some(tally))
    }

    /// One batch's answer: the node splits it into replies under its size
    /// limit, all but the last with `next_index` set.
    async fn batch_reply(
        &self,
        replies: &mut tonic::Streaming<proto::LookupReply>,
    ) -> anyhow::Result<proto::LookupReply> {
        let mut reply = proto::LookupReply::default();
        loop {
            let page = self.next_reply(replies).await?.context("the node closed the stream early")?;
            let last = page.next_index == 0;
            merge(&mut reply, page);
            if last {
                return Ok(reply);
            }
        }
    }

    async fn next_reply(
        &self,
        replies: &mut tonic::Streaming<proto::LookupReply>,
    ) -> anyhow::Result<Option<proto::LookupReply>> {
        match tokio::time::timeout(self.timeout, replies.message()).await {
            Err(_) => Err(ClientError::Timeout { after: self.timeout }.into()),
            Ok(reply) => reply.map_err(status_error),
        }
    }

    fn print_batch(&self, entries: &[Entry], reply: &proto::LookupReply, tally: &mut Tally) -> std::io::Result<()> {
        let results = by_index(entries.len(), reply);
        tally.looked_up += entries.len();
        tally.matched += reply.results.iter().filter(|r| !r.matches.is_empty()).count();
        for (entry, result) in entries.iter().zip(&results) {
            if let Some(error) = result.map(|r| &r.error).filter(|e| !e.is_empty()) {
                eprintln!("line {}: invalid value: {error}", entry.line);
                tally.invalid += 1;
            }
        }
        let shown = entries.iter().zip(&results).filter(|(_, r)| !self.hits_only || r.is_some());
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        if self.json {
            for (entry, result) in shown {
                let mut value = output::lookup_json(&entry.value, *result, &reply.descriptions);
                value["line"] = entry.line.into();
                writeln!(out, "{value}")?;
            }
        } else {
            let mut table = output::table(&output::LOOKUP_HEADER);
            for (entry, result) in shown {
                output::lookup_rows(&mut table, &entry.value, *result);
            }
            if !table.is_empty() {
                writeln!(out, "{table}")?;
            }
        }
        out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8]) -> Vec<(Vec<u8>, bool)> {
        let mut input = BufReader::with_capacity(16, input);
        let mut line = Vec::new();
        let mut lines = Vec::new();
        while let Some(too_long) = next_line(&mut input, &mut line).unwrap() {
            lines.push((line.clone(), too_long));
        }
        lines
    }

    #[test]
    fn a_line_over_the_limit_is_cut_and_flagged_and_the_next_line_is_whole() {
        let long = vec![b'a'; MAX_LINE_BYTES + 10];
        let input = [&b"one\n"[..], &long, b"\ntwo"].concat();
        let read = lines(&input);
        assert_eq!(read.len(), 3);
        assert_eq!(read[0], (b"one".to_vec(), false));
        assert_eq!(read[1].0.len(), MAX_LINE_BYTES);
        assert!(read[1].1);
        assert_eq!(read[2], (b"two".to_vec(), false), "a last line without newline counts");
    }

    #[test]
    fn a_line_of_exactly_the_limit_is_kept() {
        let input = [vec![b'b'; MAX_LINE_BYTES], b"\n".to_vec()].concat();
        assert_eq!(lines(&input), [(vec![b'b'; MAX_LINE_BYTES], false)]);
    }

    #[test]
    fn blank_comment_and_non_utf8_lines_are_told_apart() {
        assert!(matches!(parse_line(b"  ", false), Line::Nothing));
        assert!(matches!(parse_line(b"# note", false), Line::Nothing));
        assert!(matches!(parse_line(b"\xff\xfe", false), Line::Bad(r) if r.contains("UTF-8")));
        assert!(matches!(parse_line(b" evil.example\r", false), Line::Value(v) if v == "evil.example"));
    }

    fn chunk(values: usize) -> Batch {
        let mut chunk = Batch::default();
        for line in 0..values as u64 {
            chunk.push(Entry { line, value: "a.example".into() });
        }
        chunk
    }

    /// A batcher over fresh channels: (chunks in, requests out, pending out, places in flight).
    fn batcher(
    ) -> (mpsc::Sender<Batch>, mpsc::Receiver<LookupRequest>, mpsc::UnboundedReceiver<Pending>, Arc<Semaphore>) {
        let (chunks, chunks_in) = mpsc::channel(16);
        let (requests, requests_out) = mpsc::channel(16);
        let (pending, pending_out) = mpsc::unbounded_channel();
        let in_flight = Arc::new(Semaphore::new(MAX_BATCHES_IN_FLIGHT));
        let outbox = Outbox { requests, pending, in_flight: in_flight.clone(), kind: 0 };
        tokio::spawn(send_batches(chunks_in, outbox));
        (chunks, requests_out, pending_out, in_flight)
    }

    #[tokio::test]
    async fn at_most_max_batches_in_flight_go_out_unanswered() {
        let (chunks, mut requests, mut pending, in_flight) = batcher();
        for _ in 0..MAX_BATCHES_IN_FLIGHT + 2 {
            chunks.send(chunk(STDIN_BATCH)).await.unwrap();
        }
        for _ in 0..MAX_BATCHES_IN_FLIGHT {
            assert_eq!(requests.recv().await.unwrap().values.len(), STDIN_BATCH);
        }
        assert_eq!(in_flight.available_permits(), 0);
        assert!(requests.try_recv().is_err(), "no batch beyond the limit goes out");
        drop(pending.recv().await.unwrap()); // one answer printed
        assert_eq!(requests.recv().await.unwrap().values.len(), STDIN_BATCH, "an answer frees a place");
    }

    #[tokio::test]
    async fn a_started_batch_goes_out_after_the_linger_while_input_stays_open() {
        let (chunks, mut requests, _pending, _) = batcher();
        let started = Instant::now();
        chunks.send(chunk(3)).await.unwrap();
        let request = tokio::time::timeout(STDIN_LINGER * 100, requests.recv()).await.expect("sent before input ends");
        assert_eq!(request.unwrap().values.len(), 3);
        assert!(started.elapsed() >= STDIN_LINGER, "it waited for more input first");
        drop(chunks);
    }

    #[test]
    fn a_batch_is_full_at_its_value_count_or_its_byte_budget() {
        let mut batch = Batch::default();
        for line in 0..STDIN_BATCH as u64 - 1 {
            batch.push(Entry { line, value: "a".into() });
        }
        assert!(!batch.is_full());
        batch.push(Entry { line: 0, value: "a".into() });
        assert!(batch.is_full());
        let mut long = Batch::default();
        long.push(Entry { line: 1, value: "x".repeat(STDIN_BATCH_BYTES) });
        assert!(long.is_full());
    }
}
