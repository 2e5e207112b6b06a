//! STIX patterns: the subset cirfed can match read into observables, and
//! cirfed observables written as patterns (INTEROP.md's table).
//!
//! A pattern is read as observations joined by OR, each a set of comparisons
//! joined by OR, where a comparison may be a few ANDed ones on one object that
//! name a single value (misp-stix's `file:name AND file:hashes`, ip and port,
//! domain and address). Anything else (AND or FOLLOWEDBY between
//! observations, qualifiers, operators other than `=` and ISSUBSET) is
//! refused whole, with the reason: publishing a part alone would match more
//! than the pattern does.

use super::lexer::{tokenize, Spanned, Token};
use crate::interop::draft::{excerpt, resolve_kind, DraftError, Mapped};
use crate::normalize::ObservableType;

/// One `path op literal` comparison of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comparison {
    /// The object path as written, e.g. `file:hashes.'SHA-256'`.
    pub path: String,
    /// `=`, `!=`, `LIKE`, `NOT =`, ...: anything but `=` and ISSUBSET is refused.
    pub operator: String,
    /// The value compared with.
    pub literal: Literal,
    /// The comparison as written, for the source excerpt.
    pub text: String,
}

/// A pattern literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Literal {
    /// A string, unescaped.
    Text(String),
    /// A number as written.
    Number(String),
    /// A literal cirfed does not import (timestamp, binary, hex, boolean, set), by name.
    Other(&'static str),
}

/// Comparisons joined by AND inside one observation: together they name one value.
pub type Conjunction = Vec<Comparison>;

/// Parses a STIX pattern into its alternatives (comparisons joined by OR,
/// inside or between observations); `Err` refuses the whole pattern.
pub fn parse_pattern(pattern: &str) -> Result<Vec<Conjunction>, DraftError> {
    let mut parser = Parser { pattern, tokens: tokenize(pattern)?, next: 0, depth: 0 };
    let alternatives = parser.observations()?;
    if let Some((token, _)) = parser.tokens.get(parser.next) {
        return Err(parser.unexpected(token));
    }
    if alternatives.is_empty() {
        return Err(syntax("no comparison"));
    }
    Ok(alternatives)
}

/// The observable one alternative of a pattern names. `declared` is the
/// indicator's `x_cirfed_observable_type`, which gives the type of values that
/// STIX has no object for (a cloud access key id shared as a user id).
pub fn observable_of(
    alternative: &[Comparison],
    declared: Option<ObservableType>,
) -> Result<(ObservableType, String), DraftError> {
    let [first, rest @ ..] = alternative else {
        return Err(syntax("no comparison"));
    };
    let chosen = match rest {
        [] => first,
        _ => composite(alternative)?,
    };
    let operator_ok = match chosen.operator.as_str() {
        "=" => true,
        "ISSUBSET" => matches!(normal_path(&chosen.path).as_str(), "ipv4-addr:value" | "ipv6-addr:value"),
        _ => false,
    };
    if !operator_ok {
        return Err(DraftError::UnsupportedPattern(format!(
            "operator '{}' in `{}`: only = (and ISSUBSET for networks) is imported",
            chosen.operator,
            excerpt(&chosen.text)
        )));
    }
    let Some(mapped) = path_type(&chosen.path, declared) else {
        return Err(DraftError::UnsupportedPattern(format!(
            "object path '{}' has no cirfed observable type",
            excerpt(&chosen.path)
        )));
    };
    let value = match &chosen.literal {
        Literal::Text(text) => text.clone(),
        Literal::Number(n) => n.clone(),
        Literal::Other(kind) => {
            return Err(DraftError::UnsupportedPattern(format!(
                "a {kind} literal in `{}`: only text and numbers are imported",
                excerpt(&chosen.text)
            )))
        }
    };
    Ok((resolve_kind(mapped, &value)?, value))
}

/// The path without quotes, lower-cased: how paths are compared.
fn normal_path(path: &str) -> String {
    path.replace('\'', "").to_ascii_lowercase()
}

