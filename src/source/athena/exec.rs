//! Running one query through Athena: `StartQueryExecution` in the configured
//! workgroup and output location, `GetQueryExecution` polled with a growing
//! pause (a few calls a second at most, far inside Athena's 100/s for Get*;
//! RUNNING may go back to QUEUED, which is counted, not an error), then every
//! page of `GetQueryResults` (≤ 1000 rows, the first row of the first page is
//! the header). FAILED and CANCELLED return Athena's reason. A cancelled run
//! (Ctrl-C) calls `StopQueryExecution`. Every call is retried on throttling
//! (`ThrottlingException`, `TooManyRequestsException`) and 5xx through
//! [`crate::call::call_with_retry`], holding a call slot only while it runs.
//!
//! Results are read through the API, not from the CSV file in S3: a scan's rows
//! are session calls (thousands, not millions), and paging needs no
//! `s3:GetObject` on the output location nor a CSV parser for caller-chosen text.

use std::collections::BTreeSet;
use std::time::Duration;

use aws_sdk_athena::types::{QueryExecutionContext, QueryExecutionState, ResultConfiguration};
use rand::Rng;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::call::{call_with_retry, short, CallFailure, CallSlots};

/// Rows per GetQueryResults page (Athena's maximum).
const PAGE_ROWS: i32 = 1000;
/// A result listing that keeps paging past this is cut off (never an endless loop).
const MAX_PAGES: usize = 1_000_000;
/// How long a stop may take before the run gives up waiting for CANCELLED.
const STOP_DEADLINE: Duration = Duration::from_secs(2);

/// Where and how queries run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSettings {
    pub workgroup: String,
    /// `s3://…/` for the result files; `None` = the workgroup's own setting.
    pub output: Option<String>,
    pub catalog: String,
    pub database: String,
    /// How long one call may keep failing with throttles and 5xx.
    pub retry_deadline: Duration,
    /// First pause between two polls; it grows to `poll_max`.
    pub poll_first: Duration,
    pub poll_max: Duration,
    /// A query still not finished after this is stopped (Athena's own DML limit is 30 min).
    pub query_timeout: Duration,
}

/// What happened to one query (the report keeps this).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryOutcome {
    pub query_id: Option<String>,
    /// `SUCCEEDED`, `FAILED`, `CANCELLED`, or `NOT_STARTED`.
    pub state: String,
    /// Athena's `StateChangeReason` (or why the tool gave up).
    pub reason: Option<String>,
    pub bytes_scanned: u64,
    pub polls: u64,
    /// Times the query went from RUNNING back to QUEUED.
    pub requeued: u64,
    pub result_pages: u64,
    pub rows: u64,
}

/// A successful run's rows (header removed), and its outcome.
pub struct QueryRows {
    pub header: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
}

/// The client and what it needs.
pub struct Runner<'a> {
    pub client: &'a aws_sdk_athena::Client,
    pub settings: &'a RunSettings,
    pub slots: &'a CallSlots,
    pub cancel: &'a watch::Receiver<bool>,
}

enum Waited {
    Done(QueryExecutionState, Option<String>, u64),
    Interrupted,
    TimedOut,
}

