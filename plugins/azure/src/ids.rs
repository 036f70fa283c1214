//! ARM ids and their abstraction (issue 8).
//!
//! The original tool abstracted an id by hashing only the resource *name* with the tenant
//! seed, so two resources of the same name in different resource groups collided. Here the
//! abstracted id is a type prefix and the first 128 bits of HMAC-SHA-256, keyed by the
//! tenant's 256-bit seed, over the **whole canonical id** (lower-cased: ARM ids are
//! case-insensitive and references to one resource differ in case). At 128 bits a
//! collision among a million resources has a probability near 10^-27; one is nevertheless
//! detected per run and fails the sync.

use std::collections::HashMap;

use hmac::{Hmac, KeyInit, Mac};
use infragraph_sdk::SyncError;
use sha2::{Digest, Sha256};

/// The state key the seed is kept under.
pub const SEED_KEY: &str = "abstraction_seed";

/// Hex digits of the hash in an abstracted id (128 bits).
const HASH_HEX: usize = 32;

/// The per-tenant secret keying the abstraction. Never written to the graph or a log.
#[derive(Clone, PartialEq, Eq)]
pub struct Seed([u8; 32]);

impl std::fmt::Debug for Seed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Seed(..)")
    }
}

impl Seed {
    /// 256 fresh random bits.
    pub fn generate() -> Result<Seed, SyncError> {
        let mut b = [0u8; 32];
        getrandom::fill(&mut b)
            .map_err(|e| SyncError::other(format!("cannot draw a random abstraction seed: {e}")))?;
        Ok(Seed(b))
    }

    /// The seed as stored in the plugin state: 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Option<Seed> {
        bytes.try_into().ok().map(Seed)
    }

    /// A seed written as 64 hex digits (`AZURE_ABSTRACTION_SEED`).
    pub fn from_hex(text: &str) -> Option<Seed> {
        let text = text.trim();
        if text.len() != 64 || !text.is_ascii() {
            return None;
        }
        let mut b = [0u8; 32];
        for (i, byte) in b.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(Seed(b))
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// 16 hex digits that tell seeds apart without revealing them (a SHA-256 of the seed
    /// under a fixed label): written on abstracted nodes so an operator can check that a
    /// store moved elsewhere uses the same seed.
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"infragraph-azure-seed-fingerprint\0");
        h.update(self.0);
        hex(&h.finalize()[..8])
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The canonical form of an ARM id: lower-case, no trailing slash.
pub fn canonical(id: &str) -> String {
    id.trim().trim_end_matches('/').to_ascii_lowercase()
}

/// The resource type an ARM id names, lower-case: `microsoft.network/virtualnetworks/subnets`
/// for `/subscriptions/s/resourcegroups/g/providers/Microsoft.Network/virtualNetworks/v/subnets/s`.
/// The last `providers` segment counts, so extension resources get their own type.
pub fn arm_type(id: &str) -> String {
    let id = canonical(id);
    let parts: Vec<&str> = id.split('/').filter(|p| !p.is_empty()).collect();
    let Some(at) = parts.iter().rposition(|p| *p == "providers") else {
        return match parts.as_slice() {
            ["subscriptions", _] => "microsoft.resources/subscriptions".into(),
            ["subscriptions", _, "resourcegroups", _] => {
                "microsoft.resources/resourcegroups".into()
            }
            _ => String::new(),
        };
    };
    let rest = &parts[at + 1..];
    let Some(namespace) = rest.first() else {
        return String::new();
    };
    let mut ty = (*namespace).to_owned();
    for pair in rest[1..].chunks(2) {
        ty.push('/');
        ty.push_str(pair[0]);
    }
    ty
}

/// `(subscription id, resource group name)` of an ARM id, as written in it (the caller
/// lower-cases when it needs to).
pub fn scope_parts(id: &str) -> (Option<&str>, Option<&str>) {
    let mut sub = None;
    let mut group = None;
    let mut it = id.split('/').filter(|p| !p.is_empty());
    while let Some(p) = it.next() {
        if p.eq_ignore_ascii_case("subscriptions") && sub.is_none() {
            sub = it.next();
        } else if p.eq_ignore_ascii_case("resourcegroups") && group.is_none() {
            group = it.next();
        } else if p.eq_ignore_ascii_case("providers") {
            break;
        }
    }
    (sub, group)
}

/// The canonical id of the resource group holding `id`, if it is in one.
pub fn group_id(id: &str) -> Option<String> {
    match scope_parts(id) {
        (Some(s), Some(g)) => Some(canonical(&format!("/subscriptions/{s}/resourceGroups/{g}"))),
        _ => None,
    }
}

/// The prefix of an abstracted id: short names for common types, `res` for the rest.
pub fn prefix(arm_type: &str) -> &'static str {
    match arm_type {
        "microsoft.resources/subscriptions" => "sub",
        "microsoft.resources/resourcegroups" => "rg",
        "microsoft.compute/virtualmachines" => "vm",
        "microsoft.compute/disks" => "disk",
        "microsoft.network/networkinterfaces" => "nic",
        "microsoft.network/virtualnetworks" => "vnet",
        "microsoft.network/virtualnetworks/subnets" => "subnet",
        "microsoft.network/networksecuritygroups" => "nsg",
        "microsoft.network/publicipaddresses" => "pip",
        "microsoft.network/privateendpoints" => "pe",
        "microsoft.network/dnszones" => "dns",
        "microsoft.network/privatednszones" => "pdns",
        "microsoft.storage/storageaccounts" => "storage",
        "microsoft.keyvault/vaults" => "kv",
        "microsoft.web/sites" => "app",
        "microsoft.web/serverfarms" => "plan",
        "microsoft.managedidentity/userassignedidentities" => "id",
        "microsoft.operationalinsights/workspaces" => "law",
        "microsoft.insights/components" => "appi",
        "microsoft.insights/metricalerts" => "alert",
        "microsoft.eventgrid/systemtopics" => "evgt",
        "microsoft.sql/servers" => "sql",
        _ => "res",
    }
}