/// STIX object paths cirfed takes, compared without case and without quotes.
fn path_type(path: &str, declared: Option<ObservableType>) -> Option<Mapped> {
    use ObservableType as T;
    Some(Mapped::Fixed(match normal_path(path).as_str() {
        "ipv4-addr:value" | "ipv6-addr:value" | "network-traffic:dst_ref.value" | "network-traffic:src_ref.value" => {
            return Some(Mapped::Ip)
        }
        "domain-name:value" => T::Domain,
        "url:value" => T::Url,
        "email-addr:value" => T::Email,
        "file:hashes.md5" => T::Md5,
        "file:hashes.sha-1" | "file:hashes.sha1" => T::Sha1,
        "file:hashes.sha-256" | "file:hashes.sha256" => T::Sha256,
        "autonomous-system:number" => T::Asn,
        "x509-certificate:hashes.sha-1"
        | "x509-certificate:hashes.sha1"
        | "x509-certificate:hashes.sha-256"
        | "x509-certificate:hashes.sha256" => T::CertificateFingerprint,
        "network-traffic:extensions.http-request-ext.request_header.user-agent" => T::UserAgent,
        "x-cirfed-cloud-resource:name" => T::CloudResourceName,
        // No STIX object holds an access key id: cirfed writes it as a user id and says so.
        "user-account:user_id" if declared == Some(T::CloudAccessKeyId) => T::CloudAccessKeyId,
        _ => return None,
    }))
}

/// How strongly a path of a composite names its value; the strongest one is imported.
fn composite_rank(path: &str) -> Option<u8> {
    Some(match normal_path(path).as_str() {
        "file:hashes.sha-256" | "file:hashes.sha256" | "x509-certificate:hashes.sha-256" => 3,
        "file:hashes.sha-1" | "file:hashes.sha1" | "x509-certificate:hashes.sha-1" => 2,
        "file:hashes.md5" => 1,
        "network-traffic:dst_ref.value" | "network-traffic:src_ref.value" | "domain-name:value" => 1,
        _ => return None,
    })
}

/// The misp-stix composite forms: comparisons on one object where one names
/// the value and the rest only describe it (a file's name beside its hash, a
/// connection's port beside its address, a domain's address beside it, as
/// MISP's own `filename|sha256`, `ip-dst|port` and `domain|ip` import).
fn composite(alternative: &[Comparison]) -> Result<&Comparison, DraftError> {
    let refuse = || {
        DraftError::UnsupportedPattern(format!(
            "joins comparisons with AND in `{}`: only one value, or a value with its file name, port \
             or address, is imported, since publishing each part alone would match more than the pattern does",
            excerpt(&alternative.iter().map(|c| c.text.as_str()).collect::<Vec<_>>().join(" AND "))
        ))
    };
    let object = |c: &Comparison| normal_path(&c.path).split(':').next().unwrap_or_default().to_owned();
    let first_object = object(&alternative[0]);
    if alternative.iter().any(|c| object(c) != first_object) {
        return Err(refuse());
    }
    let describes = |c: &Comparison| {
        let path = normal_path(&c.path);
        match first_object.as_str() {
            "file" => path == "file:name",
            "network-traffic" => matches!(
                path.as_str(),
                "network-traffic:dst_ref.type" | "network-traffic:src_ref.type" | "network-traffic:dst_port"
                    | "network-traffic:src_port"
            ),
            "domain-name" => path == "domain-name:resolves_to_refs[*].value",
            _ => false,
        }
    };
    let mut best: Option<(&Comparison, u8)> = None;
    for comparison in alternative {
        if comparison.operator != "=" {
            return Err(refuse());
        }
        match composite_rank(&comparison.path) {
            Some(rank) if best.is_none_or(|(_, r)| rank > r) => best = Some((comparison, rank)),
            Some(_) => {}
            None if describes(comparison) => {}
            None => return Err(refuse()),
        }
    }
    let (chosen, _) = best.ok_or_else(refuse)?;
    // Several hashes of one file name it alike; two addresses or two domains are two observables.
    let ranked: Vec<String> =
        alternative.iter().filter(|c| composite_rank(&c.path).is_some()).map(|c| normal_path(&c.path)).collect();
    let distinct = ranked.iter().collect::<std::collections::HashSet<_>>().len() == ranked.len();
    let hashes = matches!(first_object.as_str(), "file" | "x509-certificate");
    if !distinct || (!hashes && ranked.len() > 1) {
        return Err(refuse());
    }
    Ok(chosen)
}

// --- writing patterns ---

/// Why an observable has no STIX pattern: the summary's reason code.
pub const KEYED_HASH: &str = "keyed_hash";

