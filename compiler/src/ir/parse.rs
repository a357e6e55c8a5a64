//! Text -> graph: the inverse of [`print`](super::print()), with errors that give the line.
//!
//! The grammar, one item per line (`;` starts a comment):
//!
//! ```text
//! node   := %N ':' type '=' mnemonic [arg (',' arg)*]     N counts nodes from 0, in order
//! type   := 'ids' '[' T ']' | '[' rows ',' cols ']'
//! arg    := %M | name '=' (word | "string")                operands first, then attributes
//! output := 'output' name '=' %M
//! ```
//!
//! Parsing is syntactic: a handle may point anywhere and types are not checked; the
//! verifier does that, so invalid graphs can be written down as test inputs.

use super::arena::Handle;
use super::graph::{Graph, Type};
use super::ops::{AttrText, Op, OpKind};

/// A syntax error, with the 1-based line it is on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// Parses the text form of a graph.
pub fn parse(text: &str) -> Result<Graph, ParseError> {
    let mut graph = Graph::new();
    for (index, line) in text.lines().enumerate() {
        let error = |message: String| ParseError {
            line: index + 1,
            message,
        };
        let tokens = lex(line).map_err(error)?;
        if tokens.is_empty() {
            continue;
        }
        parse_line(&mut graph, &tokens).map_err(error)?;
    }
    Ok(graph)
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    /// `%N`
    Ref(usize),
    /// A run of characters that are not whitespace, punctuation, quotes or `%`.
    Word(String),
    /// A quoted string, escapes resolved.
    Str(String),
    /// One of `: = , [ ]`.
    Punct(char),
}

impl Token {
    fn describe(&self) -> String {
        match self {
            Self::Ref(index) => format!("`%{index}`"),
            Self::Word(word) => format!("`{word}`"),
            Self::Str(text) => format!("the string {text:?}"),
            Self::Punct(c) => format!("`{c}`"),
        }
    }
}

const PUNCTUATION: &[char] = &[':', '=', ',', '[', ']'];

fn lex(line: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = line.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if c == ';' {
            break;
        }
        if c.is_whitespace() {
            chars.next();
        } else if PUNCTUATION.contains(&c) {
            tokens.push(Token::Punct(c));
            chars.next();
        } else if c == '%' {
            chars.next();
            let mut digits = String::new();
            while let Some(&(_, d)) = chars.peek().filter(|(_, d)| d.is_ascii_digit()) {
                digits.push(d);
                chars.next();
            }
            let index = digits.parse::<u32>().map_err(|_| {
                format!(
                    "`%` must be followed by a node number, at column {}",
                    start + 1
                )
            })?;
            tokens.push(Token::Ref(index as usize));
        } else if c == '"' {
            chars.next();
            tokens.push(Token::Str(lex_string(&mut chars, start)?));
        } else {
            let mut word = String::new();
            while let Some(&(_, w)) = chars.peek() {
                if w.is_whitespace() || PUNCTUATION.contains(&w) || matches!(w, '"' | '%' | ';') {
                    break;
                }
                word.push(w);
                chars.next();
            }
            tokens.push(Token::Word(word));
        }
    }
    Ok(tokens)
}

/// Reads the rest of a string literal opened at byte `start`.
fn lex_string(
    chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>,
    start: usize,
) -> Result<String, String> {
    let mut text = String::new();
    loop {
        let Some((_, c)) = chars.next() else {
            return Err(format!(
                "unterminated string starting at column {}",
                start + 1
            ));
        };
        match c {
            '"' => return Ok(text),
            '\\' => match chars.next().map(|(_, e)| e) {
                Some('"') => text.push('"'),
                Some('\\') => text.push('\\'),
                Some('n') => text.push('\n'),
                Some('t') => text.push('\t'),
                Some('u') => text.push(lex_unicode_escape(chars)?),
                other => {
                    return Err(format!(
                        "unknown escape `\\{}` in string starting at column {}",
                        other.map_or(String::new(), String::from),
                        start + 1
                    ));
                }
            },
            c => text.push(c),
        }
    }
}

/// Reads `{hex}` after `\u`.
fn lex_unicode_escape(
    chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>,
) -> Result<char, String> {
    if chars.next().map(|(_, c)| c) != Some('{') {
        return Err("`\\u` must be followed by `{hex}`".to_owned());
    }
    let mut hex = String::new();
    for (_, c) in chars.by_ref() {
        if c == '}' {
            return u32::from_str_radix(&hex, 16)
                .ok()
                .and_then(char::from_u32)
                .ok_or_else(|| format!("`\\u{{{hex}}}` is not a character"));
        }
        hex.push(c);
    }
    Err("unterminated `\\u{…}` escape".to_owned())
}

/// A cursor over one line's tokens.
struct Cursor<'a> {
    tokens: &'a [Token],
    position: usize,
}

