//! Shared Key request signing for the queue and blob services, as a per-try pipeline policy.
//!
//! The official `azure_storage_queue` and `azure_storage_blob` crates only take a
//! `TokenCredential` (upstream issue Azure/azure-sdk-for-rust#2975); its maintainers suggest a
//! custom `per_try_policies` policy for account keys, which is this. It runs after the retry
//! policy, so every attempt gets a fresh `x-ms-date` and signature. Both services sign with
//! the same scheme, so one policy serves both clients.
//!
//! Spec: "Authorize with Shared Key" (learn.microsoft.com/rest/api/storageservices/
//! authorize-with-shared-key), "Blob, Queue, and File services (Shared Key authorization)",
//! version 2015-02-21 and later (an empty `Content-Length` when the body is empty).

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use azure_core::credentials::Secret;
use azure_core::http::headers::{HeaderName, Headers};
use azure_core::http::policies::{Policy, PolicyResult};
use azure_core::http::{Context, Request, Url};

/// Signs each request with the account key (`Authorization: SharedKey <account>:<sig>`).
#[derive(Debug)]
pub(crate) struct SharedKeyPolicy {
    account: String,
    // `Secret`'s Debug is redacted, so the derived Debug never shows the key.
    key: Secret,
}

impl SharedKeyPolicy {
    /// A signer for `account` with its base64 `key`.
    pub(crate) fn new(account: impl Into<String>, key: impl Into<String>) -> Self {
        Self {
            account: account.into(),
            key: Secret::new(key.into()),
        }
    }
}

#[async_trait]
impl Policy for SharedKeyPolicy {
    // The trait declares `&Context` with an elided lifetime; `&Context<'_>` does not match
    // it under `async_trait`, so the elision has to stay.
    #[allow(elided_lifetimes_in_paths)]
    async fn send(
        &self,
        ctx: &Context,
        request: &mut Request,
        next: &[Arc<dyn Policy>],
    ) -> PolicyResult {
        let now = time::OffsetDateTime::now_utc();
        request.insert_header("x-ms-date", azure_core::time::to_rfc7231(&now));
        let body_len = request.body().len();
        let string_to_sign = string_to_sign(
            request.method().as_str(),
            request.url(),
            request.headers(),
            body_len,
            &self.account,
        );
        let signature = azure_core::hmac::hmac_sha256(&string_to_sign, &self.key)?;
        request.insert_header(
            "authorization",
            format!("SharedKey {}:{signature}", self.account),
        );
        next[0].send(ctx, request, &next[1..]).await
    }
}

/// The standard headers, in the order the signature string lists them (Content-Length is
/// handled separately because the transport, not the request, usually carries it).
const STANDARD_BEFORE_LENGTH: [&str; 2] = ["content-encoding", "content-language"];
const STANDARD_AFTER_LENGTH: [&str; 8] = [
    "content-md5",
    "content-type",
    "date",
    "if-modified-since",
    "if-match",
    "if-none-match",
    "if-unmodified-since",
    "range",
];

/// The Shared Key string-to-sign for the Blob, Queue and File services.
///
/// `body_len` is the request body's length when known; zero and unknown both sign as an
/// empty Content-Length (2015-02-21 and later).
pub(crate) fn string_to_sign(
    verb: &str,
    url: &Url,
    headers: &Headers,
    body_len: Option<u64>,
    account: &str,
) -> String {
    let header = |name: &'static str| {
        headers
            .get_optional_str(&HeaderName::from_static(name))
            .unwrap_or("")
            .to_owned()
    };
    let mut out = String::with_capacity(256);
    out.push_str(&verb.to_ascii_uppercase());
    out.push('\n');
    for name in STANDARD_BEFORE_LENGTH {
        out.push_str(&header(name));
        out.push('\n');
    }
    let length = match header("content-length").as_str() {
        "" => body_len.filter(|n| *n > 0).map(|n| n.to_string()),
        "0" => None,
        explicit => Some(explicit.to_owned()),
    };
    out.push_str(length.as_deref().unwrap_or(""));
    out.push('\n');
    for name in STANDARD_AFTER_LENGTH {
        // `date` is signed empty: we always send x-ms-date, which the service prefers.
        if name != "date"
            || headers
                .get_optional_str(&HeaderName::from_static("x-ms-date"))
                .is_none()
        {
            out.push_str(&header(name));
        }
        out.push('\n');
    }
    out.push_str(&canonicalized_headers(headers));
    out.push_str(&canonicalized_resource(url, account));
    out
}

/// Every `x-ms-` header, lowercase, sorted by name, `name:value\n` with runs of whitespace in
/// the value collapsed to one space.
fn canonicalized_headers(headers: &Headers) -> String {
    let mut ms: Vec<(String, String)> = headers
        .iter()
        .filter(|(name, _)| name.as_str().to_ascii_lowercase().starts_with("x-ms-"))
        .map(|(name, value)| {
            (
                name.as_str().to_ascii_lowercase(),
                value
                    .as_str()
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" "),
            )
        })
        .collect();
    ms.sort();
    ms.into_iter()
        .map(|(name, value)| format!("{name}:{value}\n"))
        .collect()
}

