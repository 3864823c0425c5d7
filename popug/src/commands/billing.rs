//! `popug billing ...`: balances and a day's audit log, statements (also as
//! CSV), the ledger, management's earnings, the income statement, the
//! ledger's invariants and the day close, through billing-svc.

#![allow(clippy::print_stdout)] // balances and statements are these commands' output

use anyhow::bail;
use clap::Subcommand;
use popug::client::{answer, connect, ledger_entries};
use popug_proto::pb::popug::billing::v1::{
    self as billing, billing_service_client::BillingServiceClient,
};
use serde_json::{Value, json};

use super::names;
use crate::{
    config,
    output::{self, dollars},
    session,
};

#[derive(Subcommand)]
pub(crate) enum BillingCommand {
    /// Your balance and a day's audit log.
    Me {
        /// YYYY-MM-DD (default: today).
        #[arg(long, default_value = "", hide_default_value = true)]
        date: String,
    },
    /// Any popug's balance and a day's audit log (accountant, admin).
    Account {
        /// The account's login or id.
        account: String,
        /// YYYY-MM-DD (default: today).
        #[arg(long, default_value = "", hide_default_value = true)]
        date: String,
    },
    /// Fees charged minus rewards paid, day by day (accountant, admin).
    Earnings {
        /// First day, YYYY-MM-DD (default: today).
        #[arg(long, default_value = "", hide_default_value = true)]
        from: String,
        /// Last day, YYYY-MM-DD (default: today).
        #[arg(long, default_value = "", hide_default_value = true)]
        to: String,
    },
    /// Closes a day: pays out positive balances (admin).
    CloseDay {
        /// YYYY-MM-DD (default: yesterday).
        #[arg(long, default_value = "", hide_default_value = true)]
        date: String,
    },
    /// Every entry of every account (accountant, admin).
    Entries,
    /// Checks the ledger's invariants (accountant, admin).
    Check,
    /// A popug's statement: opening balance, every entry with the balance
    /// after it, closing balance (yours; any popug's for accountants, admins).
    Statement {
        /// The account's login or id (default: yours).
        #[arg(long, default_value = "", hide_default_value = true)]
        account: String,
        /// First day, YYYY-MM-DD (default: today).
        #[arg(long, default_value = "", hide_default_value = true)]
        from: String,
        /// Last day, YYYY-MM-DD (default: today).
        #[arg(long, default_value = "", hide_default_value = true)]
        to: String,
        /// Prints CSV (one line per entry) instead of a table.
        #[arg(long, conflicts_with = "json")]
        csv: bool,
    },
    /// The company's books per day: revenue, expense, payouts, net
    /// (accountant, admin).
    Income {
        /// First day, YYYY-MM-DD (default: today).
        #[arg(long, default_value = "", hide_default_value = true)]
        from: String,
        /// Last day, YYYY-MM-DD (default: today).
        #[arg(long, default_value = "", hide_default_value = true)]
        to: String,
    },
}

const ENTRY_COLUMNS: &[&str] = &["day", "kind", "amount", "description", "occurred_at"];
const LEDGER_COLUMNS: &[&str] = &["day", "account", "kind", "amount", "description"];
const STATEMENT_COLUMNS: &[&str] = &["day", "kind", "amount", "balance", "description"];

fn entry_row(entry: &billing::Entry) -> Value {
    let kind = billing::EntryKind::try_from(entry.kind).unwrap_or(billing::EntryKind::Unspecified);
    json!({
        "entry_id": entry.entry_id,
        "day": entry.day,
        "kind": kind.as_str_name().trim_start_matches("ENTRY_KIND_").to_lowercase(),
        "amount_cents": entry.amount_cents,
        "amount": dollars(entry.amount_cents),
        "task_id": entry.task_id,
        "description": entry.description,
        "occurred_at": output::time(entry.occurred_at.as_ref()),
        "account_id": entry.account_id,
        "source_event_id": entry.source_event_id,
        "balance_after_cents": entry.balance_after_cents,
        "balance_after": dollars(entry.balance_after_cents),
    })
}

fn print_account(json: bool, account_id: &str, balance_cents: i64, entries: &[billing::Entry]) {
    let rows: Vec<Value> = entries.iter().map(entry_row).collect();
    if json {
        output::print_json(json!({
            "account_id": account_id,
            "balance_cents": balance_cents,
            "entries": rows,
        }));
    } else {
        output::print(false, ENTRY_COLUMNS, &rows);
        println!("balance: {}", dollars(balance_cents));
    }
}

