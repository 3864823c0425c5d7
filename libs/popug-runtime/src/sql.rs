//! Hand-written SQL that each connection keeps prepared.
//!
//! diesel's `sql_query` marks every query unsafe to cache, so
//! diesel-async prepares it afresh at each call: a round trip to parse and
//! describe it, another to run it, and a plan made each time. The set-based
//! statements on the hot paths (the ledger's posting, the read model's
//! upserts, the outbox and inbox inserts) have fixed text whatever the batch
//! size, since their rows come as arrays; [`query`] lets the connection's
//! statement cache keep them, so a call is one round trip and Postgres can
//! reuse a generic plan.
//!
//! ```ignore
//! popug_runtime::sql::query("INSERT INTO inbox (consumer, event_id) SELECT $1, unnest($2::uuid[])")
//!     .bind::<Text, _>(consumer)
//!     .bind::<Array<Uuid>, _>(ids)
//!     .execute(conn)
//!     .await?;
//! ```
//!
//! Placeholders are `$1`, `$2`, … as in `sql_query`, each naming a bind in
//! the order the binds were added; one may appear more than once. A `$` and
//! digits are a placeholder wherever they stand, in a string literal or a
//! comment too, so keep those out of the text (bind such values instead).
//! The text must be fixed (not built from values): every distinct text is a
//! statement kept on every connection.

use std::{borrow::Cow, marker::PhantomData};

use diesel::{
    QueryResult,
    pg::Pg,
    query_builder::{AstPass, Query, QueryFragment, QueryId},
    serialize::ToSql,
    sql_types::{HasSqlType, Untyped},
};

/// A statement of fixed text and its binds; run it with diesel-async's
/// `RunQueryDsl`, and load rows into `QueryableByName` types.
#[derive(Debug, Clone)]
#[must_use = "a query runs only when executed or loaded"]
pub struct Sql<B> {
    text: Cow<'static, str>,
    binds: B,
}

/// The statement `text`, with no binds yet.
pub fn query(text: impl Into<Cow<'static, str>>) -> Sql<()> {
    Sql {
        text: text.into(),
        binds: (),
    }
}

impl<B: Binds> Sql<B> {
    /// Adds the value of the next placeholder, of SQL type `ST`.
    pub fn bind<ST, V>(self, value: V) -> Sql<(B, Bind<ST, V>)>
    where
        Pg: HasSqlType<ST>,
        V: ToSql<ST, Pg>,
    {
        Sql {
            text: self.text,
            binds: (
                self.binds,
                Bind {
                    value,
                    sql_type: PhantomData,
                },
            ),
        }
    }
}

/// One bound value of SQL type `ST`.
#[derive(Debug, Clone)]
pub struct Bind<ST, V> {
    value: V,
    sql_type: PhantomData<ST>,
}

/// The binds of a statement, numbered from 1 in the order they were added.
pub trait Binds {
    /// How many there are.
    const COUNT: usize;

    /// Pushes bind number `number` at the current place of the query.
    fn push<'b>(&'b self, number: usize, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()>;
}

impl Binds for () {
    const COUNT: usize = 0;

    fn push<'b>(&'b self, number: usize, _: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        Err(diesel::result::Error::QueryBuilderError(
            format!("the statement uses ${number}, which has no bind").into(),
        ))
    }
}

impl<B, ST, V> Binds for (B, Bind<ST, V>)
where
    B: Binds,
    Pg: HasSqlType<ST>,
    V: ToSql<ST, Pg>,
{
    const COUNT: usize = B::COUNT + 1;

    fn push<'b>(&'b self, number: usize, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        if number == Self::COUNT {
            out.push_bind_param::<ST, V>(&self.1.value)
        } else {
            self.0.push(number, out)
        }
    }
}

/// Splits `text` at its placeholders: each piece of text and the number of
/// the placeholder after it (none after the last). A `$` without digits
/// after it is text.
fn placeholders(text: &str) -> Vec<(&str, Option<usize>)> {
    let mut parts = Vec::new();
    let (mut start, mut at) = (0, 0);
    while let Some(offset) = text[at..].find('$') {
        let dollar = at + offset;
        let digits = text[dollar + 1..]
            .bytes()
            .take_while(u8::is_ascii_digit)
            .count();
        at = dollar + 1;
        if let Ok(number) = text[at..at + digits].parse() {
            parts.push((&text[start..dollar], Some(number)));
            at += digits;
            start = at;
        }
    }
    parts.push((&text[start..], None));
    parts
}

impl<B: Binds> QueryFragment<Pg> for Sql<B> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        for (before, number) in placeholders(&self.text) {
            out.push_sql(before);
            if let Some(number) = number {
                self.binds.push(number, &mut out)?;
            }
        }
        Ok(())
    }
}

impl<B> QueryId for Sql<B> {
    type QueryId = ();

    // Cached by its text and bind types, as any query without a static id.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<B> Query for Sql<B> {
    type SqlType = Untyped;
}

#[cfg(test)]
mod tests {
    use super::placeholders;

    #[test]
    fn placeholders_split_the_text_and_leave_other_dollars_in_it() {
        assert_eq!(
            placeholders("SELECT $1, $12 || '$' || $x FROM t WHERE a = $1"),
            vec![
                ("SELECT ", Some(1)),
                (", ", Some(12)),
                (" || '$' || $x FROM t WHERE a = ", Some(1)),
                ("", None),
            ]
        );
        assert_eq!(placeholders("SELECT 1"), vec![("SELECT 1", None)]);
    }
}
