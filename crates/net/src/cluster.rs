//! The cluster file (public: addresses, keys, fingerprints) and the secret
//! key files, for one node per process or per host.
//!
//! ```toml
//! [[nodes]]
//! id = 0
//! address = "127.0.0.1:7000"
//! ed25519 = "<32-byte public key, hex>"
//! bls = "<96-byte BLS12-381 G2 public key, hex>"
//! bls_pop = "<48-byte proof of possession, hex>"
//! cert_fingerprint = "<blake3 of the TLS certificate DER, hex>"
//!
//! [[clients]]
//! ed25519 = "<hex>"
//! cert_fingerprint = "<hex>"
//! key_file = "client-0.key"   # relative to this file; optional
//! ```
//!
//! `node-<i>.key` holds `SecretKeys::to_bytes` (64 bytes) as hex;
//! `client-<j>.key` holds a 32-byte Ed25519 secret as hex. Both are written
//! with mode 0600. Client j (`[[clients]]` entry j) is the load generator's
//! logical client j: its key signs that client's requests and replicas
//! verify them against its `ed25519`; client 0's key is also the
//! generator's TLS identity.

use crate::NetError;
use crate::tls::{RawKey, TlsIdentity, hex};
use bft_core::{BlsPop, BlsPublicKey, Committee, Ed25519PublicKey, Member, NodeId};
use bft_crypto::SecretKeys;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeEntry {
    pub id: u16,
    pub address: SocketAddr,
    pub ed25519: String,
    pub bls: String,
    pub bls_pop: String,
    pub cert_fingerprint: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientEntry {
    pub ed25519: String,
    pub cert_fingerprint: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterFile {
    pub nodes: Vec<NodeEntry>,
    #[serde(default)]
    pub clients: Vec<ClientEntry>,
    /// Where the file was read from: key files are relative to it.
    #[serde(skip)]
    pub dir: PathBuf,
}

impl ClusterFile {
    /// Reads and checks a cluster file (errors name the file and the key).
    pub fn load(path: &Path) -> Result<ClusterFile, NetError> {
        let text = std::fs::read_to_string(path).map_err(|e| NetError::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
        let mut file: ClusterFile = toml::from_str(&text).map_err(|e| NetError::ClusterFile {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        file.dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        file.committee().map_err(|e| NetError::ClusterFile {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        file.client_keys().map_err(|e| NetError::ClusterFile {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        Ok(file)
    }

    /// The committee; ids must be 0..n in order.
    pub fn committee(&self) -> Result<Committee, NetError> {
        let members = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, e)| member(i, e))
            .collect::<Result<Vec<_>, _>>()?;
        Committee::new(members).map_err(|e| NetError::Invalid {
            key: "nodes".into(),
            reason: e.to_string(),
        })
    }

    /// The keys replicas check client requests against, checked: listed
    /// client j's is entry j, and each member's own key for its HTTP
    /// ingress.
    pub fn client_request_keys(&self) -> Result<bft_crypto::ClientKeys, NetError> {
        let keys: Vec<Ed25519PublicKey> = self
            .client_keys()?
            .into_iter()
            .map(Ed25519PublicKey)
            .collect();
        let nodes: Vec<Ed25519PublicKey> = self
            .committee()?
            .members()
            .iter()
            .map(|m| m.ed25519)
            .collect();
        let invalid = |e: bft_crypto::CryptoError| NetError::ClusterFile {
            path: self.dir.join("cluster.toml"),
            reason: e.to_string(),
        };
        bft_crypto::ClientKeys::listed(&keys)
            .map_err(invalid)?
            .with_ingress(&nodes)
            .map_err(invalid)
    }

    pub fn client_keys(&self) -> Result<Vec<RawKey>, NetError> {
        self.clients
            .iter()
            .enumerate()
            .map(|(j, c)| unhex::<32>(&c.ed25519, &format!("clients[{j}].ed25519")))
            .collect()
    }

    pub fn addresses(&self) -> Vec<SocketAddr> {
        self.nodes.iter().map(|e| e.address).collect()
    }

    /// Path of client `j`'s key file, if the cluster file names one.
    pub fn client_key_path(&self, j: usize) -> Option<PathBuf> {
        let c = self.clients.get(j)?;
        c.key_file.as_ref().map(|p| self.dir.join(p))
    }
}

fn member(position: usize, e: &NodeEntry) -> Result<Member, NetError> {
    if usize::from(e.id) != position {
        return Err(NetError::Invalid {
            key: format!("nodes[{position}].id"),
            reason: format!("is {} but ids must be 0..n in order", e.id),
        });
    }
    Ok(Member {
        id: NodeId(e.id),
        ed25519: Ed25519PublicKey(unhex::<32>(
            &e.ed25519,
            &format!("nodes[{position}].ed25519"),
        )?),
        bls: BlsPublicKey(unhex::<96>(&e.bls, &format!("nodes[{position}].bls"))?),
        bls_pop: BlsPop(unhex::<48>(
            &e.bls_pop,
            &format!("nodes[{position}].bls_pop"),
        )?),
    })
}

/// Parses exactly `N` bytes of hex; the error names `key`.
pub fn unhex<const N: usize>(s: &str, key: &str) -> Result<[u8; N], NetError> {
    let bad = |reason: String| NetError::Invalid {
        key: key.to_string(),
        reason,
    };
    let s = s.trim();
    if s.len() != 2 * N {
        return Err(bad(format!(
            "{} hex digits, expected {} ({N} bytes)",
            s.len(),
            2 * N
        )));
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        let pair = s
            .get(2 * i..2 * i + 2)
            .ok_or_else(|| bad("not hex".into()))?;
        *byte = u8::from_str_radix(pair, 16).map_err(|_| bad(format!("`{pair}` is not hex")))?;
    }
    Ok(out)
}

/// Reads a node's secret key file (hex of `SecretKeys::to_bytes`).
pub fn read_node_key(path: &Path) -> Result<SecretKeys, NetError> {
    let text = std::fs::read_to_string(path).map_err(|e| NetError::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    let bytes = unhex::<64>(&text, &path.display().to_string())?;
    SecretKeys::from_bytes(&bytes).map_err(|e| NetError::Invalid {
        key: path.display().to_string(),
        reason: e.to_string(),
    })
}

/// Reads a client's secret key file (hex of a 32-byte Ed25519 secret).
pub fn read_client_key(path: &Path) -> Result<[u8; 32], NetError> {
    let text = std::fs::read_to_string(path).map_err(|e| NetError::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    unhex::<32>(&text, &path.display().to_string())
}

/// Writes `text` to `path` readable by the owner only.
fn write_secret(path: &Path, text: &str) -> Result<(), NetError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |e| NetError::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)
}

/// Node i's TLS identity from its secret keys.
pub fn node_identity(key: &SecretKeys, id: NodeId) -> Result<TlsIdentity, NetError> {
    let bytes = key.to_bytes();
    let mut seed = [0u8; 32];
    seed.copy_from_slice(&bytes[..32]);
    TlsIdentity::from_ed25519_seed(&seed, &format!("node-{}", id.0))
}

/// A client's 32-byte Ed25519 secret derived from a run seed (in-process
/// clusters and seeded keygen).
pub fn client_secret_from_seed(seed: u64, j: u32) -> [u8; 32] {
    let mut input = [0u8; 12];
    input[..8].copy_from_slice(&seed.to_le_bytes());
    input[8..].copy_from_slice(&j.to_le_bytes());
    blake3::derive_key("bftbench 2026-11 client tls ed25519 secret v1", &input)
}

/// Secret keys for node `id`: from the seed when given, else from the OS
/// RNG (full-entropy Ed25519 secret and BLS scalar).
fn node_secret(seed: Option<u64>, id: NodeId) -> Result<SecretKeys, NetError> {
    match seed {
        Some(s) => Ok(SecretKeys::from_seed(s, id)),
        None => {
            let mut bytes = [0u8; 64];
            getrandom(&mut bytes)?;
            // A BLS scalar must be below the group order r ≈ 0x73ed…: clear
            // the top two bits of its big-endian first byte.
            bytes[32] &= 0x3f;
            SecretKeys::from_bytes(&bytes).map_err(|e| NetError::Invalid {
                key: "random key".into(),
                reason: e.to_string(),
            })
        }
    }
}

fn getrandom(buf: &mut [u8]) -> Result<(), NetError> {
    use std::io::Read;
    let path = Path::new("/dev/urandom");
    let io = |e| NetError::Io {
        path: path.to_path_buf(),
        source: e,
    };
    std::fs::File::open(path)
        .map_err(io)?
        .read_exact(buf)
        .map_err(io)
}

/// Writes `cluster.toml`, `node-<i>.key` for each node (node i listens on
/// `base_addr` with port + i) and `client-<j>.key` for each of `clients`
/// clients. Client j's key signs the requests of the load generator's
/// logical client j; client 0's is also the generator's TLS identity.
pub fn keygen(
    nodes: usize,
    clients: u32,
    base_addr: SocketAddr,
    seed: Option<u64>,
    out_dir: &Path,
) -> Result<ClusterFile, NetError> {
    std::fs::create_dir_all(out_dir).map_err(|e| NetError::Io {
        path: out_dir.to_path_buf(),
        source: e,
    })?;
    let mut entries = Vec::with_capacity(nodes);
    for i in 0..nodes {
        let id = NodeId(u16::try_from(i).map_err(|_| NetError::TooManyNodes(nodes))?);
        let port = base_addr
            .port()
            .checked_add(id.0)
            .ok_or_else(|| NetError::Invalid {
                key: "base_addr".into(),
                reason: format!("port {} + {i} overflows", base_addr.port()),
            })?;
        let secret = node_secret(seed, id)?;
        let m = secret.member(id);
        let tls = node_identity(&secret, id)?;
        write_secret(
            &out_dir.join(format!("node-{i}.key")),
            &format!("{}\n", hex(&secret.to_bytes())),
        )?;
        entries.push(NodeEntry {
            id: id.0,
            address: SocketAddr::new(base_addr.ip(), port),
            ed25519: hex(m.ed25519.as_bytes()),
            bls: hex(m.bls.as_bytes()),
            bls_pop: hex(m.bls_pop.as_bytes()),
            cert_fingerprint: tls.fingerprint(),
        });
    }
    let clients = (0..clients.max(1))
        .map(|j| client_entry(seed, j, out_dir))
        .collect::<Result<Vec<_>, _>>()?;
    let file = ClusterFile {
        nodes: entries,
        clients,
        dir: out_dir.to_path_buf(),
    };
    file.committee()?;
    let text = toml::to_string_pretty(&file).map_err(|e| NetError::ClusterFile {
        path: out_dir.join("cluster.toml"),
        reason: e.to_string(),
    })?;
    let path = out_dir.join("cluster.toml");
    std::fs::write(&path, text).map_err(|e| NetError::Io { path, source: e })?;
    Ok(file)
}

/// Client `j`'s secret (from the seed when given, else the OS RNG),
/// written to `client-<j>.key`, and its cluster file entry.
fn client_entry(seed: Option<u64>, j: u32, out_dir: &Path) -> Result<ClientEntry, NetError> {
    let secret = match seed {
        Some(s) => client_secret_from_seed(s, j),
        None => {
            let mut b = [0u8; 32];
            getrandom(&mut b)?;
            b
        }
    };
    let name = format!("client-{j}");
    let tls = TlsIdentity::from_ed25519_seed(&secret, &name)?;
    let file = format!("{name}.key");
    write_secret(&out_dir.join(&file), &format!("{}\n", hex(&secret)))?;
    Ok(ClientEntry {
        ed25519: hex(&tls.public),
        cert_fingerprint: tls.fingerprint(),
        key_file: Some(PathBuf::from(file)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keygen_round_trips_and_keys_match() {
        let dir = std::env::temp_dir().join(format!("bft-net-keygen-{}", std::process::id()));
        let base: SocketAddr = "127.0.0.1:7000".parse().unwrap();
        let written = keygen(4, 2, base, Some(3), &dir).unwrap();
        let read = ClusterFile::load(&dir.join("cluster.toml")).unwrap();
        assert_eq!(read.nodes, written.nodes);
        assert_eq!(read.nodes[3].address.port(), 7003);
        let key = read_node_key(&dir.join("node-2.key")).unwrap();
        assert_eq!(
            key.member(NodeId(2)),
            read.committee().unwrap().members()[2]
        );
        let client = read_client_key(&read.client_key_path(0).unwrap()).unwrap();
        assert_eq!(client, client_secret_from_seed(3, 0));
        let random = keygen(4, 2, base, None, &dir.join("random")).unwrap();
        assert_ne!(random.nodes[0].ed25519, read.nodes[0].ed25519);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_hex_names_the_key() {
        let err = unhex::<32>("abcd", "nodes[1].ed25519").unwrap_err();
        assert!(err.to_string().contains("nodes[1].ed25519"), "{err}");
    }
}