/// The STIX pattern for a cirfed observable (canonical value), per
/// INTEROP.md's table; `Err` with a reason code when STIX cannot say it.
pub fn emit(kind: ObservableType, value: &str) -> Result<String, &'static str> {
    use ObservableType as T;
    let path = match kind {
        T::Ipv4 => "ipv4-addr:value",
        T::Ipv6 => "ipv6-addr:value",
        T::Cidr if value.contains(':') => return Ok(format!("[ipv6-addr:value ISSUBSET '{}']", escape(value))),
        T::Cidr => return Ok(format!("[ipv4-addr:value ISSUBSET '{}']", escape(value))),
        T::Domain => "domain-name:value",
        T::Url => "url:value",
        T::Email => "email-addr:value",
        T::Md5 => "file:hashes.MD5",
        T::Sha1 => "file:hashes.'SHA-1'",
        T::Sha256 => "file:hashes.'SHA-256'",
        T::Asn => {
            let digits = value.strip_prefix("AS").unwrap_or(value);
            let number: u32 = digits.parse().map_err(|_| "invalid_value")?;
            return Ok(format!("[autonomous-system:number = {number}]"));
        }
        T::UserAgent => "network-traffic:extensions.'http-request-ext'.request_header.'User-Agent'",
        T::CertificateFingerprint if value.len() == 40 => "x509-certificate:hashes.'SHA-1'",
        T::CertificateFingerprint => "x509-certificate:hashes.'SHA-256'",
        T::CloudAccessKeyId => "user-account:user_id",
        T::CloudResourceName => "x-cirfed-cloud-resource:name",
        T::KeyedHash => return Err(KEYED_HASH),
    };
    Ok(format!("[{path} = '{}']", escape(value)))
}

/// A string literal's content: `\` as `\\`, `'` as `\'`.
pub fn escape(value: &str) -> std::borrow::Cow<'_, str> {
    if !value.contains(['\\', '\'']) {
        return value.into();
    }
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        if matches!(c, '\\' | '\'') {
            out.push('\\');
        }
        out.push(c);
    }
    out.into()
}

// --- reading patterns ---

fn syntax(reason: impl Into<String>) -> DraftError {
    DraftError::Syntax { format: "stix pattern", reason: reason.into() }
}

/// Alternatives a pattern may expand to (ORs inside ANDs multiply out); more is refused.
pub const MAX_PATTERN_ALTERNATIVES: usize = 64;
/// Deepest nesting of brackets and parentheses read; deeper is refused before it can exhaust the stack.
pub const MAX_PATTERN_DEPTH: usize = 32;

