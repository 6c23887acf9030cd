//! Mutual TLS where the certificate's key pair IS the node's Ed25519 protocol
//! key. There is no CA: a peer is accepted only if the public key in its
//! (self-signed) certificate equals a key we were told about, and the TLS 1.3
//! handshake signature is verified against that same key with ring. The
//! certificate's own self-signature, names and dates are irrelevant — the key
//! is the identity.
//!
//! - A replica accepts a connection from a committee member (replica traffic)
//!   or from a key on the configured client list (client traffic); anything
//!   else fails the handshake.
//! - Whoever dials replica `i` accepts only member `i`'s key.

use crate::NetError;
use bft_core::{Committee, NodeId};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};
use std::sync::Arc;

/// ALPN of every bftbench QUIC connection.
pub const ALPN: &[u8] = b"bftbench/1";

/// An Ed25519 public key as raw 32 bytes.
pub type RawKey = [u8; 32];

/// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): SEQUENCE {
/// AlgorithmIdentifier { id-Ed25519 }, BIT STRING (0 unused bits) }.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// blake3 key-derivation context of [`TlsIdentity::reset_key`].
const RESET_KEY_CONTEXT: &str = "bftbench 2026-12-05 QUIC stateless reset key";
/// blake3 key-derivation context of [`TlsIdentity::endpoint_config`]'s
/// connection-ID key.
const CID_KEY_CONTEXT: &str = "bftbench 2026-12-05 QUIC connection id key";

fn first_8(bytes: &[u8; 32]) -> [u8; 8] {
    let mut out = [0u8; 8];
    out.copy_from_slice(&bytes[..8]);
    out
}

/// DER prefix of an Ed25519 PKCS#8 v1 private key (RFC 8410 §7).
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// A certificate and its private key, ready for rustls. Its `Debug` shows
/// the public key only.
#[derive(Clone)]
pub struct TlsIdentity {
    pub cert: CertificateDer<'static>,
    /// PKCS#8 DER of the private key (kept as bytes: the rustls type is not
    /// `Clone`).
    key: Vec<u8>,
    pub public: RawKey,
    /// Key of the endpoint's stateless-reset tokens, derived from the
    /// secret ([`TlsIdentity::reset_key`]).
    reset_secret: [u8; 32],
    /// Key of its connection IDs' check ([`TlsIdentity::endpoint_config`]),
    /// derived apart from `reset_secret`: connection IDs are public and
    /// their check is no cryptographic hash.
    cid_key: u64,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("public", &hex(&self.public))
            .finish_non_exhaustive()
    }
}

