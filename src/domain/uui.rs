//! UUI data (SIP User-to-User style, RFC 7433 `;encoding=hex`) → the caller's video call →
//! the tag URL stored on the room.
//!
//! `hex("id&MTIzNDU2LDc2NTQzMg")` decodes to host `id` and video call id
//! `MTIzNDU2LDc2NTQzMg`, giving `https://id.gov.bc.ca/idcheck/protected/video/MTIzNDU2LDc2NTQzMg`.
//! The host is allow-listed and the id restricted to base64url characters because both are
//! pasted into a URL that contact-centre agents open (the old service let `evil.com/?` in).

use std::fmt;

/// Longest raw `uuiData` accepted, suffix included. Real values are under 100 characters.
pub const MAX_UUI_LEN: usize = 512;
/// Longest video call id accepted.
pub const MAX_VIDEO_CALL_ID_LEN: usize = 128;

const HEX_SUFFIX: &str = ";encoding=hex";

/// Why `uuiData` was refused. Messages describe the rule, never echo the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UuiError {
    #[error("uuiData is empty")]
    Empty,
    #[error("uuiData is longer than {MAX_UUI_LEN} characters")]
    TooLong,
    #[error("uuiData is not valid hex (even number of 0-9a-f digits)")]
    NotHex,
    #[error("uuiData does not decode to UTF-8 text")]
    NotUtf8,
    #[error("uuiData must decode to '<host>&<video call id>'")]
    NoSeparator,
    #[error("uuiData names a host that is not allowed")]
    HostNotAllowed,
    #[error("the video call id must be 1 to {MAX_VIDEO_CALL_ID_LEN} base64url characters")]
    BadVideoCallId,
}

impl UuiPolicy {
    /// True when `tag` is a tag URL this policy could have produced: the template rendered
    /// with an allowed host and a base64url video call id. Rooms tagged like this were handed
    /// out by this service (or the one it replaces) and are ours to delete once they end.
    pub fn is_our_tag(&self, tag: &str) -> bool {
        const MARK: &str = "\u{0}";
        self.allowed_hosts.iter().any(|host| {
            let rendered = self.template.render(host, MARK);
            let Some((before, after)) = rendered.split_once(MARK) else {
                return false;
            };
            tag.strip_prefix(before)
                .and_then(|rest| rest.strip_suffix(after))
                .is_some_and(is_video_call_id)
        })
    }
}

impl UuiPolicy {
    /// For each allowed host, the fixed start of its tag URLs (the template rendered up to
    /// the video call id), without repeats: a Management API filter `tag__startswith=` on
    /// each finds every room [`Self::is_our_tag`] can accept, and a few more to check.
    pub fn tag_prefixes(&self) -> Vec<String> {
        const MARK: &str = "\u{0}";
        let mut prefixes: Vec<String> = self
            .allowed_hosts
            .iter()
            .filter_map(|host| {
                let rendered = self.template.render(host, MARK);
                rendered
                    .split_once(MARK)
                    .map(|(before, _)| before.to_owned())
            })
            .collect();
        prefixes.sort();
        prefixes.dedup();
        prefixes
    }
}

