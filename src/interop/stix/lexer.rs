//! The STIX pattern grammar's tokens: brackets, object paths (with quoted
//! segments and list indexes), operators, keywords and literals.

use crate::interop::draft::DraftError;

fn syntax(reason: impl Into<String>) -> DraftError {
    DraftError::Syntax { format: "stix pattern", reason: reason.into() }
}

/// A lexical token of the pattern grammar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Token {
    OpenBracket,
    CloseBracket,
    OpenParen,
    CloseParen,
    Comma,
    /// An object path such as `file:hashes.'SHA-256'`.
    Path(String),
    /// A keyword or operator word (OR, AND, LIKE, WITHIN, ...), upper-cased.
    Word(String),
    /// `=`, `!=`, `<`, `<=`, `>`, `>=`.
    Operator(String),
    Text(String),
    Number(String),
    /// `t'...'`, `h'...'`, `b'...'`.
    Typed(&'static str),
}

/// A token and the byte range it came from.
pub(super) type Spanned = (Token, std::ops::Range<usize>);

pub(super) fn tokenize(pattern: &str) -> Result<Vec<Spanned>, DraftError> {
    let bytes = pattern.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        let c = bytes[i];
        let token = match c {
            b' ' | b'\t' | b'\r' | b'\n' => {
                i += 1;
                continue;
            }
            b'[' => {
                i += 1;
                Token::OpenBracket
            }
            b']' => {
                i += 1;
                Token::CloseBracket
            }
            b'(' => {
                i += 1;
                Token::OpenParen
            }
            b')' => {
                i += 1;
                Token::CloseParen
            }
            b',' => {
                i += 1;
                Token::Comma
            }
            b'=' | b'!' | b'<' | b'>' => {
                i += 1;
                if bytes.get(i) == Some(&b'=') {
                    i += 1;
                }
                let op = &pattern[start..i];
                if op == "!" {
                    return Err(syntax("`!` without `=`".to_owned()));
                }
                Token::Operator(op.to_owned())
            }
            b'\'' => {
                let (text, end) = string_literal(pattern, i).ok_or_else(|| syntax("unterminated string".to_owned()))?;
                i = end;
                Token::Text(text)
            }
            b'-' | b'0'..=b'9' => {
                i += 1;
                while i < bytes.len() && (bytes[i].is_ascii_digit() || matches!(bytes[i], b'.' | b'e' | b'E' | b'+')) {
                    i += 1;
                }
                Token::Number(pattern[start..i].to_owned())
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || matches!(bytes[i], b'_' | b'-')) {
                    i += 1;
                }
                let word = &pattern[start..i];
                if bytes.get(i) == Some(&b'\'') && matches!(word, "t" | "h" | "b") {
                    let (_, end) =
                        string_literal(pattern, i).ok_or_else(|| syntax("unterminated string".to_owned()))?;
                    i = end;
                    Token::Typed(match word {
                        "t" => "timestamp",
                        "h" => "hex",
                        _ => "binary",
                    })
                } else if bytes.get(i) == Some(&b':') {
                    i = object_path_end(pattern, i).ok_or_else(|| syntax("unterminated object path".to_owned()))?;
                    Token::Path(pattern[start..i].to_owned())
                } else {
                    Token::Word(word.to_ascii_uppercase())
                }
            }
            _ => {
                let shown: String = pattern[start..].chars().next().into_iter().collect();
                return Err(syntax(format!("unexpected character '{shown}'")));
            }
        };
        tokens.push((token, start..i));
    }
    Ok(tokens)
}

/// The unescaped text of the string literal opening at `start`, and the index after it.
fn string_literal(pattern: &str, start: usize) -> Option<(String, usize)> {
    let mut text = String::new();
    let mut chars = pattern[start + 1..].char_indices();
    while let Some((offset, c)) = chars.next() {
        match c {
            '\\' => text.push(chars.next()?.1),
            '\'' => return Some((text, start + 1 + offset + 1)),
            c => text.push(c),
        }
    }
    None
}

/// The end of an object path whose type ends at `colon`: letters, digits, `_-.:*`,
/// quoted segments (`hashes.'SHA-256'`) and list indexes (`[*]`).
fn object_path_end(pattern: &str, colon: usize) -> Option<usize> {
    let bytes = pattern.as_bytes();
    let mut i = colon + 1;
    while i < bytes.len() {
        match bytes[i] {
            b if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':' | b'*') => i += 1,
            b'\'' if bytes[i - 1] == b'.' => i = string_literal(pattern, i)?.1,
            b'[' if bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_' => {
                i += pattern[i..].find(']')? + 1;
            }
            _ => break,
        }
    }
    Some(i)
}
