//! `https://` sources: documents fetched from the hosts the pipeline
//! allows, over TLS only, within a size limit counted as the bytes arrive,
//! with connect and total timeouts and a few redirects, each checked like
//! the first request. Hosts never resolve to loopback, private, link-local
//! or other non-public addresses unless the pipeline says so: a source
//! must not become a request into the cloud's metadata service.

use crate::source::SourceError;
use docpipe_core::config::HttpsSourcesConfig;
use docpipe_core::message::https_url_of;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::{StatusCode, Url};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// Fetches the documents of `https` sources.
#[derive(Debug)]
pub(crate) struct HttpsSources {
    config: HttpsSourcesConfig,
    client: reqwest::Client,
}

impl HttpsSources {
    /// A fetcher for the hosts `config` allows.
    pub(crate) fn new(config: HttpsSourcesConfig) -> Result<Self, String> {
        let mut builder = reqwest::Client::builder()
            .https_only(true)
            // Redirects are followed here, each checked like the first.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(config.connect_timeout_secs))
            .timeout(Duration::from_secs(config.timeout_secs))
            .user_agent(concat!("docpipe/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(PublicAddresses {
                allow_private: config.allow_private_addresses,
            }));
        if let Some(path) = &config.ca_file {
            let pem = std::fs::read(path).map_err(|error| {
                format!(
                    "cannot read sources.https.ca_file {}: {error}",
                    path.display()
                )
            })?;
            let certificate = reqwest::Certificate::from_pem(&pem).map_err(|error| {
                format!(
                    "sources.https.ca_file {} is not a PEM certificate: {error}",
                    path.display()
                )
            })?;
            builder = builder.tls_certs_merge([certificate]);
        }
        let client = builder
            .build()
            .map_err(|error| format!("cannot set up https sources: {error}"))?;
        Ok(Self { config, client })
    }

    /// The document at `uri`, at most `max_bytes` of it.
    pub(crate) async fn read(&self, uri: &str, max_bytes: u64) -> Result<Vec<u8>, SourceError> {
        let mut url = https_url_of(uri)?;
        for _ in 0..=self.config.max_redirects {
            self.check(&url)?;
            let response = self
                .client
                .get(url.clone())
                .send()
                .await
                .map_err(|error| request_error(url.as_str(), &error))?;
            let status = response.status();
            if status.is_redirection() {
                let location = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|location| location.to_str().ok())
                    .ok_or_else(|| SourceError::Refused {
                        uri: url.to_string(),
                        status: status.as_u16(),
                        reason: "a redirect without a Location".into(),
                    })?;
                url = url.join(location).map_err(|error| SourceError::Refused {
                    uri: url.to_string(),
                    status: status.as_u16(),
                    reason: format!("a redirect to an unusable Location ({error})"),
                })?;
                continue;
            }
            return match status {
                status if status.is_success() => read_body(response, &url, max_bytes).await,
                StatusCode::NOT_FOUND | StatusCode::GONE => {
                    Err(SourceError::ObjectNotFound(url.to_string()))
                }
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(SourceError::Forbidden {
                    uri: url.to_string(),
                    message: format!("the server answered {status}"),
                }),
                status
                    if status.is_server_error()
                        || status == StatusCode::TOO_MANY_REQUESTS
                        || status == StatusCode::REQUEST_TIMEOUT =>
                {
                    Err(SourceError::Unavailable {
                        uri: url.to_string(),
                        message: format!("the server answered {status}"),
                    })
                }
                status => Err(SourceError::Refused {
                    uri: url.to_string(),
                    status: status.as_u16(),
                    reason: "the server refused the request".into(),
                }),
            };
        }
        Err(SourceError::TooManyRedirects {
            uri: uri.to_owned(),
            limit: self.config.max_redirects,
        })
    }

    /// Refuses a URL (the first or a redirect's) that is not https, names
    /// a host not allowed, or names a non-public address literally.
    fn check(&self, url: &Url) -> Result<(), SourceError> {
        let not_allowed = || SourceError::NotAllowed {
            uri: url.to_string(),
            allowed: self.config.allowed_hosts.join(", "),
            setting: "sources.https.allowed_hosts",
        };
        if url.scheme() != "https" {
            return Err(not_allowed());
        }
        let allowed = match url.host() {
            Some(url::Host::Domain(domain)) => self.config.allows_host(domain),
            Some(url::Host::Ipv4(ip)) => {
                self.address_allowed(IpAddr::V4(ip)) && self.config.allows_host(&ip.to_string())
            }
            Some(url::Host::Ipv6(ip)) => {
                self.address_allowed(IpAddr::V6(ip)) && self.config.allows_host(&ip.to_string())
            }
            None => false,
        };
        if allowed { Ok(()) } else { Err(not_allowed()) }
    }

    fn address_allowed(&self, ip: IpAddr) -> bool {
        self.config.allow_private_addresses || is_public(ip)
    }
}

