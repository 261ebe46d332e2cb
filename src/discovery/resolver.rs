//! DNS lookups for backends: hickory's resolver on `server.resolvers`, or
//! on the system's (`/etc/resolv.conf`) when none are set.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::TokioResolver;

use crate::config::DnsSource;

/// One backend a DNS answer names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Record {
    pub socket: SocketAddr,
    pub weight: u32,
    pub max_conns: u32,
}

pub struct Dns {
    resolver: TokioResolver,
}

/// How long one lookup may take (per attempt; two attempts).
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

impl Dns {
    /// A resolver on `servers` (`ip:port` each), or on the system's
    /// configuration when the list is empty.
    pub fn new(servers: &[SocketAddr]) -> Result<Self, String> {
        let provider = TokioRuntimeProvider::default();
        let mut builder = if servers.is_empty() {
            TokioResolver::builder(provider)
                .map_err(|e| format!("cannot read the system's DNS configuration: {e}"))?
        } else {
            let mut config = ResolverConfig::default();
            for s in servers {
                let mut ns = NameServerConfig::udp_and_tcp(s.ip());
                for c in &mut ns.connections {
                    c.port = s.port();
                }
                config.add_name_server(ns);
            }
            TokioResolver::builder_with_config(config, provider)
        };
        let opts: &mut ResolverOpts = builder.options_mut();
        opts.timeout = LOOKUP_TIMEOUT;
        opts.attempts = 2;
        // Each round asks again: switchyard's own `resolve_every` is the
        // cache; an answer cached by TTL would hide a scaled service.
        opts.cache_size = 0;
        let resolver = builder.build().map_err(|e| format!("DNS resolver: {e}"))?;
        Ok(Self { resolver })
    }

    /// The backends `source` names now. An empty answer is an error: the
    /// caller keeps the last good one.
    pub async fn records(&self, source: &DnsSource) -> Result<Vec<Record>, String> {
        let mut records = match source {
            DnsSource::Host {
                host,
                port,
                weight,
                max_conns,
                ..
            } => self
                .addresses(host)
                .await?
                .into_iter()
                .map(|ip| Record {
                    socket: SocketAddr::new(ip, *port),
                    weight: *weight,
                    max_conns: *max_conns,
                })
                .collect::<Vec<_>>(),
            DnsSource::Srv { name } => self.srv(name).await?,
        };
        records.sort();
        records.dedup_by_key(|r| r.socket);
        if records.is_empty() {
            return Err(format!("{}: no records", source.name()));
        }
        Ok(records)
    }

    async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, String> {
        let lookup = self
            .resolver
            .lookup_ip(fqdn(host))
            .await
            .map_err(|e| format!("{host}: {e}"))?;
        Ok(lookup.iter().collect())
    }

    /// The targets of the records with the lowest priority (the others are
    /// backups in SRV's terms), each resolved to its addresses. An SRV
    /// weight of 0 counts as 1: switchyard's 0 means draining.
    async fn srv(&self, name: &str) -> Result<Vec<Record>, String> {
        let lookup = self
            .resolver
            .srv_lookup(fqdn(name))
            .await
            .map_err(|e| format!("{name}: {e}"))?;
        let srvs: Vec<_> = lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::SRV(srv) => Some(srv.clone()),
                _ => None,
            })
            .collect();
        let Some(first) = srvs.iter().map(|s| s.priority).min() else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for srv in srvs.iter().filter(|s| s.priority == first) {
            let target = srv.target.to_ascii();
            let weight = u32::from(srv.weight.max(1));
            for ip in self.addresses(&target).await? {
                out.push(Record {
                    socket: SocketAddr::new(ip, srv.port),
                    weight,
                    max_conns: 0,
                });
            }
        }
        Ok(out)
    }
}

/// `name.` : a configured name is absolute, not searched in the resolver's
/// domains (as NGINX's `resolver` does).
fn fqdn(name: &str) -> String {
    if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    }
}
