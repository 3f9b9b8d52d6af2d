//! The rule file: TOML parsing and validation with precise, line-numbered messages.
//!
//! ```toml
//! [[rule]]
//! name = "overspeed"
//! window = "30s"            # tumbling, Esper time_batch semantics (SPEC §4)
//! group_by = "car_number"
//! having = "avg(speed) > 80"
//! allowed_lateness = "5s"   # optional, default 0s
//! set_key = "{window_date}" # yyyyMMdd of the window
//! member = "{car_number}"
//! ttl = "7d"                # optional, default 7d
//! ```
//!
//! Template placeholders: `{window_date}` (yyyyMMdd of the window start), `{window_start}`
//! and `{window_end}` (yyyyMMddHHmmss), `{rule}` and the `group_by` field itself (e.g.
//! `{car_number}`). This module only turns text into a validated [`RuleSet`]; evaluation
//! lives in [`super::engine`].

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::expr::Having;
use crate::error::{Error, Result};

/// Longest accepted window or lateness: one day (event-time state is bounded by it).
pub const MAX_WINDOW: Duration = Duration::from_secs(86_400);

/// A text field of a driving event that rules can group by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupField {
    /// Car number, e.g. `V0042`.
    CarNumber,
    /// Driving area code, e.g. `A07`.
    AreaCode,
    /// Turn signal, `L`/`R`/`N`.
    TurnSignal,
}

impl GroupField {
    /// The field's name in rule files.
    pub fn name(self) -> &'static str {
        match self {
            GroupField::CarNumber => "car_number",
            GroupField::AreaCode => "area_code",
            GroupField::TurnSignal => "turn_signal",
        }
    }

    fn from_name(s: &str) -> Option<GroupField> {
        [
            GroupField::CarNumber,
            GroupField::AreaCode,
            GroupField::TurnSignal,
        ]
        .into_iter()
        .find(|f| f.name() == s)
    }
}

/// One piece of a key/member template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(String),
    WindowDate,
    WindowStart,
    WindowEnd,
    Rule,
    Group,
}

/// A `set_key` or `member` template such as `"{window_date}"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

/// The values a template can refer to.
#[derive(Debug, Clone, Copy)]
pub struct TemplateContext<'a> {
    /// The rule's name.
    pub rule: &'a str,
    /// The group's value (e.g. the car number).
    pub group: &'a str,
    /// Window start, milliseconds of event time (local time read as UTC).
    pub window_start_ms: i64,
    /// Window end (exclusive), milliseconds.
    pub window_end_ms: i64,
}

/// Formats event-time milliseconds with a chrono format string (`%Y%m%d`...).
pub fn format_event_time(ms: i64, fmt: &str) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.naive_utc().format(fmt).to_string())
        .unwrap_or_else(|| format!("invalid-time-{ms}"))
}

impl Template {
    fn parse(text: &str, group: GroupField) -> std::result::Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Lit(rest[..open].to_string()));
            }
            let Some(close) = rest[open..].find('}') else {
                return Err(format!("unclosed `{{` in `{text}`"));
            };
            let name = &rest[open + 1..open + close];
            parts.push(match name {
                "window_date" => Part::WindowDate,
                "window_start" => Part::WindowStart,
                "window_end" => Part::WindowEnd,
                "rule" => Part::Rule,
                n if n == group.name() => Part::Group,
                n => {
                    return Err(format!(
                        "unknown placeholder `{{{n}}}` (expected window_date, window_start, \
                         window_end, rule or {})",
                        group.name()
                    ));
                }
            });
            rest = &rest[open + close + 1..];
        }
        if rest.contains('}') {
            return Err(format!("stray `}}` in `{text}`"));
        }
        if !rest.is_empty() {
            parts.push(Part::Lit(rest.to_string()));
        }
        if parts.is_empty() {
            return Err("must not be empty".into());
        }
        Ok(Template { parts })
    }

    /// Renders the template.
    pub fn render(&self, ctx: &TemplateContext<'_>) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::WindowDate => out.push_str(&format_event_time(ctx.window_start_ms, "%Y%m%d")),
                Part::WindowStart => {
                    out.push_str(&format_event_time(ctx.window_start_ms, "%Y%m%d%H%M%S"))
                }
                Part::WindowEnd => {
                    out.push_str(&format_event_time(ctx.window_end_ms, "%Y%m%d%H%M%S"))
                }
                Part::Rule => out.push_str(ctx.rule),
                Part::Group => out.push_str(ctx.group),
            }
        }
        out
    }
}

