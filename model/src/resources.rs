//! Resource names and lineage: name templates of the slot time, reading a slot back out of a
//! written name (for data-triggered jobs), and the lineage graph as Graphviz DOT. Lineage names
//! are folded in SQL (`sisyphus.lineage_name`) when edges are recorded.
//!
//! A template such as `reporting.events.{date}` is resolved *in SQL*
//! (`sisyphus.resource_name`, migrations/0004) — the guardian and the scheduler both go through
//! that one function. This module checks templates when a job is defined and does the inverse:
//! every placeholder is fixed-width digits, so a name can be matched against a template without a
//! regular expression and a `LIKE` pattern finds the candidates.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use chrono::{Days, NaiveDate, NaiveDateTime};

/// The longest resource name accepted.
pub const MAX_NAME_LEN: usize = 500;

/// A placeholder of a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Date,
    Yesterday,
    Year,
    Month,
    Day,
    Hour,
    Minute,
}

impl Field {
    const ALL: [(&'static str, Field); 7] = [
        ("date", Field::Date),
        ("yesterday", Field::Yesterday),
        ("year", Field::Year),
        ("month", Field::Month),
        ("day", Field::Day),
        ("hour", Field::Hour),
        ("minute", Field::Minute),
    ];

    fn width(self) -> usize {
        match self {
            Field::Date | Field::Yesterday => 10,
            Field::Year => 4,
            _ => 2,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Field(Field),
}

/// A checked resource name, possibly with placeholders of the slot time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    text: String,
    parts: Vec<Part>,
}

impl Template {
    /// Checks a name or template: not empty, at most 500 characters, no whitespace or control
    /// characters, and braces only around a known placeholder.
    pub fn parse(text: &str) -> Result<Template, String> {
        if text.is_empty() {
            return Err("a resource name is empty".into());
        }
        if text.len() > MAX_NAME_LEN {
            return Err(format!(
                "resource name `{}…` is longer than {MAX_NAME_LEN} characters",
                &text[..40]
            ));
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "resource name `{text}` contains whitespace or a control character"
            ));
        }
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find(['{', '}']) {
            if rest[open..].starts_with('}') {
                return Err(format!("resource name `{text}` has a `}}` without `{{`"));
            }
            if open > 0 {
                parts.push(Part::Literal(rest[..open].to_string()));
            }
            let Some(close) = rest[open..].find('}') else {
                return Err(format!("resource name `{text}` has a `{{` without `}}`"));
            };
            let key = &rest[open + 1..open + close];
            let field = Field::ALL
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, f)| *f)
                .ok_or_else(|| {
                    format!(
                        "resource name `{text}`: unknown placeholder `{{{key}}}`; use {{date}}, \
                         {{yesterday}}, {{year}}, {{month}}, {{day}}, {{hour}} or {{minute}}"
                    )
                })?;
            parts.push(Part::Field(field));
            rest = &rest[open + close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_string()));
        }
        Ok(Template {
            text: text.to_string(),
            parts,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the name has no placeholder.
    pub fn is_fixed(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Literal(_)))
    }

    /// Whether a name matching this template tells a whole date (so a slot can be read back).
    pub fn names_a_date(&self) -> bool {
        let has = |f| self.parts.contains(&Part::Field(f));
        has(Field::Date)
            || has(Field::Yesterday)
            || (has(Field::Year) && has(Field::Month) && has(Field::Day))
    }

    /// A `LIKE` pattern that matches exactly the names this template can resolve to (up to the
    /// digits, which [`slot_of`](Self::slot_of) checks).
    pub fn like_pattern(&self) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(l) => {
                    for c in l.chars() {
                        if matches!(c, '%' | '_' | '\\') {
                            out.push('\\');
                        }
                        out.push(c);
                    }
                }
                Part::Field(f) => out.extend(std::iter::repeat_n('_', f.width())),
            }
        }
        out
    }

    /// The local slot time a written name stands for, if it matches the template: the inverse of
    /// `sisyphus.resource_name` (`{yesterday}` of slot D is D − 1 day, so it reads back as D).
    pub fn slot_of(&self, name: &str) -> Option<NaiveDateTime> {
        let mut rest = name;
        let (mut year, mut month, mut day, mut hour, mut minute) = (None, None, None, None, None);
        let set = |slot: &mut Option<u32>, v: u32| match *slot {
            Some(old) if old != v => false,
            _ => {
                *slot = Some(v);
                true
            }
        };
        for part in &self.parts {
            match part {
                Part::Literal(l) => rest = rest.strip_prefix(l.as_str())?,
                Part::Field(f) => {
                    let text = rest.get(..f.width())?;
                    rest = &rest[f.width()..];
                    let ok = match f {
                        Field::Date | Field::Yesterday => {
                            let mut d = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
                            if *f == Field::Yesterday {
                                d = d.checked_add_days(Days::new(1))?;
                            }
                            use chrono::Datelike;
                            set(&mut year, d.year() as u32)
                                && set(&mut month, d.month())
                                && set(&mut day, d.day())
                        }
                        _ => {
                            if !text.bytes().all(|b| b.is_ascii_digit()) {
                                return None;
                            }
                            let v: u32 = text.parse().ok()?;
                            let slot = match f {
                                Field::Year => &mut year,
                                Field::Month => &mut month,
                                Field::Day => &mut day,
                                Field::Hour => &mut hour,
                                _ => &mut minute,
                            };
                            set(slot, v)
                        }
                    };
                    if !ok {
                        return None;
                    }
                }
            }
        }
        if !rest.is_empty() {
            return None;
        }
        NaiveDate::from_ymd_opt(year? as i32, month?, day?)?.and_hms_opt(
            hour.unwrap_or(0),
            minute.unwrap_or(0),
            0,
        )
    }
}

