//! Account discovery: every page of `ListAccounts`, or the accounts under given
//! OUs (recursively), then the include/exclude lists and the `State` filter.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::model::Account;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::call::{
    call_with_retry, call_with_retry_checked, CallFailure, CallSlots, ErrorClass, Priority, Tokens,
};

#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("could not list the organization's accounts ({operation}{}): {failure}. The caller must be the management account or a delegated administrator, with organizations:ListAccounts (see `ssm-session-audit iam`)", parent.as_ref().map(|p| format!(" for {p}")).unwrap_or_default())]
    List {
        operation: &'static str,
        parent: Option<String>,
        failure: CallFailure,
    },
}

/// Why an account of the organization is not scanned.
pub fn skip_reason(account: &Account, include: &[String], exclude: &[String]) -> Option<String> {
    if !include.is_empty() && !include.contains(&account.id) {
        return Some("not in --accounts / accounts.include".into());
    }
    if exclude.contains(&account.id) {
        return Some("excluded by --exclude-accounts / accounts.exclude".into());
    }
    if account.state != "ACTIVE" {
        return Some(format!("account state is {}", account.state));
    }
    None
}

fn account_from(a: &aws_sdk_organizations::types::Account) -> Option<Account> {
    let id = a.id()?.to_string();
    // `State` replaces the retired `Status`; read `Status` only when `State` is absent.
    #[allow(deprecated)]
    let state = a
        .state()
        .map(|s| s.as_str().to_string())
        .or_else(|| a.status().map(|s| s.as_str().to_string()))
        .unwrap_or_else(|| "UNKNOWN".to_string());
    Some(Account {
        name: a.name().unwrap_or("").to_string(),
        id,
        state,
    })
}

/// Every account of the organization (all pages, empty pages included), or of the
/// given OUs and their children. Sorted by id, no duplicates.
pub async fn discover(
    client: &aws_sdk_organizations::Client,
    organizational_units: &[String],
    slots: &CallSlots,
    deadline: Duration,
) -> Result<Vec<Account>, DiscoveryError> {
    let mut accounts = Vec::new();
    discover_each(client, organizational_units, slots, deadline, |page| {
        accounts.extend(page)
    })
    .await?;
    accounts.sort_by(|a, b| a.id.cmp(&b.id));
    accounts.dedup_by(|a, b| a.id == b.id);
    Ok(accounts)
}

/// Like [`discover`], but hands over each page's accounts as soon as it arrives,
/// so a scan can start on them while the listing goes on. An account can come
/// twice (under two of the given OUs); the caller removes duplicates.
pub async fn discover_each(
    client: &aws_sdk_organizations::Client,
    organizational_units: &[String],
    slots: &CallSlots,
    deadline: Duration,
    mut on_page: impl FnMut(Vec<Account>) + Send,
) -> Result<(), DiscoveryError> {
    if organizational_units.is_empty() {
        // ListAccounts is the listing; it is one chain of pages, each needing
        // the token of the one before. An organization of more than one page
        // is also walked by OU at the same time (see `walk`): its accounts
        // then arrive from several chains at once, and the scan starts on them
        // sooner. The walk only adds accounts sooner: the listing stays
        // ListAccounts', and a walk that fails is dropped without a word.
        let sink = std::sync::Mutex::new(&mut on_page);
        let more = tokio::sync::Notify::new();
        let listing = all_pages(
            slots,
            deadline,
            "ListAccounts",
            None,
            |token| {
                let more = &more;
                async move {
                    let out = client
                        .list_accounts()
                        .max_results(20)
                        .set_next_token(token)
                        .send()
                        .await?;
                    if out.next_token.is_some() {
                        more.notify_one();
                    }
                    let items: Option<Vec<Account>> = out
                        .accounts
                        .as_ref()
                        .map(|a| a.iter().filter_map(account_from).collect());
                    Ok((items, out.next_token))
                }
            },
            |page| (sink.lock().unwrap_or_else(|e| e.into_inner()))(page),
        );
        let walk = async {
            more.notified().await;
            let to_sink = |page| (sink.lock().unwrap_or_else(|e| e.into_inner()))(page);
            if let Err(e) = walk(client, slots, &to_sink).await {
                tracing::debug!(error = %e, "the OU walk beside ListAccounts stopped");
            }
            std::future::pending::<()>().await
        };
        tokio::select! {
            r = listing => r?,
            _ = walk => {}
        }
        return Ok(());
    }
    let mut pending: Vec<String> = organizational_units.to_vec();
    let mut seen = BTreeSet::new();
    while let Some(parent) = pending.pop() {
        if !seen.insert(parent.clone()) {
            continue;
        }
        accounts_under(client, slots, deadline, &parent, &mut on_page).await?;
        child_ous(client, slots, deadline, &parent, |ous| pending.extend(ous)).await?;
    }
    Ok(())
}

