//! `Export`: runs an interop exporter on the blocking pool and streams what it
//! writes as chunks. A bounded channel between the two is the back-pressure:
//! the exporter waits while the client is slow, so memory stays at a few
//! chunks whatever the feed's size. The HTTP listener streams the same way.

use crate::cir::{Category, Tlp};
use crate::interop::export::{self, Format, Sink, Summary};
use crate::interop::{Filter, InteropError};
use crate::node::{unix_now, Node};
use crate::normalize::ObservableType;
use crate::proto;
use crate::record::RecordKind;
use std::io::{self, Write};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Bytes gathered before a chunk is sent.
pub const EXPORT_CHUNK_BYTES: usize = 256 << 10;
/// Chunks in flight between the exporter and a slow client.
pub const EXPORT_CHUNKS_IN_FLIGHT: usize = 4;

/// One piece of an export on its way to a client.
#[derive(Debug)]
pub enum Piece {
    /// Bytes of `file` ("" for a one-stream format).
    Data { file: String, data: Vec<u8> },
    /// The export finished.
    Done(Summary),
    /// The export stopped.
    Failed(InteropError),
}

/// A [`Sink`] that sends what is written as [`Piece`]s, blocking while the
/// channel is full. Call only from a blocking thread.
pub struct ChannelSink {
    pieces: mpsc::Sender<Piece>,
    file: String,
    buffer: Vec<u8>,
}

impl ChannelSink {
    /// A sink sending into `pieces`.
    pub fn new(pieces: mpsc::Sender<Piece>) -> Self {
        ChannelSink { pieces, file: String::new(), buffer: Vec::with_capacity(EXPORT_CHUNK_BYTES) }
    }

    fn send_buffer(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let data = std::mem::replace(&mut self.buffer, Vec::with_capacity(EXPORT_CHUNK_BYTES));
        self.pieces
            .blocking_send(Piece::Data { file: self.file.clone(), data })
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

impl Write for ChannelSink {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= EXPORT_CHUNK_BYTES {
            self.send_buffer()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_buffer()
    }
}

impl Sink for ChannelSink {
    fn start_file(&mut self, name: &str) -> io::Result<()> {
        self.send_buffer()?;
        self.file = name.to_string();
        Ok(())
    }
}

/// Starts `format` over `node` on the blocking pool; the pieces arrive on
/// the returned channel, the last one `Done` or `Failed`.
pub fn start(node: Arc<Node>, format: Format, filter: Filter) -> mpsc::Receiver<Piece> {
    let (sender, receiver) = mpsc::channel(EXPORT_CHUNKS_IN_FLIGHT);
    tokio::task::spawn_blocking(move || {
        let mut sink = ChannelSink::new(sender.clone());
        let result = export::export(node.as_ref(), format, &filter, unix_now(), &mut sink)
            .and_then(|summary| sink.flush().map(|_| summary).map_err(InteropError::from));
        let last = match result {
            Ok(summary) => Piece::Done(summary),
            Err(e) => Piece::Failed(e),
        };
        let _ = sender.blocking_send(last);
    });
    receiver
}

/// The filter an `ExportRequest` asks for, checked.
pub fn filter_of(request: &proto::ExportRequest) -> Result<Filter, InteropError> {
    let bad = |field: &str, code: i32| {
        InteropError::invalid(format!("ExportRequest.{field}"), format!("unknown code {code}"))
    };
    let kinds = request
        .kinds
        .iter()
        .map(|&code| RecordKind::from_code(code).ok_or_else(|| bad("kinds", code)))
        .collect::<Result<_, _>>()?;
    let types = request
        .types
        .iter()
        .map(|&code| u8::try_from(code).ok().and_then(ObservableType::from_code).ok_or_else(|| bad("types", code)))
        .collect::<Result<_, _>>()?;
    let categories = request.categories.iter().try_fold(0u32, |mask, &code| {
        let category = Category::from_code(code).ok_or_else(|| bad("categories", code))?;
        Ok::<_, InteropError>(mask | 1u32.checked_shl(category.code() as u32).unwrap_or(0))
    })?;
    let max_tlp = match request.max_tlp {
        0 => None,
        code => Some(Tlp::from_code(code).ok_or_else(|| bad("max_tlp", code))?),
    };
    let level = |field: &str, value: u32, max: u32| match value <= max {
        true => Ok(value as u8),
        false => Err(InteropError::invalid(format!("ExportRequest.{field}"), format!("{value} is over {max}"))),
    };
    Ok(Filter {
        kinds,
        types,
        min_level: level("min_level", request.min_level, 5)?,
        min_score: level("min_score", request.min_score, 100)?,
        categories,
        max_tlp,
        since: request.since,
    })
}

/// The wire form of a summary.
pub fn summary_message(summary: Summary) -> proto::ExportSummary {
    proto::ExportSummary {
        exported: summary.exported.into_iter().collect(),
        skipped: summary.skipped.into_iter().collect(),
    }
}
