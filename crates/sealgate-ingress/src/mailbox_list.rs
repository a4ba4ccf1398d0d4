//! The addresses of an address-list header field (RFC 5322 §3.4: `From:`, `Sender:`), read
//! strictly.
//!
//! Display names, comments and groups are understood and skipped; every `addr-spec` is
//! returned with quoting removed. Anything outside the grammar — an `@` in a display name,
//! two angle addresses in one mailbox, an unterminated quote or comment, an obsolete route —
//! is an error rather than a guess, so a reader can never see an author this parser missed.
//! Non-ASCII text is allowed where RFC 6532 allows it (atoms and quoted strings).

/// One `local@domain` found in a header field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mailbox {
    /// Unquoted and unescaped, case kept.
    pub(crate) local: String,
    /// As written; a domain literal keeps its brackets.
    pub(crate) domain: String,
}

/// The field is not an address list this parser is sure about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unreadable;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// A run of atext (RFC 5322 §3.2.3), non-ASCII included.
    Atom(String),
    /// A quoted string's content, unescaped.
    Quoted(String),
    /// A domain literal, brackets included.
    Literal(String),
    /// One of `< > @ , ; : .`
    Special(char),
}

fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || "!#$%&'*+-/=?^_`{|}~".contains(c)
        || (!c.is_ascii() && !c.is_control())
}

/// Reads up to the closing `close` (after the opening one), with backslash escapes; `None`
/// when it never closes or holds a control character other than a tab.
fn delimited(chars: &mut std::iter::Peekable<std::str::Chars<'_>>, close: char) -> Option<String> {
    let mut out = String::new();
    loop {
        match chars.next()? {
            '\\' => out.push(chars.next()?),
            c if c == close => return Some(out),
            c if c.is_control() && c != '\t' => return None,
            c => out.push(c),
        }
    }
}

