//! A scanner for the HTML the portal's sanitizer serializes (html5ever's serializer, as
//! ammonia uses it): text escapes `<`, `>` and `&`; attribute values are double-quoted with
//! `"` and `&` escaped; comments are stripped. In that form every `<` starts a tag, so the
//! tags and attributes of the output can be read without an HTML parser and checked against
//! what must never reach a reader's browser.

/// Elements that load, run, submit or restyle something: none may survive sanitizing.
const FORBIDDEN_TAGS: &[&str] = &[
    "script",
    "style",
    "iframe",
    "frame",
    "frameset",
    "object",
    "embed",
    "applet",
    "form",
    "input",
    "button",
    "textarea",
    "select",
    "base",
    "meta",
    "link",
    "svg",
    "math",
    "template",
    "noscript",
    "audio",
    "video",
    "source",
    "track",
    "picture",
    "portal",
    "xmp",
    "plaintext",
    "title",
    "head",
    "body",
    "html",
    "area",
    "map",
];

/// Attributes that hold a URL (only `img src` may, and only as an inline image).
const URL_ATTRIBUTES: &[&str] = &[
    "href",
    "src",
    "srcset",
    "action",
    "formaction",
    "xlink:href",
    "background",
    "poster",
    "ping",
    "data",
    "cite",
    "longdesc",
    "lowsrc",
    "dynsrc",
    "codebase",
    "manifest",
];

/// The only `src` an image may keep: one of the message's own raster parts.
const IMAGE_DATA_PREFIXES: &[&str] = &[
    "data:image/png;base64,",
    "data:image/jpeg;base64,",
    "data:image/gif;base64,",
    "data:image/webp;base64,",
];

/// What in a `style` value could load something or hide a URL.
const SUSPECT_STYLE: &[&str] = &[
    "url",
    "image",
    "expression",
    "\\",
    "@",
    "/*",
    "var(",
    "attr(",
];

/// One start or end tag of the output.
#[derive(Debug)]
pub struct Tag<'a> {
    /// Lowercase name.
    pub name: &'a str,
    /// `</name>`.
    pub end: bool,
    /// `(name, raw value)`, the value still escaped.
    pub attributes: Vec<(&'a str, &'a str)>,
}

/// The tags of `html`, or a description of where it is not in the serializer's form.
pub fn tags(html: &str) -> Result<Vec<Tag<'_>>, String> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        if rest[..start].contains('>') {
            return Err(format!(
                "a bare '>' in text before {:?}",
                excerpt(&rest[start..])
            ));
        }
        let (tag, after) = tag(&rest[start + 1..])?;
        out.push(tag);
        rest = after;
    }
    if rest.contains('>') {
        return Err("a bare '>' in the final text".to_owned());
    }
    Ok(out)
}

/// Reads one tag after its `<`; returns it and the text after its `>`.
fn tag(text: &str) -> Result<(Tag<'_>, &str), String> {
    let (end, text) = match text.strip_prefix('/') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let name_len = text
        .find(|c: char| !c.is_ascii_alphanumeric())
        .ok_or_else(|| format!("an unfinished tag {:?}", excerpt(text)))?;
    if name_len == 0 {
        return Err(format!("a '<' that starts no tag: {:?}", excerpt(text)));
    }
    let name = &text[..name_len];
    let mut rest = &text[name_len..];
    let mut attributes = Vec::new();
    loop {
        if let Some(after) = rest.strip_prefix('>') {
            let tag = Tag {
                name,
                end,
                attributes,
            };
            return Ok((tag, after));
        }
        let body = rest
            .strip_prefix(' ')
            .ok_or_else(|| format!("unexpected text in a tag: {:?}", excerpt(rest)))?;
        let eq = body
            .find("=\"")
            .ok_or_else(|| format!("an attribute without a value: {:?}", excerpt(body)))?;
        let attribute = &body[..eq];
        if attribute.is_empty() || attribute.contains([' ', '>', '<', '"']) {
            return Err(format!("a malformed attribute name: {:?}", excerpt(body)));
        }
        let value_start = eq + 2;
        let close = body[value_start..]
            .find('"')
            .ok_or_else(|| format!("an unterminated attribute value: {:?}", excerpt(body)))?;
        attributes.push((attribute, &body[value_start..value_start + close]));
        rest = &body[value_start + close + 1..];
    }
}

fn excerpt(text: &str) -> String {
    text.chars().take(60).collect()
}

/// Checks one tag of sanitized output; `Err` says what must not have survived.
pub fn check_inert(tag: &Tag<'_>) -> Result<(), String> {
    let name = tag.name.to_ascii_lowercase();
    if FORBIDDEN_TAGS.contains(&name.as_str()) {
        return Err(format!("<{name}> survived"));
    }
    for &(attribute, value) in &tag.attributes {
        let attribute = attribute.to_ascii_lowercase();
        if attribute.starts_with("on") {
            return Err(format!("event handler {attribute} on <{name}>"));
        }
        if attribute == "src" && name == "img" {
            if !IMAGE_DATA_PREFIXES.iter().any(|p| value.starts_with(p)) {
                return Err(format!(
                    "<img src> is not an inline image: {:?}",
                    excerpt(value)
                ));
            }
        } else if URL_ATTRIBUTES.contains(&attribute.as_str()) {
            return Err(format!("URL attribute {attribute} on <{name}>"));
        }
        let lower = value.to_ascii_lowercase();
        if attribute == "style" && SUSPECT_STYLE.iter().any(|bad| lower.contains(bad)) {
            return Err(format!("suspect style on <{name}>: {:?}", excerpt(value)));
        }
        if lower.contains("javascript:") || lower.contains("vbscript:") {
            return Err(format!("a script URL in {attribute} on <{name}>"));
        }
    }
    Ok(())
}

/// Checks that sanitized output is in the serializer's form and inert, panicking with what
/// was found otherwise (a fuzz target's failure).
pub fn assert_inert(sanitized: &str) {
    let tags = tags(sanitized).unwrap_or_else(|why| panic!("sanitized HTML unreadable: {why}"));
    for tag in &tags {
        if let Err(why) = check_inert(tag) {
            panic!("sanitized HTML is not inert: {why}");
        }
    }
}