impl std::fmt::Display for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// One input→output edge of the lineage history.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Edge {
    /// `''` for an output written without inputs.
    pub source: String,
    pub target: String,
    /// The job (`PROJECT/NAME`) or client owner that wrote `target` from `source`.
    pub writer: String,
    pub times: i64,
}

/// The lineage graph as Graphviz DOT: resources are nodes, each edge is labelled with its
/// writers. Outputs written without inputs appear as nodes of their own.
pub fn to_dot(edges: &[Edge]) -> String {
    let mut nodes = BTreeSet::new();
    let mut labelled: std::collections::BTreeMap<(&str, &str), Vec<&str>> = Default::default();
    for e in edges {
        nodes.insert(e.target.as_str());
        if !e.source.is_empty() {
            nodes.insert(e.source.as_str());
            labelled
                .entry((e.source.as_str(), e.target.as_str()))
                .or_default()
                .push(e.writer.as_str());
        }
    }
    let mut out = String::from("digraph sisyphus {\n    rankdir=LR;\n    node [shape=box];\n");
    for n in &nodes {
        let _ = writeln!(out, "    {};", quote(n));
    }
    for ((s, t), writers) in &labelled {
        let _ = writeln!(
            out,
            "    {} -> {} [label={}];",
            quote(s),
            quote(t),
            quote(&writers.join(", "))
        );
    }
    out.push_str("}\n");
    out
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_refuse_bad_names_with_the_reason() {
        for (bad, says) in [
            ("", "empty"),
            ("a b", "whitespace"),
            ("x.{week}", "unknown placeholder `{week}`"),
            ("x.{date", "without `}`"),
            ("x.}date", "without `{`"),
        ] {
            let e = Template::parse(bad).expect_err("refused");
            assert!(e.contains(says), "{bad}: {e}");
        }
        assert!(Template::parse(&"x".repeat(501)).is_err());
    }

    #[test]
    fn a_slot_reads_back_from_a_name() {
        let t = Template::parse("reporting.events.{date}.h{hour}").expect("valid");
        assert!(!t.is_fixed() && t.names_a_date());
        assert_eq!(t.like_pattern(), "reporting.events.__________.h__");
        let slot = t.slot_of("reporting.events.2026-11-23.h07").expect("valid");
        assert_eq!(slot.to_string(), "2026-11-23 07:00:00");
        assert_eq!(t.slot_of("reporting.events.2026-11-23.h7x"), None);
        assert_eq!(t.slot_of("reporting.events.2026-13-23.h07"), None);
        assert_eq!(t.slot_of("reporting.events.2026-11-23.h07.extra"), None);
        let y = Template::parse("daily.{yesterday}").expect("valid");
        assert_eq!(
            y.slot_of("daily.2026-02-28").expect("valid").to_string(),
            "2026-03-01 00:00:00"
        );
        let parts = Template::parse("p_{year}/{month}/{day}").expect("valid");
        assert_eq!(parts.like_pattern(), "p\\_____/__/__");
        assert_eq!(parts.slot_of("p_2026/02/29"), None);
        assert_eq!(
            parts.slot_of("p_2028/02/29").expect("valid").to_string(),
            "2028-02-29 00:00:00"
        );
        assert!(!Template::parse("x.{hour}").expect("valid").names_a_date());
        let both = Template::parse("x.{date}.{day}").expect("valid");
        assert_eq!(
            both.slot_of("x.2026-11-23.24"),
            None,
            "fields that disagree"
        );
        assert!(both.slot_of("x.2026-11-23.23").is_some());
    }

    #[test]
    fn dot_shows_roots_and_labelled_edges() {
        let e = |s: &str, t: &str, w: &str| Edge {
            source: s.into(),
            target: t.into(),
            writer: w.into(),
            times: 1,
        };
        let dot = to_dot(&[
            e("", "a.*", "P/fetch"),
            e("a.*", "b.*", "P/agg"),
            e("a.*", "b.*", "P/agg2"),
        ]);
        assert!(dot.starts_with("digraph sisyphus {"));
        assert!(dot.contains("    \"a.*\";\n"));
        assert!(dot.contains("\"a.*\" -> \"b.*\" [label=\"P/agg, P/agg2\"];"));
        assert!(!dot.contains("\"\" ->"));
    }
}