/// Every page of `ListAccountsForParent` for `parent`, handed to `sink`.
async fn accounts_under(
    client: &aws_sdk_organizations::Client,
    slots: &CallSlots,
    deadline: Duration,
    parent: &str,
    sink: impl FnMut(Vec<Account>),
) -> Result<(), DiscoveryError> {
    all_pages(
        slots,
        deadline,
        "ListAccountsForParent",
        Some(parent),
        |token| async move {
            let out = client
                .list_accounts_for_parent()
                .parent_id(parent)
                .max_results(20)
                .set_next_token(token)
                .send()
                .await?;
            let items: Option<Vec<Account>> = out
                .accounts
                .as_ref()
                .map(|a| a.iter().filter_map(account_from).collect());
            Ok((items, out.next_token))
        },
        sink,
    )
    .await
}

/// Every page of `ListOrganizationalUnitsForParent` for `parent`: the child OUs' ids.
async fn child_ous(
    client: &aws_sdk_organizations::Client,
    slots: &CallSlots,
    deadline: Duration,
    parent: &str,
    sink: impl FnMut(Vec<String>),
) -> Result<(), DiscoveryError> {
    all_pages(
        slots,
        deadline,
        "ListOrganizationalUnitsForParent",
        Some(parent),
        |token| async move {
            let out = client
                .list_organizational_units_for_parent()
                .parent_id(parent)
                .max_results(20)
                .set_next_token(token)
                .send()
                .await?;
            let items: Option<Vec<String>> = out.organizational_units.as_ref().map(|ous| {
                ous.iter()
                    .filter_map(|ou| ou.id().map(str::to_string))
                    .collect()
            });
            Ok((items, out.next_token))
        },
        sink,
    )
    .await
}

/// Parents whose listings the OU walk reads at once.
const WALK_PARENTS: usize = 8;

/// A walk call is tried for this long at most: the walk only hurries the
/// listing along, and never holds it up retrying.
const WALK_DEADLINE: Duration = Duration::from_secs(2);

/// Every account under the organization's root, OU by OU, several OUs at once
/// (`ListRoots`, then `ListAccountsForParent` and
/// `ListOrganizationalUnitsForParent` for each parent), handed to `sink` as
/// pages arrive.
async fn walk(
    client: &aws_sdk_organizations::Client,
    slots: &CallSlots,
    sink: &(dyn Fn(Vec<Account>) + Sync),
) -> Result<(), DiscoveryError> {
    use futures::stream::{FuturesUnordered, StreamExt};
    let mut roots = Vec::new();
    all_pages(
        slots,
        WALK_DEADLINE,
        "ListRoots",
        None,
        |token| async move {
            let out = client.list_roots().set_next_token(token).send().await?;
            let items: Option<Vec<String>> = out.roots.as_ref().map(|r| {
                r.iter()
                    .filter_map(|r| r.id().map(str::to_string))
                    .collect()
            });
            Ok((items, out.next_token))
        },
        |r| roots.extend(r),
    )
    .await?;
    let parent = |p: String| async move {
        let mut children = Vec::new();
        let (a, o) = tokio::join!(
            accounts_under(client, slots, WALK_DEADLINE, &p, sink),
            child_ous(client, slots, WALK_DEADLINE, &p, |c| children.extend(c)),
        );
        a.and(o).map(|()| children)
    };
    let mut queue: Vec<String> = roots;
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut running = FuturesUnordered::new();
    loop {
        while running.len() < WALK_PARENTS {
            let Some(p) = queue.pop() else { break };
            if seen.insert(p.clone()) {
                running.push(parent(p));
            }
        }
        match running.next().await {
            Some(children) => queue.extend(children?),
            None => return Ok(()),
        }
    }
}