impl Cursor<'_> {
    fn next(&mut self) -> Option<&Token> {
        let token = self.tokens.get(self.position);
        self.position += 1;
        token
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.position)
    }

    fn found(token: Option<&Token>) -> String {
        token.map_or("the end of the line".to_owned(), Token::describe)
    }

    fn expect_punct(&mut self, punct: char) -> Result<(), String> {
        match self.next() {
            Some(Token::Punct(c)) if *c == punct => Ok(()),
            other => Err(format!("expected `{punct}`, found {}", Self::found(other))),
        }
    }

    fn expect_word(&mut self, what: &str) -> Result<String, String> {
        match self.next() {
            Some(Token::Word(word)) => Ok(word.clone()),
            other => Err(format!("expected {what}, found {}", Self::found(other))),
        }
    }

    fn expect_ref(&mut self) -> Result<usize, String> {
        match self.next() {
            Some(Token::Ref(index)) => Ok(*index),
            other => Err(format!(
                "expected a node `%N`, found {}",
                Self::found(other)
            )),
        }
    }

    fn expect_number(&mut self, what: &str) -> Result<usize, String> {
        let word = self.expect_word(what)?;
        word.parse()
            .map_err(|_| format!("expected {what}, found `{word}`"))
    }

    fn expect_end(&mut self) -> Result<(), String> {
        match self.next() {
            None => Ok(()),
            Some(token) => Err(format!(
                "unexpected {} at the end of the line",
                token.describe()
            )),
        }
    }
}

fn parse_line(graph: &mut Graph, tokens: &[Token]) -> Result<(), String> {
    let mut cursor = Cursor {
        tokens,
        position: 0,
    };
    match cursor.peek() {
        Some(Token::Word(word)) if word == "output" => {
            cursor.next();
            let name = cursor.expect_word("an output name")?;
            cursor.expect_punct('=')?;
            let value = cursor.expect_ref()?;
            cursor.expect_end()?;
            graph.add_output(name, Handle::from_index(value));
            Ok(())
        }
        Some(Token::Ref(_)) => parse_node(graph, &mut cursor),
        other => Err(format!(
            "expected a node `%N: …` or `output`, found {}",
            Cursor::found(other)
        )),
    }
}

fn parse_node(graph: &mut Graph, cursor: &mut Cursor<'_>) -> Result<(), String> {
    let index = cursor.expect_ref()?;
    let expected = graph.nodes().len();
    if index != expected {
        return Err(format!(
            "expected node %{expected} (nodes are numbered in order), found %{index}"
        ));
    }
    cursor.expect_punct(':')?;
    let ty = parse_type(cursor)?;
    cursor.expect_punct('=')?;
    let mnemonic = cursor.expect_word("an op name")?;
    let kind =
        OpKind::from_mnemonic(&mnemonic).ok_or_else(|| format!("unknown op `{mnemonic}`"))?;

    let mut operands = Vec::new();
    let mut attributes: Vec<(String, AttrText)> = Vec::new();
    if cursor.peek().is_some() {
        loop {
            match cursor.next() {
                Some(Token::Ref(operand)) if attributes.is_empty() => {
                    operands.push(Handle::from_index(*operand));
                }
                Some(Token::Ref(operand)) => {
                    return Err(format!(
                        "operand %{operand} after attributes; operands come first"
                    ));
                }
                Some(Token::Word(name)) => {
                    let name = name.clone();
                    cursor.expect_punct('=')?;
                    let value = match cursor.next() {
                        Some(Token::Word(word)) => AttrText::Word(word.clone()),
                        Some(Token::Str(text)) => AttrText::Str(text.clone()),
                        other => {
                            return Err(format!(
                                "expected a value for `{name}`, found {}",
                                Cursor::found(other)
                            ));
                        }
                    };
                    if attributes.iter().any(|(existing, _)| *existing == name) {
                        return Err(format!("attribute `{name}` is given twice"));
                    }
                    attributes.push((name, value));
                }
                other => {
                    return Err(format!(
                        "expected an operand or `name=value`, found {}",
                        Cursor::found(other)
                    ));
                }
            }
            match cursor.peek() {
                None => break,
                Some(Token::Punct(',')) => {
                    cursor.next();
                }
                Some(token) => return Err(format!("expected `,`, found {}", token.describe())),
            }
        }
    }

    let mut take = |name: &'static str| {
        let position = attributes
            .iter()
            .position(|(given, _)| given == name)
            .ok_or_else(|| format!("`{mnemonic}` needs attribute `{name}`"))?;
        Ok(attributes.remove(position).1)
    };
    let op = Op::build(kind, &operands, &mut take)?;
    if let Some((name, _)) = attributes.first() {
        return Err(format!("`{mnemonic}` has no attribute `{name}`"));
    }
    graph.push(op, ty);
    Ok(())
}

fn parse_type(cursor: &mut Cursor<'_>) -> Result<Type, String> {
    match cursor.next() {
        Some(Token::Word(word)) if word == "ids" => {
            cursor.expect_punct('[')?;
            let len = cursor.expect_number("a token count")?;
            cursor.expect_punct(']')?;
            Ok(Type::Ids { len })
        }
        Some(Token::Punct('[')) => {
            let rows = cursor.expect_number("a row count")?;
            cursor.expect_punct(',')?;
            let cols = cursor.expect_number("a column count")?;
            cursor.expect_punct(']')?;
            Ok(Type::Tensor { rows, cols })
        }
        other => Err(format!(
            "expected a type (`ids[T]` or `[T, d]`), found {}",
            Cursor::found(other)
        )),
    }
}