fn print_statement(json: bool, csv: bool, statement: &billing::GetStatementResponse) {
    let rows: Vec<Value> = statement
        .lines
        .iter()
        .map(|line| {
            let mut row = entry_row(&line.entry.clone().unwrap_or_default());
            row["balance_cents"] = json!(line.balance_after_cents);
            row["balance"] = json!(dollars(line.balance_after_cents));
            row
        })
        .collect();
    if json {
        output::print_json(json!({
            "account_id": statement.account_id, "from": statement.from, "to": statement.to,
            "opening_balance_cents": statement.opening_balance_cents,
            "closing_balance_cents": statement.closing_balance_cents,
            "lines": rows,
        }));
    } else if csv {
        println!("day,entry_id,kind,amount_cents,balance_cents,task_id,description");
        for row in &rows {
            let field = |key: &str| match &row[key] {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            println!(
                "{},{},{},{},{},{},\"{}\"",
                field("day"),
                field("entry_id"),
                field("kind"),
                field("amount_cents"),
                field("balance_cents"),
                field("task_id"),
                field("description").replace('"', "\"\"")
            );
        }
    } else {
        println!(
            "statement of {} from {} to {}",
            statement.account_id, statement.from, statement.to
        );
        println!(
            "opening balance: {}",
            dollars(statement.opening_balance_cents)
        );
        output::print(false, STATEMENT_COLUMNS, &rows);
        println!(
            "closing balance: {}",
            dollars(statement.closing_balance_cents)
        );
    }
}

/// Runs one `popug billing` command.
pub(crate) async fn run(json: bool, command: BillingCommand) -> anyhow::Result<()> {
    let (session, bearer) = session::signed_in().await?;
    let mut directory = names::directory(&session, &bearer).await?;
    let mut client = BillingServiceClient::with_interceptor(
        connect(&config::endpoints().billing).await?,
        bearer,
    );
    match command {
        BillingCommand::Me { date } => {
            let me = answer(client.get_my_account(billing::GetMyAccountRequest { date })).await?;
            print_account(json, &me.account_id, me.balance_cents, &me.entries);
        }
        BillingCommand::Account { account, date } => {
            let account_id = names::account_id(&mut directory, &account).await?;
            let request = billing::GetAccountRequest { account_id, date };
            let account = answer(client.get_account(request)).await?;
            print_account(
                json,
                &account.account_id,
                account.balance_cents,
                &account.entries,
            );
        }
        BillingCommand::Earnings { from, to } => {
            let request = billing::GetManagementEarningsRequest { from, to };
            let days = answer(client.get_management_earnings(request)).await?.days;
            let rows: Vec<Value> = days
                .iter()
                .map(|day| {
                    json!({
                        "date": day.date, "earnings_cents": day.earnings_cents, "earnings": dollars(day.earnings_cents),
                        "fees_cents": day.fees_cents, "fees": dollars(day.fees_cents),
                        "rewards_cents": day.rewards_cents, "rewards": dollars(day.rewards_cents),
                    })
                })
                .collect();
            output::print_list(json, &["date", "fees", "rewards", "earnings"], rows);
        }
        BillingCommand::Entries => {
            let entries = ledger_entries(&client).await?;
            let logins = names::logins(
                &mut directory,
                entries.iter().map(|entry| entry.account_id.as_str()),
            )
            .await?;
            let rows = entries
                .iter()
                .map(|entry| {
                    let mut row = entry_row(entry);
                    row["account"] =
                        json!(logins.get(&entry.account_id).unwrap_or(&entry.account_id));
                    row
                })
                .collect();
            output::print_list(json, LEDGER_COLUMNS, rows);
        }
        BillingCommand::Check => {
            let violations = answer(client.audit_ledger(billing::AuditLedgerRequest {}))
                .await?
                .violations;
            let rows: Vec<Value> = violations
                .iter()
                .map(|what| json!({ "violation": what }))
                .collect();
            if json {
                output::print_json(json!({ "clean": rows.is_empty(), "violations": violations }));
            } else if rows.is_empty() {
                println!("clean: the ledger's invariants hold");
            } else {
                output::print_list(false, &["violation"], rows);
            }
            if !violations.is_empty() {
                bail!("the ledger breaks its invariants");
            }
        }
        BillingCommand::Statement {
            account,
            from,
            to,
            csv,
        } => {
            let account_id = if account.is_empty() {
                account
            } else {
                names::account_id(&mut directory, &account).await?
            };
            let request = billing::GetStatementRequest {
                account_id,
                from,
                to,
            };
            let statement = answer(client.get_statement(request)).await?;
            print_statement(json, csv, &statement);
        }
        BillingCommand::Income { from, to } => {
            let request = billing::GetIncomeStatementRequest { from, to };
            let income = answer(client.get_income_statement(request)).await?;
            let row = |day: &billing::IncomeDay| {
                json!({
                    "date": if day.date.is_empty() { "total" } else { day.date.as_str() },
                    "revenue_cents": day.revenue_cents, "revenue": dollars(day.revenue_cents),
                    "expense_cents": day.expense_cents, "expense": dollars(day.expense_cents),
                    "payouts_cents": day.payouts_cents, "payouts": dollars(day.payouts_cents),
                    "net_cents": day.net_cents, "net": dollars(day.net_cents),
                })
            };
            let rows: Vec<Value> = income.days.iter().chain(&income.total).map(row).collect();
            output::print_list(
                json,
                &["date", "revenue", "expense", "payouts", "net"],
                rows,
            );
        }
        BillingCommand::CloseDay { date } => {
            let closed = answer(client.close_day(billing::CloseDayRequest { date })).await?;
            output::print(
                json,
                &["date", "accounts_closed", "payouts", "already_closed"],
                &[json!({
                    "date": closed.date, "accounts_closed": closed.accounts_closed, "payouts_cents": closed.payouts_cents,
                    "payouts": dollars(closed.payouts_cents), "already_closed": closed.already_closed,
                })],
            );
        }
    }
    Ok(())
}
