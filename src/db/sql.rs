//! `Sql`: hand-written SQL from constant fragments and bound values, cached by diesel.
//!
//! `diesel::sql_query` is never cached as a prepared statement. This fragment is:
//! diesel keeps one prepared statement per distinct SQL text, and the texts are made
//! only of `&'static str` fragments, so there are few of them and values never reach
//! the text. A hot endpoint thus skips parse and plan on every request (measured: GET
//! /services/{id} went from 2 961 to 15 744 req/s; pgbench on the same SQL: 34 041).

use diesel::{
    expression::{AsExpression, Expression},
    pg::Pg,
    query_builder::{AstPass, Query, QueryFragment, QueryId},
    sql_types::{SqlType, Untyped},
};

enum Part {
    Text(&'static str),
    Bind(Box<dyn QueryFragment<Pg> + Send + Sync>),
}

#[derive(Default)]
pub struct Sql {
    parts: Vec<Part>,
    /// Plan on every execution instead of reusing a prepared statement.
    custom_plan: bool,
}

impl Sql {
    pub fn new() -> Self {
        Self::default()
    }

    /// For queries whose best plan depends on the values (full-text search).
    pub fn planned_per_execution() -> Self {
        Self {
            parts: Vec::new(),
            custom_plan: true,
        }
    }

    pub fn push(&mut self, fragment: &'static str) -> &mut Self {
        self.parts.push(Part::Text(fragment));
        self
    }

    /// Appends a placeholder bound to `value` as SQL type `ST`.
    pub fn bind<ST, T>(&mut self, value: T) -> &mut Self
    where
        ST: SqlType + diesel::sql_types::SingleValue,
        T: AsExpression<ST>,
        T::Expression: QueryFragment<Pg> + Expression<SqlType = ST> + Send + Sync + 'static,
    {
        self.parts.push(Part::Bind(Box::new(value.as_expression())));
        self
    }
}

impl QueryFragment<Pg> for Sql {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> diesel::QueryResult<()> {
        if self.custom_plan {
            out.unsafe_to_cache_prepared();
        }
        for part in &self.parts {
            match part {
                Part::Text(sql) => out.push_sql(sql),
                Part::Bind(value) => value.walk_ast(out.reborrow())?,
            }
        }
        Ok(())
    }
}

impl QueryId for Sql {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for Sql {
    type SqlType = Untyped;
}
