//! The `having` expression language and the aggregation state it reads.
//!
//! Grammar (keywords case-insensitive, `&&`/`||` accepted for AND/OR):
//!
//! ```text
//! expr    := and ( OR and )*
//! and     := cmp ( AND cmp )*
//! cmp     := operand op operand | "(" expr ")"
//! operand := number | agg "(" field ")" | "count" "(" "*" ")"
//! agg     := avg | min | max | sum | count
//! op      := > | >= | < | <= | = | == | !=
//! ```
//!
//! Aggregates are over the numeric fields of a driving event (see [`NumField`]). This is
//! not a general expression evaluator: no arithmetic, no NOT, no string comparisons.

use std::fmt;

/// A numeric field of a driving event that aggregates can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NumField {
    /// Speed, km/h.
    Speed,
    /// Accelerator pedal level 0–9.
    Accelerator,
    /// Brake pedal level 0–9.
    Brake,
    /// Steering wheel angle, degrees.
    SteeringAngle,
}

impl NumField {
    /// All numeric fields, in index order.
    pub const ALL: [NumField; 4] = [
        NumField::Speed,
        NumField::Accelerator,
        NumField::Brake,
        NumField::SteeringAngle,
    ];

    /// The field's name in rule files.
    pub fn name(self) -> &'static str {
        match self {
            NumField::Speed => "speed",
            NumField::Accelerator => "accelerator",
            NumField::Brake => "brake",
            NumField::SteeringAngle => "steering_angle",
        }
    }

    /// The field with this rule-file name.
    pub fn from_name(name: &str) -> Option<NumField> {
        NumField::ALL.into_iter().find(|f| f.name() == name)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The numeric values of one event, indexed like [`NumField::ALL`].
pub type Numbers = [f64; 4];

/// Running aggregates of one group in one window: count, and sum/min/max per field.
///
/// Sums of the integer-valued fields are exact in `f64`, so the result does not depend on
/// the order events were added in.
#[derive(Debug, Clone, PartialEq)]
pub struct Acc {
    count: u64,
    sum: Numbers,
    min: Numbers,
    max: Numbers,
}

impl Default for Acc {
    fn default() -> Self {
        Acc {
            count: 0,
            sum: [0.0; 4],
            min: [f64::INFINITY; 4],
            max: [f64::NEG_INFINITY; 4],
        }
    }
}

impl Acc {
    /// Adds one event.
    pub fn add(&mut self, v: &Numbers) {
        self.count += 1;
        for (i, x) in v.iter().enumerate() {
            self.sum[i] += x;
            self.min[i] = self.min[i].min(*x);
            self.max[i] = self.max[i].max(*x);
        }
    }

    /// Adds everything `other` has seen.
    pub fn merge(&mut self, other: &Acc) {
        self.count += other.count;
        for i in 0..4 {
            self.sum[i] += other.sum[i];
            self.min[i] = self.min[i].min(other.min[i]);
            self.max[i] = self.max[i].max(other.max[i]);
        }
    }

    /// Number of events added.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The value of one aggregate (`NaN`-free: an empty accumulator yields 0 for avg).
    pub fn value(&self, agg: &Aggregate) -> f64 {
        match (agg.func, agg.field) {
            (AggFn::Count, _) => self.count as f64,
            (_, None) => self.count as f64,
            (AggFn::Sum, Some(f)) => self.sum[f.index()],
            (AggFn::Min, Some(f)) => self.min[f.index()],
            (AggFn::Max, Some(f)) => self.max[f.index()],
            (AggFn::Avg, Some(f)) => {
                if self.count == 0 {
                    0.0
                } else {
                    self.sum[f.index()] / self.count as f64
                }
            }
        }
    }
}

/// An aggregate function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggFn {
    /// Arithmetic mean.
    Avg,
    /// Minimum.
    Min,
    /// Maximum.
    Max,
    /// Number of events.
    Count,
    /// Sum.
    Sum,
}

impl AggFn {
    fn from_name(name: &str) -> Option<AggFn> {
        match name.to_ascii_lowercase().as_str() {
            "avg" => Some(AggFn::Avg),
            "min" => Some(AggFn::Min),
            "max" => Some(AggFn::Max),
            "count" => Some(AggFn::Count),
            "sum" => Some(AggFn::Sum),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            AggFn::Avg => "avg",
            AggFn::Min => "min",
            AggFn::Max => "max",
            AggFn::Count => "count",
            AggFn::Sum => "sum",
        }
    }
}

