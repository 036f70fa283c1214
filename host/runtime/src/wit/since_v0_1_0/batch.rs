//! Columnar batches from the guest into `infragraph_core`'s rows.
//!
//! Everything here comes from an untrusted guest: every length, offset and row index is
//! checked, and a malformed batch is refused with a message naming the column and the
//! fault, never a panic.

use infragraph_core as core;

use super::emit;

/// Why a batch could not be read.
pub(crate) type Malformed = String;

pub(crate) fn nodes(b: emit::NodeBatch) -> Result<core::NodeBatch, Malformed> {
    let n = b.ids.ends.len();
    let mut ids = shared(b.ids, n, "ids")?;
    let (columns, mut sources) = sources(b.columns, n)?;
    let rows = (0..n)
        .map(|i| core::NodeRow {
            id: ids.next().unwrap_or_else(|| "".into()),
            values: row(&mut sources, i),
        })
        .collect();
    Ok(core::NodeBatch {
        label: b.label,
        columns,
        rows,
    })
}

pub(crate) fn edges(b: emit::EdgeBatch) -> Result<core::EdgeBatch, Malformed> {
    let n = b.from.ends.len();
    let mut from = shared(b.from, n, "from")?;
    let mut to = shared(b.to, n, "to")?;
    let (columns, mut sources) = sources(b.columns, n)?;
    let rows = (0..n)
        .map(|i| core::EdgeRow {
            from: from.next().unwrap_or_else(|| "".into()),
            to: to.next().unwrap_or_else(|| "".into()),
            values: row(&mut sources, i),
        })
        .collect();
    Ok(core::EdgeBatch {
        rel_type: b.rel_type,
        from_label: b.from_label,
        from_key: b.from_key,
        to_label: b.to_label,
        to_key: b.to_key,
        columns,
        rows,
    })
}

/// Row `i`'s values, one from each column. Rows are built one at a time, every column
/// read in step, so each row's values are written while they are in cache.
#[inline]
fn row(sources: &mut [Source], i: usize) -> Vec<core::Value> {
    let mut values = Vec::with_capacity(sources.len());
    for s in sources {
        values.push(s.next(i));
    }
    values
}

/// The column names, and a checked reader of each column's `n` values.
fn sources(columns: Vec<emit::Column>, n: usize) -> Result<(Vec<String>, Vec<Source>), Malformed> {
    let mut names = Vec::with_capacity(columns.len());
    let mut sources = Vec::with_capacity(columns.len());
    for c in columns {
        let source =
            Source::new(c.values, c.absent, n).map_err(|e| format!("column {:?}: {e}", c.name))?;
        names.push(c.name);
        sources.push(source);
    }
    Ok((names, sources))
}

/// One column's values, checked, read row by row.
struct Source {
    /// Rows that lack the property, ascending.
    absent: Vec<u32>,
    /// The next entry of `absent` to meet.
    next_absent: usize,
    values: Values,
}

enum Values {
    Boolean(std::vec::IntoIter<bool>),
    Int(std::vec::IntoIter<i64>),
    Float(std::vec::IntoIter<f64>),
    Text(core::Split),
    /// Lists, decoded up front: rare enough not to matter.
    Decoded(std::vec::IntoIter<core::Value>),
    Mixed(std::vec::IntoIter<super::types::Value>),
}

impl Source {
    fn new(v: emit::Values, absent: Vec<u32>, n: usize) -> Result<Source, Malformed> {
        fn count<T>(v: Vec<T>, n: usize) -> Result<std::vec::IntoIter<T>, Malformed> {
            match v.len() == n {
                true => Ok(v.into_iter()),
                false => Err(format!("{} values for {n} rows", v.len())),
            }
        }
        let mut prev = None;
        for &row in &absent {
            if prev.is_some_and(|p| row <= p) {
                return Err(format!(
                    "absent rows must ascend; {row} follows {}",
                    prev.unwrap_or_default()
                ));
            }
            if row as usize >= n {
                return Err(format!("absent row {row} is beyond the batch's {n} rows"));
            }
            prev = Some(row);
        }
        let values = match v {
            emit::Values::Boolean(v) => Values::Boolean(count(v, n)?),
            emit::Values::Int(v) => Values::Int(count(v, n)?),
            emit::Values::Float(v) => Values::Float(count(v, n)?),
            emit::Values::Text(t) => Values::Text(shared(t, n, "values")?),
            emit::Values::TextList(l) => {
                let mut items = Strings::new(l.items, None, "items")?;
                let lists: Vec<_> = spans(&l.ends, n, items.len())?
                    .into_iter()
                    .map(|len| core::Value::TextList((0..len).map(|_| items.next()).collect()))
                    .collect();
                Values::Decoded(lists.into_iter())
            }
            emit::Values::IntList(l) => {
                let spans = spans(&l.ends, n, l.items.len())?;
                let mut items = l.items.into_iter();
                let lists: Vec<_> = spans
                    .into_iter()
                    .map(|len| core::Value::IntList(items.by_ref().take(len).collect()))
                    .collect();
                Values::Decoded(lists.into_iter())
            }
            emit::Values::Mixed(v) => Values::Mixed(count(v, n)?),
        };
        Ok(Source {
            absent,
            next_absent: 0,
            values,
        })
    }