/// Recursive descent over the tokens; `Err` refuses the whole pattern.
struct Parser<'a> {
    pattern: &'a str,
    tokens: Vec<Spanned>,
    next: usize,
    /// Brackets and parentheses open around the current token.
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.next).map(|(token, _)| token)
    }

    fn peek_word(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w == word)
    }

    fn take(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.next).map(|(token, _)| token.clone());
        self.next += 1;
        token
    }

    fn unexpected(&self, token: &Token) -> DraftError {
        syntax(format!("unexpected {token:?}"))
    }

    fn expect(&mut self, wanted: &Token, what: &str) -> Result<(), DraftError> {
        match self.take() {
            Some(token) if &token == wanted => Ok(()),
            Some(token) => Err(syntax(format!("expected {what}, found {token:?}"))),
            None => Err(syntax(format!("expected {what} at the end"))),
        }
    }

    /// Runs `inner` one level of brackets or parentheses deeper.
    fn nested<T>(&mut self, inner: impl FnOnce(&mut Self) -> Result<T, DraftError>) -> Result<T, DraftError> {
        if self.depth >= MAX_PATTERN_DEPTH {
            return Err(syntax(format!("nested deeper than {MAX_PATTERN_DEPTH} levels (MAX_PATTERN_DEPTH)")));
        }
        self.depth += 1;
        let result = inner(self);
        self.depth -= 1;
        result
    }

    /// observations := observation (OR observation)*
    fn observations(&mut self) -> Result<Vec<Conjunction>, DraftError> {
        let mut alternatives = self.observation()?;
        loop {
            match self.peek() {
                Some(Token::Word(w)) if w == "OR" => {
                    self.next += 1;
                    alternatives.extend(self.observation()?);
                    check_count(&alternatives)?;
                }
                Some(Token::Word(w)) if w == "AND" || w == "FOLLOWEDBY" => {
                    return Err(DraftError::UnsupportedPattern(format!(
                        "joins observations with {w}: only OR is imported, since publishing \
                         each part alone would match more than the pattern does"
                    )));
                }
                _ => return Ok(alternatives),
            }
        }
    }

    /// observation := '[' or_expr ']' qualifiers | '(' observations ')' qualifiers
    fn observation(&mut self) -> Result<Vec<Conjunction>, DraftError> {
        let alternatives = match self.take() {
            Some(Token::OpenBracket) => self.nested(|p| {
                let inner = p.or_expr()?;
                p.expect(&Token::CloseBracket, "]")?;
                Ok(inner)
            })?,
            Some(Token::OpenParen) => self.nested(|p| {
                let inner = p.observations()?;
                p.expect(&Token::CloseParen, ")")?;
                Ok(inner)
            })?,
            Some(token) => return Err(syntax(format!("expected [ or (, found {token:?}"))),
            None => return Err(syntax("expected [ or ( at the end")),
        };
        if let Some(Token::Word(w)) = self.peek() {
            if matches!(w.as_str(), "WITHIN" | "START" | "STOP" | "REPEATS") {
                return Err(DraftError::UnsupportedPattern(format!(
                    "qualifier {w}: cirfed indicators have no time window or count"
                )));
            }
        }
        Ok(alternatives)
    }

    /// or_expr := and_expr (OR and_expr)*
    fn or_expr(&mut self) -> Result<Vec<Conjunction>, DraftError> {
        let mut alternatives = self.and_expr()?;
        while self.peek_word("OR") {
            self.next += 1;
            alternatives.extend(self.and_expr()?);
            check_count(&alternatives)?;
        }
        Ok(alternatives)
    }

    /// and_expr := term (AND term)*, multiplied out into alternatives.
    fn and_expr(&mut self) -> Result<Vec<Conjunction>, DraftError> {
        let mut alternatives = self.term()?;
        while self.peek_word("AND") {
            self.next += 1;
            let right = self.term()?;
            let mut product = Vec::with_capacity(alternatives.len() * right.len());
            for left in &alternatives {
                for right in &right {
                    product.push(left.iter().chain(right).cloned().collect());
                }
                check_count(&product)?;
            }
            alternatives = product;
        }
        Ok(alternatives)
    }

    /// term := '(' or_expr ')' | path [NOT] operator literal
    fn term(&mut self) -> Result<Vec<Conjunction>, DraftError> {
        let start = self.tokens.get(self.next).map_or(self.pattern.len(), |(_, span)| span.start);
        let path = match self.take() {
            Some(Token::OpenParen) => {
                return self.nested(|p| {
                    let inner = p.or_expr()?;
                    p.expect(&Token::CloseParen, ")")?;
                    Ok(inner)
                })
            }
            Some(Token::Path(path)) => path,
            Some(token) => return Err(syntax(format!("expected an object path, found {token:?}"))),
            None => return Err(syntax("expected an object path at the end")),
        };
        let mut operator = String::new();
        if self.peek_word("NOT") {
            self.next += 1;
            operator.push_str("NOT ");
        }
        match self.take() {
            Some(Token::Operator(op)) => operator.push_str(&op),
            Some(Token::Word(w)) if matches!(w.as_str(), "LIKE" | "MATCHES" | "IN" | "ISSUBSET" | "ISSUPERSET") => {
                operator.push_str(&w)
            }
            Some(token) => return Err(syntax(format!("expected a comparison operator, found {token:?}"))),
            None => return Err(syntax("expected a comparison operator at the end")),
        }
        let literal = match self.take() {
            Some(Token::Text(text)) => Literal::Text(text),
            Some(Token::Number(n)) => Literal::Number(n),
            Some(Token::Typed(kind)) => Literal::Other(kind),
            Some(Token::Word(w)) if w == "TRUE" || w == "FALSE" => Literal::Other("boolean"),
            Some(Token::OpenParen) => {
                // A set for IN: skip to its end.
                while !matches!(self.take(), Some(Token::CloseParen) | None) {}
                Literal::Other("set")
            }
            Some(token) => return Err(syntax(format!("expected a literal, found {token:?}"))),
            None => return Err(syntax("expected a literal at the end")),
        };
        let end = self.tokens.get(self.next - 1).map_or(self.pattern.len(), |(_, span)| span.end);
        let text = self.pattern.get(start..end).unwrap_or_default().to_owned();
        Ok(vec![vec![Comparison { path, operator, literal, text }]])
    }
}