/// One aggregate referenced by an expression, e.g. `avg(speed)` or `count(*)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Aggregate {
    /// The function.
    pub func: AggFn,
    /// The field; `None` only for `count(*)`.
    pub field: Option<NumField>,
}

impl fmt::Display for Aggregate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.field {
            Some(field) => write!(f, "{}({})", self.func.name(), field.name()),
            None => write!(f, "{}(*)", self.func.name()),
        }
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `=` or `==`
    Eq,
    /// `!=`
    Ne,
}

impl CmpOp {
    fn apply(self, a: f64, b: f64) -> bool {
        match self {
            CmpOp::Gt => a > b,
            CmpOp::Ge => a >= b,
            CmpOp::Lt => a < b,
            CmpOp::Le => a <= b,
            CmpOp::Eq => a == b,
            CmpOp::Ne => a != b,
        }
    }
}

/// One side of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// A literal.
    Number(f64),
    /// An aggregate, by index into [`Having::aggregates`].
    Agg(usize),
}

/// A parsed boolean expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// `a op b`.
    Cmp(Operand, CmpOp, Operand),
    /// Both hold.
    And(Box<Expr>, Box<Expr>),
    /// Either holds.
    Or(Box<Expr>, Box<Expr>),
}

/// A parse error, with the 1-based column in the expression text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExprError {
    /// 1-based column of the offending token.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ExprError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "column {}: {}", self.column, self.message)
    }
}

/// A compiled `having` clause: the expression and the aggregates it needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Having {
    expr: Expr,
    aggregates: Vec<Aggregate>,
    source: String,
}

impl Having {
    /// Parses an expression such as `avg(speed) > 80 AND count(*) >= 3`.
    ///
    /// # Errors
    /// An [`ExprError`] with the column of the first offending token.
    pub fn parse(text: &str) -> Result<Having, ExprError> {
        let tokens = tokenize(text)?;
        let mut p = Parser {
            tokens,
            pos: 0,
            aggregates: Vec::new(),
            len: text.len(),
        };
        let expr = p.expr()?;
        if let Some(t) = p.tokens.get(p.pos) {
            return Err(ExprError {
                column: t.col,
                message: format!("unexpected `{}` after a complete expression", t.kind),
            });
        }
        Ok(Having {
            expr,
            aggregates: p.aggregates,
            source: text.to_string(),
        })
    }

    /// The aggregates the expression reads, in order of first use.
    pub fn aggregates(&self) -> &[Aggregate] {
        &self.aggregates
    }

    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the expression holds for these aggregates.
    pub fn holds(&self, acc: &Acc) -> bool {
        self.eval(&self.expr, acc)
    }

    fn eval(&self, e: &Expr, acc: &Acc) -> bool {
        match e {
            Expr::Cmp(a, op, b) => op.apply(self.operand(a, acc), self.operand(b, acc)),
            Expr::And(a, b) => self.eval(a, acc) && self.eval(b, acc),
            Expr::Or(a, b) => self.eval(a, acc) || self.eval(b, acc),
        }
    }

    fn operand(&self, o: &Operand, acc: &Acc) -> f64 {
        match o {
            Operand::Number(n) => *n,
            Operand::Agg(i) => self.aggregates.get(*i).map_or(0.0, |a| acc.value(a)),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Num(f64),
    Op(CmpOp),
    And,
    Or,
    LParen,
    RParen,
    Star,
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Ident(s) => write!(f, "{s}"),
            Tok::Num(n) => write!(f, "{n}"),
            Tok::Op(op) => write!(f, "{op:?}"),
            Tok::And => write!(f, "AND"),
            Tok::Or => write!(f, "OR"),
            Tok::LParen => write!(f, "("),
            Tok::RParen => write!(f, ")"),
            Tok::Star => write!(f, "*"),
        }
    }
}

#[derive(Debug, Clone)]
struct Token {
    kind: Tok,
    col: usize,
}

