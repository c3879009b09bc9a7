//! The Pexip Infinity Management API client: OAuth2 (ES256 client assertion) or Basic auth,
//! a token cache, retries with backoff, pagination, a process-wide prioritised concurrency cap
//! and typed errors. It talks JSON over HTTP to a Management Node (or the simulator, which it
//! never imports).
//!
//! Facts it relies on are in `docs/pexip.md`: §1 Management API basics (trailing slashes,
//! `meta.next` paths, 201 + `Location`, 202 on PATCH, 204/404 on DELETE), §2 Authentication,
//! §3 Conferences, §4 Conference aliases, §7 Status API and §9 Automatic participants.
//!
//! # Retry policy
//!
//! - GET, PATCH (same body) and DELETE are retried on 429 (waiting at least `Retry-After`),
//!   500, 502/503/504, connection errors and timeouts, up to `max_retries` times with
//!   exponential backoff and jitter. Resending the same request cannot do more than the first
//!   attempt did; a PATCH that still fails after the retries may have applied all the same,
//!   which the allocation treats as such (the room is quarantined).
//! - POST (create) is never blindly retried: after a timeout, a 5xx or a 429 the object is
//!   looked up (conference by name, alias by alias) and returned if it exists, so a create can
//!   never make a second room even when Pexip created it and still answered 500.
//! - A 401 from `/api/admin` forces one token renewal and one more try (OAuth2 only).
//!
//! # Concurrency
//!
//! One [`gate::Gate`] per client (clones share it) caps requests in flight to the node. A
//! permit is held for one HTTP exchange, body included, and never across a backoff sleep.
//! [`PexipClient::background`] gives a view whose requests yield to caller-serving ones.

mod auth;
mod error;
mod gate;
mod key;
mod models;
mod paths;
mod retry;
mod stats;

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue, LOCATION};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use tokio::time::Instant;
use tracing::Instrument as _;

use crate::config::{PexipAuth, PexipSettings};

use self::auth::{Auth, Credential};
pub use self::error::{ErrorClass, PexipError};
use self::gate::Gate;
pub use self::gate::Priority;
pub use self::key::{KeyError, SigningKey};
use self::models::ListPage;
pub use self::models::{
    Alias, Conference, Deleted, LiveConference, LiveCounts, NewConference, naive_utc,
};
pub use self::paths::{AutomaticParticipantRef, ensure_not_collection_delete};
use self::paths::{Resource, id_from_location};
use self::stats::Counters;
pub use self::stats::{ClientStats, ErrorCounts};

/// Page size for list requests. Pexip's CLI uses 500; the node caps it at its own maximum.
pub const PAGE_LIMIT: usize = 500;
/// A list that still has a `next` page after this many pages is treated as a server loop.
const MAX_PAGES: usize = 10_000;

/// The Management API client. Clone it freely: clones share the HTTP connection pool, the
/// token cache, the concurrency cap and the counters.
#[derive(Clone)]
pub struct PexipClient {
    inner: Arc<Inner>,
    priority: Priority,
}

struct Inner {
    http: reqwest::Client,
    /// Scheme, host, port and optional path prefix, without a trailing slash.
    base: String,
    /// The same, parsed: the host of dependency telemetry.
    base_url: url::Url,
    auth: Auth,
    gate: Gate,
    max_retries: u32,
    counters: Counters,
}

/// One HTTP response, read in full while the permit was held.
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl std::fmt::Debug for PexipClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PexipClient")
            .field("base", &self.inner.base)
            .field("priority", &self.priority)
            .field("max_in_flight", &self.inner.gate.capacity())
            .finish_non_exhaustive()
    }
}