/// The body, counted against `max_bytes` as it arrives (a server's
/// Content-Length is checked first, and not trusted).
async fn read_body(
    mut response: reqwest::Response,
    url: &Url,
    max_bytes: u64,
) -> Result<Vec<u8>, SourceError> {
    let too_large = |size: u64| SourceError::TooLarge {
        size,
        limit: max_bytes,
        setting: "limits.max_document_bytes",
    };
    if let Some(length) = response.content_length()
        && length > max_bytes
    {
        return Err(too_large(length));
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|error| request_error(url.as_str(), &error))?
    {
        bytes.extend_from_slice(&chunk);
        if bytes.len() as u64 > max_bytes {
            return Err(too_large(bytes.len() as u64));
        }
    }
    Ok(bytes)
}

/// A request that failed before an answer: refused by the address rule
/// (permanent), or a timeout, refused connection or TLS failure.
fn request_error(uri: &str, error: &reqwest::Error) -> SourceError {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = cause {
        if let Some(refused) = current.downcast_ref::<NonPublicAddress>() {
            return SourceError::NotAllowed {
                uri: uri.to_owned(),
                allowed: refused.to_string(),
                setting: "sources.https.allow_private_addresses",
            };
        }
        cause = current.source();
    }
    let message =
        std::iter::successors(Some(error as &(dyn std::error::Error + 'static)), |error| {
            error.source()
        })
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ");
    SourceError::Unavailable {
        uri: uri.to_owned(),
        message,
    }
}

/// Resolves host names to their public addresses only (unless private ones
/// are allowed): checked at connection time, so that neither a redirect nor
/// a DNS answer that changed since the check can reach a private address.
struct PublicAddresses {
    allow_private: bool,
}

/// A host resolved only to addresses that are not public.
#[derive(Debug, thiserror::Error)]
#[error("{host} resolves only to non-public addresses ({addresses})")]
struct NonPublicAddress {
    host: String,
    addresses: String,
}

impl Resolve for PublicAddresses {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let usable: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|address| allow_private || is_public(address.ip()))
                .collect();
            if usable.is_empty() {
                let addresses: Vec<String> = found
                    .iter()
                    .map(|address| address.ip().to_string())
                    .collect();
                return Err(Box::new(NonPublicAddress {
                    host,
                    addresses: addresses.join(", "),
                })
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(usable.into_iter()) as Addrs)
        })
    }
}

/// Whether an address is on the public internet: not loopback, private,
/// link-local (the metadata service's 169.254.169.254), shared (CGNAT),
/// unspecified, multicast, documentation or otherwise reserved.
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => {
            let [a, b, ..] = ip.octets();
            !(ip.is_loopback()
                || ip.is_private()
                || ip.is_link_local()
                || ip.is_unspecified()
                || ip.is_broadcast()
                || ip.is_multicast()
                || ip.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0)
                || (a == 198 && (18..20).contains(&b))
                || a >= 240)
        }
        IpAddr::V6(ip) => {
            if let Some(mapped) = ip.to_ipv4_mapped() {
                return is_public(IpAddr::V4(mapped));
            }
            let first = ip.segments()[0];
            !(ip.is_loopback()
                || ip.is_unspecified()
                || ip.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || first == 0x2001 && ip.segments()[1] == 0x0db8)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[tokio::test]
    async fn a_name_for_a_private_address_is_refused_before_connecting() {
        let sources = HttpsSources::new(HttpsSourcesConfig {
            allowed_hosts: vec!["localhost".into(), "169.254.169.254".into()],
            max_redirects: 3,
            connect_timeout_secs: 2,
            timeout_secs: 5,
            allow_private_addresses: false,
            ca_file: None,
        })
        .unwrap();
        for uri in [
            "https://localhost:9/doc.pdf",
            "https://169.254.169.254/latest/meta-data/",
        ] {
            let error = sources.read(uri, 1 << 20).await.unwrap_err();
            assert!(
                matches!(error, SourceError::NotAllowed { .. }),
                "{uri}: {error}"
            );
        }
    }
}