fn tokenize(text: &str) -> Result<Vec<Token>, ExprError> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let col = i + 1;
        let two = bytes.get(i..i + 2);
        let (kind, len) = match c {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'(' => (Tok::LParen, 1),
            b')' => (Tok::RParen, 1),
            b'*' => (Tok::Star, 1),
            b'>' | b'<' | b'=' | b'!' => match two {
                Some(b">=") => (Tok::Op(CmpOp::Ge), 2),
                Some(b"<=") => (Tok::Op(CmpOp::Le), 2),
                Some(b"==") => (Tok::Op(CmpOp::Eq), 2),
                Some(b"!=") => (Tok::Op(CmpOp::Ne), 2),
                _ if c == b'>' => (Tok::Op(CmpOp::Gt), 1),
                _ if c == b'<' => (Tok::Op(CmpOp::Lt), 1),
                _ if c == b'=' => (Tok::Op(CmpOp::Eq), 1),
                _ => {
                    return Err(ExprError {
                        column: col,
                        message: "`!` must be followed by `=`".into(),
                    });
                }
            },
            b'&' | b'|' => match two {
                Some(b"&&") => (Tok::And, 2),
                Some(b"||") => (Tok::Or, 2),
                _ => {
                    return Err(ExprError {
                        column: col,
                        message: format!("use `{0}{0}` or AND/OR", c as char),
                    });
                }
            },
            b'0'..=b'9' | b'.' | b'-' => {
                let start = i;
                let mut j = i + 1;
                while j < bytes.len() && (bytes[j].is_ascii_digit() || bytes[j] == b'.') {
                    j += 1;
                }
                let s = &text[start..j];
                let n: f64 = s.parse().map_err(|_| ExprError {
                    column: col,
                    message: format!("`{s}` is not a number"),
                })?;
                (Tok::Num(n), j - start)
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                let mut j = i + 1;
                while j < bytes.len() && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_') {
                    j += 1;
                }
                let word = &text[start..j];
                let kind = match word.to_ascii_lowercase().as_str() {
                    "and" => Tok::And,
                    "or" => Tok::Or,
                    _ => Tok::Ident(word.to_string()),
                };
                (kind, j - start)
            }
            _ => {
                let ch = text[i..].chars().next().unwrap_or('?');
                return Err(ExprError {
                    column: col,
                    message: format!("unexpected character `{ch}`"),
                });
            }
        };
        out.push(Token { kind, col });
        i += len;
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    aggregates: Vec<Aggregate>,
    len: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.pos).map(|t| &t.kind)
    }

    fn col(&self) -> usize {
        self.tokens.get(self.pos).map_or(self.len + 1, |t| t.col)
    }

    fn err<T>(&self, message: impl Into<String>) -> Result<T, ExprError> {
        Err(ExprError {
            column: self.col(),
            message: message.into(),
        })
    }

    fn found(&self) -> String {
        self.peek()
            .map_or_else(|| "end of expression".to_string(), |t| format!("`{t}`"))
    }

    fn expect(&mut self, want: Tok, what: &str) -> Result<(), ExprError> {
        if self.peek() == Some(&want) {
            self.pos += 1;
            Ok(())
        } else {
            self.err(format!("expected {what}, found {}", self.found()))
        }
    }

    fn expr(&mut self) -> Result<Expr, ExprError> {
        let mut left = self.and()?;
        while self.peek() == Some(&Tok::Or) {
            self.pos += 1;
            let right = self.and()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, ExprError> {
        let mut left = self.cmp()?;
        while self.peek() == Some(&Tok::And) {
            self.pos += 1;
            let right = self.cmp()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn cmp(&mut self) -> Result<Expr, ExprError> {
        if self.peek() == Some(&Tok::LParen) {
            self.pos += 1;
            let e = self.expr()?;
            self.expect(Tok::RParen, "`)`")?;
            return Ok(e);
        }
        let start_col = self.col();
        let a = self.operand()?;
        let op = match self.peek() {
            Some(Tok::Op(op)) => *op,
            _ => {
                return self.err(format!(
                    "expected a comparison (> >= < <= = !=), found {}",
                    self.found()
                ));
            }
        };
        self.pos += 1;
        let b = self.operand()?;
        if matches!((&a, &b), (Operand::Number(_), Operand::Number(_))) {
            return Err(ExprError {
                column: start_col,
                message: "a comparison needs at least one aggregate".into(),
            });
        }
        Ok(Expr::Cmp(a, op, b))
    }

    fn operand(&mut self) -> Result<Operand, ExprError> {
        match self.peek().cloned() {
            Some(Tok::Num(n)) => {
                self.pos += 1;
                Ok(Operand::Number(n))
            }
            Some(Tok::Ident(name)) => {
                let Some(func) = AggFn::from_name(&name) else {
                    return self.err(format!(
                        "unknown aggregate `{name}` (expected avg, min, max, count or sum)"
                    ));
                };
                self.pos += 1;
                self.expect(Tok::LParen, "`(` after the aggregate")?;
                let field = match self.peek().cloned() {
                    Some(Tok::Star) if func == AggFn::Count => None,
                    Some(Tok::Star) => return self.err("only count accepts `*`"),
                    Some(Tok::Ident(f)) => match NumField::from_name(&f) {
                        Some(field) => Some(field),
                        None => {
                            return self.err(format!(
                                "unknown numeric field `{f}` (expected speed, accelerator, \
                                 brake or steering_angle)"
                            ));
                        }
                    },
                    _ => return self.err(format!("expected a field, found {}", self.found())),
                };
                self.pos += 1;
                self.expect(Tok::RParen, "`)`")?;
                let agg = Aggregate { func, field };
                let idx = match self.aggregates.iter().position(|a| *a == agg) {
                    Some(i) => i,
                    None => {
                        self.aggregates.push(agg);
                        self.aggregates.len() - 1
                    }
                };
                Ok(Operand::Agg(idx))
            }
            _ => self.err(format!(
                "expected a number or an aggregate, found {}",
                self.found()
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acc(speeds: &[f64]) -> Acc {
        let mut a = Acc::default();
        for s in speeds {
            a.add(&[*s, 1.0, 0.0, -5.0]);
        }
        a
    }

    #[test]
    fn avg_threshold_matches_the_seed_rule() {
        let h = Having::parse("avg(speed) > 80").unwrap();
        assert!(h.holds(&acc(&[81.0, 82.0])));
        assert!(!h.holds(&acc(&[80.0, 80.0])));
        assert!(!h.holds(&acc(&[100.0, 60.0])));
        assert_eq!(h.aggregates().len(), 1);
        assert_eq!(h.aggregates()[0].to_string(), "avg(speed)");
    }

    #[test]
    fn and_binds_tighter_than_or_and_parentheses_override() {
        let h = Having::parse("max(speed) > 200 or avg(speed) > 80 and count(*) >= 3").unwrap();
        assert!(h.holds(&acc(&[90.0, 90.0, 90.0])));
        assert!(!h.holds(&acc(&[90.0, 90.0])));
        assert!(h.holds(&acc(&[210.0])));
        let h = Having::parse("(max(speed) > 200 || avg(speed) > 80) && count(*) >= 3").unwrap();
        assert!(!h.holds(&acc(&[210.0])));
    }

    #[test]
    fn every_aggregate_and_operator_evaluates() {
        let a = acc(&[10.0, 20.0, 30.0]);
        for (text, want) in [
            ("sum(speed) = 60", true),
            ("min(speed) == 10", true),
            ("max(speed) >= 30", true),
            ("avg(speed) < 20.5", true),
            ("count(speed) <= 2", false),
            ("sum(accelerator) != 3", false),
            ("min(steering_angle) < -4", true),
            ("80 < avg(speed)", false),
            ("max(speed) > min(speed)", true),
        ] {
            assert_eq!(Having::parse(text).unwrap().holds(&a), want, "{text}");
        }
    }

    #[test]
    fn repeated_aggregates_are_shared() {
        let h = Having::parse("avg(speed) > 80 AND avg(speed) < 200").unwrap();
        assert_eq!(h.aggregates().len(), 1);
    }

    #[test]
    fn errors_point_at_the_offending_column() {
        for (text, col, needle) in [
            ("avg(sped) > 80", 5, "unknown numeric field `sped`"),
            ("mean(speed) > 80", 1, "unknown aggregate `mean`"),
            ("avg(speed) 80", 12, "expected a comparison"),
            ("avg(speed) > ", 14, "end of expression"),
            ("avg(speed) > 80 80", 17, "unexpected"),
            ("sum(*) > 1", 5, "only count"),
            ("1 > 2", 1, "at least one aggregate"),
            ("avg(speed) > 80 & count(*) > 1", 17, "`&&`"),
            ("(avg(speed) > 80", 17, "expected `)`"),
            ("avg(speed) # 80", 12, "unexpected character"),
        ] {
            let e = Having::parse(text).unwrap_err();
            assert_eq!(e.column, col, "{text}: {e}");
            assert!(e.message.contains(needle), "{text}: {e}");
        }
    }

    #[test]
    fn accumulators_merge_like_adding() {
        let mut a = acc(&[10.0, 20.0]);
        a.merge(&acc(&[30.0]));
        assert_eq!(a, acc(&[10.0, 20.0, 30.0]));
    }
}