    /// Row `i`'s value; rows are read in order, each once.
    #[inline]
    fn next(&mut self, i: usize) -> core::Value {
        let absent = self.absent.get(self.next_absent) == Some(&(i as u32));
        if absent {
            self.next_absent += 1;
        }
        // Every list was checked to hold a value per row, so `next` never runs dry; the
        // fallbacks only keep a broken invariant from becoming a panic.
        let v = match &mut self.values {
            Values::Boolean(v) => core::Value::Bool(v.next().unwrap_or_default()),
            Values::Int(v) => core::Value::Int(v.next().unwrap_or_default()),
            Values::Float(v) => core::Value::Float(v.next().unwrap_or_default()),
            Values::Text(s) if absent => {
                s.next();
                return core::Value::Null;
            }
            Values::Text(s) => s.next().map_or(core::Value::Null, core::Value::Text),
            Values::Decoded(v) => v.next().unwrap_or(core::Value::Null),
            Values::Mixed(v) => v.next().map_or(core::Value::Null, core::Value::from),
        };
        if absent { core::Value::Null } else { v }
    }
}

/// Strings laid end to end, checked, handed out one at a time.
struct Strings {
    data: String,
    ends: Vec<u32>,
    /// The next string to hand out, and where it starts.
    at: usize,
    start: usize,
}

