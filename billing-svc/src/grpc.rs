//! `popug.billing.v1.BillingService`: converts requests, calls the ledger,
//! converts back. Who may call what is stated at the top of each method.

use popug_proto::pb::popug::billing::v1::{self as pb, billing_service_server::BillingService};
use popug_runtime::paging::{self, Page};
use popug_token::{Role, check_role, require_role, require_signed_in};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::{
    domain::{Day, EntryKind, money},
    error::Error,
    mail::Mailer,
    store::{BalanceLine, DayTotals, EntryLine, Ledger},
};

/// The BillingService implementation.
#[derive(Clone)]
pub struct BillingApi {
    ledger: Ledger,
    mailer: Mailer,
}

fn entry_message(line: &EntryLine) -> pb::Entry {
    pb::Entry {
        entry_id: line.entry_id.to_string(),
        kind: line
            .kind
            .parse::<EntryKind>()
            .map_or(pb::EntryKind::Unspecified, pb::EntryKind::from)
            .into(),
        amount_cents: line.amount_cents,
        task_id: line.task_id.map(|id| id.to_string()).unwrap_or_default(),
        description: line.description.clone(),
        occurred_at: Some(popug_bus::envelope::timestamp(line.occurred_at)),
        day: line.day.to_string(),
        account_id: line.account_id.to_string(),
        source_event_id: line.source_event_id.to_string(),
        balance_after_cents: line.balance_after_cents,
    }
}

fn income_day(date: String, totals: &DayTotals) -> pb::IncomeDay {
    pb::IncomeDay {
        date,
        revenue_cents: totals.fees_cents,
        expense_cents: totals.rewards_cents,
        payouts_cents: totals.payouts_cents,
        net_cents: totals.earnings_cents(),
    }
}

fn balance_message(line: &BalanceLine) -> pb::Balance {
    let role = line
        .role
        .as_deref()
        .and_then(|role| role.parse::<Role>().ok())
        .map_or(
            popug_proto::pb::popug::auth::v1::Role::Unspecified,
            Into::into,
        );
    pb::Balance {
        account_id: line.account_id.to_string(),
        login: line.login.clone().unwrap_or_default(),
        role: role.into(),
        active: line.active,
        balance_cents: line.balance_cents,
    }
}

fn account_id(field: &'static str, value: &str) -> Result<Uuid, Error> {
    Uuid::try_parse(value)
        .map_err(|_| Error::invalid(field, format!("`{value}` is not an account id")))
}

impl BillingApi {
    /// The API over `ledger`.
    pub fn new(ledger: Ledger, mailer: Mailer) -> Self {
        Self { ledger, mailer }
    }

    /// The balance and the entries of `date` of an account; `None` if
    /// billing has never heard of it.
    async fn account(
        &self,
        account_id: Uuid,
        date: &str,
    ) -> Result<Option<(i64, Vec<pb::Entry>)>, Error> {
        let day = money::parse_day("date", date, self.ledger.today())?;
        Ok(self
            .ledger
            .account(account_id, day)
            .await?
            .map(|(balance, lines)| (balance, lines.iter().map(entry_message).collect())))
    }
}

#[tonic::async_trait]
impl BillingService for BillingApi {
    async fn get_my_account(
        &self,
        request: Request<pb::GetMyAccountRequest>,
    ) -> Result<Response<pb::GetMyAccountResponse>, Status> {
        let caller = require_signed_in(&request)?;
        // A caller billing has not heard of yet (its AccountCreated is on
        // the way) has a zero balance and no entries, not an error.
        let (balance_cents, entries) = self
            .account(caller.account_id, &request.into_inner().date)
            .await?
            .unwrap_or_default();
        Ok(Response::new(pb::GetMyAccountResponse {
            account_id: caller.account_id.to_string(),
            balance_cents,
            entries,
        }))
    }

    async fn get_account(
        &self,
        request: Request<pb::GetAccountRequest>,
    ) -> Result<Response<pb::GetAccountResponse>, Status> {
        require_role(&request, &[Role::Accountant, Role::Admin])?;
        let request = request.into_inner();
        let account_id = account_id("account_id", &request.account_id)?;
        let (balance_cents, entries) = self
            .account(account_id, &request.date)
            .await?
            .ok_or(Error::NoSuchAccount(account_id))?;
        Ok(Response::new(pb::GetAccountResponse {
            account_id: account_id.to_string(),
            balance_cents,
            entries,
        }))
    }

    async fn get_management_earnings(
        &self,
        request: Request<pb::GetManagementEarningsRequest>,
    ) -> Result<Response<pb::GetManagementEarningsResponse>, Status> {
        require_role(&request, &[Role::Accountant, Role::Admin])?;
        let request = request.into_inner();
        let (from, to) =
            popug_runtime::calendar::parse_range(&request.from, &request.to, self.ledger.today())?;
        let days = self
            .ledger
            .earnings(from, to)
            .await?
            .into_iter()
            .map(|totals| pb::DayEarnings {
                date: totals.day.to_string(),
                earnings_cents: totals.earnings_cents(),
                fees_cents: totals.fees_cents,
                rewards_cents: totals.rewards_cents,
            })
            .collect();
        Ok(Response::new(pb::GetManagementEarningsResponse { days }))
    }