/// One validated rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Unique name, `[A-Za-z0-9_-]+`.
    pub name: String,
    /// Tumbling window length in milliseconds (windows start at multiples of it).
    pub window_ms: i64,
    /// The field events are grouped by.
    pub group_by: GroupField,
    /// The condition a group's window must satisfy to fire.
    pub having: Having,
    /// How far behind the watermark's base an event may be, in milliseconds.
    pub allowed_lateness_ms: i64,
    /// The set key a firing adds to.
    pub set_key: Template,
    /// The member a firing adds.
    pub member: Template,
    /// The TTL set on the key after each firing.
    pub ttl: Duration,
}

impl Rule {
    /// Start of the window containing event time `t_ms`.
    pub fn window_start(&self, t_ms: i64) -> i64 {
        t_ms.div_euclid(self.window_ms) * self.window_ms
    }
}

/// All rules of one file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RuleSet {
    /// The rules, in file order.
    pub rules: Vec<Rule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    rule: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: Spanned<String>,
    window: Spanned<String>,
    group_by: Spanned<String>,
    having: Spanned<String>,
    allowed_lateness: Option<Spanned<String>>,
    set_key: Spanned<String>,
    member: Spanned<String>,
    ttl: Option<Spanned<String>>,
}

struct Ctx<'a> {
    file: &'a str,
    text: &'a str,
    rule: String,
}

impl Ctx<'_> {
    fn line(&self, offset: usize) -> usize {
        self.text[..offset.min(self.text.len())]
            .bytes()
            .filter(|b| *b == b'\n')
            .count()
            + 1
    }

    fn invalid<T>(&self, field: &str, v: &Spanned<String>, message: String) -> Result<T> {
        Err(Error::RuleInvalid {
            file: self.file.to_string(),
            line: self.line(v.span().start),
            rule: self.rule.clone(),
            field: field.to_string(),
            message,
        })
    }

    fn duration(&self, field: &str, v: &Spanned<String>, min: Duration) -> Result<Duration> {
        let d = match humantime::parse_duration(v.get_ref()) {
            Ok(d) => d,
            Err(e) => {
                return self.invalid(
                    field,
                    v,
                    format!(
                        "`{}` is not a duration ({e}); write e.g. \"30s\"",
                        v.get_ref()
                    ),
                );
            }
        };
        if d < min {
            return self.invalid(field, v, format!("must be at least {min:?}, got {d:?}"));
        }
        Ok(d)
    }
}

