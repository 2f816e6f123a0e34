//! MLflow's search filter and order-by syntax, as the client sends it (the MLflow API and the
//! web UI's runs table read the same):
//! `params.alpha = '0.5' AND metrics.loss < 1 AND tag.`mlflow.prompt.is_prompt` != 'true'`,
//! `name LIKE 'fraud%'`; `["metrics.loss ASC", "attributes.start_time DESC"]`.

use std::cmp::Ordering;

use super::error::Error;

/// Which namespace a field name lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    Attribute,
    Param,
    Metric,
    Tag,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub kind: FieldKind,
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Like,
    ILike,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Str(String),
    Num(f64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Clause {
    pub field: Field,
    pub op: Op,
    pub value: Literal,
}

/// A value an entity has for a field.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    Str(String),
    Num(f64),
}

fn bad(message: impl Into<String>) -> Error {
    Error::bad(format!("Invalid filter: {}", message.into()))
}

struct Lexer<'a> {
    rest: &'a str,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Quoted(String),
    Number(f64),
    Op(Op),
    And,
}

impl<'a> Lexer<'a> {
    fn next(&mut self) -> Result<Option<Token>, Error> {
        self.rest = self.rest.trim_start();
        let Some(c) = self.rest.chars().next() else {
            return Ok(None);
        };
        if c == '\'' || c == '"' || c == '`' {
            let body = &self.rest[1..];
            let end = body.find(c).ok_or_else(|| bad("unterminated quote"))?;
            let text = body[..end].to_string();
            self.rest = &body[end + 1..];
            return Ok(Some(if c == '`' {
                Token::Ident(text)
            } else {
                Token::Quoted(text)
            }));
        }
        for (symbol, op) in [
            ("!=", Op::Ne),
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("=", Op::Eq),
            ("<", Op::Lt),
            (">", Op::Gt),
        ] {
            if let Some(rest) = self.rest.strip_prefix(symbol) {
                self.rest = rest;
                return Ok(Some(Token::Op(op)));
            }
        }
        let end = self
            .rest
            .find(|ch: char| ch.is_whitespace() || "=!<>'\"`".contains(ch))
            .unwrap_or(self.rest.len());
        let word = &self.rest[..end];
        if word.is_empty() {
            return Err(bad(format!("unexpected character '{c}'")));
        }
        let upper = word.to_ascii_uppercase();
        self.rest = &self.rest[end..];
        Ok(Some(match upper.as_str() {
            "AND" => Token::And,
            "LIKE" => Token::Op(Op::Like),
            "ILIKE" => Token::Op(Op::ILike),
            _ => match word.parse::<f64>() {
                Ok(n)
                    if word
                        .starts_with(|ch: char| ch.is_ascii_digit() || ch == '-' || ch == '.') =>
                {
                    Token::Number(n)
                }
                _ => Token::Ident(word.to_string()),
            },
        }))
    }
}

/// Splits `prefix.name` (the name possibly quoted separately) into a field.
fn field(ident: String, lexer: &mut Lexer<'_>) -> Result<Field, Error> {
    let (prefix, mut name) = match ident.split_once('.') {
        Some((prefix, name)) => (prefix.to_ascii_lowercase(), name.to_string()),
        None => (String::new(), ident.clone()),
    };
    let kind = match prefix.as_str() {
        "params" | "param" => FieldKind::Param,
        "metrics" | "metric" => FieldKind::Metric,
        "tags" | "tag" => FieldKind::Tag,
        "attributes" | "attribute" | "attr" | "run" => FieldKind::Attribute,
        "" => {
            return Ok(Field {
                kind: FieldKind::Attribute,
                name: ident,
            });
        }
        // A dotted attribute-free name such as `name.x` is not MLflow syntax.
        other => return Err(bad(format!("unknown entity type '{other}'"))),
    };
    if name.is_empty() {
        // `tag.`quoted.name``: the name is the next (backquoted) token.
        let save = lexer.rest;
        match lexer.next()? {
            Some(Token::Ident(quoted)) | Some(Token::Quoted(quoted)) => name = quoted,
            _ => {
                lexer.rest = save;
                return Err(bad("a field name is missing"));
            }
        }
    }
    Ok(Field { kind, name })
}

