//! `popug.analytics.v1.AnalyticsService`: every method is for admins.

use popug_proto::pb::popug::analytics::v1::{
    self as pb, analytics_service_server::AnalyticsService,
};
use popug_runtime::calendar;
use popug_token::{Role, require_role};
use tonic::{Request, Response, Status};

use crate::{error::Error, store::Dashboards};

/// The AnalyticsService implementation.
#[derive(Clone)]
pub struct AnalyticsApi {
    dashboards: Dashboards,
    timezone: popug_runtime::Timezone,
    /// Business time: which day is today.
    clock: popug_runtime::Clock,
}

fn count(value: i64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

impl AnalyticsApi {
    /// The API over `dashboards`, with days in `timezone` by `clock`.
    pub fn new(
        dashboards: Dashboards,
        timezone: popug_runtime::Timezone,
        clock: popug_runtime::Clock,
    ) -> Self {
        Self {
            dashboards,
            timezone,
            clock,
        }
    }

    fn today(&self) -> chrono::NaiveDate {
        calendar::day_of(self.clock.now(), self.timezone)
    }
}

#[tonic::async_trait]
impl AnalyticsService for AnalyticsApi {
    async fn get_dashboard(
        &self,
        request: Request<pb::GetDashboardRequest>,
    ) -> Result<Response<pb::GetDashboardResponse>, Status> {
        require_role(&request, &[Role::Admin])?;
        let day = calendar::parse_day("date", &request.into_inner().date, self.today())?;
        let figures = self.dashboards.days(day, day).await?;
        let today = figures
            .first()
            .ok_or_else(|| Error::internal("no figures for a one-day range"))?;
        Ok(Response::new(pb::GetDashboardResponse {
            date: day.to_string(),
            management_earnings_cents: today.earnings_cents,
            negative_balance_popugs: count(today.negative_popugs),
        }))
    }

    async fn get_most_expensive_task(
        &self,
        request: Request<pb::GetMostExpensiveTaskRequest>,
    ) -> Result<Response<pb::GetMostExpensiveTaskResponse>, Status> {
        require_role(&request, &[Role::Admin])?;
        let request = request.into_inner();
        let today = self.today();
        let back = |days: u64| {
            today
                .checked_sub_days(chrono::Days::new(days))
                .unwrap_or(today)
        };
        let (from, to) = match pb::Period::try_from(request.period) {
            Ok(pb::Period::Day) => (today, today),
            Ok(pb::Period::Week) => (back(6), today),
            Ok(pb::Period::Month) => (back(29), today),
            Ok(pb::Period::Unspecified) if request.from.is_empty() && request.to.is_empty() => {
                return Err(Error::invalid("period", "give a period, or `from` and `to`").into());
            }
            Ok(pb::Period::Unspecified) => {
                calendar::parse_range(&request.from, &request.to, today)?
            }
            Err(_) => {
                return Err(Error::invalid(
                    "period",
                    format!("{} is not a period", request.period),
                )
                .into());
            }
        };
        let task = self
            .dashboards
            .most_expensive(from, to)
            .await?
            .map(|task| pb::ExpensiveTask {
                task_id: task.task_id.to_string(),
                key: task.key.unwrap_or_default(),
                title: task.title.unwrap_or_default(),
                reward_cents: task.reward_cents,
                completed_at: Some(popug_bus::envelope::timestamp(task.completed_at)),
            });
        Ok(Response::new(pb::GetMostExpensiveTaskResponse { task }))
    }

    async fn get_daily_stats(
        &self,
        request: Request<pb::GetDailyStatsRequest>,
    ) -> Result<Response<pb::GetDailyStatsResponse>, Status> {
        require_role(&request, &[Role::Admin])?;
        let request = request.into_inner();
        let (from, to) = calendar::parse_range(&request.from, &request.to, self.today())?;
        let days = self
            .dashboards
            .days(from, to)
            .await?
            .into_iter()
            .map(|figures| pb::DayStats {
                date: figures.day.to_string(),
                management_earnings_cents: figures.earnings_cents,
                negative_balance_popugs: count(figures.negative_popugs),
            })
            .collect();
        Ok(Response::new(pb::GetDailyStatsResponse { days }))
    }
}