fn check_count(alternatives: &[Conjunction]) -> Result<(), DraftError> {
    match alternatives.len() > MAX_PATTERN_ALTERNATIVES {
        true => Err(DraftError::UnsupportedPattern(format!(
            "expands to more than {MAX_PATTERN_ALTERNATIVES} alternatives (MAX_PATTERN_ALTERNATIVES)"
        ))),
        false => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize;
    use proptest::prelude::*;
    use ObservableType as T;

    /// Every alternative's observable, or the first refusal.
    fn read(pattern: &str) -> Result<Vec<(ObservableType, String)>, DraftError> {
        read_declared(pattern, None)
    }

    fn read_declared(pattern: &str, declared: Option<ObservableType>) -> Result<Vec<(ObservableType, String)>, DraftError> {
        parse_pattern(pattern)?.iter().map(|alternative| observable_of(alternative, declared)).collect()
    }

    /// One canonical value of every type STIX can carry.
    const SAMPLES: [(ObservableType, &str); 16] = [
        (T::Ipv4, "198.51.100.7"),
        (T::Ipv6, "2001:db8::7"),
        (T::Cidr, "198.51.100.0/24"),
        (T::Cidr, "2001:db8::/32"),
        (T::Domain, "bad.example"),
        (T::Url, "http://bad.example/a?b=1"),
        (T::Email, "x@bad.example"),
        (T::Md5, "0749bae92ca336a02c83d126e04ec628"),
        (T::Sha1, "77b0c41b7d340b8a3d903f21347bbf06aa766b5b"),
        (T::Sha256, "ef537f25c895bfa782526529a9b63d97aa631564d5d789c2b765448c8635fb6c"),
        (T::Asn, "AS64496"),
        (T::UserAgent, "Mozilla/5.0 (it's \\ odd)"),
        (T::CertificateFingerprint, "77b0c41b7d340b8a3d903f21347bbf06aa766b5b"),
        (T::CertificateFingerprint, "ef537f25c895bfa782526529a9b63d97aa631564d5d789c2b765448c8635fb6c"),
        (T::CloudAccessKeyId, "AKIAIOSFODNN7EXAMPLE"),
        (T::CloudResourceName, "arn:aws:s3:::bad-bucket"),
    ];

    #[test]
    fn every_exportable_type_reads_back_from_its_pattern_as_the_same_observable() {
        for (kind, value) in SAMPLES {
            assert_eq!(normalize::normalize(kind, value).as_deref(), Ok(value), "{kind} sample is canonical");
            let pattern = emit(kind, value).unwrap();
            let declared = (kind == T::CloudAccessKeyId).then_some(kind);
            let back = read_declared(&pattern, declared).unwrap_or_else(|e| panic!("{pattern}: {e}"));
            let back: Vec<(ObservableType, String)> = back
                .into_iter()
                .map(|(k, v)| (k, normalize::normalize(k, &v).expect("the read value normalises")))
                .collect();
            assert_eq!(back, [(kind, value.to_owned())], "{pattern}");
        }
    }

    #[test]
    fn patterns_are_written_as_interop_md_says() {
        let cases = [
            (T::Ipv4, "198.51.100.7", "[ipv4-addr:value = '198.51.100.7']"),
            (T::Cidr, "198.51.100.0/24", "[ipv4-addr:value ISSUBSET '198.51.100.0/24']"),
            (T::Cidr, "2001:db8::/32", "[ipv6-addr:value ISSUBSET '2001:db8::/32']"),
            (T::Md5, "0749bae92ca336a02c83d126e04ec628", "[file:hashes.MD5 = '0749bae92ca336a02c83d126e04ec628']"),
            (T::Sha1, "77b0c41b7d340b8a3d903f21347bbf06aa766b5b", "[file:hashes.'SHA-1' = '77b0c41b7d340b8a3d903f21347bbf06aa766b5b']"),
            (T::Asn, "AS64496", "[autonomous-system:number = 64496]"),
            (
                T::UserAgent,
                "curl/8.0",
                "[network-traffic:extensions.'http-request-ext'.request_header.'User-Agent' = 'curl/8.0']",
            ),
            (T::CloudAccessKeyId, "AKIAIOSFODNN7EXAMPLE", "[user-account:user_id = 'AKIAIOSFODNN7EXAMPLE']"),
        ];
        for (kind, value, pattern) in cases {
            assert_eq!(emit(kind, value).unwrap(), pattern);
        }
        assert_eq!(emit(T::KeyedHash, &"a".repeat(64)), Err(KEYED_HASH));
    }

    #[test]
    fn quotes_and_backslashes_are_escaped_and_read_back() {
        assert_eq!(escape("a'b\\c"), "a\\'b\\\\c");
        assert_eq!(escape("plain"), "plain");
        let pattern = emit(T::Url, "http://bad.example/it's\\here").unwrap();
        assert_eq!(pattern, "[url:value = 'http://bad.example/it\\'s\\\\here']");
        assert_eq!(read(&pattern).unwrap(), [(T::Url, "http://bad.example/it's\\here".to_owned())]);
    }

    #[test]
    fn networks_read_from_equality_and_issubset_and_asns_from_numbers_and_text() {
        assert_eq!(read("[ipv4-addr:value = '10.0.0.0/8']").unwrap(), [(T::Cidr, "10.0.0.0/8".to_owned())]);
        assert_eq!(read("[ipv4-addr:value ISSUBSET '10.0.0.0/8']").unwrap(), [(T::Cidr, "10.0.0.0/8".to_owned())]);
        assert_eq!(read("[ipv6-addr:value = '2001:db8::1']").unwrap(), [(T::Ipv6, "2001:db8::1".to_owned())]);
        assert_eq!(read("[autonomous-system:number = 64496]").unwrap(), [(T::Asn, "64496".to_owned())]);
        assert_eq!(read("[autonomous-system:number = '64496']").unwrap(), [(T::Asn, "64496".to_owned())]);
        let err = read("[domain-name:value ISSUBSET 'bad.example']").unwrap_err().to_string();
        assert!(err.starts_with("unsupported STIX pattern: operator 'ISSUBSET'"), "{err}");
    }

    #[test]
    fn or_patterns_give_every_alternative_in_order() {
        let got = read(
            "[ipv4-addr:value = '198.51.100.1' OR domain-name:value = 'evil.example'] OR \
             ([file:hashes.MD5 = '0749bae92ca336a02c83d126e04ec628'] OR [autonomous-system:number = 64496])",
        )
        .unwrap();
        let kinds: Vec<ObservableType> = got.iter().map(|(k, _)| *k).collect();
        assert_eq!(kinds, [T::Ipv4, T::Domain, T::Md5, T::Asn]);
    }

    #[test]
    fn misp_stix_composites_import_the_value_they_name() {
        let sha = "ef537f25c895bfa782526529a9b63d97aa631564d5d789c2b765448c8635fb6c";
        let cases = [
            (format!("[file:name = 'a.exe' AND file:hashes.'SHA-256' = '{sha}']"), (T::Sha256, sha)),
            (
                format!("[file:hashes.MD5 = '0749bae92ca336a02c83d126e04ec628' AND file:hashes.'SHA-256' = '{sha}']"),
                (T::Sha256, sha),
            ),
            (
                "[network-traffic:dst_ref.type = 'ipv4-addr' AND network-traffic:dst_ref.value = '198.51.100.7' AND \
                 network-traffic:dst_port = 443]"
                    .to_owned(),
                (T::Ipv4, "198.51.100.7"),
            ),
            (
                "[domain-name:value = 'bad.example' AND domain-name:resolves_to_refs[*].value = '198.51.100.7']"
                    .to_owned(),
                (T::Domain, "bad.example"),
            ),
        ];
        for (pattern, (kind, value)) in cases {
            assert_eq!(read(&pattern).unwrap(), [(kind, value.to_owned())], "{pattern}");
        }
    }

    #[test]
    fn patterns_cirfed_cannot_match_are_refused_with_the_reason() {
        let cases = [
            (
                "[ipv4-addr:value = '198.51.100.1' AND domain-name:value = 'evil.example']",
                "unsupported STIX pattern: joins comparisons with AND",
            ),
            (
                "[network-traffic:dst_ref.value = '198.51.100.1' AND network-traffic:src_ref.value = '198.51.100.2']",
                "unsupported STIX pattern: joins comparisons with AND",
            ),
            ("[file:name = 'a.exe']", "unsupported STIX pattern: object path 'file:name'"),
            (
                "[ipv4-addr:value = '198.51.100.1'] AND [domain-name:value = 'evil.example']",
                "unsupported STIX pattern: joins observations with AND",
            ),
            (
                "[ipv4-addr:value = '198.51.100.1'] FOLLOWEDBY [domain-name:value = 'evil.example']",
                "unsupported STIX pattern: joins observations with FOLLOWEDBY",
            ),
            ("[ipv4-addr:value = '198.51.100.1'] WITHIN 300 SECONDS", "unsupported STIX pattern: qualifier WITHIN"),
            ("[file:name LIKE 'miner%']", "unsupported STIX pattern: operator 'LIKE'"),
            ("[ipv4-addr:value IN ('1.2.3.4', '5.6.7.8')]", "unsupported STIX pattern: operator 'IN'"),
            ("[ipv4-addr:value NOT = '1.2.3.4']", "unsupported STIX pattern: operator 'NOT ='"),
            ("[ipv4-addr:value != '10.0.0.1']", "unsupported STIX pattern: operator '!='"),
            ("[file:created = t'2024-01-01T00:00:00Z']", "unsupported STIX pattern: object path 'file:created'"),
            ("[process:name = 'miner']", "unsupported STIX pattern: object path 'process:name'"),
            ("[user-account:user_id = 'AKIAIOSFODNN7EXAMPLE']", "unsupported STIX pattern: object path 'user-account:user_id'"),
            (
                "[email-message:to_refs[*].value = 'a@evil.example']",
                "unsupported STIX pattern: object path 'email-message:to_refs[*].value'",
            ),
            ("[ipv4-addr:value = '198.51.100.1'", "invalid stix pattern: expected ] at the end"),
            ("[ipv4-addr:value = '198.51.100.1]", "invalid stix pattern: unterminated string"),
            ("ipv4-addr:value = '198.51.100.1'", "invalid stix pattern: expected [ or ("),
            ("[ipv4-addr:value = 'evil.example']", "`value` 'evil.example': not an IP address or network"),
        ];
        for (pattern, message) in cases {
            let err = read(pattern).unwrap_err().to_string();
            assert!(err.starts_with(message), "{pattern}: {err:?} should start with {message:?}");
        }
    }

    #[test]
    fn nesting_deeper_than_the_limit_is_refused_without_recursing_further() {
        let deep = |n: usize| format!("{}[ipv4-addr:value = '198.51.100.1']{}", "(".repeat(n), ")".repeat(n));
        assert!(read(&deep(MAX_PATTERN_DEPTH - 1)).is_ok());
        let err = read(&deep(100_000)).unwrap_err().to_string();
        assert!(err.contains("MAX_PATTERN_DEPTH"), "{err}");
    }

    #[test]
    fn patterns_expanding_past_the_alternatives_limit_are_refused() {
        let or = |n: usize| {
            (0..n).map(|i| format!("ipv4-addr:value = '198.51.100.{i}'")).collect::<Vec<_>>().join(" OR ")
        };
        assert_eq!(read(&format!("[{}]", or(MAX_PATTERN_ALTERNATIVES))).unwrap().len(), MAX_PATTERN_ALTERNATIVES);
        let err = read(&format!("[{}]", or(MAX_PATTERN_ALTERNATIVES + 1))).unwrap_err().to_string();
        assert!(err.contains("MAX_PATTERN_ALTERNATIVES"), "{err}");
        let product = format!("[({}) AND ({})]", or(9), or(9));
        let err = read(&product).unwrap_err().to_string();
        assert!(err.contains("MAX_PATTERN_ALTERNATIVES"), "{err}");
    }

    proptest! {
        #[test]
        fn any_pattern_text_parses_or_is_refused_without_panicking(pattern in "[\\[\\]()' =!<>a-zA-Z:.0-9*_,-]{0,80}") {
            let _ = parse_pattern(&pattern);
        }

        #[test]
        fn any_user_agent_reads_back_from_its_escaped_pattern(ua in "[ -~]{1,60}") {
            let Ok(canonical) = normalize::normalize(T::UserAgent, &ua) else { return Ok(()) };
            let pattern = emit(T::UserAgent, &canonical).unwrap();
            let back = read(&pattern).unwrap();
            prop_assert_eq!(back, vec![(T::UserAgent, canonical)]);
        }
    }
}