    async fn close_day(
        &self,
        request: Request<pb::CloseDayRequest>,
    ) -> Result<Response<pb::CloseDayResponse>, Status> {
        require_role(&request, &[Role::Admin])?;
        let yesterday = self.ledger.today().pred_opt().unwrap_or(Day::MIN);
        let day = money::parse_day("date", &request.into_inner().date, yesterday)?;
        let summary = self.ledger.close_day(day).await?;
        if !summary.already_closed
            && let Err(error) = self.mailer.send_pending().await
        {
            tracing::error!(%error, "payout emails failed; they will be retried");
        }
        Ok(Response::new(pb::CloseDayResponse {
            date: summary.day.to_string(),
            accounts_closed: summary.accounts_paid,
            payouts_cents: summary.payouts_cents,
            already_closed: summary.already_closed,
        }))
    }

    async fn list_entries(
        &self,
        request: Request<pb::ListEntriesRequest>,
    ) -> Result<Response<pb::ListEntriesResponse>, Status> {
        require_role(&request, &[Role::Accountant, Role::Admin])?;
        let request = request.into_inner();
        let Page { size, after } = paging::page::<Uuid>(request.page_size, &request.page_token)?;
        let lines = self.ledger.entries(after, size).await?;
        let next_page_token = paging::next_token(&lines, size, |line| line.entry_id);
        Ok(Response::new(pb::ListEntriesResponse {
            entries: lines.iter().map(entry_message).collect(),
            next_page_token,
        }))
    }

    async fn list_balances(
        &self,
        request: Request<pb::ListBalancesRequest>,
    ) -> Result<Response<pb::ListBalancesResponse>, Status> {
        require_role(&request, &[Role::Accountant, Role::Admin])?;
        let request = request.into_inner();
        let Page { size, after } = paging::page::<Uuid>(request.page_size, &request.page_token)?;
        let lines = self.ledger.balances(after, size).await?;
        let next_page_token = paging::next_token(&lines, size, |line| line.account_id);
        Ok(Response::new(pb::ListBalancesResponse {
            balances: lines.iter().map(balance_message).collect(),
            next_page_token,
        }))
    }

    async fn audit_ledger(
        &self,
        request: Request<pb::AuditLedgerRequest>,
    ) -> Result<Response<pb::AuditLedgerResponse>, Status> {
        require_role(&request, &[Role::Accountant, Role::Admin])?;
        Ok(Response::new(pb::AuditLedgerResponse {
            violations: self.ledger.violations().await?,
        }))
    }

    async fn get_statement(
        &self,
        request: Request<pb::GetStatementRequest>,
    ) -> Result<Response<pb::GetStatementResponse>, Status> {
        let caller = require_signed_in(&request)?;
        let request = request.into_inner();
        let account_id = if request.account_id.is_empty() {
            caller.account_id
        } else {
            account_id("account_id", &request.account_id)?
        };
        if account_id != caller.account_id {
            check_role(caller.role, &[Role::Accountant, Role::Admin])?;
        }
        let (from, to) =
            popug_runtime::calendar::parse_range(&request.from, &request.to, self.ledger.today())?;
        let statement = self
            .ledger
            .statement(account_id, from, to)
            .await?
            .ok_or(Error::NoSuchAccount(account_id))?;
        Ok(Response::new(pb::GetStatementResponse {
            account_id: account_id.to_string(),
            from: from.to_string(),
            to: to.to_string(),
            opening_balance_cents: statement.opening_cents,
            lines: statement
                .lines
                .iter()
                .map(|(line, balance_after_cents)| pb::StatementLine {
                    entry: Some(entry_message(line)),
                    balance_after_cents: *balance_after_cents,
                })
                .collect(),
            closing_balance_cents: statement.closing_cents,
        }))
    }

    async fn get_income_statement(
        &self,
        request: Request<pb::GetIncomeStatementRequest>,
    ) -> Result<Response<pb::GetIncomeStatementResponse>, Status> {
        require_role(&request, &[Role::Accountant, Role::Admin])?;
        let request = request.into_inner();
        let (from, to) =
            popug_runtime::calendar::parse_range(&request.from, &request.to, self.ledger.today())?;
        let days = self.ledger.earnings(from, to).await?;
        let total = days.iter().fold(
            DayTotals {
                day: from,
                fees_cents: 0,
                rewards_cents: 0,
                payouts_cents: 0,
            },
            |sum, day| DayTotals {
                day: from,
                fees_cents: sum.fees_cents + day.fees_cents,
                rewards_cents: sum.rewards_cents + day.rewards_cents,
                payouts_cents: sum.payouts_cents + day.payouts_cents,
            },
        );
        Ok(Response::new(pb::GetIncomeStatementResponse {
            days: days
                .iter()
                .map(|totals| income_day(totals.day.to_string(), totals))
                .collect(),
            total: Some(income_day(String::new(), &total)),
        }))
    }
}
