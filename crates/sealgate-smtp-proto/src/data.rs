//! The strict DATA decoder (RFC 5321 §4.1.1.4, §4.5.2 transparency).
//!
//! The only end of data is CRLF "." CRLF. Every bare LF or bare CR is fatal: servers that read
//! `\n.\n` or `\r\n.\r` as an end of data can be made to accept a second, smuggled message
//! (CVE-2023-51764, CVE-2023-51765, CVE-2023-51766), so the session must refuse and close.
//!
//! A NUL byte is refused too, but only at the end of data: it does not move the end of data for
//! this decoder, so the session stays in step with the client; yet a next hop that drops NULs
//! would read `CRLF NUL "." CRLF` as an end of data, so such a message must never be relayed.

use crate::error::DataError;

/// What `DataDecoder::feed` saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataEvent {
    /// All input was consumed and the end of data has not been seen yet.
    NeedMore,
    /// The end of data was consumed. `Err` means the message must be refused, but the
    /// connection is still in step with the client.
    Done(Result<(), DataError>),
    /// A bare CR or LF: the client is out of step (or hostile). Reply and close; the decoder
    /// must not be fed again.
    Fatal(DataError),
}

/// Where in the current line the decoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the first byte of a line (also right after the DATA command's own CRLF).
    LineStart,
    /// The line began with ".", which was dropped (RFC 5321 §4.5.2).
    Dot,
    /// The line is "." then CR: LF ends the data.
    DotCr,
    /// Inside a line.
    Text,
    /// Inside a line after a CR: only LF may follow.
    Cr,
    /// The end of data or a fatal error was reached.
    Finished,
}

/// Strict DATA decoder: feed bytes as they arrive, in any chunking.
#[derive(Debug)]
pub struct DataDecoder {
    max_size: usize,
    max_line: usize,
    state: State,
    body: Vec<u8>,
    /// De-stuffed message bytes seen so far, stored or not.
    size: usize,
    /// De-stuffed bytes of the current line, CRLF excluded.
    line_len: usize,
    too_big: bool,
    line_too_long: bool,
    /// A NUL byte was seen.
    nul: bool,
    outcome: Option<DataEvent>,
}

impl DataDecoder {
    /// A decoder for one message of at most `max_size` de-stuffed bytes and lines of at most
    /// `max_line` bytes including CRLF (RFC 5321 §4.5.3.1.6 sets 1000).
    pub fn new(max_size: usize, max_line: usize) -> Self {
        DataDecoder {
            max_size,
            max_line,
            state: State::LineStart,
            body: Vec::new(),
            size: 0,
            line_len: 0,
            too_big: false,
            line_too_long: false,
            nul: false,
            outcome: None,
        }
    }

    /// Consumes from `input`, appending the de-stuffed message (CRLF line endings kept, without
    /// the final ".\r\n") to the internal buffer.
    ///
    /// Returns how many bytes of `input` were consumed and what happened. Consumption stops right
    /// after the end-of-data CRLF "." CRLF (pipelined commands after it stay with the caller) or
    /// right after the byte that made the data fatal. Once finished, further calls consume
    /// nothing and repeat the final event.
    pub fn feed(&mut self, input: &[u8]) -> (usize, DataEvent) {
        if let Some(event) = &self.outcome {
            return (0, event.clone());
        }
        let mut pos = 0;
        while pos < input.len() {
            if self.state == State::Text {
                let run = input[pos..]
                    .iter()
                    .position(|&b| b == b'\r' || b == b'\n')
                    .unwrap_or(input.len() - pos);
                if run > 0 {
                    self.emit(&input[pos..pos + run]);
                    pos += run;
                    continue;
                }
            }
            let byte = input[pos];
            pos += 1;
            if let Some(event) = self.step(byte) {
                self.state = State::Finished;
                self.outcome = Some(event.clone());
                return (pos, event);
            }
        }
        (pos, DataEvent::NeedMore)
    }

    /// Advances the state machine by one byte; returns the final event if this byte ends the data.
    fn step(&mut self, byte: u8) -> Option<DataEvent> {
        match (self.state, byte) {
            (State::Cr, b'\n') => {
                self.store(b"\r\n");
                self.line_len = 0;
                self.state = State::LineStart;
                None
            }
            (State::DotCr, b'\n') => Some(DataEvent::Done(self.result())),
            // RFC 5321 §2.3.8: CR and LF must only occur together as CRLF.
            (State::Cr | State::DotCr, _) => Some(DataEvent::Fatal(DataError::BareCr)),
            (_, b'\n') => Some(DataEvent::Fatal(DataError::BareLf)),
            (State::Dot, b'\r') => {
                self.state = State::DotCr;
                None
            }
            (_, b'\r') => {
                self.state = State::Cr;
                None
            }
            // RFC 5321 §4.5.2: the first "." of a line is dropped.
            (State::LineStart, b'.') => {
                self.state = State::Dot;
                None
            }
            _ => {
                self.emit(&[byte]);
                self.state = State::Text;
                None
            }
        }
    }

    /// Accounts for de-stuffed bytes inside a line, flagging the line once it is too long and
    /// the message once it holds a NUL.
    fn emit(&mut self, bytes: &[u8]) {
        // RFC 5322 §2.3 and RFC 2045 §2.7-2.8: NUL is not allowed in message text, 7bit or 8bit.
        self.nul |= bytes.contains(&0);
        self.line_len = self.line_len.saturating_add(bytes.len());
        // RFC 5321 §4.5.3.1.6: the limit counts the CRLF that will end the line.
        if self.line_len.saturating_add(2) > self.max_line {
            self.line_too_long = true;
        }
        self.store(bytes);
    }

    /// Accounts for de-stuffed message bytes, storing them while the message is within bounds.
    fn store(&mut self, bytes: &[u8]) {
        self.size = self.size.saturating_add(bytes.len());
        if self.too_big {
            return;
        }
        if self.size > self.max_size {
            // Keep reading to the end of data, but stop holding memory for a refused message.
            self.too_big = true;
            self.body = Vec::new();
            return;
        }
        self.body.extend_from_slice(bytes);
    }

    fn result(&self) -> Result<(), DataError> {
        if self.too_big {
            Err(DataError::TooBig {
                limit: self.max_size,
            })
        } else if self.nul {
            Err(DataError::Nul)
        } else if self.line_too_long {
            Err(DataError::LineTooLong)
        } else {
            Ok(())
        }
    }

    /// De-stuffed message bytes seen so far, including any not stored after the size limit.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The message stored so far (empty once the size limit was exceeded).
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The de-stuffed message; empty if the size limit was exceeded.
    pub fn into_body(self) -> Vec<u8> {
        self.body
    }
}

#[cfg(test)]
mod tests;
