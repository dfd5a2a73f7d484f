//! The history file format (`specs/history-format.md`): JSON Lines, one operation a line.
//!
//! ```text
//! {"client": 3, "op": "put", "key": "k", "value": "v", "call": 120, "return": 150}
//! {"client": 1, "op": "get", "key": "k", "output": "v", "call": 130, "return": 160}
//! {"client": 2, "op": "cas", "key": "k", "expected": "v", "value": "w", "output": true, "call": 170, "return": null}
//! ```

use std::io;

use serde_json::{Map, Value};
use thiserror::Error;

use super::{Input, Invalid, Operation, Output};

/// An operation read from a history file, and the line (from 1) it was on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The line it was on, from 1.
    pub line: usize,
    /// The operation.
    pub op: Operation,
}

/// A line that is not a well-formed operation.
#[derive(Debug, Error)]
#[error("line {line}: {problem}")]
pub struct ParseError {
    /// The line, from 1.
    pub line: usize,
    /// What is wrong with it.
    pub problem: Problem,
}

/// What is wrong with a line.
#[derive(Debug, Error)]
pub enum Problem {
    /// It is not JSON.
    #[error("not JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// It is JSON but not an object.
    #[error("not a JSON object")]
    NotAnObject,
    /// A field it needs is missing.
    #[error("missing field \"{0}\"")]
    Missing(&'static str),
    /// A field has the wrong type.
    #[error("field \"{field}\" must be {expected}")]
    WrongType {
        /// The field.
        field: &'static str,
        /// What it must be.
        expected: &'static str,
    },
    /// `op` is not one of the four.
    #[error("unknown op {0:?} (expected \"get\", \"put\", \"append\" or \"cas\")")]
    UnknownOp(String),
    /// A field that this kind of operation does not have (a misspelling, or `output` on a `put`).
    #[error("unknown field {field:?} for a {op}")]
    UnknownField {
        /// The field.
        field: String,
        /// The operation's kind.
        op: &'static str,
    },
    /// An operation that never returned has an `output`.
    #[error("a {op} that never returned has no \"output\"")]
    OutputWithoutReturn {
        /// The operation's kind.
        op: &'static str,
    },
    /// The record is well-typed but not a possible operation (it returns before its call).
    #[error("{0}")]
    Invalid(#[from] Invalid),
}

/// The fields every operation has.
const COMMON: [&str; 5] = ["client", "op", "key", "call", "return"];

/// Reads a history: one operation a line; blank lines are skipped.
pub fn parse(text: &str) -> Result<Vec<Record>, ParseError> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            parse_line(line)
                .map(|op| Record { line: i + 1, op })
                .map_err(|problem| ParseError {
                    line: i + 1,
                    problem,
                })
        })
        .collect()
}

/// Reads one operation.
pub fn parse_line(line: &str) -> Result<Operation, Problem> {
    let Value::Object(fields) = serde_json::from_str::<Value>(line)? else {
        return Err(Problem::NotAnObject);
    };
    let (op, own): (&'static str, &[&str]) = match string(&fields, "op")? {
        "get" => ("get", &["output"]),
        "put" => ("put", &["value"]),
        "append" => ("append", &["value"]),
        "cas" => ("cas", &["expected", "value", "output"]),
        other => return Err(Problem::UnknownOp(other.to_owned())),
    };
    if let Some(field) = fields
        .keys()
        .find(|field| !COMMON.contains(&field.as_str()) && !own.contains(&field.as_str()))
    {
        return Err(Problem::UnknownField {
            field: field.clone(),
            op,
        });
    }
    let client = integer(&fields, "client")?;
    let call = integer(&fields, "call")?;
    let ret = match fields.get("return") {
        None => return Err(Problem::Missing("return")),
        Some(Value::Null) => None,
        Some(ret) => Some(ret.as_u64().ok_or(Problem::WrongType {
            field: "return",
            expected: "a non-negative integer, or null for an operation that never returned",
        })?),
    };
    let key = string(&fields, "key")?.to_owned();
    let input = match op {
        "get" => Input::Get { key },
        "put" => Input::Put {
            key,
            value: string(&fields, "value")?.to_owned(),
        },
        "append" => Input::Append {
            key,
            value: string(&fields, "value")?.to_owned(),
        },
        _ => Input::Cas {
            key,
            expected: string(&fields, "expected")?.to_owned(),
            value: string(&fields, "value")?.to_owned(),
        },
    };
    let output = match (ret, fields.get("output")) {
        (None, None | Some(Value::Null)) => Output::Unknown,
        (None, Some(_)) => return Err(Problem::OutputWithoutReturn { op }),
        (Some(_), _) => match op {
            "get" => Output::Value(string(&fields, "output")?.to_owned()),
            "cas" => Output::Swapped(match fields.get("output") {
                None => return Err(Problem::Missing("output")),
                Some(output) => output.as_bool().ok_or(Problem::WrongType {
                    field: "output",
                    expected: "true or false",
                })?,
            }),
            _ => Output::Ack,
        },
    };
    let op = Operation {
        client,
        call,
        ret,
        input,
        output,
    };
    op.validate()?;
    Ok(op)
}

fn string<'a>(fields: &'a Map<String, Value>, field: &'static str) -> Result<&'a str, Problem> {
    match fields.get(field) {
        None => Err(Problem::Missing(field)),
        Some(value) => value.as_str().ok_or(Problem::WrongType {
            field,
            expected: "a string",
        }),
    }
}

fn integer(fields: &Map<String, Value>, field: &'static str) -> Result<u64, Problem> {
    match fields.get(field) {
        None => Err(Problem::Missing(field)),
        Some(value) => value.as_u64().ok_or(Problem::WrongType {
            field,
            expected: "a non-negative integer",
        }),
    }
}

/// One operation as a line of the format (without the newline). An operation that never returned is
/// written with `"return": null` and no output, whatever its `output` field holds.
pub fn to_line(op: &Operation) -> String {
    let text = |s: &str| Value::from(s).to_string();
    let mut line = format!(
        "{{\"client\":{},\"op\":\"{}\",\"key\":{}",
        op.client,
        op.input.name(),
        text(op.input.key())
    );
    match &op.input {
        Input::Get { .. } => {}
        Input::Put { value, .. } | Input::Append { value, .. } => {
            line += &format!(",\"value\":{}", text(value));
        }
        Input::Cas {
            expected, value, ..
        } => line += &format!(",\"expected\":{},\"value\":{}", text(expected), text(value)),
    }
    if op.ret.is_some() {
        match &op.output {
            Output::Value(value) => line += &format!(",\"output\":{}", text(value)),
            Output::Swapped(swapped) => line += &format!(",\"output\":{swapped}"),
            Output::Ack | Output::Unknown => {}
        }
    }
    match op.ret {
        Some(ret) => line += &format!(",\"call\":{},\"return\":{ret}}}", op.call),
        None => line += &format!(",\"call\":{},\"return\":null}}", op.call),
    }
    line
}

/// Writes a history, one operation a line.
pub fn write(ops: &[Operation], mut out: impl io::Write) -> io::Result<()> {
    for op in ops {
        writeln!(out, "{}", to_line(op))?;
    }
    Ok(())
}
