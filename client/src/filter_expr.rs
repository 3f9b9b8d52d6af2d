//! The filter-expression language of the CLI, parsed into the proto `Filter` tree.
//!
//! Grammar (keywords case-insensitive):
//!
//! ```text
//! expr       := and ( "OR" and )*
//! and        := primary ( "AND" primary )*
//! primary    := "(" expr ")" | comparison | prefix
//! comparison := FAMILY ":" QUALIFIER op literal
//! prefix     := ("ROWPREFIX" | "COLPREFIX") "(" literal ")"
//! op         := "=" | "==" | "!=" | "<>" | "<" | "<=" | ">" | ">="
//! literal    := 'single quoted' ('' escapes a quote) | "double quoted" | number | bare word
//! ```
//!
//! Example: `cf1:speed > 80 AND (cf1:area_number = 'A07' OR cf1:turn_signal = 'L')`.
//! This module only parses; the server evaluates: numerically when both the stored value
//! and the literal are numbers, else bytewise. After `<`, `<=`, `>` and `>=` a bare word
//! must be a number (`speed > fast` is refused); quote it to compare bytes on purpose
//! (`area >= 'A05'`).

use bytes::Bytes;
use speedlayer_proto::{CompareOp, Filter, FilterList, ValueFilter, filter::Kind};

use crate::error::ClientError;

/// The longest expression accepted, in bytes; longer input is refused rather than parsed.
pub const MAX_FILTER_EXPR_BYTES: usize = 16 * 1024;
/// The deepest nesting of parentheses accepted (keeps recursion bounded).
pub const MAX_FILTER_DEPTH: usize = 32;

