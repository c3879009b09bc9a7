//! Paths of the Management API resources this client uses, and the guard that makes a
//! DELETE to a collection URL impossible.
//!
//! `DELETE /api/admin/configuration/v1/conference/` deletes **every** VMR on the node
//! (docs/pexip.md §1.2). Two layers keep us from ever sending it: the only way to build a DELETE
//! target is [`Resource::detail`] with a numeric id, and the request path is checked again by
//! [`ensure_not_collection_delete`] right before anything is sent.

use reqwest::Method;

use super::PexipError;

/// The token endpoint, at the site root (not under `/api/admin`), with its trailing slash.
pub const TOKEN_PATH: &str = "/oauth/token/";

/// The Management API resources this client talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// `configuration/v1/conference`: VMRs.
    Conference,
    /// `configuration/v1/conference_alias`: aliases.
    ConferenceAlias,
    /// `status/v1/conference`: live conference instances.
    LiveConference,
    /// `status/v1/participant`: live participants.
    LiveParticipant,
}

impl Resource {
    /// The collection path, with its trailing slash.
    pub fn collection(self) -> &'static str {
        match self {
            Resource::Conference => "/api/admin/configuration/v1/conference/",
            Resource::ConferenceAlias => "/api/admin/configuration/v1/conference_alias/",
            Resource::LiveConference => "/api/admin/status/v1/conference/",
            Resource::LiveParticipant => "/api/admin/status/v1/participant/",
        }
    }

    /// The path of one object.
    pub fn detail(self, id: u64) -> String {
        format!("{}{id}/", self.collection())
    }
}

/// Refuse a DELETE whose path does not end in a numeric object id (`.../<digits>/`), and any
/// DELETE with a query string (Tastypie would apply filters to a collection delete).
pub fn ensure_not_collection_delete(method: &Method, path: &str) -> Result<(), PexipError> {
    if method != Method::DELETE {
        return Ok(());
    }
    let refused = || PexipError::Other {
        status: None,
        message: "refused to send DELETE to a collection URL".to_owned(),
    };
    if path.contains('?') || path.contains('#') {
        return Err(refused());
    }
    let Some(trimmed) = path.strip_suffix('/') else {
        return Err(refused());
    };
    let (parent, last) = trimmed.rsplit_once('/').ok_or_else(refused)?;
    let is_id = !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit());
    // The parent must be a known collection, so `.../conference/5/../` style tricks fail too.
    let known_parent = [
        Resource::Conference,
        Resource::ConferenceAlias,
        Resource::LiveConference,
        Resource::LiveParticipant,
    ]
    .iter()
    .any(|r| r.collection().strip_suffix('/') == Some(parent));
    if is_id && known_parent {
        Ok(())
    } else {
        Err(refused())
    }
}

/// The numeric id at the end of a `Location` header, which may be a path or an absolute URL
/// (`.../conference/123/`).
pub fn id_from_location(location: &str) -> Option<u64> {
    let trimmed = location.trim().trim_end_matches('/');
    let last = trimmed.rsplit('/').next()?;
    if last.is_empty() || !last.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    last.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guard_refuses_every_collection_delete() {
        let refused = [
            "/api/admin/configuration/v1/conference/",
            "/api/admin/configuration/v1/conference",
            "/api/admin/configuration/v1/conference/?name=x",
            "/api/admin/configuration/v1/conference/5/?x=1",
            "/api/admin/configuration/v1/conference_alias/",
            "/api/admin/configuration/v1/conference/abc/",
            "/api/admin/configuration/v1/conference/5/../",
            "/api/admin/configuration/v1/conference/5",
            "/api/admin/configuration/v1/",
            "/",
            "",
        ];
        for path in refused {
            assert!(
                ensure_not_collection_delete(&Method::DELETE, path).is_err(),
                "{path:?} must be refused"
            );
        }
    }

    #[test]
    fn the_guard_allows_detail_deletes_and_other_methods() {
        assert!(
            ensure_not_collection_delete(&Method::DELETE, &Resource::Conference.detail(5)).is_ok()
        );
        assert!(
            ensure_not_collection_delete(&Method::DELETE, &Resource::ConferenceAlias.detail(17))
                .is_ok()
        );
        assert!(
            ensure_not_collection_delete(&Method::GET, Resource::Conference.collection()).is_ok()
        );
        assert!(
            ensure_not_collection_delete(&Method::POST, Resource::Conference.collection()).is_ok()
        );
    }

    #[test]
    fn location_ids_come_from_paths_and_absolute_urls() {
        assert_eq!(
            id_from_location("/api/admin/configuration/v1/conference/123/"),
            Some(123)
        );
        assert_eq!(
            id_from_location("https://mgr.example.com/api/admin/configuration/v1/conference/9/"),
            Some(9)
        );
        assert_eq!(
            id_from_location("/api/admin/configuration/v1/conference/9"),
            Some(9)
        );
        assert_eq!(
            id_from_location("/api/admin/configuration/v1/conference/"),
            None
        );
        assert_eq!(id_from_location(""), None);
    }
}