fn is_video_call_id(s: &str) -> bool {
    (1..=MAX_VIDEO_CALL_ID_LEN).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The caller's video call, taken from validated UUI data.
#[derive(Clone, PartialEq, Eq)]
pub struct VideoCall {
    host: String,
    video_call_id: String,
}

/// Hosts allowed in UUI data and the template that turns a video call into a tag URL.
#[derive(Debug, Clone)]
pub struct UuiPolicy {
    pub allowed_hosts: Vec<String>,
    pub template: TagTemplate,
}

impl VideoCall {
    /// Parse raw `uuiData` (hex, optional `;encoding=hex`), enforcing the policy's host list.
    pub fn parse(raw: &str, policy: &UuiPolicy) -> Result<Self, UuiError> {
        if raw.is_empty() {
            return Err(UuiError::Empty);
        }
        if raw.len() > MAX_UUI_LEN {
            return Err(UuiError::TooLong);
        }
        let hex_part = strip_suffix_ignore_case(raw, HEX_SUFFIX).unwrap_or(raw);
        if hex_part.is_empty() {
            return Err(UuiError::Empty);
        }
        let bytes = hex::decode(hex_part).map_err(|_| UuiError::NotHex)?;
        let text = String::from_utf8(bytes).map_err(|_| UuiError::NotUtf8)?;
        let (host, video_call_id) = text.split_once('&').ok_or(UuiError::NoSeparator)?;
        if !policy.allowed_hosts.iter().any(|h| h == host) {
            return Err(UuiError::HostNotAllowed);
        }
        if !is_video_call_id(video_call_id) {
            return Err(UuiError::BadVideoCallId);
        }
        Ok(Self {
            host: host.to_owned(),
            video_call_id: video_call_id.to_owned(),
        })
    }

    /// The allow-listed host (`id`, `idtest`, ...).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The tag URL for this call, from the policy's template.
    pub fn tag(&self, template: &TagTemplate) -> String {
        template.render(&self.host, &self.video_call_id)
    }
}

/// The id identifies a citizen's session: keep it out of logs by default.
impl fmt::Debug for VideoCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VideoCall")
            .field("host", &self.host)
            .field("video_call_id", &"***")
            .finish()
    }
}

fn strip_suffix_ignore_case<'a>(s: &'a str, suffix: &str) -> Option<&'a str> {
    let cut = s.len().checked_sub(suffix.len())?;
    let (head, tail) = (s.get(..cut)?, s.get(cut..)?);
    tail.eq_ignore_ascii_case(suffix).then_some(head)
}

/// A tag URL template with `{host}` and `{video_call_id}` placeholders
/// (default `https://{host}.gov.bc.ca/idcheck/protected/video/{video_call_id}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagTemplate(String);

impl TagTemplate {
    /// The template the old service hard-coded.
    pub const DEFAULT: &'static str =
        "https://{host}.gov.bc.ca/idcheck/protected/video/{video_call_id}";

    /// Validate a template: it must contain `{video_call_id}` and render to an absolute
    /// http(s) URL.
    pub fn parse(raw: &str) -> Result<Self, String> {
        if !raw.contains("{video_call_id}") {
            return Err("must contain {video_call_id}".to_owned());
        }
        let sample = Self(raw.to_owned()).render("id", "abc");
        match url::Url::parse(&sample) {
            Ok(u) if u.scheme() == "https" || u.scheme() == "http" => Ok(Self(raw.to_owned())),
            _ => Err("must render to an absolute http(s) URL".to_owned()),
        }
    }

    fn render(&self, host: &str, video_call_id: &str) -> String {
        self.0
            .replace("{host}", host)
            .replace("{video_call_id}", video_call_id)
    }
}