impl RuleSet {
    /// Parses and validates rule-file text; `file` names it in messages.
    ///
    /// # Errors
    /// [`Error::RuleSyntax`] for TOML/shape errors (with line and column),
    /// [`Error::RuleInvalid`] for a bad value (with line, rule and field).
    pub fn parse(text: &str, file: &str) -> Result<RuleSet> {
        let raw: RawFile = toml::from_str(text).map_err(|e| Error::RuleSyntax {
            file: file.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        let mut names = HashSet::new();
        let mut rules = Vec::with_capacity(raw.rule.len());
        for (i, r) in raw.rule.into_iter().enumerate() {
            let mut ctx = Ctx {
                file,
                text,
                rule: format!("#{}", i + 1),
            };
            let name = r.name.get_ref().clone();
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                return ctx.invalid(
                    "name",
                    &r.name,
                    format!("`{name}` must be non-empty letters, digits, `_` or `-`"),
                );
            }
            ctx.rule = name.clone();
            if !names.insert(name.clone()) {
                return ctx.invalid("name", &r.name, "duplicate rule name".into());
            }
            let window = ctx.duration("window", &r.window, Duration::from_secs(1))?;
            if window > MAX_WINDOW
                || window.subsec_millis() != 0 && window.as_nanos() % 1_000_000 != 0
            {
                return ctx.invalid(
                    "window",
                    &r.window,
                    format!("must be whole milliseconds and at most {MAX_WINDOW:?}"),
                );
            }
            let lateness = match &r.allowed_lateness {
                Some(v) => {
                    let d = ctx.duration("allowed_lateness", v, Duration::ZERO)?;
                    if d > MAX_WINDOW {
                        return ctx.invalid(
                            "allowed_lateness",
                            v,
                            format!("must be at most {MAX_WINDOW:?}"),
                        );
                    }
                    d
                }
                None => Duration::ZERO,
            };
            let ttl = match &r.ttl {
                Some(v) => ctx.duration("ttl", v, Duration::from_secs(1))?,
                None => Duration::from_secs(7 * 86_400),
            };
            let Some(group_by) = GroupField::from_name(r.group_by.get_ref()) else {
                return ctx.invalid(
                    "group_by",
                    &r.group_by,
                    format!(
                        "unknown field `{}` (expected car_number, area_code or turn_signal)",
                        r.group_by.get_ref()
                    ),
                );
            };
            let having = match Having::parse(r.having.get_ref()) {
                Ok(h) => h,
                Err(e) => return ctx.invalid("having", &r.having, e.to_string()),
            };
            let set_key = match Template::parse(r.set_key.get_ref(), group_by) {
                Ok(t) => t,
                Err(m) => return ctx.invalid("set_key", &r.set_key, m),
            };
            let member = match Template::parse(r.member.get_ref(), group_by) {
                Ok(t) => t,
                Err(m) => return ctx.invalid("member", &r.member, m),
            };
            rules.push(Rule {
                name,
                window_ms: window.as_millis() as i64,
                group_by,
                having,
                allowed_lateness_ms: lateness.as_millis() as i64,
                set_key,
                member,
                ttl,
            });
        }
        Ok(RuleSet { rules })
    }

    /// Reads and validates a rule file.
    ///
    /// # Errors
    /// [`Error::Io`] if it cannot be read, else as [`RuleSet::parse`].
    pub fn load(path: &Path) -> Result<RuleSet> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| Error::io("read rule file", path, source))?;
        RuleSet::parse(&text, &path.display().to_string())
    }

    /// The longest allowed lateness of any rule (0 with no rules).
    pub fn max_lateness_ms(&self) -> i64 {
        self.rules
            .iter()
            .map(|r| r.allowed_lateness_ms)
            .max()
            .unwrap_or(0)
    }
}

