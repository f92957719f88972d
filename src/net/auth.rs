//! Peer authentication: every datagram between the hosts of a cluster (RSL replicas, KV hosts)
//! carries a keyed BLAKE3 MAC of its bytes under the cluster's key, so a datagram that merely
//! comes from a peer's address is not believed. Without it anyone who can send to a replica can
//! install an app state, decide a slot, or wedge an acceptor with a maximal ballot.
//!
//! The key is 32 random bytes kept in a key file (64 hex digits) that the cluster file names
//! (`key_file`), made by `ironfleet rsl keygen` / `kv keygen`. Clients never hold it: what they
//! send is accepted only as a client request, never as a peer message.
//!
//! A sealed datagram is the encoded message followed by its 32-byte tag; the tag is checked in
//! constant time before the message is decoded.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use rand::RngCore;

/// Bytes of the tag appended to a peer datagram.
pub const TAG_LEN: usize = 32;

/// A cluster's secret key.
#[derive(Clone)]
pub struct ClusterKey([u8; 32]);

impl std::fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterKey(..)")
    }
}

impl ClusterKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> Self {
        let mut k = [0u8; 32];
        rand::rng().fill_bytes(&mut k);
        ClusterKey(k)
    }

    /// A key with these bytes (tests).
    pub fn from_bytes(k: [u8; 32]) -> Self {
        ClusterKey(k)
    }

    /// Reads a key file: 64 hex digits (surrounding whitespace allowed).
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading key file {}", path.display()))?;
        let bytes = hex::decode(text.trim())
            .with_context(|| format!("{}: not a key (64 hex digits)", path.display()))?;
        let k: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
            anyhow::anyhow!(
                "{}: a key is 32 bytes (64 hex digits), this one is {}",
                path.display(),
                b.len()
            )
        })?;
        Ok(ClusterKey(k))
    }

    /// Writes a new key file readable by its owner only; refuses to replace an existing one.
    pub fn write_new(path: &Path) -> Result<Self> {
        if path.exists() {
            bail!(
                "{} exists: refusing to replace a cluster key",
                path.display()
            );
        }
        let key = ClusterKey::generate();
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts
            .open(path)
            .with_context(|| format!("creating {}", path.display()))?;
        use std::io::Write;
        writeln!(f, "{}", hex::encode(key.0))
            .and_then(|_| f.sync_all())
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(key)
    }

    fn tag(&self, bytes: &[u8]) -> blake3::Hash {
        blake3::keyed_hash(&self.0, bytes)
    }

    /// Appends the tag of `datagram` to it.
    pub fn seal(&self, datagram: &mut Vec<u8>) {
        let tag = self.tag(datagram);
        datagram.extend_from_slice(tag.as_bytes());
    }

    /// The message bytes of a sealed datagram whose tag is right, or `None`.
    pub(crate) fn open<'a>(&self, datagram: &'a [u8]) -> Option<&'a [u8]> {
        let body_len = datagram.len().checked_sub(TAG_LEN)?;
        let (body, tag) = datagram.split_at(body_len);
        let tag: [u8; TAG_LEN] = tag.try_into().ok()?;
        // `blake3::Hash` compares in constant time.
        (self.tag(body) == blake3::Hash::from(tag)).then_some(body)
    }
}

/// A cluster file's `key_file`, relative to the cluster file.
pub(crate) fn resolve(cluster_file: &Path, key_file: &Path) -> PathBuf {
    if key_file.is_relative() {
        cluster_file
            .parent()
            .unwrap_or(Path::new("."))
            .join(key_file)
    } else {
        key_file.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_sealed_datagram_opens_with_its_key_only() {
        let k = ClusterKey::from_bytes([7; 32]);
        let mut d = b"IF\x01hello".to_vec();
        k.seal(&mut d);
        assert_eq!(k.open(&d), Some(&b"IF\x01hello"[..]));
        assert_eq!(ClusterKey::from_bytes([8; 32]).open(&d), None);
        assert_eq!(k.open(b"IF\x01hello"), None, "no tag");
        assert_eq!(k.open(&d[..d.len() - 1]), None, "truncated");
        assert_eq!(k.open(&[]), None);
    }

    #[test]
    fn key_files_round_trip_and_are_not_replaced() {
        let d = std::env::temp_dir().join(format!("ironfleet-key-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("cluster.key");
        let k = ClusterKey::write_new(&p).unwrap();
        assert_eq!(ClusterKey::load(&p).unwrap().0, k.0);
        assert!(ClusterKey::write_new(&p).is_err());
        std::fs::write(&p, "abcd").unwrap();
        assert!(ClusterKey::load(&p)
            .unwrap_err()
            .to_string()
            .contains("32 bytes"));
        std::fs::write(&p, "not hex at all").unwrap();
        assert!(ClusterKey::load(&p).is_err());
    }

    proptest! {
        /// Any change to a sealed datagram (a flipped bit anywhere) is refused.
        #[test]
        fn tampering_is_detected(body in proptest::collection::vec(any::<u8>(), 0..200), at in 0usize..232, bit in 0u8..8) {
            let k = ClusterKey::from_bytes([3; 32]);
            let mut d = body.clone();
            k.seal(&mut d);
            prop_assert_eq!(k.open(&d), Some(&body[..]));
            let i = at % d.len();
            d[i] ^= 1 << bit;
            prop_assert_eq!(k.open(&d), None);
        }
    }
}