/// Skips a comment (after its `(`), nested comments included (RFC 5322 §3.2.2).
fn skip_comment(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Option<()> {
    let mut depth = 1usize;
    while depth > 0 {
        match chars.next()? {
            '\\' => {
                chars.next()?;
            }
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
    }
    Some(())
}

fn tokenize(value: &str) -> Result<Vec<Token>, Unreadable> {
    let mut tokens = Vec::new();
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\r' | '\n' => {}
            '(' => skip_comment(&mut chars).ok_or(Unreadable)?,
            '"' => tokens.push(Token::Quoted(delimited(&mut chars, '"').ok_or(Unreadable)?)),
            '[' => {
                let inner = delimited(&mut chars, ']').ok_or(Unreadable)?;
                tokens.push(Token::Literal(format!("[{inner}]")));
            }
            '<' | '>' | '@' | ',' | ';' | ':' | '.' => tokens.push(Token::Special(c)),
            c if is_atext(c) => {
                let mut atom = String::from(c);
                while let Some(&n) = chars.peek().filter(|n| is_atext(**n)) {
                    atom.push(n);
                    chars.next();
                }
                tokens.push(Token::Atom(atom));
            }
            _ => return Err(Unreadable),
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn eat(&mut self, special: char) -> bool {
        let hit = self.peek() == Some(&Token::Special(special));
        if hit {
            self.pos += 1;
        }
        hit
    }

    fn expect(&mut self, special: char) -> Result<(), Unreadable> {
        self.eat(special).then_some(()).ok_or(Unreadable)
    }

    /// How many tokens from here form a phrase (words, and dots as obs-phrase allows).
    fn phrase_len(&self) -> usize {
        self.tokens[self.pos..]
            .iter()
            .take_while(|t| matches!(t, Token::Atom(_) | Token::Quoted(_) | Token::Special('.')))
            .count()
    }

    /// `address = mailbox / group`
    fn address(&mut self, out: &mut Vec<Mailbox>) -> Result<(), Unreadable> {
        let phrase = self.phrase_len();
        if phrase > 0 && self.tokens.get(self.pos + phrase) == Some(&Token::Special(':')) {
            self.pos += phrase + 1;
            // group-list: mailboxes up to ";" (RFC 5322 §3.4; empty elements are obsolete
            // syntax, still read).
            while !self.eat(';') {
                if self.eat(',') {
                    continue;
                }
                out.push(self.mailbox()?);
                if !matches!(self.peek(), Some(Token::Special(',' | ';'))) {
                    return Err(Unreadable);
                }
            }
            return Ok(());
        }
        out.push(self.mailbox()?);
        Ok(())
    }

    /// `mailbox = name-addr / addr-spec`
    fn mailbox(&mut self) -> Result<Mailbox, Unreadable> {
        let phrase = self.phrase_len();
        if self.tokens.get(self.pos + phrase) == Some(&Token::Special('<')) {
            self.pos += phrase + 1;
            let m = self.addr_spec()?;
            self.expect('>')?;
            return Ok(m);
        }
        self.addr_spec()
    }

    /// `addr-spec = local-part "@" domain`; a route (`<@a:b@c>`) is refused.
    fn addr_spec(&mut self) -> Result<Mailbox, Unreadable> {
        let mut local = self.word()?;
        while self.eat('.') {
            local.push('.');
            local.push_str(&self.word()?);
        }
        self.expect('@')?;
        let domain = match self.peek() {
            Some(Token::Literal(l)) => {
                let l = l.clone();
                self.pos += 1;
                l
            }
            _ => {
                let mut d = self.atom()?;
                while self.eat('.') {
                    d.push('.');
                    d.push_str(&self.atom()?);
                }
                d
            }
        };
        Ok(Mailbox { local, domain })
    }

    fn word(&mut self) -> Result<String, Unreadable> {
        match self.peek() {
            Some(Token::Quoted(q)) => {
                let q = q.clone();
                self.pos += 1;
                Ok(q)
            }
            _ => self.atom(),
        }
    }

    fn atom(&mut self) -> Result<String, Unreadable> {
        match self.peek() {
            Some(Token::Atom(a)) => {
                let a = a.clone();
                self.pos += 1;
                Ok(a)
            }
            _ => Err(Unreadable),
        }
    }
}

/// Every mailbox of an address-list field value (the text after the colon, unfolded).
/// Empty list elements (`a@x, , b@y`, obsolete syntax) are skipped.
pub(crate) fn mailboxes(value: &str) -> Result<Vec<Mailbox>, Unreadable> {
    let mut p = Parser {
        tokens: tokenize(value)?,
        pos: 0,
    };
    let mut out = Vec::new();
    while p.peek().is_some() {
        if p.eat(',') {
            continue;
        }
        p.address(&mut out)?;
        if p.peek().is_some() {
            p.expect(',')?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(value: &str) -> Vec<String> {
        mailboxes(value)
            .unwrap_or_else(|_| panic!("{value:?} unreadable"))
            .into_iter()
            .map(|m| format!("{}@{}", m.local, m.domain))
            .collect()
    }

    #[test]
    fn display_names_comments_quotes_and_groups_are_read() {
        for (value, want) in [
            (" alice@clinic.example", vec!["alice@clinic.example"]),
            (
                " Alice Doe <alice@clinic.example>",
                vec!["alice@clinic.example"],
            ),
            (
                " \"Doe, Alice (MD)\" <alice@clinic.example> (work)",
                vec!["alice@clinic.example"],
            ),
            (" =?utf-8?q?J=C3=B6?= <jo@x.example>", vec!["jo@x.example"]),
            (" Dr. Who <who@x.example>", vec!["who@x.example"]),
            (" \"al\\\"ice\"@x.example", vec!["al\"ice@x.example"]),
            (" a(c)@(c)x.example", vec!["a@x.example"]),
            (
                " a@x.example, , B <b@y.example>",
                vec!["a@x.example", "b@y.example"],
            ),
            (
                " team: a@x.example, B <b@y.example>;, c@z.example",
                vec!["a@x.example", "b@y.example", "c@z.example"],
            ),
            (" undisclosed-recipients:;", vec![]),
            (" jöe@bücher.example", vec!["jöe@bücher.example"]),
            (" a@[192.0.2.1]", vec!["a@[192.0.2.1]"]),
        ] {
            assert_eq!(addrs(value), want, "{value:?}");
        }
    }

    #[test]
    fn text_outside_the_grammar_is_unreadable() {
        for value in [
            "ceo@clinic.example <alice@clinic.example>",
            "<alice@clinic.example> <ceo@clinic.example>",
            "<alice@clinic.example",
            "\"alice@clinic.example",
            "alice@clinic.example (comment",
            "<@relay.example:ceo@clinic.example>",
            "alice smith@clinic.example",
            "alice@",
            "@clinic.example",
            "a@x.example b@y.example",
            "team: a@x.example",
            "outer: inner: a@x.example;;",
            "a@x.example\u{0}",
            "a@x.example]",
        ] {
            assert_eq!(mailboxes(value), Err(Unreadable), "{value:?}");
        }
    }
}