/// The SPEC's overspeed rule as a rule file, for tests here and in the worker.
#[cfg(test)]
pub(crate) const OVERSPEED_RULE: &str = r#"
[[rule]]
name = "overspeed"
window = "30s"
group_by = "car_number"
having = "avg(speed) > 80"
allowed_lateness = "5s"
set_key = "{window_date}"
member = "{car_number}"
ttl = "7d"
"#;

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = OVERSPEED_RULE;

    #[test]
    fn the_issue_example_parses() {
        let set = RuleSet::parse(GOOD, "rules.toml").unwrap();
        let r = &set.rules[0];
        assert_eq!(r.name, "overspeed");
        assert_eq!(r.window_ms, 30_000);
        assert_eq!(r.allowed_lateness_ms, 5_000);
        assert_eq!(r.ttl, Duration::from_secs(604_800));
        assert_eq!(r.group_by, GroupField::CarNumber);
        let ctx = TemplateContext {
            rule: "overspeed",
            group: "V0042",
            // 2026-11-22 14:30:00 read as UTC.
            window_start_ms: 1_795_357_800_000,
            window_end_ms: 1_795_357_830_000,
        };
        assert_eq!(r.set_key.render(&ctx), "20261122");
        assert_eq!(r.member.render(&ctx), "V0042");
    }

    #[test]
    fn the_shipped_default_rule_file_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/rules.toml");
        let set = RuleSet::load(&path).unwrap();
        assert_eq!(set.rules.len(), 1);
        assert_eq!(set.rules[0].having.source(), "avg(speed) > 80");
    }

    fn err_of(text: &str) -> String {
        RuleSet::parse(text, "r.toml").unwrap_err().to_string()
    }

    #[test]
    fn invalid_values_name_line_rule_and_field() {
        let bad = GOOD.replace("avg(speed) > 80", "avg(sped) > 80");
        assert_eq!(
            err_of(&bad),
            "r.toml:6: rule `overspeed` field `having`: column 5: unknown numeric field `sped` \
             (expected speed, accelerator, brake or steering_angle)"
        );
        let bad = GOOD.replace("\"30s\"", "\"30 parsecs\"");
        assert!(err_of(&bad).starts_with(
            "r.toml:4: rule `overspeed` field `window`: `30 parsecs` is not a duration"
        ));
        let bad = GOOD.replace("\"car_number\"", "\"driver\"");
        assert!(
            err_of(&bad)
                .starts_with("r.toml:5: rule `overspeed` field `group_by`: unknown field `driver`")
        );
        let bad = GOOD.replace("\"{car_number}\"", "\"{area_code}\"");
        assert!(err_of(&bad).starts_with(
            "r.toml:9: rule `overspeed` field `member`: unknown placeholder `{area_code}`"
        ));
        let bad = GOOD.replace("\"7d\"", "\"0s\"");
        assert!(
            err_of(&bad).starts_with("r.toml:10: rule `overspeed` field `ttl`: must be at least")
        );
        let bad = GOOD.replace("\"30s\"", "\"2days\"");
        assert!(err_of(&bad).contains("field `window`: must be whole milliseconds and at most"));
        let bad = GOOD.replace("\"overspeed\"", "\"over speed\"");
        assert!(err_of(&bad).starts_with("r.toml:3: rule `#1` field `name`"));
    }

    #[test]
    fn duplicate_names_and_shape_errors_are_refused() {
        let twice = format!("{GOOD}{GOOD}");
        assert!(
            err_of(&twice)
                .starts_with("r.toml:13: rule `overspeed` field `name`: duplicate rule name")
        );
        let unknown = GOOD.replace("ttl = \"7d\"", "tll = \"7d\"");
        let e = err_of(&unknown);
        assert!(
            e.contains("line 10") && e.contains("unknown field `tll`"),
            "{e}"
        );
        let missing = GOOD.replace("having = \"avg(speed) > 80\"\n", "");
        let e = err_of(&missing);
        assert!(e.contains("missing field `having`"), "{e}");
        let broken = GOOD.replace("window = \"30s\"", "window = 30s");
        assert!(err_of(&broken).contains("line 4"));
    }

    #[test]
    fn defaults_and_empty_files() {
        let minimal = GOOD
            .replace("allowed_lateness = \"5s\"\n", "")
            .replace("ttl = \"7d\"\n", "");
        let r = &RuleSet::parse(&minimal, "m").unwrap().rules[0];
        assert_eq!(r.allowed_lateness_ms, 0);
        assert_eq!(r.ttl, Duration::from_secs(604_800));
        assert!(RuleSet::parse("", "e").unwrap().rules.is_empty());
    }

    #[test]
    fn windows_align_to_multiples_of_their_length() {
        let r = &RuleSet::parse(GOOD, "g").unwrap().rules[0];
        assert_eq!(r.window_start(29_999), 0);
        assert_eq!(r.window_start(30_000), 30_000);
        assert_eq!(r.window_start(-1), -30_000);
    }
}