/// Abstracts ids with one seed and remembers every id it handed out for a resource in this
/// run, to detect a collision.
pub struct Abstractor {
    seed: Seed,
    issued: HashMap<String, String>,
}

impl Abstractor {
    pub fn new(seed: Seed) -> Abstractor {
        Abstractor {
            seed,
            issued: HashMap::new(),
        }
    }

    pub fn seed(&self) -> &Seed {
        &self.seed
    }

    /// The abstracted id of an ARM id (subscription, resource group or resource): a pure
    /// function of the seed and the canonical id.
    pub fn id(&self, arm_id: &str) -> String {
        let canonical = canonical(arm_id);
        let mut mac =
            <Hmac<Sha256> as KeyInit>::new_from_slice(self.seed.bytes()).expect("any key length");
        mac.update(canonical.as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut out = String::with_capacity(8 + HASH_HEX);
        out.push_str(prefix(&arm_type(&canonical)));
        out.push('-');
        out.push_str(&hex(&digest[..HASH_HEX / 2]));
        out
    }

    /// The abstracted id of a resource emitted in this run; fails loudly if another
    /// canonical id already got the same one.
    pub fn issue(&mut self, arm_id: &str) -> Result<String, SyncError> {
        let id = self.id(arm_id);
        let canonical = canonical(arm_id);
        match self.issued.get(&id) {
            Some(other) if *other != canonical => Err(SyncError::other(format!(
                "abstracted id collision: {other:?} and {canonical:?} both abstract to {id:?}; \
                 the graph would merge two resources, so the sync stops"
            ))),
            Some(_) => Ok(id),
            None => {
                self.issued.insert(id.clone(), canonical);
                Ok(id)
            }
        }
    }

    /// Resources issued so far.
    pub fn issued(&self) -> usize {
        self.issued.len()
    }

    /// Pretends `arm_id` already abstracted to `id`, to test collision detection.
    #[cfg(test)]
    pub fn force(&mut self, id: &str, arm_id: &str) {
        self.issued.insert(id.to_owned(), canonical(arm_id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VM: &str =
        "/subscriptions/1111/resourceGroups/RG-A/providers/Microsoft.Compute/virtualMachines/web";
    const VM_B: &str =
        "/subscriptions/1111/resourceGroups/rg-b/providers/Microsoft.Compute/virtualMachines/web";

    fn abstractor(byte: u8) -> Abstractor {
        Abstractor::new(Seed([byte; 32]))
    }

    #[test]
    fn types_and_scopes_come_from_the_id() {
        assert_eq!(arm_type(VM), "microsoft.compute/virtualmachines");
        assert_eq!(
            arm_type(
                "/subscriptions/1/resourceGroups/g/providers/Microsoft.Network/virtualNetworks/v/subnets/s/"
            ),
            "microsoft.network/virtualnetworks/subnets"
        );
        assert_eq!(
            arm_type("/subscriptions/1"),
            "microsoft.resources/subscriptions"
        );
        assert_eq!(
            arm_type("/subscriptions/1/resourcegroups/g"),
            "microsoft.resources/resourcegroups"
        );
        assert_eq!(scope_parts(VM), (Some("1111"), Some("RG-A")));
        assert_eq!(
            group_id(VM).as_deref(),
            Some("/subscriptions/1111/resourcegroups/rg-a")
        );
        assert_eq!(group_id("/subscriptions/1"), None);
    }

    #[test]
    fn same_name_in_other_group_differs_and_case_does_not_matter() {
        let a = abstractor(7);
        let (x, y) = (a.id(VM), a.id(VM_B));
        assert_ne!(x, y);
        assert!(x.starts_with("vm-") && x.len() == 3 + HASH_HEX, "{x}");
        assert_eq!(a.id(&VM.to_uppercase()), x);
        assert_eq!(a.id(&format!("{VM}/")), x);
        // Another seed, other ids; the same seed, the same ids.
        assert_ne!(abstractor(8).id(VM), x);
        assert_eq!(abstractor(7).id(VM), x);
        assert_eq!(a.id("/subscriptions/1111").split('-').next(), Some("sub"));
        assert_eq!(
            a.id("/subscriptions/1111/resourceGroups/rg-a")
                .split('-')
                .next(),
            Some("rg")
        );
    }

    #[test]
    fn a_collision_fails_loudly() {
        let mut a = abstractor(1);
        let id = a.issue(VM).unwrap();
        assert_eq!(a.issue(&VM.to_lowercase()).unwrap(), id);
        a.force(
            &a.id(VM_B),
            "/subscriptions/9/resourcegroups/x/providers/a.b/c/d",
        );
        let e = a.issue(VM_B).unwrap_err().to_string();
        assert!(e.contains("collision") && e.contains("rg-b"), "{e}");
    }

    #[test]
    fn seeds_parse_and_hide() {
        let hex64 = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
        let s = Seed::from_hex(hex64).unwrap();
        assert_eq!(s.bytes()[1], 0x11);
        assert_eq!(Seed::from_bytes(s.bytes()), Some(s.clone()));
        assert!(Seed::from_hex("abc").is_none());
        assert!(Seed::from_hex(&hex64.replace('0', "g")).is_none());
        assert_eq!(format!("{s:?}"), "Seed(..)");
        assert_eq!(s.fingerprint().len(), 16);
        assert!(!hex64.contains(&s.fingerprint()));
        assert_ne!(Seed::generate().unwrap(), Seed::generate().unwrap());
    }
}