/// Parses a filter; an empty one has no clauses.
pub fn parse_filter(filter: &str) -> Result<Vec<Clause>, Error> {
    let mut lexer = Lexer { rest: filter };
    let mut clauses = Vec::new();
    loop {
        let Some(token) = lexer.next()? else {
            if clauses.is_empty() {
                return Ok(clauses);
            }
            return Err(bad("the filter ends after AND"));
        };
        let Token::Ident(ident) = token else {
            return Err(bad("expected a field name"));
        };
        let field = field(ident, &mut lexer)?;
        let Some(Token::Op(op)) = lexer.next()? else {
            return Err(bad(format!("expected a comparison after '{}'", field.name)));
        };
        let value = match lexer.next()? {
            Some(Token::Quoted(s)) => Literal::Str(s),
            Some(Token::Number(n)) => Literal::Num(n),
            _ => {
                return Err(bad(format!(
                    "expected a value after the comparison on '{}'",
                    field.name
                )))
            }
        };
        clauses.push(Clause { field, op, value });
        match lexer.next()? {
            None => return Ok(clauses),
            Some(Token::And) => continue,
            Some(_) => return Err(bad("clauses must be joined with AND")),
        }
    }
}

/// SQL LIKE: `%` any run, `_` any one character.
pub fn like(pattern: &str, text: &str, case_insensitive: bool) -> bool {
    let (pattern, text): (Vec<char>, Vec<char>) = if case_insensitive {
        (
            pattern.to_lowercase().chars().collect(),
            text.to_lowercase().chars().collect(),
        )
    } else {
        (pattern.chars().collect(), text.chars().collect())
    };
    fn go(p: &[char], t: &[char]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some('%') => (0..=t.len()).any(|i| go(&p[1..], &t[i..])),
            Some('_') => !t.is_empty() && go(&p[1..], &t[1..]),
            Some(c) => t.first() == Some(c) && go(&p[1..], &t[1..]),
        }
    }
    go(&pattern, &text)
}

impl Clause {
    /// Whether an entity's value for this clause's field satisfies it; a missing value does not
    /// (except `!=`, which a missing value satisfies).
    pub fn holds(&self, value: Option<&FieldValue>) -> bool {
        let Some(value) = value else {
            return self.op == Op::Ne;
        };
        let ordering = match (value, &self.value) {
            (FieldValue::Num(a), Literal::Num(b)) => a.partial_cmp(b),
            (FieldValue::Str(a), Literal::Str(b)) => Some(a.as_str().cmp(b.as_str())),
            (FieldValue::Num(a), Literal::Str(b)) => {
                b.parse::<f64>().ok().and_then(|b| a.partial_cmp(&b))
            }
            (FieldValue::Str(a), Literal::Num(b)) => {
                a.parse::<f64>().ok().and_then(|a| a.partial_cmp(b))
            }
        };
        match self.op {
            Op::Like | Op::ILike => match (value, &self.value) {
                (FieldValue::Str(text), Literal::Str(pattern)) => {
                    like(pattern, text, self.op == Op::ILike)
                }
                _ => false,
            },
            Op::Eq => ordering == Some(Ordering::Equal),
            Op::Ne => ordering != Some(Ordering::Equal),
            Op::Lt => ordering == Some(Ordering::Less),
            Op::Le => matches!(ordering, Some(Ordering::Less | Ordering::Equal)),
            Op::Gt => ordering == Some(Ordering::Greater),
            Op::Ge => matches!(ordering, Some(Ordering::Greater | Ordering::Equal)),
        }
    }
}