impl Strings {
    /// Checks `t`'s offsets (and that it holds `n` strings, when given). `what` names
    /// the list in errors.
    fn new(t: emit::Texts, n: Option<usize>, what: &str) -> Result<Strings, Malformed> {
        check(&t, n, what)?;
        Ok(Strings {
            data: t.data,
            ends: t.ends,
            at: 0,
            start: 0,
        })
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    /// The next string.
    #[inline]
    fn next(&mut self) -> String {
        let end = self.ends.get(self.at).map_or(self.start, |&e| e as usize);
        let s = self
            .data
            .get(self.start..end)
            .unwrap_or_default()
            .to_owned();
        self.at += 1;
        self.start = end;
        s
    }
}

/// Checks that `t`'s ends mark out strings of its data, one after another, using it all
/// (and that there are `n`, when given). `what` names the list in errors.
fn check(t: &emit::Texts, n: Option<usize>, what: &str) -> Result<(), Malformed> {
    count(t, n, what)?;
    core::Text::check_ends(&t.data, &t.ends).map_err(|e| format!("{what}: {e}"))
}

/// Checks that `t` holds `n` strings, when given.
fn count(t: &emit::Texts, n: Option<usize>, what: &str) -> Result<(), Malformed> {
    match n {
        Some(n) if t.ends.len() != n => Err(format!("{} {what} for {n} rows", t.ends.len())),
        _ => Ok(()),
    }
}

/// A column's text values, checked, handed out one at a time as slices of the column's
/// data (one copy of it per batch, rather than an allocation per value).
fn shared(t: emit::Texts, n: usize, what: &str) -> Result<core::Split, Malformed> {
    count(&t, Some(n), what)?;
    core::Text::split(std::sync::Arc::from(t.data), t.ends).map_err(|e| format!("{what}: {e}"))
}

/// The lengths of the `n` lists that `ends` marks out of `items` entries.
fn spans(ends: &[u32], n: usize, items: usize) -> Result<Vec<usize>, Malformed> {
    if ends.len() != n {
        return Err(format!("{} list ends for {n} rows", ends.len()));
    }
    let mut start = 0;
    let mut out = Vec::with_capacity(n);
    for (i, &end) in ends.iter().enumerate() {
        let end = end as usize;
        if end < start || end > items {
            return Err(format!(
                "list {i} spans items {start}..{end} of {items}, which is backwards or out of bounds"
            ));
        }
        out.push(end - start);
        start = end;
    }
    if start != items {
        return Err(format!(
            "the lists end at item {start} but there are {items}"
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use infragraph_core::Value;

    fn texts_of(strings: &[&str]) -> emit::Texts {
        let mut t = emit::Texts {
            data: String::new(),
            ends: Vec::new(),
        };
        for s in strings {
            t.data.push_str(s);
            t.ends.push(t.data.len() as u32);
        }
        t
    }

    fn column(name: &str, absent: &[u32], values: emit::Values) -> emit::Column {
        emit::Column {
            name: name.into(),
            absent: absent.to_vec(),
            values,
        }
    }

    fn batch(columns: Vec<emit::Column>) -> emit::NodeBatch {
        emit::NodeBatch {
            label: "Thing".into(),
            ids: texts_of(&["a", "bé", "c"]),
            columns,
        }
    }

    #[test]
    fn every_type_becomes_rows() {
        let b = nodes(batch(vec![
            column(
                "flag",
                &[1],
                emit::Values::Boolean(vec![true, false, false]),
            ),
            column("n", &[], emit::Values::Int(vec![1, 2, 3])),
            column("x", &[0, 2], emit::Values::Float(vec![0.0, 2.5, 0.0])),
            column("s", &[], emit::Values::Text(texts_of(&["", "ü", "zz"]))),
            column(
                "tags",
                &[2],
                emit::Values::TextList(emit::TextLists {
                    items: texts_of(&["p", "q", "r"]),
                    ends: vec![2, 3, 3],
                }),
            ),
            column(
                "ports",
                &[],
                emit::Values::IntList(emit::IntLists {
                    items: vec![80, 443],
                    ends: vec![0, 2, 2],
                }),
            ),
            column(
                "any",
                &[],
                emit::Values::Mixed(vec![
                    super::super::types::Value::Int(1),
                    super::super::types::Value::Text("t".into()),
                    super::super::types::Value::Null,
                ]),
            ),
        ]))
        .unwrap();
        assert_eq!(b.columns, ["flag", "n", "x", "s", "tags", "ports", "any"]);
        let ids: Vec<_> = b.rows.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["a", "bé", "c"]);
        assert_eq!(
            b.rows[0].values,
            [
                Value::Bool(true),
                Value::Int(1),
                Value::Null,
                Value::Text("".into()),
                Value::TextList(vec!["p".into(), "q".into()]),
                Value::IntList(vec![]),
                Value::Int(1),
            ]
        );
        assert_eq!(
            b.rows[1].values,
            [
                Value::Null,
                Value::Int(2),
                Value::Float(2.5),
                Value::Text("ü".into()),
                Value::TextList(vec!["r".into()]),
                Value::IntList(vec![80, 443]),
                Value::Text("t".into()),
            ]
        );
        assert_eq!(b.rows[2].values[4], Value::Null);
        assert_eq!(b.rows[2].values[6], Value::Null);
    }

    #[test]
    fn malformed_batches_are_refused_with_the_fault() {
        let cases: Vec<(emit::NodeBatch, &str)> = vec![
            (
                batch(vec![column("n", &[], emit::Values::Int(vec![1, 2]))]),
                "column \"n\": 2 values for 3 rows",
            ),
            (
                batch(vec![column("n", &[2, 1], emit::Values::Int(vec![1, 2, 3]))]),
                "absent rows must ascend; 1 follows 2",
            ),
            (
                batch(vec![column("n", &[3], emit::Values::Int(vec![1, 2, 3]))]),
                "absent row 3 is beyond the batch's 3 rows",
            ),
            (
                batch(vec![column(
                    "s",
                    &[],
                    emit::Values::Text(emit::Texts {
                        data: "é".into(),
                        ends: vec![1, 2, 2],
                    }),
                )]),
                "not on character boundaries",
            ),
            (
                batch(vec![column(
                    "s",
                    &[],
                    emit::Values::Text(emit::Texts {
                        data: "abc".into(),
                        ends: vec![2, 1, 3],
                    }),
                )]),
                "string 1 spans bytes 2..1",
            ),
            (
                batch(vec![column(
                    "s",
                    &[],
                    emit::Values::Text(emit::Texts {
                        data: "abcd".into(),
                        ends: vec![1, 2, 3],
                    }),
                )]),
                "the strings end at byte 3 but the data holds 4",
            ),
            (
                batch(vec![column(
                    "ports",
                    &[],
                    emit::Values::IntList(emit::IntLists {
                        items: vec![1],
                        ends: vec![0, 5, 5],
                    }),
                )]),
                "list 1 spans items 0..5 of 1",
            ),
            (
                emit::NodeBatch {
                    label: "Thing".into(),
                    ids: emit::Texts {
                        data: "ab".into(),
                        ends: vec![u32::MAX],
                    },
                    columns: vec![],
                },
                "ids: string 0 spans bytes 0..4294967295 of 2",
            ),
        ];
        for (b, want) in cases {
            let err = nodes(b).unwrap_err();
            assert!(err.contains(want), "{err:?} does not say {want:?}");
        }
    }

    #[test]
    fn edges_need_as_many_ends_as_starts() {
        let b = emit::EdgeBatch {
            rel_type: "LINKS".into(),
            from_label: "Thing".into(),
            from_key: "id".into(),
            to_label: "Thing".into(),
            to_key: "id".into(),
            from: texts_of(&["a", "b"]),
            to: texts_of(&["c"]),
            columns: vec![],
        };
        assert_eq!(edges(b).unwrap_err(), "1 to for 2 rows");
    }
}