#[derive(Debug, Clone, PartialEq)]
enum Token {
    LParen,
    RParen,
    Colon,
    /// An operator and its text as typed (`<>`, `!=`, ...), for messages.
    Op(CompareOp, &'static str),
    /// A bare word: identifier, number or keyword.
    Word(String),
    /// A quoted string.
    Quoted(String),
}

/// Parses a filter expression.
///
/// # Errors
/// [`ClientError::BadFilter`] naming the byte offset and what was expected.
pub fn parse_filter(input: &str) -> Result<Filter, ClientError> {
    if input.len() > MAX_FILTER_EXPR_BYTES {
        return Err(bad(
            0,
            format!("expression longer than {MAX_FILTER_EXPR_BYTES} bytes"),
        ));
    }
    let tokens = tokenize(input)?;
    let mut parser = Parser {
        tokens,
        pos: 0,
        end: input.len(),
    };
    let filter = parser.expr(0)?;
    if let Some((offset, tok)) = parser.tokens.get(parser.pos) {
        return Err(bad(*offset, format!("unexpected {}", describe(tok))));
    }
    Ok(filter)
}

fn bad(offset: usize, reason: String) -> ClientError {
    ClientError::BadFilter { offset, reason }
}

fn describe(tok: &Token) -> String {
    match tok {
        Token::LParen => "'('".into(),
        Token::RParen => "')'".into(),
        Token::Colon => "':'".into(),
        Token::Op(_, text) => format!("operator '{text}'"),
        Token::Word(w) => format!("'{w}'"),
        Token::Quoted(q) => format!("string '{q}'"),
    }
}

fn tokenize(input: &str) -> Result<Vec<(usize, Token)>, ClientError> {
    let bytes = input.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'(' => {
                out.push((start, Token::LParen));
                i += 1;
            }
            b')' => {
                out.push((start, Token::RParen));
                i += 1;
            }
            b':' => {
                out.push((start, Token::Colon));
                i += 1;
            }
            b'=' | b'!' | b'<' | b'>' => {
                let next = bytes.get(i + 1).copied();
                let (op, text) = match (c, next) {
                    (b'=', Some(b'=')) => (CompareOp::Eq, "=="),
                    (b'=', _) => (CompareOp::Eq, "="),
                    (b'!', Some(b'=')) => (CompareOp::Ne, "!="),
                    (b'<', Some(b'>')) => (CompareOp::Ne, "<>"),
                    (b'<', Some(b'=')) => (CompareOp::Le, "<="),
                    (b'<', _) => (CompareOp::Lt, "<"),
                    (b'>', Some(b'=')) => (CompareOp::Ge, ">="),
                    (b'>', _) => (CompareOp::Gt, ">"),
                    _ => return Err(bad(start, "'!' must be followed by '='".into())),
                };
                out.push((start, Token::Op(op, text)));
                i += text.len();
            }
            b'\'' | b'"' => {
                let quote = c;
                let mut s = Vec::new();
                i += 1;
                loop {
                    match bytes.get(i) {
                        None => return Err(bad(start, "unterminated string".into())),
                        Some(&b) if b == quote => {
                            if bytes.get(i + 1) == Some(&quote) {
                                s.push(quote);
                                i += 2;
                            } else {
                                i += 1;
                                break;
                            }
                        }
                        Some(&b) => {
                            s.push(b);
                            i += 1;
                        }
                    }
                }
                // The input is a &str and quotes are ASCII, so the slice is valid UTF-8.
                out.push((
                    start,
                    Token::Quoted(String::from_utf8_lossy(&s).into_owned()),
                ));
            }
            _ => {
                while i < bytes.len()
                    && !matches!(
                        bytes[i],
                        b' ' | b'\t'
                            | b'\n'
                            | b'\r'
                            | b'('
                            | b')'
                            | b':'
                            | b'='
                            | b'!'
                            | b'<'
                            | b'>'
                            | b'\''
                            | b'"'
                    )
                {
                    i += 1;
                }
                out.push((start, Token::Word(input[start..i].to_string())));
            }
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<(usize, Token)>,
    pos: usize,
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos).map(|(_, t)| t)
    }

    fn offset(&self) -> usize {
        self.tokens.get(self.pos).map_or(self.end, |(o, _)| *o)
    }

    fn next(&mut self, expected: &str) -> Result<(usize, Token), ClientError> {
        match self.tokens.get(self.pos) {
            Some(t) => {
                self.pos += 1;
                Ok(t.clone())
            }
            None => Err(bad(
                self.end,
                format!("expected {expected}, found end of input"),
            )),
        }
    }

    fn keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(kw))
    }

    fn expr(&mut self, depth: usize) -> Result<Filter, ClientError> {
        if depth > MAX_FILTER_DEPTH {
            return Err(bad(
                self.offset(),
                format!("nested deeper than {MAX_FILTER_DEPTH}"),
            ));
        }
        let mut operands = vec![self.and(depth)?];
        while self.keyword("OR") {
            self.pos += 1;
            operands.push(self.and(depth)?);
        }
        Ok(combine(operands, Kind::Or))
    }

    fn and(&mut self, depth: usize) -> Result<Filter, ClientError> {
        let mut operands = vec![self.primary(depth)?];
        while self.keyword("AND") {
            self.pos += 1;
            operands.push(self.primary(depth)?);
        }
        Ok(combine(operands, Kind::And))
    }

    fn primary(&mut self, depth: usize) -> Result<Filter, ClientError> {
        let (offset, tok) = self.next("a comparison or '('")?;
        match tok {
            Token::LParen => {
                let inner = self.expr(depth + 1)?;
                match self.next("')'")? {
                    (_, Token::RParen) => Ok(inner),
                    (o, t) => Err(bad(o, format!("expected ')', found {}", describe(&t)))),
                }
            }
            Token::Word(w)
                if (w.eq_ignore_ascii_case("ROWPREFIX") || w.eq_ignore_ascii_case("COLPREFIX"))
                    && self.peek() == Some(&Token::LParen) =>
            {
                self.pos += 1;
                let value = self.literal()?;
                match self.next("')'")? {
                    (_, Token::RParen) => {}
                    (o, t) => return Err(bad(o, format!("expected ')', found {}", describe(&t)))),
                }
                let kind = if w.eq_ignore_ascii_case("ROWPREFIX") {
                    Kind::RowPrefix(value)
                } else {
                    Kind::ColumnPrefix(value)
                };
                Ok(Filter { kind: Some(kind) })
            }
            Token::Word(family) => {
                match self.next("':' after the family")? {
                    (_, Token::Colon) => {}
                    (o, t) => {
                        return Err(bad(
                            o,
                            format!(
                                "expected ':' after family '{family}', found {}",
                                describe(&t)
                            ),
                        ));
                    }
                }
                let qualifier = match self.next("a qualifier")? {
                    (_, Token::Word(q)) | (_, Token::Quoted(q)) => q,
                    (o, t) => {
                        return Err(bad(
                            o,
                            format!("expected a qualifier, found {}", describe(&t)),
                        ));
                    }
                };
                let (op, op_text) = match self.next("a comparison operator")? {
                    (_, Token::Op(op, text)) => (op, text),
                    (o, t) => {
                        return Err(bad(
                            o,
                            format!("expected a comparison operator, found {}", describe(&t)),
                        ));
                    }
                };
                let value_offset = self.offset();
                let value = self.literal()?;
                // An unquoted word after an ordering operator is almost always a mistake
                // (`speed > fast`, `speed > 8O`): it would compare as bytes and quietly
                // match nothing useful. Bytewise ordering is asked for with quotes.
                let ordering = !matches!(op, CompareOp::Eq | CompareOp::Ne);
                let bare = matches!(self.tokens.get(self.pos - 1), Some((_, Token::Word(_))));
                if ordering && bare && !is_number(&value) {
                    return Err(bad(
                        value_offset,
                        format!(
                            "'{family}:{qualifier} {op_text} {word}' compares with a word that \
                             is not a number; write a number, or quote it ('{word}') to \
                             compare bytes",
                            word = String::from_utf8_lossy(&value),
                        ),
                    ));
                }
                Ok(Filter {
                    kind: Some(Kind::Value(ValueFilter {
                        family: Bytes::from(family),
                        qualifier: Bytes::from(qualifier),
                        op: op as i32,
                        value,
                    })),
                })
            }
            other => Err(bad(
                offset,
                format!("expected a comparison or '(', found {}", describe(&other)),
            )),
        }
    }

    fn literal(&mut self) -> Result<Bytes, ClientError> {
        match self.next("a value")? {
            (_, Token::Quoted(s)) | (_, Token::Word(s)) => Ok(Bytes::from(s)),
            (o, t) => Err(bad(o, format!("expected a value, found {}", describe(&t)))),
        }
    }
}