/// Whether every clause holds for an entity, given how it looks its fields up.
pub fn matches(clauses: &[Clause], lookup: impl Fn(&Field) -> Option<FieldValue>) -> bool {
    clauses.iter().all(|c| c.holds(lookup(&c.field).as_ref()))
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrderBy {
    pub field: Field,
    pub descending: bool,
}

/// Parses `"metrics.loss ASC"`-style order clauses.
pub fn parse_order_by(items: &[String]) -> Result<Vec<OrderBy>, Error> {
    items
        .iter()
        .filter(|item| !item.trim().is_empty())
        .map(|item| {
            let trimmed = item.trim();
            let (spec, descending) = match trimmed.rsplit_once(char::is_whitespace) {
                Some((spec, dir)) if dir.eq_ignore_ascii_case("desc") => (spec.trim(), true),
                Some((spec, dir)) if dir.eq_ignore_ascii_case("asc") => (spec.trim(), false),
                _ => (trimmed, false),
            };
            let mut lexer = Lexer { rest: spec };
            let Some(Token::Ident(ident)) = lexer.next()? else {
                return Err(Error::bad(format!("Invalid order_by clause '{item}'")));
            };
            let field = field(ident, &mut lexer)?;
            Ok(OrderBy { field, descending })
        })
        .collect()
}

/// Compares two optional field values: numbers before strings, missing values last.
pub fn compare(a: Option<&FieldValue>, b: Option<&FieldValue>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(FieldValue::Num(x)), Some(FieldValue::Num(y))) => {
            x.partial_cmp(y).unwrap_or(Ordering::Equal)
        }
        (Some(FieldValue::Str(x)), Some(FieldValue::Str(y))) => x.cmp(y),
        (Some(FieldValue::Num(_)), Some(FieldValue::Str(_))) => Ordering::Less,
        (Some(FieldValue::Str(_)), Some(FieldValue::Num(_))) => Ordering::Greater,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filters_the_client_sends() {
        let c = parse_filter("params.alpha = '0.5'").unwrap();
        assert_eq!(
            c[0].field,
            Field {
                kind: FieldKind::Param,
                name: "alpha".into()
            }
        );
        let c = parse_filter("name LIKE 'capture%' AND tag.`mlflow.prompt.is_prompt` != 'true'")
            .unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(
            c[1].field,
            Field {
                kind: FieldKind::Tag,
                name: "mlflow.prompt.is_prompt".into()
            }
        );
        assert_eq!(c[1].op, Op::Ne);
        let c = parse_filter("metrics.loss < 0.5 and attributes.status = \"FINISHED\"").unwrap();
        assert_eq!(c[0].value, Literal::Num(0.5));
        assert_eq!(c[1].field.kind, FieldKind::Attribute);
        let c = parse_filter("name='capture-model-manual'").unwrap();
        assert_eq!(c[0].value, Literal::Str("capture-model-manual".into()));
        assert!(parse_filter("").unwrap().is_empty());
        for bad in [
            "params.a =",
            "= 'x'",
            "params.a = 'x' OR params.b = 'y'",
            "params.a = 'x",
            "weird.a = 1",
            "a = 1 AND",
        ] {
            assert!(parse_filter(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn clauses_hold_like_sql() {
        let c = &parse_filter("tag.x != 'true'").unwrap()[0];
        assert!(c.holds(None));
        assert!(!c.holds(Some(&FieldValue::Str("true".into()))));
        let c = &parse_filter("metrics.loss <= 1").unwrap()[0];
        assert!(c.holds(Some(&FieldValue::Num(0.3))));
        assert!(!c.holds(Some(&FieldValue::Num(f64::NAN))));
        assert!(like("cap%", "capture", false));
        assert!(like("c_p%", "cap", false));
        assert!(!like("CAP%", "capture", false));
        assert!(like("CAP%", "capture", true));
    }

    #[test]
    fn order_by_clauses() {
        let o = parse_order_by(&[
            "metrics.loss ASC".into(),
            "attributes.start_time DESC".into(),
            "name".into(),
        ])
        .unwrap();
        assert_eq!(
            o[0],
            OrderBy {
                field: Field {
                    kind: FieldKind::Metric,
                    name: "loss".into()
                },
                descending: false
            }
        );
        assert!(o[1].descending);
        assert_eq!(o[2].field.name, "name");
        assert_eq!(compare(Some(&FieldValue::Num(1.0)), None), Ordering::Less);
    }
}