impl Runner<'_> {
    /// Run `sql` to the end. The outcome is always returned; rows only on success.
    pub async fn run(&self, sql: &str) -> (QueryOutcome, Option<QueryRows>) {
        let mut out = QueryOutcome {
            state: "NOT_STARTED".into(),
            ..QueryOutcome::default()
        };
        let id = match self.start(sql).await {
            Ok(id) => id,
            Err(f) => {
                out.reason = Some(format!("StartQueryExecution failed: {f}"));
                return (out, None);
            }
        };
        out.query_id = Some(id.clone());
        out.state = "QUEUED".into();
        match self.wait(&id, &mut out).await {
            Ok(Waited::Done(state, reason, bytes)) => {
                out.state = state.as_str().to_string();
                out.reason = reason.map(|r| short(&r));
                out.bytes_scanned = bytes;
                if state != QueryExecutionState::Succeeded {
                    if out.reason.is_none() {
                        out.reason = Some(format!("the query ended {}", state.as_str()));
                    }
                    return (out, None);
                }
            }
            Ok(Waited::Interrupted) => {
                self.stop(&id).await;
                out.state = "CANCELLED".into();
                out.reason = Some("the run was interrupted: StopQueryExecution was called".into());
                return (out, None);
            }
            Ok(Waited::TimedOut) => {
                self.stop(&id).await;
                out.state = "CANCELLED".into();
                out.reason = Some(format!(
                    "the query ran longer than {} s and was stopped",
                    self.settings.query_timeout.as_secs()
                ));
                return (out, None);
            }
            Err(f) => {
                out.state = "UNKNOWN".into();
                out.reason = Some(format!("GetQueryExecution failed: {f}"));
                return (out, None);
            }
        }
        match self.results(&id, &mut out).await {
            Ok(rows) => {
                out.rows = rows.rows.len() as u64;
                (out, Some(rows))
            }
            Err(reason) => {
                out.state = "FAILED".into();
                out.reason = Some(reason);
                (out, None)
            }
        }
    }

    async fn start(&self, sql: &str) -> Result<String, CallFailure> {
        let s = self.settings;
        // One token for every attempt: a Start retried after a lost answer does
        // not run the query twice.
        let token: String = {
            let mut rng = rand::rng();
            (0..32)
                .map(|_| char::from_digit(rng.random_range(0..16), 16).unwrap_or('0'))
                .collect()
        };
        let out = call_with_retry(Some(self.slots), s.retry_deadline, || {
            let mut req = self
                .client
                .start_query_execution()
                .query_string(sql)
                .client_request_token(token.clone())
                .work_group(&s.workgroup)
                .query_execution_context(
                    QueryExecutionContext::builder()
                        .catalog(&s.catalog)
                        .database(&s.database)
                        .build(),
                );
            if let Some(o) = &s.output {
                req = req.result_configuration(
                    ResultConfiguration::builder().output_location(o).build(),
                );
            }
            req.send()
        })
        .await?;
        out.query_execution_id()
            .filter(|id| !id.is_empty())
            .map(str::to_string)
            .ok_or_else(|| CallFailure {
                class: crate::call::ErrorClass::Fatal,
                code: "bad-response".into(),
                message: "StartQueryExecution answered without a QueryExecutionId".into(),
            })
    }

    async fn wait(&self, id: &str, out: &mut QueryOutcome) -> Result<Waited, CallFailure> {
        let s = self.settings;
        let started = tokio::time::Instant::now();
        let mut pause = s.poll_first;
        let mut was_running = false;
        loop {
            let polled = tokio::select! {
                r = call_with_retry(Some(self.slots), s.retry_deadline, || {
                    self.client.get_query_execution().query_execution_id(id).send()
                }) => r?,
                _ = crate::call::cancelled(self.cancel) => return Ok(Waited::Interrupted),
            };
            out.polls += 1;
            let q = polled.query_execution();
            let status = q.and_then(|q| q.status());
            let bytes = q
                .and_then(|q| q.statistics())
                .and_then(|st| st.data_scanned_in_bytes())
                .unwrap_or(0)
                .max(0) as u64;
            match status.and_then(|st| st.state()) {
                Some(
                    st @ (QueryExecutionState::Succeeded
                    | QueryExecutionState::Failed
                    | QueryExecutionState::Cancelled),
                ) => {
                    let reason = status.and_then(|st| {
                        let athena = st.athena_error().and_then(|e| e.error_message());
                        match (st.state_change_reason(), athena) {
                            (Some(r), _) if !r.is_empty() => Some(r.to_string()),
                            (_, Some(m)) if !m.is_empty() => Some(m.to_string()),
                            _ => None,
                        }
                    });
                    return Ok(Waited::Done(st.clone(), reason, bytes));
                }
                Some(QueryExecutionState::Running) => was_running = true,
                Some(QueryExecutionState::Queued) if was_running => {
                    // Athena puts a query back in the queue after a transient error.
                    out.requeued += 1;
                    was_running = false;
                    tracing::info!(query_id = id, "Athena query went back to QUEUED");
                }
                _ => {}
            }
            if started.elapsed() >= s.query_timeout {
                return Ok(Waited::TimedOut);
            }
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = crate::call::cancelled(self.cancel) => return Ok(Waited::Interrupted),
            }
            pause = (pause.mul_f64(1.5)).min(s.poll_max);
        }
    }

    async fn stop(&self, id: &str) {
        let r = call_with_retry(Some(self.slots), STOP_DEADLINE, || {
            self.client
                .stop_query_execution()
                .query_execution_id(id)
                .send()
        })
        .await;
        if let Err(f) = r {
            tracing::warn!(query_id = id, error = %f, "StopQueryExecution failed: stop the query in the Athena console");
        }
    }

    async fn results(&self, id: &str, out: &mut QueryOutcome) -> Result<QueryRows, String> {
        let s = self.settings;
        let mut header: Option<Vec<String>> = None;
        let mut rows = Vec::new();
        let mut token: Option<String> = None;
        let mut seen = BTreeSet::new();
        for page_no in 0..MAX_PAGES {
            let page = call_with_retry(Some(self.slots), s.retry_deadline, || {
                self.client
                    .get_query_results()
                    .query_execution_id(id)
                    .max_results(PAGE_ROWS)
                    .set_next_token(token.clone())
                    .send()
            })
            .await
            .map_err(|f| format!("GetQueryResults failed on page {}: {f}", page_no + 1))?;
            out.result_pages += 1;
            let set = page.result_set();
            let mut page_rows = set.map(|r| r.rows()).unwrap_or_default().iter();
            if header.is_none() {
                let meta: Vec<String> = set
                    .and_then(|r| r.result_set_metadata())
                    .map(|m| {
                        m.column_info()
                            .iter()
                            .map(|c| c.name().to_string())
                            .collect()
                    })
                    .unwrap_or_default();
                // The first row of a SELECT's first page repeats the column names.
                let first = page_rows.clone().next().map(row_values);
                let first_is_header = match &first {
                    Some(f) if meta.is_empty() => f.iter().all(Option::is_some),
                    Some(f) => {
                        f.len() == meta.len()
                            && f.iter().zip(&meta).all(|(v, m)| {
                                v.as_deref().is_some_and(|v| v.eq_ignore_ascii_case(m))
                            })
                    }
                    None => false,
                };
                if first_is_header {
                    page_rows.next();
                }
                header = Some(if meta.is_empty() {
                    first
                        .unwrap_or_default()
                        .into_iter()
                        .map(Option::unwrap_or_default)
                        .collect()
                } else {
                    meta
                });
            }
            rows.extend(page_rows.map(row_values));
            token = page
                .next_token()
                .filter(|t| !t.is_empty())
                .map(str::to_string);
            match &token {
                None => {
                    return Ok(QueryRows {
                        header: header.unwrap_or_default(),
                        rows,
                    })
                }
                Some(t) if !seen.insert(t.clone()) => {
                    return Err(format!(
                        "GetQueryResults returned the same NextToken twice (page {}): the results were not read to the end",
                        page_no + 1
                    ))
                }
                Some(_) => {}
            }
        }
        Err(format!(
            "GetQueryResults did not end after {MAX_PAGES} pages"
        ))
    }
}

fn row_values(r: &aws_sdk_athena::types::Row) -> Vec<Option<String>> {
    r.data()
        .iter()
        .map(|d| d.var_char_value().map(str::to_string))
        .collect()
}

/// Run DDL statements one after the other (for `athena-table --create`).
pub async fn run_statements(
    runner: &Runner<'_>,
    statements: &[String],
) -> Result<Vec<QueryOutcome>, String> {
    let mut done = Vec::new();
    for sql in statements {
        let (o, _) = runner.run(sql).await;
        let ok = o.state == "SUCCEEDED";
        let reason = o.reason.clone();
        let id = o.query_id.clone();
        done.push(o);
        if !ok {
            return Err(format!(
                "Athena query {} failed: {}",
                id.unwrap_or_else(|| "(not started)".into()),
                reason.unwrap_or_else(|| "no reason given".into())
            ));
        }
    }
    Ok(done)
}