/// Every page of one listing, handed to `sink` page by page, each page retried on its own. A page
/// may be empty while more remain: only a missing token ends the list. A page without its list
/// member is not the service speaking and is retried, never read as empty; a token that comes
/// back, or a listing that never ends, fails it.
async fn all_pages<T, E, F, Fut>(
    slots: &CallSlots,
    deadline: Duration,
    operation: &'static str,
    parent: Option<&str>,
    page: F,
    mut sink: impl FnMut(Vec<T>),
) -> Result<(), DiscoveryError>
where
    F: Fn(Option<String>) -> Fut,
    Fut: std::future::Future<
        Output = Result<(Option<Vec<T>>, Option<String>), SdkError<E, HttpResponse>>,
    >,
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let fail = |failure| DiscoveryError::List {
        operation,
        parent: parent.map(str::to_string),
        failure,
    };
    let missing = |(items, _): &(Option<Vec<T>>, Option<String>)| {
        items.is_none().then(|| CallFailure {
            class: ErrorClass::Transient,
            code: "malformed-response".into(),
            message: format!(
                "a {operation} answer without its list member: not Organizations speaking (a proxy, or AWS_ENDPOINT_URL_ORGANIZATIONS pointing elsewhere?)"
            ),
        })
    };
    let mut tokens = Tokens::new(MAX_PAGES);
    let mut token: Option<String> = None;
    let (began, mut pages) = (std::time::Instant::now(), 0u64);
    loop {
        pages += 1;
        let (items, next) =
            // Ahead of the partitions' calls: every account of the scan waits
            // on this chain (measured: at 50 ms, 1,000 accounts, behind them the
            // 50 pages took 10.7 s, 210 ms a page).
            call_with_retry_checked(
                None,
                deadline,
                || {
                    let token = token.clone();
                    let page = &page;
                    async move {
                        let _slot = slots.acquire_at(Priority::High).await;
                        page(token).await
                    }
                },
                missing,
            )
                .await
                .map_err(fail)?;
        sink(items.unwrap_or_default());
        token = tokens.next(next.as_deref()).map_err(|e| fail(e.into()))?;
        if token.is_none() {
            // What a page of this chain took, waits for a slot included.
            tracing::debug!(
                operation,
                pages,
                ms_a_page = began.elapsed().as_millis() as u64 / pages,
                "listing read"
            );
            return Ok(());
        }
    }
}

/// More pages than any organization has (AWS allows 10,000 accounts, 20 a page).
const MAX_PAGES: u64 = 100_000;

/// The organization's id, when the caller may see it.
pub async fn organization_id(
    client: &aws_sdk_organizations::Client,
    slots: &CallSlots,
    deadline: Duration,
) -> Option<String> {
    call_with_retry(Some(slots), deadline, || {
        client.describe_organization().send()
    })
    .await
    .ok()
    .and_then(|o| o.organization().and_then(|o| o.id()).map(str::to_string))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acct(id: &str, state: &str) -> Account {
        Account {
            id: id.into(),
            name: format!("n{id}"),
            state: state.into(),
        }
    }

    #[test]
    fn only_active_included_not_excluded_accounts_are_scanned() {
        let inc = vec!["111111111111".to_string()];
        let exc = vec!["222222222222".to_string()];
        assert_eq!(
            skip_reason(&acct("111111111111", "ACTIVE"), &inc, &[]),
            None
        );
        assert!(skip_reason(&acct("333333333333", "ACTIVE"), &inc, &[])
            .unwrap()
            .contains("--accounts"));
        assert!(skip_reason(&acct("222222222222", "ACTIVE"), &[], &exc)
            .unwrap()
            .contains("excluded"));
        assert_eq!(
            skip_reason(&acct("444444444444", "SUSPENDED"), &[], &[]).unwrap(),
            "account state is SUSPENDED"
        );
        assert!(skip_reason(&acct("444444444444", "PENDING_CLOSURE"), &[], &[]).is_some());
    }
}