impl TlsIdentity {
    /// A self-signed certificate whose key pair is the Ed25519 key with the
    /// 32-byte secret `seed` (the first half of `SecretKeys::to_bytes`).
    pub fn from_ed25519_seed(seed: &[u8; 32], name: &str) -> Result<TlsIdentity, NetError> {
        let mut der = ED25519_PKCS8_PREFIX.to_vec();
        der.extend_from_slice(seed);
        let pair = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
            &PrivatePkcs8KeyDer::from(der.as_slice()),
            &rcgen::PKCS_ED25519,
        )
        .map_err(|e| NetError::Certificate(e.to_string()))?;
        let public = RawKey::try_from(pair.public_key_raw())
            .map_err(|_| NetError::Certificate("Ed25519 public key is not 32 bytes".into()))?;
        let params = rcgen::CertificateParams::new(vec![name.to_string()])
            .map_err(|e| NetError::Certificate(e.to_string()))?;
        let cert = params
            .self_signed(&pair)
            .map_err(|e| NetError::Certificate(e.to_string()))?;
        Ok(TlsIdentity {
            cert: cert.der().clone(),
            key: der,
            public,
            reset_secret: blake3::derive_key(RESET_KEY_CONTEXT, seed),
            cid_key: u64::from_le_bytes(first_8(&blake3::derive_key(CID_KEY_CONTEXT, seed))),
        })
    }

    /// The key a replica's endpoint makes its stateless-reset tokens with
    /// (RFC 9000 §10.3): the same for every run of the same node, so a
    /// replica restarted after a crash (SIGKILL: no CONNECTION_CLOSE was
    /// sent) answers its peers' packets on the dead connections it had
    /// accepted (from lower ids) with a reset they accept, and they redial
    /// at once instead of sending into the void until their idle timeout.
    /// (On the connections it had dialled, a peer addresses it by its
    /// handshake connection ID, which carries no reset token; those peers
    /// switch to its new connection when it dials again.) Derived one-way from the node's
    /// secret, so only that node can make its tokens (RFC 9000 §10.3.2: a
    /// static key must stay secret; anyone holding it could end the node's
    /// connections).
    pub fn reset_key(&self) -> Arc<dyn quinn::crypto::HmacKey> {
        Arc::new(ring::hmac::Key::new(
            ring::hmac::HMAC_SHA256,
            &self.reset_secret,
        ))
    }

    /// The endpoint configuration of this replica: [`TlsIdentity::reset_key`]
    /// and connection IDs that its next run recognises as its own. quinn
    /// answers a packet for an unknown connection with a reset only if the
    /// connection ID passes its generator's check, and its default
    /// generator's check is keyed by a random key per run.
    pub fn endpoint_config(&self) -> quinn::EndpointConfig {
        let mut cfg = quinn::EndpointConfig::new(self.reset_key());
        let cid_key = self.cid_key;
        cfg.cid_generator(move || {
            Box::new(quinn_proto::HashedConnectionIdGenerator::from_key(cid_key))
        });
        cfg
    }

    /// blake3 of the certificate DER, hex: printed in the cluster file so an
    /// operator can compare; the handshake itself pins the key, not this.
    pub fn fingerprint(&self) -> String {
        hex(blake3::hash(&self.cert).as_bytes())
    }

    fn private_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.clone()))
    }
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Who a verified peer is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    Replica(NodeId),
    /// Index into the configured client key list.
    Client(usize),
}

/// The keys a replica accepts: the committee's Ed25519 keys, in id order, and
/// the configured client keys.
#[derive(Clone, Debug)]
pub struct PeerKeys {
    pub replicas: Vec<RawKey>,
    pub clients: Vec<RawKey>,
}

impl PeerKeys {
    pub fn new(committee: &Committee, clients: Vec<RawKey>) -> PeerKeys {
        PeerKeys {
            replicas: committee.members().iter().map(|m| m.ed25519.0).collect(),
            clients,
        }
    }

    /// Replicas first: a key that is both is treated as the replica.
    pub fn classify(&self, key: &RawKey) -> Option<Peer> {
        if let Some(i) = self.replicas.iter().position(|k| k == key) {
            return u16::try_from(i).ok().map(|i| Peer::Replica(NodeId(i)));
        }
        self.clients.iter().position(|k| k == key).map(Peer::Client)
    }
}

/// The Ed25519 key of a certificate, or `None` if it is malformed or not
/// Ed25519.
pub fn ed25519_key_of(cert: &CertificateDer<'_>) -> Option<RawKey> {
    let parsed = webpki::EndEntityCert::try_from(cert).ok()?;
    let spki = parsed.subject_public_key_info();
    let rest = spki.as_ref().strip_prefix(&ED25519_SPKI_PREFIX[..])?;
    RawKey::try_from(rest).ok()
}

/// The peer of an established connection (its certificate passed one of
/// our verifiers, so this only re-reads the key).
pub fn peer_of(conn: &quinn::Connection, keys: &PeerKeys) -> Option<Peer> {
    let identity = conn.peer_identity()?;
    let certs = identity.downcast::<Vec<CertificateDer<'static>>>().ok()?;
    let key = ed25519_key_of(certs.first()?)?;
    keys.classify(&key)
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn refused() -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure)
}