/// True if the literal parses as a decimal number, as the server's comparison does.
fn is_number(value: &[u8]) -> bool {
    std::str::from_utf8(value).is_ok_and(|s| s.trim().parse::<f64>().is_ok())
}

fn combine(mut operands: Vec<Filter>, kind: fn(FilterList) -> Kind) -> Filter {
    if operands.len() == 1 {
        return operands.remove(0);
    }
    Filter {
        kind: Some(kind(FilterList { filters: operands })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(f: &str, q: &str, op: CompareOp, v: &str) -> Filter {
        Filter {
            kind: Some(Kind::Value(ValueFilter {
                family: Bytes::from(f.to_string()),
                qualifier: Bytes::from(q.to_string()),
                op: op as i32,
                value: Bytes::from(v.to_string()),
            })),
        }
    }

    fn list(kind: fn(FilterList) -> Kind, filters: Vec<Filter>) -> Filter {
        Filter {
            kind: Some(kind(FilterList { filters })),
        }
    }

    #[test]
    fn issue_example_parses_with_and_binding_tighter_than_or() {
        let f =
            parse_filter("cf1:speed > 80 AND (cf1:area_number = 'A07' OR cf1:turn_signal = 'L')")
                .unwrap();
        let expected = list(
            Kind::And,
            vec![
                value("cf1", "speed", CompareOp::Gt, "80"),
                list(
                    Kind::Or,
                    vec![
                        value("cf1", "area_number", CompareOp::Eq, "A07"),
                        value("cf1", "turn_signal", CompareOp::Eq, "L"),
                    ],
                ),
            ],
        );
        assert_eq!(f, expected);
    }

    #[test]
    fn precedence_without_parentheses() {
        let f = parse_filter("a:x = 1 or a:y = 2 and a:z = 3").unwrap();
        let expected = list(
            Kind::Or,
            vec![
                value("a", "x", CompareOp::Eq, "1"),
                list(
                    Kind::And,
                    vec![
                        value("a", "y", CompareOp::Eq, "2"),
                        value("a", "z", CompareOp::Eq, "3"),
                    ],
                ),
            ],
        );
        assert_eq!(f, expected);
    }

    #[test]
    fn every_operator() {
        for (text, op) in [
            ("=", CompareOp::Eq),
            ("==", CompareOp::Eq),
            ("!=", CompareOp::Ne),
            ("<>", CompareOp::Ne),
            ("<", CompareOp::Lt),
            ("<=", CompareOp::Le),
            (">", CompareOp::Gt),
            (">=", CompareOp::Ge),
        ] {
            let f = parse_filter(&format!("cf:q{text}5")).unwrap();
            assert_eq!(f, value("cf", "q", op, "5"), "operator {text}");
        }
    }

    #[test]
    fn quoted_strings_keep_spaces_and_escaped_quotes() {
        let f = parse_filter("cf:name = 'it''s a car'").unwrap();
        assert_eq!(f, value("cf", "name", CompareOp::Eq, "it's a car"));
        let f = parse_filter("cf:name != \"x y\"").unwrap();
        assert_eq!(f, value("cf", "name", CompareOp::Ne, "x y"));
    }

    #[test]
    fn prefix_functions() {
        let f = parse_filter("ROWPREFIX('V0042') AND colprefix(sp)").unwrap();
        let expected = list(
            Kind::And,
            vec![
                Filter {
                    kind: Some(Kind::RowPrefix(Bytes::from_static(b"V0042"))),
                },
                Filter {
                    kind: Some(Kind::ColumnPrefix(Bytes::from_static(b"sp"))),
                },
            ],
        );
        assert_eq!(f, expected);
    }

    #[test]
    fn malformed_expressions_name_the_offset() {
        for (input, offset) in [
            ("", 0),
            ("cf1:speed >", 11),
            ("cf1 > 80", 4),
            ("cf1:speed 80", 10),
            ("(cf1:speed > 80", 15),
            ("cf1:speed > 80 AND", 18),
            ("cf1:speed > 80)", 14),
            ("cf1:speed ! 80", 10),
            ("cf1:name = 'open", 11),
        ] {
            match parse_filter(input) {
                Err(ClientError::BadFilter { offset: o, reason }) => {
                    assert_eq!(o, offset, "input {input:?}: {reason}");
                    assert!(!reason.is_empty());
                }
                other => panic!("input {input:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn messages_name_operators_as_typed() {
        for (input, op) in [("cf1:speed >> 80", "'>'"), ("cf1:speed = <> 80", "'<>'")] {
            let err = parse_filter(input).unwrap_err().to_string();
            assert!(err.contains(&format!("operator {op}")), "{input}: {err}");
            assert!(!err.contains("COMPARE_OP"), "{input}: {err}");
        }
    }

    #[test]
    fn ordering_against_a_bare_word_is_refused_and_quotes_allow_it() {
        let err = parse_filter("cf1:speed > fast").unwrap_err().to_string();
        assert!(err.contains("'cf1:speed > fast'"), "{err}");
        assert!(err.contains("not a number"), "{err}");
        assert!(parse_filter("cf1:speed > 'fast'").is_ok());
        assert!(parse_filter("cf1:speed >= -1.5e3").is_ok());
        assert!(parse_filter("cf1:turn = L").is_ok());
    }

    #[test]
    fn depth_and_length_are_bounded() {
        let deep = format!("{}a:b=1{}", "(".repeat(100), ")".repeat(100));
        assert!(matches!(
            parse_filter(&deep),
            Err(ClientError::BadFilter { .. })
        ));
        let long = "a:b=1 AND ".repeat(2000) + "a:b=1";
        assert!(matches!(
            parse_filter(&long),
            Err(ClientError::BadFilter { .. })
        ));
    }
}