impl PexipClient {
    /// Build a client with the credentials in `settings`. The private key (OAuth2) or the
    /// password (Basic) is a [`crate::secrets::Secret`] handle read whenever it is needed, so
    /// a value rotated in Key Vault is used without a restart: a new key for the next token
    /// request, a new password for the next request. Parses the key up front, so a bad key
    /// fails at start, not at the first request.
    pub fn new(settings: &PexipSettings) -> Result<Self, PexipError> {
        let base = settings.base_url.as_str().trim_end_matches('/').to_owned();
        let auth = match &settings.auth {
            PexipAuth::OAuth2 {
                client_id,
                private_key,
            } => Auth::oauth2(
                client_id,
                private_key.clone(),
                format!("{base}{}", paths::TOKEN_PATH),
            )?,
            PexipAuth::Basic { username, password } => Auth::basic(username, password.clone())?,
        };
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        let http = reqwest::Client::builder()
            .user_agent(concat!("pexip-sdk/", env!("CARGO_PKG_VERSION")))
            .default_headers(headers)
            .timeout(settings.request_timeout)
            .connect_timeout(settings.request_timeout.min(Duration::from_secs(10)))
            // A redirect would resend our Authorization header somewhere we did not configure.
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(settings.max_in_flight)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| PexipError::Config(format!("cannot build the HTTP client: {e}")))?;
        let base_url = url::Url::parse(&base)
            .map_err(|e| PexipError::Config(format!("the base URL does not parse: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                base_url,
                base,
                auth,
                gate: Gate::new(settings.max_in_flight),
                max_retries: settings.max_retries,
                counters: Counters::default(),
            }),
            priority: Priority::Caller,
        })
    }

    /// A view of the same client (same token cache, same concurrency cap) whose requests are
    /// background work: they yield to caller-serving requests when the cap is full.
    pub fn background(&self) -> PexipClient {
        PexipClient {
            inner: self.inner.clone(),
            priority: Priority::Background,
        }
    }

    /// The priority of this view's requests.
    pub fn priority(&self) -> Priority {
        self.priority
    }

    /// Cumulative counters since the client was built (shared by all clones).
    pub fn stats(&self) -> ClientStats {
        self.inner.counters.snapshot()
    }

    // ---------------------------------------------------------------------------------------
    // Configuration API: conference (docs/pexip.md §3 Conferences)

    /// Every VMR matching `filter` (`name`, `name__startswith`, `tag`, ... as Tastypie query
    /// pairs), following `meta.next` to the end. `limit`/`offset` in `filter` are ignored: the
    /// client pages itself.
    pub async fn list_conferences(
        &self,
        filter: &[(&str, &str)],
    ) -> Result<Vec<Conference>, PexipError> {
        self.list(Resource::Conference, filter).await
    }

    /// One VMR by id.
    pub async fn get_conference(&self, id: u64) -> Result<Conference, PexipError> {
        let reply = self
            .request(Method::GET, &Resource::Conference.detail(id), None)
            .await?;
        self.parse(&reply)
    }

    /// The VMR with exactly this name, if any.
    pub async fn find_conference(&self, name: &str) -> Result<Option<Conference>, PexipError> {
        let found = self.list_conferences(&[("name", name)]).await?;
        // Compare again: a node with a case-insensitive collation may match more.
        Ok(found.into_iter().find(|c| c.name == name))
    }

    /// Create a VMR (201 + `Location`) and read it back. Never creates two rooms: after an
    /// ambiguous failure the name is looked up before the POST is sent again.
    pub async fn create_conference(&self, new: &NewConference) -> Result<Conference, PexipError> {
        match self.post_conference(new).await? {
            Created::Id(id) => self.get_conference(id).await,
            Created::Found(conference) => Ok(conference),
            Created::NoId => self.created_but_unlisted(&new.name).await,
        }
    }

    /// Create a VMR and return only its id: no read-back when the node answers with a
    /// `Location`, so one request instead of two (a pool refill needs nothing else). Never
    /// creates two rooms, like [`Self::create_conference`].
    pub async fn create_conference_id(&self, new: &NewConference) -> Result<u64, PexipError> {
        match self.post_conference(new).await? {
            Created::Id(id) => Ok(id),
            Created::Found(conference) => Ok(conference.id),
            Created::NoId => Ok(self.created_but_unlisted(&new.name).await?.id),
        }
    }

    async fn post_conference(
        &self,
        new: &NewConference,
    ) -> Result<Created<Conference>, PexipError> {
        let body = serde_json::to_vec(new).map_err(|e| PexipError::Other {
            status: None,
            message: format!("cannot encode the conference: {e}"),
        })?;
        let name = new.name.as_str();
        self.create(Resource::Conference, &body, || async move {
            self.find_conference(name).await
        })
        .await
    }

    /// The room a create without an id in its answer made, looked up by name.
    async fn created_but_unlisted(&self, name: &str) -> Result<Conference, PexipError> {
        self.find_conference(name)
            .await?
            .ok_or_else(|| PexipError::Other {
                status: None,
                message: "Pexip accepted the create but the room cannot be found".to_owned(),
            })
    }

    /// Partial update (202). `patch` is sent as is; avoid `aliases` (use the alias calls).
    pub async fn patch_conference(
        &self,
        id: u64,
        patch: &serde_json::Value,
    ) -> Result<(), PexipError> {
        let body = serde_json::to_vec(patch).map_err(|e| PexipError::Other {
            status: None,
            message: format!("cannot encode the patch: {e}"),
        })?;
        self.request(Method::PATCH, &Resource::Conference.detail(id), Some(&body))
            .await
            .map(drop)
    }

    /// Delete a VMR (and, on Pexip's side, its aliases). 404 counts as already gone.
    pub async fn delete_conference(&self, id: u64) -> Result<Deleted, PexipError> {
        self.delete(Resource::Conference, id).await
    }

    // ---------------------------------------------------------------------------------------
    // Configuration API: conference_alias (docs/pexip.md §4 Conference aliases)

    /// Add an alias to a VMR. Like [`Self::create_conference`], an ambiguous failure is
    /// resolved by looking the alias up before sending again.
    pub async fn create_alias(
        &self,
        conference_id: u64,
        alias: &str,
        description: &str,
    ) -> Result<Alias, PexipError> {
        let conference_uri = Resource::Conference.detail(conference_id);
        let body = serde_json::to_vec(&serde_json::json!({
            "alias": alias,
            "conference": conference_uri,
            "description": description,
        }))
        .map_err(|e| PexipError::Other {
            status: None,
            message: format!("cannot encode the alias: {e}"),
        })?;
        let uri = conference_uri.as_str();
        let find = || async move {
            let found: Vec<Alias> = self
                .list(Resource::ConferenceAlias, &[("alias", alias)])
                .await?;
            Ok(found
                .into_iter()
                .find(|a| a.alias == alias && a.conference.ends_with(uri)))
        };
        match self.create(Resource::ConferenceAlias, &body, find).await? {
            Created::Id(id) => {
                let reply = self
                    .request(Method::GET, &Resource::ConferenceAlias.detail(id), None)
                    .await?;
                self.parse(&reply)
            }
            Created::Found(alias) => Ok(alias),
            Created::NoId => find().await?.ok_or_else(|| PexipError::Other {
                status: None,
                message: "Pexip accepted the alias but it cannot be found".to_owned(),
            }),
        }
    }

    /// Delete an alias. 404 counts as already gone.
    pub async fn delete_alias(&self, alias_id: u64) -> Result<Deleted, PexipError> {
        self.delete(Resource::ConferenceAlias, alias_id).await
    }

    // ---------------------------------------------------------------------------------------
    // Configuration API: automatic_participant (docs/pexip.md §9 Automatic participants)

    /// Whether the automatic participant exists on the node (`GET` by id: 200 yes, 404 no).
    pub async fn automatic_participant_exists(
        &self,
        participant: AutomaticParticipantRef,
    ) -> Result<bool, PexipError> {
        let path = Resource::AutomaticParticipant.detail(participant.id());
        match self.request(Method::GET, &path, None).await {
            Ok(_) => Ok(true),
            Err(PexipError::NotFound) => Ok(false),
            Err(e) => Err(e),
        }
    }

    // ---------------------------------------------------------------------------------------
    // Status API (docs/pexip.md §7 Status API)

    /// Live conference instances matching `filter` (`name`, `tag`, ...), all pages.
    pub async fn live_conferences(
        &self,
        filter: &[(&str, &str)],
    ) -> Result<Vec<LiveConference>, PexipError> {
        self.list(Resource::LiveConference, filter).await
    }

    /// Whether a conference is running in the VMR called `name` (status API `?name=`).
    pub async fn is_live(&self, name: &str) -> Result<bool, PexipError> {
        let live = self.live_conferences(&[("name", name)]).await?;
        Ok(live.iter().any(|c| c.name == name))
    }

    /// Totals of live conferences and participants (`limit=1`, `meta.total_count`).
    pub async fn live_counts(&self) -> Result<LiveCounts, PexipError> {
        let (conferences, participants) = tokio::try_join!(
            self.total_count(Resource::LiveConference),
            self.total_count(Resource::LiveParticipant),
        )?;
        Ok(LiveCounts {
            conferences,
            participants,
        })
    }

    // ---------------------------------------------------------------------------------------
    // Building blocks

    /// How many VMRs match `filter`, from one `limit=1` page's `meta.total_count`: counting
    /// thousands of rooms needs no list of them.
    pub async fn count_conferences(&self, filter: &[(&str, &str)]) -> Result<u64, PexipError> {
        self.total_count_where(Resource::Conference, filter).await
    }

    async fn total_count(&self, resource: Resource) -> Result<u64, PexipError> {
        self.total_count_where(resource, &[]).await
    }

    async fn total_count_where(
        &self,
        resource: Resource,
        filter: &[(&str, &str)],
    ) -> Result<u64, PexipError> {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(
                filter
                    .iter()
                    .filter(|(key, _)| *key != "limit" && *key != "offset"),
            )
            .append_pair("limit", "1")
            .finish();
        let path = format!("{}?{query}", resource.collection());
        let reply = self.request(Method::GET, &path, None).await?;
        let page: ListPage<serde_json::Value> = self.parse(&reply)?;
        page.meta.total_count.ok_or_else(|| {
            self.inner.counters.failed(ErrorClass::Other);
            PexipError::Other {
                status: Some(reply.status.as_u16()),
                message: "the list response has no meta.total_count".to_owned(),
            }
        })
    }

    async fn list<T: DeserializeOwned>(
        &self,
        resource: Resource,
        filter: &[(&str, &str)],
    ) -> Result<Vec<T>, PexipError> {
        let limit = PAGE_LIMIT.to_string();
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(
                filter
                    .iter()
                    .filter(|(key, _)| *key != "limit" && *key != "offset"),
            )
            .append_pair("limit", &limit)
            .finish();
        let mut path = format!("{}?{query}", resource.collection());
        let mut objects = Vec::new();
        for _ in 0..MAX_PAGES {
            let reply = self.request(Method::GET, &path, None).await?;
            let page: ListPage<T> = self.parse(&reply)?;
            objects.extend(page.objects);
            match page.meta.next {
                Some(next) => {
                    let next = self.next_path(resource, &next)?;
                    if next == path {
                        return Err(self.other("the list's next page is the page itself"));
                    }
                    path = next;
                }
                None => return Ok(objects),
            }
        }
        Err(self.other("the list did not end after the maximum number of pages"))
    }

    /// `meta.next` is a path (docs/pexip.md §1.3 Lists); accept an absolute URL on our base too,
    /// but never follow a link to another host or another resource.
    fn next_path(&self, resource: Resource, next: &str) -> Result<String, PexipError> {
        let path = if next.starts_with('/') {
            next
        } else if let Some(rest) = next.strip_prefix(self.inner.base.as_str()) {
            rest
        } else {
            return Err(self.other("the list's next link points to another server"));
        };
        // With a path prefix in the base URL, the node's own links may include it.
        let base_path = url::Url::parse(&self.inner.base)
            .map(|u| u.path().trim_end_matches('/').to_owned())
            .unwrap_or_default();
        let path = path.strip_prefix(base_path.as_str()).unwrap_or(path);
        if path.starts_with(resource.collection()) {
            Ok(path.to_owned())
        } else {
            Err(self.other("the list's next link points to another resource"))
        }
    }

    async fn delete(&self, resource: Resource, id: u64) -> Result<Deleted, PexipError> {
        match self
            .request(Method::DELETE, &resource.detail(id), None)
            .await
        {
            Ok(_) => Ok(Deleted::Now),
            Err(PexipError::NotFound) => Ok(Deleted::AlreadyGone),
            Err(e) => Err(e),
        }
    }

    /// POST a create. On an ambiguous failure (timeout, 5xx, 429) wait, then run `find`; if
    /// the object exists return it, else send again (at most `max_retries` times).
    async fn create<T, F, Fut>(
        &self,
        resource: Resource,
        body: &[u8],
        find: F,
    ) -> Result<Created<T>, PexipError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Option<T>, PexipError>>,
    {
        let mut retry = 0;
        loop {
            let failure = match self
                .exchange(&Method::POST, resource.collection(), Some(body))
                .await
            {
                Ok(reply) => {
                    let id = reply
                        .headers
                        .get(LOCATION)
                        .and_then(|v| v.to_str().ok())
                        .and_then(id_from_location)
                        // Some resources answer with the object instead of (or besides) a
                        // Location; take its id if so.
                        .or_else(|| {
                            serde_json::from_slice::<serde_json::Value>(&reply.body)
                                .ok()?
                                .get("id")?
                                .as_u64()
                        });
                    return Ok(id.map_or(Created::NoId, Created::Id));
                }
                Err(e) if e.may_have_applied() => e,
                Err(e) => return Err(e),
            };
            let retry_after = match failure {
                PexipError::RateLimited { retry_after } => retry_after,
                _ => None,
            };
            if retry_after.is_some_and(|d| d > retry::MAX_RETRY_AFTER) {
                return Err(failure);
            }
            if retry >= self.inner.max_retries {
                // Out of retries: still report success if the object was in fact created.
                return match find().await {
                    Ok(Some(found)) => Ok(Created::Found(found)),
                    _ => Err(failure),
                };
            }
            tokio::time::sleep(retry::delay_for(retry, retry_after)).await;
            retry += 1;
            if let Some(found) = find().await? {
                tracing::info!(
                    pexip.path = resource.collection(),
                    error = %failure,
                    "pexip create failed but the object exists; using it"
                );
                return Ok(Created::Found(found));
            }
            self.inner.counters.retried();
            tracing::warn!(
                pexip.method = "POST",
                pexip.path = resource.collection(),
                error = %failure,
                retry,
                "pexip create failed and the object does not exist; sending it again"
            );
        }
    }

    /// One logical request: [`Self::exchange`] plus retries of transient failures for
    /// idempotent methods (every method but POST).
    async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<Reply, PexipError> {
        debug_assert!(method != Method::POST, "POST goes through create()");
        let mut retry = 0;
        loop {
            let error = match self.exchange(&method, path, body).await {
                Ok(reply) => return Ok(reply),
                Err(e) => e,
            };
            let retry_after = match error {
                PexipError::RateLimited { retry_after } => retry_after,
                _ => None,
            };
            let retryable = error.is_transient()
                && retry < self.inner.max_retries
                && retry_after.is_none_or(|d| d <= retry::MAX_RETRY_AFTER);
            if !retryable {
                return Err(error);
            }
            let delay = retry::delay_for(retry, retry_after);
            retry += 1;
            self.inner.counters.retried();
            tracing::warn!(
                pexip.method = %method,
                pexip.path = path_only(path),
                error = %error,
                retry,
                delay_ms = delay.as_millis() as u64,
                "pexip request failed; retrying"
            );
            tokio::time::sleep(delay).await;
        }
    }

    /// One attempt, plus one forced token renewal and one more try if `/api/admin` answers
    /// 401 to a bearer token. (A 403 is a missing permission; a new token would not help.)
    async fn exchange(
        &self,
        method: &Method,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<Reply, PexipError> {
        // Checked before anything else, whatever the caller built.
        ensure_not_collection_delete(method, path)?;
        let mut credential = self.credential().await?;
        let mut renewed = false;
        loop {
            let (reply, used) = self.send_once(method, path, body, credential).await?;
            if reply.status == StatusCode::UNAUTHORIZED
                && !renewed
                && let (Auth::OAuth2(oauth), Some(generation)) = (&self.inner.auth, used.generation)
            {
                self.inner.counters.failed(ErrorClass::Unauthorized);
                renewed = true;
                credential = oauth
                    .renew_after_rejection(generation, &self.inner.http, &self.inner.counters)
                    .await?;
                continue;
            }
            return self.check(reply);
        }
    }

    /// The `Authorization` header for the next request. A renewal happens before taking a
    /// slot of the cap: the token endpoint is not `/api/admin`, renewals are single flight
    /// anyway, and a slot must not sit idle while its holder waits for someone's renewal.
    async fn credential(&self) -> Result<Credential, PexipError> {
        match &self.inner.auth {
            Auth::Basic { username, password } => Ok(Credential {
                header: auth::basic_header(username, &password.current())?,
                generation: None,
            }),
            Auth::OAuth2(oauth) => {
                oauth
                    .credential(&self.inner.http, &self.inner.counters)
                    .await
            }
        }
    }

    /// One HTTP exchange under a slot of the concurrency cap, body read in full. Returns the
    /// response whatever its status, and the credential it was sent with.
    async fn send_once(
        &self,
        method: &Method,
        path: &str,
        body: Option<&[u8]>,
        credential: Credential,
    ) -> Result<(Reply, Credential), PexipError> {
        let url = format!("{}{path}", self.inner.base);
        let permit = self.inner.gate.acquire(self.priority).await;
        // The wait for a slot may have outlasted a renewal by another request: use the newer
        // token rather than collect a 401 for the old one.
        let credential = match &self.inner.auth {
            Auth::OAuth2(oauth) => oauth.newer_than(&credential).unwrap_or(credential),
            Auth::Basic { .. } => credential,
        };
        let mut builder = self
            .inner
            .http
            .request(method.clone(), &url)
            .header(reqwest::header::AUTHORIZATION, credential.header.clone());
        if let Some(body) = body {
            builder = builder
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_vec());
        }
        // One dependency per attempt; nothing is built unless telemetry is exported.
        let dependency =
            crate::telemetry::dependency::pexip_span(method.as_str(), &self.inner.base_url, path);
        let started = Instant::now();
        let outcome = async {
            let response = builder.send().await?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.bytes().await?.to_vec();
            Ok::<_, reqwest::Error>(Reply {
                status,
                headers,
                body,
            })
        }
        .instrument(dependency.clone())
        .await;
        let duration_ms = started.elapsed().as_millis() as u64;
        drop(permit);
        let path = path_only(path);
        crate::telemetry::dependency::record_outcome(
            &dependency,
            outcome.as_ref().ok().map(|r| r.status.as_u16()),
            // 404 is a routine answer to deletes and lookups, not a failure of Pexip.
            outcome.as_ref().map_or(true, |r| {
                !(r.status.is_success() || r.status == StatusCode::NOT_FOUND)
            }),
        );
        match outcome {
            Ok(reply) => {
                // 2xx and 404 (an expected answer to deletes and lookups) are routine.
                if reply.status.is_success() || reply.status == StatusCode::NOT_FOUND {
                    tracing::debug!(
                        pexip.method = %method,
                        pexip.path = path,
                        pexip.status = reply.status.as_u16(),
                        duration_ms,
                        "pexip request"
                    );
                } else {
                    tracing::warn!(
                        pexip.method = %method,
                        pexip.path = path,
                        pexip.status = reply.status.as_u16(),
                        duration_ms,
                        "pexip request failed"
                    );
                }
                Ok((reply, credential))
            }
            Err(transport) => {
                let error = PexipError::from_transport(&transport);
                self.inner.counters.failed(error.class());
                tracing::warn!(
                    pexip.method = %method,
                    pexip.path = path,
                    duration_ms,
                    error = %error,
                    "pexip request failed"
                );
                Err(error)
            }
        }
    }

    /// A 2xx reply, or the error its status means (counted).
    fn check(&self, reply: Reply) -> Result<Reply, PexipError> {
        if reply.status.is_success() {
            return Ok(reply);
        }
        let error = PexipError::from_response(reply.status, &reply.headers, &reply.body);
        self.inner.counters.failed(error.class());
        Err(error)
    }

    fn parse<T: DeserializeOwned>(&self, reply: &Reply) -> Result<T, PexipError> {
        serde_json::from_slice(&reply.body).map_err(|e| {
            self.inner.counters.failed(ErrorClass::Other);
            PexipError::Other {
                status: Some(reply.status.as_u16()),
                // serde_json's message names the position and expected type, not the data.
                message: format!("unexpected response body: {e}"),
            }
        })
    }

    fn other(&self, message: &str) -> PexipError {
        self.inner.counters.failed(ErrorClass::Other);
        PexipError::Other {
            status: None,
            message: message.to_owned(),
        }
    }
}

/// What a create produced.
enum Created<T> {
    /// 2xx with an id (from `Location` or the body).
    Id(u64),
    /// An earlier attempt had in fact created it; here it is.
    Found(T),
    /// 2xx without any id.
    NoId,
}

/// The path without its query string, for logs: filter values could be PINs.
fn path_only(path: &str) -> &str {
    path.split_once('?').map_or(path, |(p, _)| p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logged_paths_never_carry_query_values() {
        assert_eq!(
            path_only("/api/admin/configuration/v1/conference/?pin=1234&limit=500"),
            "/api/admin/configuration/v1/conference/"
        );
        assert_eq!(path_only("/x/1/"), "/x/1/");
    }
}

#[cfg(test)]
mod wire_tests;
