//! tracker-svc's queries. Every task change commits together with its events
//! in the outbox; the accounts replica is written only by account events.

use diesel::{
    ExpressionMethods as _, OptionalExtension as _, QueryDsl as _, Queryable, QueryableByName,
    Selectable, SelectableHelper as _,
    sql_types::{Array, BigInt, Double, Nullable, Text, Timestamptz},
};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use popug_bus::Outbox;
use popug_runtime::{Clock, database::Pool};
use popug_token::Role;
use uuid::Uuid;

use crate::{
    domain::{HistoryEntry, HistoryKind, NewTask, Task, TaskStatus, events},
    error::Error,
    schema::{accounts, task_history, tasks},
};

#[derive(Queryable, QueryableByName, Selectable)]
#[diesel(table_name = tasks)]
struct TaskRow {
    task_id: Uuid,
    number: i64,
    title: String,
    jira_id: Option<String>,
    description: String,
    status: String,
    assignee_id: Uuid,
    created_at: chrono::DateTime<chrono::Utc>,
    completed_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<TaskRow> for Task {
    fn from(row: TaskRow) -> Self {
        Task {
            task_id: row.task_id,
            number: row.number,
            title: row.title,
            jira_id: row.jira_id,
            description: row.description,
            status: if row.status == "done" {
                TaskStatus::Done
            } else {
                TaskStatus::Open
            },
            assignee_id: row.assignee_id,
            created_at: row.created_at,
            completed_at: row.completed_at,
        }
    }
}

/// One task moved by a shuffle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, QueryableByName)]
pub struct Moved {
    /// The task.
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub task_id: Uuid,
    /// Its new assignee.
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub assignee_id: Uuid,
    /// Its assignee before.
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub previous_assignee_id: Uuid,
}

/// A page filter: everyone's tasks or one assignee's, of one status or any.
#[derive(Debug, Clone, Copy, Default)]
pub struct TaskFilter {
    /// Only this assignee's tasks.
    pub assignee_id: Option<Uuid>,
    /// Only tasks with this status.
    pub status: Option<TaskStatus>,
    /// Only tasks numbered below this (keyset paging, newest first).
    pub before: Option<i64>,
}

/// tracker-svc's database.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    outbox: Outbox,
    /// Business time for `created_at`, `completed_at` and the history.
    clock: Clock,
}

async fn assignable_workers(conn: &mut AsyncPgConnection) -> Result<Vec<Uuid>, Error> {
    Ok(accounts::table
        .filter(accounts::role.eq(Role::Worker.as_str()))
        .filter(accounts::active.eq(true))
        .order(accounts::account_id)
        .select(accounts::account_id)
        .load(conn)
        .await?)
}

