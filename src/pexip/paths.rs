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
    /// `configuration/v1/automatic_participant`: participants Pexip dials out to when a
    /// conference starts (docs/pexip.md §9 Automatic participants).
    AutomaticParticipant,
}

impl Resource {
    /// The collection path, with its trailing slash.
    pub fn collection(self) -> &'static str {
        match self {
            Resource::Conference => "/api/admin/configuration/v1/conference/",
            Resource::ConferenceAlias => "/api/admin/configuration/v1/conference_alias/",
            Resource::LiveConference => "/api/admin/status/v1/conference/",
            Resource::LiveParticipant => "/api/admin/status/v1/participant/",
            Resource::AutomaticParticipant => "/api/admin/configuration/v1/automatic_participant/",
        }
    }

    /// The path of one object.
    pub fn detail(self, id: u64) -> String {
        format!("{}{id}/", self.collection())
    }
}

/// An automatically dialled participant named by its resource URI
/// (`/api/admin/configuration/v1/automatic_participant/<id>/`) or its bare id, as
/// `ROOM_AUTOMATIC_PARTICIPANTS` lists them. Only the path form is accepted, not an absolute
/// URL: the node is the one `PEXIP_BASE_URL` names, and a host here could only disagree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AutomaticParticipantRef(u64);

impl AutomaticParticipantRef {
    /// Parse `<id>` or the resource URI (trailing slash optional).
    pub fn parse(raw: &str) -> Option<Self> {
        let collection = Resource::AutomaticParticipant.collection();
        let id = raw.strip_prefix(collection).unwrap_or(raw);
        let id = id.strip_suffix('/').unwrap_or(id);
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        id.parse().ok().map(Self)
    }

    /// The numeric id.
    pub fn id(self) -> u64 {
        self.0
    }

    /// The resource URI, as a conference's `automatic_participants` takes it.
    pub fn uri(self) -> String {
        Self::uri_of(self.0)
    }

    /// The resource URI of the automatic participant with this id.
    pub fn uri_of(id: u64) -> String {
        Resource::AutomaticParticipant.detail(id)
    }
}

impl std::fmt::Display for AutomaticParticipantRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.uri())
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
    fn automatic_participants_are_named_by_uri_or_bare_id() {
        let uri = "/api/admin/configuration/v1/automatic_participant/12/";
        for raw in [
            uri,
            "/api/admin/configuration/v1/automatic_participant/12",
            "12",
        ] {
            let parsed = AutomaticParticipantRef::parse(raw).unwrap();
            assert_eq!(parsed.id(), 12, "{raw}");
            assert_eq!(parsed.uri(), uri, "{raw}");
        }
        for bad in [
            "",
            "x",
            "-1",
            "/api/admin/configuration/v1/automatic_participant/",
            "/api/admin/configuration/v1/conference/12/",
            "https://mgr.example.com/api/admin/configuration/v1/automatic_participant/12/",
            "/api/admin/configuration/v1/automatic_participant/12/x/",
            "99999999999999999999999",
        ] {
            assert_eq!(AutomaticParticipantRef::parse(bad), None, "{bad:?}");
        }
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