/// `/<account><encoded path>` then `\n<name>:<values>` per query parameter: names
/// lowercased and sorted, names and values URL-decoded, several values sorted and joined
/// with commas. Against Azurite the account appears twice (it is also the first path
/// segment); Microsoft's doc says that is expected.
fn canonicalized_resource(url: &Url, account: &str) -> String {
    let mut out = format!("/{account}{}", url.path());
    let mut params: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in url.query_pairs() {
        params
            .entry(name.to_ascii_lowercase())
            .or_default()
            .push(value.into_owned());
    }
    for (name, mut values) in params {
        values.sort();
        out.push('\n');
        out.push_str(&name);
        out.push(':');
        out.push_str(&values.join(","));
    }
    out
}

#[cfg(test)]
mod tests {
    //! The expected strings are Microsoft's own examples from "Authorize with Shared Key".
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> Headers {
        let mut headers = Headers::new();
        for (name, value) in pairs {
            headers.insert(*name, *value);
        }
        headers
    }

    #[test]
    fn get_container_metadata_matches_the_documented_string_to_sign() {
        let url = Url::parse(
            "http://myaccount.blob.core.windows.net/mycontainer?restype=container&comp=metadata&timeout=20",
        )
        .unwrap();
        let headers = headers(&[
            ("x-ms-date", "Sun, 11 Oct 2009 21:49:13 GMT"),
            ("x-ms-version", "2009-09-19"),
        ]);
        assert_eq!(
            string_to_sign("GET", &url, &headers, None, "myaccount"),
            "GET\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:Sun, 11 Oct 2009 21:49:13 GMT\n\
             x-ms-version:2009-09-19\n/myaccount/mycontainer\ncomp:metadata\n\
             restype:container\ntimeout:20"
        );
    }

    #[test]
    fn a_zero_content_length_signs_as_empty_from_version_2015_02_21() {
        let url = Url::parse(
            "http://myaccount.blob.core.windows.net/mycontainer?restype=container&timeout=30",
        )
        .unwrap();
        let expected = "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:Fri, 26 Jun 2015 23:39:12 GMT\n\
                        x-ms-version:2015-02-21\n/myaccount/mycontainer\nrestype:container\ntimeout:30";
        let without = headers(&[
            ("x-ms-version", "2015-02-21"),
            ("x-ms-date", "Fri, 26 Jun 2015 23:39:12 GMT"),
        ]);
        assert_eq!(
            string_to_sign("PUT", &url, &without, Some(0), "myaccount"),
            expected
        );
        let with_zero = headers(&[
            ("x-ms-version", "2015-02-21"),
            ("x-ms-date", "Fri, 26 Jun 2015 23:39:12 GMT"),
            ("content-length", "0"),
        ]);
        assert_eq!(
            string_to_sign("PUT", &url, &with_zero, None, "myaccount"),
            expected
        );
    }

    #[test]
    fn repeated_query_parameters_are_sorted_and_comma_joined() {
        let url = Url::parse(
            "http://myaccount.blob.core.windows.net/mycontainer?restype=container&comp=list\
             &include=snapshots&include=metadata&include=uncommittedblobs",
        )
        .unwrap();
        assert_eq!(
            canonicalized_resource(&url, "myaccount"),
            "/myaccount/mycontainer\ncomp:list\ninclude:metadata,snapshots,uncommittedblobs\n\
             restype:container"
        );
    }

    #[test]
    fn the_secondary_location_signs_with_the_primary_account_name() {
        let url =
            Url::parse("https://myaccount-secondary.blob.core.windows.net/mycontainer/myblob")
                .unwrap();
        assert_eq!(
            canonicalized_resource(&url, "myaccount"),
            "/myaccount/mycontainer/myblob"
        );
    }

    #[test]
    fn canonicalized_headers_are_lowercase_sorted_and_whitespace_collapsed() {
        let headers = headers(&[
            ("x-ms-version", "2014-02-14"),
            ("content-type", "application/xml"),
            ("x-ms-date", "Sat, 21   Feb 2015 00:48:38 GMT"),
        ]);
        assert_eq!(
            canonicalized_headers(&headers),
            "x-ms-date:Sat, 21 Feb 2015 00:48:38 GMT\nx-ms-version:2014-02-14\n"
        );
    }

    #[test]
    fn the_emulator_account_appears_twice_and_query_values_are_decoded() {
        let url = Url::parse(
            "http://127.0.0.1:10001/devstoreaccount1/pool/messages/abc?popreceipt=AgAAAA%2B%2Fx%3D%3D&visibilitytimeout=30",
        )
        .unwrap();
        let headers = headers(&[
            ("x-ms-date", "Fri, 26 Jun 2015 23:39:12 GMT"),
            ("x-ms-version", "2026-04-06"),
            ("content-type", "application/xml"),
        ]);
        assert_eq!(
            string_to_sign("PUT", &url, &headers, Some(42), "devstoreaccount1"),
            "PUT\n\n\n42\n\napplication/xml\n\n\n\n\n\n\nx-ms-date:Fri, 26 Jun 2015 23:39:12 GMT\n\
             x-ms-version:2026-04-06\n/devstoreaccount1/devstoreaccount1/pool/messages/abc\n\
             popreceipt:AgAAAA+/x==\nvisibilitytimeout:30"
        );
    }

    #[test]
    fn signatures_are_base64_hmac_sha256_with_the_decoded_key() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let key = Secret::new("SmVmZQ==");
        let signature =
            azure_core::hmac::hmac_sha256("what do ya want for nothing?", &key).unwrap();
        let expected =
            hex::decode("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
                .unwrap();
        use base64::Engine as _;
        assert_eq!(
            signature,
            base64::engine::general_purpose::STANDARD.encode(expected)
        );
    }
}