impl Default for TagTemplate {
    fn default() -> Self {
        Self(Self::DEFAULT.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn policy() -> UuiPolicy {
        UuiPolicy {
            allowed_hosts: vec!["id".into(), "idtest".into(), "iddev".into()],
            template: TagTemplate::default(),
        }
    }

    fn tag_of(raw: &str) -> Result<String, UuiError> {
        VideoCall::parse(raw, &policy()).map(|c| c.tag(&policy().template))
    }

    #[test]
    fn the_documented_example_gives_the_documented_tag() {
        let want = "https://id.gov.bc.ca/idcheck/protected/video/MTIzNDU2LDc2NTQzMg";
        let raw = "6964264d54497a4e4455324c4463324e54517a4d67";
        assert_eq!(tag_of(raw).unwrap(), want);
        assert_eq!(tag_of(&format!("{raw};encoding=hex")).unwrap(), want);
        assert_eq!(tag_of(&format!("{raw};ENCODING=HEX")).unwrap(), want);
        assert_eq!(tag_of(&raw.to_uppercase()).unwrap(), want);
    }

    #[test]
    fn bad_uui_data_is_refused_for_the_right_reason() {
        let h = |s: &str| hex::encode(s.as_bytes());
        let cases: Vec<(String, UuiError)> = vec![
            (String::new(), UuiError::Empty),
            (";encoding=hex".into(), UuiError::Empty),
            ("zz".into(), UuiError::NotHex),
            ("abc".into(), UuiError::NotHex),
            ("6964;encoding=base64".into(), UuiError::NotHex),
            ("ff fe".into(), UuiError::NotHex),
            ("fffe26".into(), UuiError::NotUtf8),
            (h("idMTIz"), UuiError::NoSeparator),
            (h("evil.com/?&MTIz"), UuiError::HostNotAllowed),
            (h("&MTIz"), UuiError::HostNotAllowed),
            (h("id&"), UuiError::BadVideoCallId),
            (h("id&a/b"), UuiError::BadVideoCallId),
            (h("id&a+b=="), UuiError::BadVideoCallId),
            (h("id&a&b"), UuiError::BadVideoCallId),
            (
                h(&format!("id&{}", "a".repeat(129))),
                UuiError::BadVideoCallId,
            ),
            ("a".repeat(10 * 1024), UuiError::TooLong),
        ];
        for (raw, want) in cases {
            assert_eq!(tag_of(&raw), Err(want), "{raw:?}");
        }
    }

    #[test]
    fn debug_output_hides_the_video_call_id() {
        let call = VideoCall::parse(&hex::encode("id&SECRETID"), &policy()).unwrap();
        assert!(!format!("{call:?}").contains("SECRETID"));
    }

    #[test]
    fn our_tags_are_recognised_and_others_are_not() {
        let p = policy();
        assert!(p.is_our_tag("https://id.gov.bc.ca/idcheck/protected/video/MTIz"));
        assert!(p.is_our_tag("https://iddev.gov.bc.ca/idcheck/protected/video/a-_b"));
        for other in [
            "",
            "https://evil.gov.bc.ca/idcheck/protected/video/MTIz",
            "https://id.gov.bc.ca/idcheck/protected/video/",
            "https://id.gov.bc.ca/idcheck/protected/video/a/b",
            "CASEFLOW",
        ] {
            assert!(!p.is_our_tag(other), "{other}");
        }
    }

    #[test]
    fn tag_prefixes_cover_every_allowed_host() {
        assert_eq!(
            policy().tag_prefixes(),
            [
                "https://id.gov.bc.ca/idcheck/protected/video/",
                "https://iddev.gov.bc.ca/idcheck/protected/video/",
                "https://idtest.gov.bc.ca/idcheck/protected/video/",
            ]
        );
    }

    #[test]
    fn templates_must_name_the_call_and_be_urls() {
        assert!(TagTemplate::parse("https://{host}.example/v/{video_call_id}").is_ok());
        assert!(TagTemplate::parse("https://example/v/").is_err());
        assert!(TagTemplate::parse("{host}/{video_call_id}").is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn any_valid_call_round_trips(host in "(id|idtest|iddev)", id in "[A-Za-z0-9_-]{1,128}") {
            let raw = hex::encode(format!("{host}&{id}"));
            let tag = tag_of(&raw).unwrap();
            prop_assert!(policy().is_our_tag(&tag));
            prop_assert_eq!(tag, format!("https://{host}.gov.bc.ca/idcheck/protected/video/{id}"));
        }

        #[test]
        fn arbitrary_input_never_panics_and_tags_stay_on_the_allowed_hosts(raw in "\\PC{0,600}") {
            if let Ok(tag) = tag_of(&raw) {
                let url = url::Url::parse(&tag).unwrap();
                let host = url.host_str().unwrap();
                prop_assert!(["id.gov.bc.ca", "idtest.gov.bc.ca", "iddev.gov.bc.ca"].contains(&host));
            }
        }

        #[test]
        fn arbitrary_decoded_bytes_never_escape_the_allowed_hosts(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(tag) = tag_of(&hex::encode(&bytes)) {
                let url = url::Url::parse(&tag).unwrap();
                prop_assert!(url.host_str().unwrap().ends_with(".gov.bc.ca"));
                prop_assert_eq!(url.path_segments().unwrap().count(), 4);
            }
        }
    }
}
