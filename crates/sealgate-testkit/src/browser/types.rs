//! The typed replies of the browser driver.

use serde_json::{Map, Value};

fn text(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// Where a navigation (goto, or a click that navigated) ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Navigation {
    /// The HTTP status of the main document (after redirects); `None` when there was no
    /// HTTP response (a click that did not navigate, a non-HTTP URL).
    pub status: Option<u16>,
    /// The page's URL afterwards.
    pub url: String,
}

impl Navigation {
    pub(super) fn from_reply(r: &Map<String, Value>) -> Self {
        Self {
            status: r
                .get("status")
                .and_then(Value::as_u64)
                .and_then(|s| u16::try_from(s).ok()),
            url: r
                .get("url")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        }
    }
}

/// A file the browser downloaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Download {
    /// The file name the server suggested (`Content-Disposition`).
    pub filename: String,
    /// The bytes as saved.
    pub bytes: Vec<u8>,
}

/// One request the browser made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The full URL.
    pub url: String,
    /// GET, POST, ...
    pub method: String,
    /// playwright's resource type: document, stylesheet, image, font, script, fetch, ...
    pub resource_type: String,
    /// The URL of the frame that made it, when known (`about:blank` or empty for a frame's
    /// first navigation).
    pub frame_url: Option<String>,
    /// Whether it loads a document into a frame.
    pub navigation: bool,
    /// Why it failed, when it did (`net::ERR_ABORTED`, `net::ERR_BLOCKED_BY_CSP`, …). A
    /// request the page's CSP blocked is logged too: the browser began it.
    pub failure: Option<String>,
}

impl Request {
    pub(super) fn from_json(v: &Value) -> Self {
        Self {
            url: text(v, "url"),
            method: text(v, "method"),
            resource_type: text(v, "resource_type"),
            frame_url: v
                .get("frame_url")
                .and_then(Value::as_str)
                .map(str::to_owned),
            navigation: v.get("navigation") == Some(&Value::Bool(true)),
            failure: v.get("failure").and_then(Value::as_str).map(str::to_owned),
        }
    }
}

/// An alert, confirm, prompt or beforeunload dialog a page opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dialog {
    /// alert, confirm, prompt or beforeunload.
    pub kind: String,
    /// Its message.
    pub message: String,
    /// The page that opened it.
    pub url: String,
}

impl Dialog {
    pub(super) fn from_json(v: &Value) -> Self {
        Self {
            kind: text(v, "type"),
            message: text(v, "message"),
            url: text(v, "url"),
        }
    }
}

/// A console message, or an uncaught error (`kind` "pageerror").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsoleMessage {
    /// log, error, warning, info, debug, ... or pageerror.
    pub kind: String,
    /// Its text.
    pub text: String,
    /// The script or page it came from, when known.
    pub url: String,
}

impl ConsoleMessage {
    pub(super) fn from_json(v: &Value) -> Self {
        Self {
            kind: text(v, "type"),
            text: text(v, "text"),
            url: text(v, "url"),
        }
    }
}

/// What an expression evaluated to in one frame.
#[derive(Clone, Debug, PartialEq)]
pub struct FrameValue {
    /// The frame's URL.
    pub url: String,
    /// The value, or the error that evaluating threw.
    pub value: Result<Value, String>,
}

impl FrameValue {
    pub(super) fn from_json(v: &Value) -> Self {
        let value = match v.get("error").and_then(Value::as_str) {
            Some(e) => Err(e.to_owned()),
            None => Ok(v.get("value").cloned().unwrap_or(Value::Null)),
        };
        Self {
            url: text(v, "url"),
            value,
        }
    }
}

/// The answer to [`Browser::request`](super::Browser::request).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpReply {
    /// The HTTP status.
    pub status: u16,
    /// The response headers (names in lower case).
    pub headers: Vec<(String, String)>,
    /// The body as text.
    pub body: String,
}

impl HttpReply {
    pub(super) fn from_reply(r: &Map<String, Value>) -> Self {
        let headers = r
            .get("headers")
            .and_then(Value::as_object)
            .map(|h| {
                h.iter()
                    .map(|(k, v)| (k.to_ascii_lowercase(), v.as_str().unwrap_or("").to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        Self {
            status: r
                .get("status")
                .and_then(Value::as_u64)
                .and_then(|s| u16::try_from(s).ok())
                .unwrap_or(0),
            headers,
            body: r
                .get("body")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        }
    }

    /// The first header named `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}