/// TLS 1.3 handshake signature by the certificate's key (which the caller
/// has pinned). TLS 1.2 never happens over QUIC and is refused.
fn verify13(
    algs: &WebPkiSupportedAlgorithms,
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    rustls::crypto::verify_tls13_signature(message, cert, dss, algs)
}

/// Dialer side: accept exactly one key (replica `i`'s).
#[derive(Debug)]
struct PinnedServer {
    expected: RawKey,
    algs: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match ed25519_key_of(end_entity) {
            Some(k) if k == self.expected => Ok(ServerCertVerified::assertion()),
            _ => Err(refused()),
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls12NotOffered,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify13(&self.algs, message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

/// Acceptor side: any committee key or configured client key.
#[derive(Debug)]
struct KnownClients {
    keys: Arc<PeerKeys>,
    algs: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for KnownClients {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        match ed25519_key_of(end_entity).and_then(|k| self.keys.classify(&k)) {
            Some(_) => Ok(ClientCertVerified::assertion()),
            None => Err(refused()),
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls12NotOffered,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify13(&self.algs, message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

/// What the connections run over: a loopback cluster (all nodes in this
/// process or host) or a real network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathProfile {
    /// Congestion control off (a fixed 16 MiB window). On loopback there is
    /// no shared bottleneck to be fair to; Cubic read the queueing inside a
    /// busy 2-core process as congestion and paced 400 KB blocks out over
    /// tens of milliseconds.
    Loopback,
    /// quinn's default (Cubic): required on any shared network.
    Network,
}

/// A congestion "controller" with a constant window (loopback only).
#[derive(Clone, Debug)]
struct FixedWindow(u64);

impl quinn::congestion::Controller for FixedWindow {
    fn on_congestion_event(
        &mut self,
        _now: std::time::Instant,
        _sent: std::time::Instant,
        _is_persistent_congestion: bool,
        _lost_bytes: u64,
    ) {
    }
    fn on_mtu_update(&mut self, _new_mtu: u16) {}
    fn window(&self) -> u64 {
        self.0
    }
    fn clone_box(&self) -> Box<dyn quinn::congestion::Controller> {
        Box::new(self.clone())
    }
    fn initial_window(&self) -> u64 {
        self.0
    }
    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any> {
        self
    }
}

#[derive(Debug)]
struct FixedWindowFactory(u64);

impl quinn::congestion::ControllerFactory for FixedWindowFactory {
    fn build(
        self: Arc<Self>,
        _now: std::time::Instant,
        _current_mtu: u16,
    ) -> Box<dyn quinn::congestion::Controller> {
        Box::new(FixedWindow(self.0))
    }
}

/// Largest UDP payload MTU discovery probes for.
pub const MTU_UPPER_BOUND: u16 = 1472;

/// Transport knobs shared by both sides: keep-alives so a dead peer is
/// noticed in seconds and a restarted one within one keep-alive interval
/// (its reset answers the first packet that reaches it,
/// [`TlsIdentity::reset_key`]; a peer with nothing else to send sends a
/// keep-alive after 100 ms idle), large windows so a 500 KB block is not throttled, and
/// few concurrent streams (we use one per direction) to bound buffering.
fn transport(profile: PathProfile) -> Arc<quinn::TransportConfig> {
    let mut t = quinn::TransportConfig::default();
    if profile == PathProfile::Loopback {
        t.congestion_controller_factory(Arc::new(FixedWindowFactory(16 << 20)));
    }
    t.keep_alive_interval(Some(std::time::Duration::from_millis(100)));
    t.max_idle_timeout(quinn::IdleTimeout::try_from(std::time::Duration::from_secs(3)).ok());
    t.max_concurrent_uni_streams(8u32.into());
    t.max_concurrent_bidi_streams(0u32.into());
    t.stream_receive_window((16u32 << 20).into());
    t.receive_window((64u32 << 20).into());
    t.send_window(64 << 20);
    // MTU discovery up to an Ethernet-sized datagram. (Larger bounds were
    // tried on loopback: after a loss, black-hole detection drops the MTU
    // back to 1200 and throughput got worse; see the crate report.)
    let mut mtu = quinn::MtuDiscoveryConfig::default();
    mtu.upper_bound(MTU_UPPER_BOUND);
    t.mtu_discovery_config(Some(mtu));
    Arc::new(t)
}

/// Socket buffer asked for (the kernel caps it at `net.core.rmem_max`):
/// a leader's block arrives as a burst, and a full buffer means packet loss
/// and a congestion-window collapse.
const SOCKET_BUFFER: usize = 8 << 20;

/// Binds a QUIC endpoint on `addr`, allowing datagrams up to
/// [`MTU_UPPER_BOUND`] and with large socket buffers (best effort). A
/// replica's (`server` given with its identity) serves and makes its
/// stateless resets with [`TlsIdentity::reset_key`]; a client's gets a
/// random reset key, as quinn's default.
pub fn bind_endpoint(
    addr: std::net::SocketAddr,
    server: Option<(quinn::ServerConfig, &TlsIdentity)>,
) -> Result<quinn::Endpoint, NetError> {
    let bind = |e| NetError::Bind { addr, source: e };
    let socket = std::net::UdpSocket::bind(addr).map_err(bind)?;
    if let Ok(state) = quinn::udp::UdpSocketState::new((&socket).into()) {
        let _ = state.set_recv_buffer_size((&socket).into(), SOCKET_BUFFER);
        let _ = state.set_send_buffer_size((&socket).into(), SOCKET_BUFFER);
    }
    let (mut cfg, server) = match server {
        Some((server, id)) => (id.endpoint_config(), Some(server)),
        None => (quinn::EndpointConfig::default(), None),
    };
    cfg.max_udp_payload_size(MTU_UPPER_BOUND)
        .map_err(|e| NetError::Tls(e.to_string()))?;
    quinn::Endpoint::new(cfg, server, socket, Arc::new(quinn::TokioRuntime)).map_err(bind)
}

/// Server side of a replica's endpoint.
pub fn server_config(
    id: &TlsIdentity,
    keys: Arc<PeerKeys>,
    profile: PathProfile,
) -> Result<quinn::ServerConfig, NetError> {
    let provider = provider();
    let verifier = Arc::new(KnownClients {
        keys,
        algs: provider.signature_verification_algorithms,
    });
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| NetError::Tls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![id.cert.clone()], id.private_key())
        .map_err(|e| NetError::Tls(e.to_string()))?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let quic = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
        .map_err(|e| NetError::Tls(e.to_string()))?;
    let mut cfg = quinn::ServerConfig::with_crypto(Arc::new(quic));
    cfg.transport_config(transport(profile));
    Ok(cfg)
}

/// Client side for dialing the replica whose key is `expected`.
pub fn client_config(
    id: &TlsIdentity,
    expected: RawKey,
    profile: PathProfile,
) -> Result<quinn::ClientConfig, NetError> {
    let provider = provider();
    let verifier = Arc::new(PinnedServer {
        expected,
        algs: provider.signature_verification_algorithms,
    });
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| NetError::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(vec![id.cert.clone()], id.private_key())
        .map_err(|e| NetError::Tls(e.to_string()))?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(tls)
        .map_err(|e| NetError::Tls(e.to_string()))?;
    let mut cfg = quinn::ClientConfig::new(Arc::new(quic));
    cfg.transport_config(transport(profile));
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_carries_the_ed25519_key() {
        let seed = [7u8; 32];
        let id = TlsIdentity::from_ed25519_seed(&seed, "node-0").unwrap();
        assert_eq!(ed25519_key_of(&id.cert), Some(id.public));
        let again = TlsIdentity::from_ed25519_seed(&seed, "node-0").unwrap();
        assert_eq!(id.fingerprint(), again.fingerprint(), "deterministic");
        assert_eq!(ed25519_key_of(&CertificateDer::from(vec![1, 2, 3])), None);
    }
}