/// Appends facts `(event id, task, assignee)` of one kind to the history,
/// in the transaction that enqueued their events.
async fn record(
    conn: &mut AsyncPgConnection,
    facts: &[(Uuid, Uuid, Uuid)],
    kind: HistoryKind,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<(), Error> {
    let column = |pick: fn(&(Uuid, Uuid, Uuid)) -> Uuid| facts.iter().map(pick).collect::<Vec<_>>();
    popug_runtime::sql::query(
        "INSERT INTO task_history (event_id, task_id, account_id, kind, occurred_at) \
         SELECT event_id, task_id, account_id, $4, $5 FROM unnest($1::uuid[], $2::uuid[], $3::uuid[]) \
             AS f(event_id, task_id, account_id)",
    )
    .bind::<Array<diesel::sql_types::Uuid>, _>(column(|f| f.0))
    .bind::<Array<diesel::sql_types::Uuid>, _>(column(|f| f.1))
    .bind::<Array<diesel::sql_types::Uuid>, _>(column(|f| f.2))
    .bind::<Text, _>(kind.as_str())
    .bind::<Timestamptz, _>(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Why `caller` could not complete `task_id`: the task is unknown, someone
/// else's, or done.
async fn why_not_completed(conn: &mut AsyncPgConnection, task_id: Uuid, caller: Uuid) -> Error {
    let task = tasks::table
        .find(task_id)
        .select(TaskRow::as_select())
        .first(conn)
        .await
        .optional();
    match task {
        Err(error) => error.into(),
        Ok(None) => Error::NoSuchTask(task_id.to_string()),
        Ok(Some(row)) if row.assignee_id != caller => Error::NotAssignee,
        Ok(Some(row)) if row.status == TaskStatus::Done.as_str() => {
            Error::AlreadyDone(Task::from(row).key())
        }
        // Reassigned to the caller after the update missed it: at that
        // moment it was someone else's.
        Ok(Some(_)) => Error::NotAssignee,
    }
}

impl Store {
    /// The store over `pool`, writing events to `outbox`, telling time by `clock`.
    pub fn new(pool: Pool, outbox: Outbox, clock: Clock) -> Self {
        Self {
            pool,
            outbox,
            clock,
        }
    }

    /// Inserts `new`, assigned to the active worker at index `pick` modulo
    /// their number (the caller draws `pick` uniformly), and enqueues
    /// `TaskCreated` v2 and `TaskAssigned`.
    pub async fn create_task(
        &self,
        new: &NewTask,
        created_by: Uuid,
        pick: u64,
    ) -> Result<Task, Error> {
        let mut conn = popug_runtime::database::conn(&self.pool).await?;
        let outbox = &self.outbox;
        let now = self.clock.now();
        conn.transaction::<_, Error, _>(async |conn| {
            // The draw and the insert in one statement: the worker at index
            // `pick` modulo their number, in account id order.
            let row: TaskRow = popug_runtime::sql::query(
                "WITH workers AS ( \
                     SELECT account_id FROM accounts WHERE role = 'worker' AND active \
                 ), drawn AS ( \
                     SELECT account_id FROM workers ORDER BY account_id \
                     OFFSET (SELECT ($1::numeric % NULLIF(count(*), 0))::bigint FROM workers) LIMIT 1 \
                 ) \
                 INSERT INTO tasks (task_id, title, jira_id, description, status, assignee_id, created_by, created_at) \
                 SELECT $2, $3, $4, $5, 'open', account_id, $6, $7 FROM drawn \
                 RETURNING task_id, number, title, jira_id, description, status, assignee_id, created_at, completed_at",
            )
            .bind::<Text, _>(pick.to_string())
            .bind::<diesel::sql_types::Uuid, _>(Uuid::now_v7())
            .bind::<Text, _>(new.title.as_str())
            .bind::<Nullable<Text>, _>(new.jira_id.as_ref().map(|id| id.as_str()))
            .bind::<Text, _>(new.description.as_str())
            .bind::<diesel::sql_types::Uuid, _>(created_by)
            .bind::<Timestamptz, _>(now)
            .get_result(conn)
            .await
            .optional()?
            .ok_or(Error::NoWorker)?;
            let task = Task::from(row);
            // Prepared in the order they happen: each takes its time then.
            let created = outbox.prepare(&events::created(&task))?;
            let assignment = outbox.prepare(&events::assigned_at_creation(&task))?;
            let assignment_id = assignment.event_id();
            outbox
                .enqueue_prepared(conn, vec![created, assignment])
                .await?;
            record(
                conn,
                &[(assignment_id, task.task_id, task.assignee_id)],
                HistoryKind::Assigned,
                now,
            )
            .await?;
            Ok(task)
        })
        .await
    }

    /// Reassigns every open task to a uniformly drawn active worker in one
    /// set-based statement, and enqueues one `TaskAssigned` per task in
    /// batched inserts. `seed` (in [-1, 1]) seeds Postgres' `random()` for
    /// this transaction, so a seeded tracker shuffles reproducibly.
    pub async fn shuffle(&self, seed: f64) -> Result<Vec<Moved>, Error> {
        let mut conn = popug_runtime::database::conn(&self.pool).await?;
        let outbox = &self.outbox;
        let now = self.clock.now();
        conn.transaction::<_, Error, _>(async |conn| {
            // One shuffle at a time: a second one waits, then sees the first's
            // assignees as the previous ones (and the two cannot deadlock).
            diesel::sql_query(format!(
                "SELECT pg_advisory_xact_lock({})",
                popug_runtime::advisory_locks::SHUFFLE
            ))
            .execute(conn)
            .await?;
            diesel::sql_query("SELECT setseed($1)")
                .bind::<Double, _>(seed)
                .execute(conn)
                .await?;
            let moved: Vec<Moved> = diesel::sql_query(
                "WITH workers AS ( \
                     SELECT account_id, (row_number() OVER (ORDER BY account_id) - 1)::int AS idx \
                     FROM accounts WHERE role = 'worker' AND active \
                 ), counted AS (SELECT count(*)::int AS n FROM workers), \
                 picks AS ( \
                     SELECT t.task_id, t.assignee_id AS previous_assignee_id, \
                            floor(random() * c.n)::int AS idx \
                     FROM tasks t, counted c \
                     WHERE t.status = 'open' AND c.n > 0 \
                     ORDER BY t.number \
                 ) \
                 UPDATE tasks t SET assignee_id = w.account_id \
                 FROM picks p JOIN workers w ON w.idx = p.idx \
                 WHERE t.task_id = p.task_id AND t.status = 'open' \
                 RETURNING t.task_id, t.assignee_id, p.previous_assignee_id",
            )
            .load(conn)
            .await?;
            if moved.is_empty() && assignable_workers(conn).await?.is_empty() {
                return Err(Error::NoWorker);
            }
            let assigned: Vec<_> = moved
                .iter()
                .map(|m| events::reassigned(m.task_id, m.assignee_id, m.previous_assignee_id))
                .collect();
            let event_ids = outbox.enqueue_all(conn, &assigned).await?;
            let facts: Vec<_> = event_ids
                .into_iter()
                .zip(&moved)
                .map(|(event_id, m)| (event_id, m.task_id, m.assignee_id))
                .collect();
            record(conn, &facts, HistoryKind::Assigned, now).await?;
            Ok(moved)
        })
        .await
    }

    /// Marks `task_id` done if `caller` is its assignee and it is open, and
    /// enqueues `TaskCompleted`.
    pub async fn complete(&self, task_id: Uuid, caller: Uuid) -> Result<Task, Error> {
        let mut conn = popug_runtime::database::conn(&self.pool).await?;
        let outbox = &self.outbox;
        let now = self.clock.now();
        conn.transaction::<_, Error, _>(async |conn| {
            // One statement in the common case; why it did not apply is
            // looked up only when it did not.
            let row: Option<TaskRow> = diesel::update(
                tasks::table
                    .find(task_id)
                    .filter(tasks::assignee_id.eq(caller))
                    .filter(tasks::status.eq(TaskStatus::Open.as_str())),
            )
            .set((
                tasks::status.eq(TaskStatus::Done.as_str()),
                tasks::completed_at.eq(now),
            ))
            .returning(TaskRow::as_returning())
            .get_result(conn)
            .await
            .optional()?;
            let Some(row) = row else {
                return Err(why_not_completed(conn, task_id, caller).await);
            };
            let task = Task::from(row);
            let completion = outbox.enqueue(conn, &events::completed(&task)).await?;
            record(
                conn,
                &[(completion, task.task_id, task.assignee_id)],
                HistoryKind::Completed,
                now,
            )
            .await?;
            Ok(task)
        })
        .await
    }

    /// The task `task_id`, if it exists.
    pub async fn task(&self, task_id: Uuid) -> Result<Option<Task>, Error> {
        let mut conn = popug_runtime::database::conn(&self.pool).await?;
        Ok(tasks::table
            .find(task_id)
            .select(TaskRow::as_select())
            .first(&mut conn)
            .await
            .optional()?
            .map(Task::from))
    }

    /// The task whose key is `POPUG-<number>`, if it exists.
    pub async fn task_numbered(&self, number: i64) -> Result<Option<Task>, Error> {
        let mut conn = popug_runtime::database::conn(&self.pool).await?;
        Ok(tasks::table
            .filter(tasks::number.eq(number))
            .select(TaskRow::as_select())
            .first(&mut conn)
            .await
            .optional()?
            .map(Task::from))
    }

    /// Up to `limit` history entries after the event `after`, in event id
    /// order (event ids grow with time, so pages are stable).
    pub async fn history(
        &self,
        after: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<HistoryEntry>, Error> {
        let mut conn = popug_runtime::database::conn(&self.pool).await?;
        let mut query = task_history::table
            .order(task_history::event_id)
            .limit(limit)
            .into_boxed();
        if let Some(after) = after {
            query = query.filter(task_history::event_id.gt(after));
        }
        let rows: Vec<(Uuid, Uuid, String, Uuid, chrono::DateTime<chrono::Utc>)> = query
            .select((
                task_history::event_id,
                task_history::task_id,
                task_history::kind,
                task_history::account_id,
                task_history::occurred_at,
            ))
            .load(&mut conn)
            .await?;
        Ok(rows
            .into_iter()
            .map(
                |(event_id, task_id, kind, account_id, occurred_at)| HistoryEntry {
                    event_id,
                    task_id,
                    kind: if kind == HistoryKind::Completed.as_str() {
                        HistoryKind::Completed
                    } else {
                        HistoryKind::Assigned
                    },
                    account_id,
                    occurred_at,
                },
            )
            .collect())
    }

    /// Up to `limit` tasks matching `filter`, newest first.
    pub async fn tasks(&self, filter: TaskFilter, limit: i64) -> Result<Vec<Task>, Error> {
        let mut conn = popug_runtime::database::conn(&self.pool).await?;
        let mut query = tasks::table
            .select(TaskRow::as_select())
            .order(tasks::number.desc())
            .limit(limit)
            .into_boxed();
        if let Some(assignee_id) = filter.assignee_id {
            query = query.filter(tasks::assignee_id.eq(assignee_id));
        }
        if let Some(status) = filter.status {
            query = query.filter(tasks::status.eq(status.as_str()));
        }
        if let Some(before) = filter.before {
            query = query.filter(tasks::number.lt(before));
        }
        let rows: Vec<TaskRow> = query.load(&mut conn).await?;
        Ok(rows.into_iter().map(Task::from).collect())
    }
}

/// How many tasks there are; for tests and the bench.
pub async fn open_tasks(conn: &mut AsyncPgConnection) -> Result<i64, diesel::result::Error> {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let count: Count = diesel::sql_query("SELECT count(*) AS n FROM tasks WHERE status = 'open'")
        .get_result(conn)
        .await?;
    Ok(count.n)
}
