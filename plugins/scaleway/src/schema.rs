//! Every node and relationship the plugin writes, as `docs/providers/scaleway.md` lists
//! them: the same labels, the same property names, the same directions.

use infragraph_sdk::{Access, EdgeKind, NodeKind, ValueType};

pub const ORGANIZATION: &str = "ScalewayOrganization";
pub const PROJECT: &str = "ScalewayProject";
pub const USER: &str = "ScalewayUser";
pub const GROUP: &str = "ScalewayGroup";
pub const APPLICATION: &str = "ScalewayApplication";
pub const API_KEY: &str = "ScalewayApiKey";
pub const VOLUME: &str = "ScalewayVolume";
pub const SNAPSHOT: &str = "ScalewayVolumeSnapshot";
pub const FLEXIBLE_IP: &str = "ScalewayFlexibleIp";
pub const INSTANCE: &str = "ScalewayInstance";
pub const POLICY: &str = "ScalewayPolicy";

pub const RESOURCE: &str = "RESOURCE";
pub const MEMBER_OF: &str = "MEMBER_OF";
pub const HAS: &str = "HAS";
pub const MOUNTS: &str = "MOUNTS";
pub const IDENTIFIES: &str = "IDENTIFIES";
pub const APPLIES_TO: &str = "APPLIES_TO";
pub const GRANTS: &str = "GRANTS";

use ValueType::{Boolean, Int, Text, TextList};

pub fn nodes() -> Vec<NodeKind> {
    vec![
        NodeKind::new(ORGANIZATION, "A Scaleway Organization: the scope of a sync"),
        NodeKind::new(PROJECT, "A Project, grouping Scaleway resources")
            .prop("name", Text, "Name of the project")
            .prop("created_at", Text, "Creation timestamp")
            .prop("updated_at", Text, "Last update timestamp")
            .prop("description", Text, "Project description"),
        NodeKind::new(USER, "A user of the Organization")
            .indexed_prop("email", Text, "Email of the user")
            .prop("username", Text, "Identifier unique to the Organization")
            .prop("first_name", Text, "First name")
            .prop("last_name", Text, "Last name")
            .prop("phone_number", Text, "Phone number")
            .prop("locale", Text, "Locale")
            .prop("created_at", Text, "When the user was created")
            .prop("updated_at", Text, "When the user was last updated")
            .prop(
                "deletable",
                Boolean,
                "Whether the user can be deleted (owners cannot)",
            )
            .prop("last_login_at", Text, "Last login")
            .prop("type", Text, "unknown_type, guest, owner or member")
            .prop(
                "status",
                Text,
                "unknown_status, invitation_pending or activated",
            )
            .prop("mfa", Boolean, "Whether MFA is enabled")
            .prop(
                "account_root_user_id",
                Text,
                "The account root user of the user",
            )
            .prop("tags", TextList, "Tags")
            .prop("locked", Boolean, "Whether the user is locked"),
        NodeKind::new(GROUP, "An IAM group of users and applications")
            .prop("created_at", Text, "When the group was created")
            .prop("updated_at", Text, "When the group was last updated")
            .prop("name", Text, "Name of the group")
            .prop("description", Text, "Description of the group")
            .prop("tags", TextList, "Tags")
            .prop("editable", Boolean, "Whether the group is editable")
            .prop("deletable", Boolean, "Whether the group is deletable")
            .prop("managed", Boolean, "Whether the group is managed"),
        NodeKind::new(APPLICATION, "An IAM application (service account)")
            .prop("name", Text, "Name of the application")
            .prop("description", Text, "Description of the application")
            .prop("created_at", Text, "When the application was created")
            .prop("updated_at", Text, "When the application was last updated")
            .prop("editable", Boolean, "Whether the application is editable")
            .prop("deletable", Boolean, "Whether the application is deletable")
            .prop("managed", Boolean, "Whether the application is managed")
            .prop("tags", TextList, "Tags"),
        NodeKind::new(API_KEY, "An IAM API key, keyed by its access key")
            .prop("description", Text, "Description of the key")
            .prop("created_at", Text, "When the key was created")
            .prop("updated_at", Text, "When the key was last updated")
            .prop("expires_at", Text, "When the key expires")
            .prop("default_project_id", Text, "Default Project of the key")
            .prop("editable", Boolean, "Whether the key is editable")
            .prop("deletable", Boolean, "Whether the key is deletable")
            .prop("managed", Boolean, "Whether the key is managed")
            .prop(
                "creation_ip",
                Text,
                "IP address of the device that created the key",
            ),
        NodeKind::new(
            POLICY,
            "An IAM policy: rules granting permission sets to one principal",
        )
        .prop("name", Text, "Name of the policy")
        .prop("description", Text, "Description of the policy")
        .prop("created_at", Text, "When the policy was created")
        .prop("updated_at", Text, "When the policy was last updated")
        .prop("editable", Boolean, "Whether the policy is editable")
        .prop("deletable", Boolean, "Whether the policy is deletable")
        .prop(
            "managed",
            Boolean,
            "Whether Scaleway manages the policy (e.g. for a product)",
        )
        .prop("nb_rules", Int, "Number of rules")
        .prop("nb_scopes", Int, "Number of scopes of its rules")
        .prop("nb_permission_sets", Int, "Number of permission sets")
        .prop("tags", TextList, "Tags")
        .prop(
            "no_principal",
            Boolean,
            "True when the policy is attached to no principal",
        ),
        NodeKind::new(VOLUME, "An Instance or Block Storage volume")
            .prop("name", Text, "Volume name")
            .prop("export_uri", Text, "NBD export URI")
            .prop("size", Int, "Size in bytes")
            .prop(
                "volume_type",
                Text,
                "l_ssd, b_ssd, unified, scratch, sbs_volume or sbs_snapshot",
            )
            .prop("creation_date", Text, "Creation date")
            .prop("modification_date", Text, "Modification date")
            .prop("tags", TextList, "Tags")
            .prop(
                "state",
                Text,
                "available, snapshotting, fetching, resizing, saving, hotsyncing or error; \
                 a Block volume's status (e.g. available, in_use)",
            )
            .prop("zone", Text, "Zone of the volume"),
        NodeKind::new(
            SNAPSHOT,
            "A snapshot of an Instance or Block Storage volume",
        )
        .prop("name", Text, "Snapshot name")
        .prop("tags", TextList, "Tags")
        .prop("volume_type", Text, "Volume type of the snapshot")
        .prop("size", Int, "Size in bytes")
        .prop(
            "state",
            Text,
            "available, snapshotting, error, invalid_data, importing or exporting",
        )
        .prop("creation_date", Text, "Creation date")
        .prop("modification_date", Text, "Modification date")
        .prop("error_reason", Text, "Why a snapshot import failed")
        .prop("zone", Text, "Zone of the snapshot"),
        NodeKind::new(FLEXIBLE_IP, "A flexible (public) IP of the Instance API")
            .indexed_prop("address", Text, "IP address")
            .prop("reverse", Text, "Reverse DNS")
            .prop("tags", TextList, "Tags")
            .prop("type", Text, "unknown_iptype, routed_ipv4 or routed_ipv6")
            .prop(
                "state",
                Text,
                "unknown_state, detached, attached, pending or error",
            )
            .prop("prefix", Text, "IP network")
            .prop("ipam_id", Text, "IPAM id")
            .prop("zone", Text, "Zone of the IP"),
        NodeKind::new(INSTANCE, "A virtual machine of the Instance API")
            .prop("name", Text, "Instance name")
            .prop("tags", TextList, "Tags")
            .prop("commercial_type", Text, "Commercial type, e.g. GP1-M")
            .prop("creation_date", Text, "Creation date")
            .prop(
                "dynamic_ip_required",
                Boolean,
                "Whether a dynamic IPv4 is required",
            )
            .prop(
                "routed_ip_enabled",
                Boolean,
                "Whether routed IP mode is used",
            )
            .prop("enable_ipv6", Boolean, "Whether IPv6 is enabled")
            .prop("hostname", Text, "Host name")
            .prop("private_ip", Text, "Private IP address (deprecated)")
            .prop("mac_address", Text, "MAC address")
            .prop("modification_date", Text, "Modification date")
            .prop(
                "state",
                Text,
                "running, stopped, stopped in place, starting, stopping or locked",
            )
            .prop("location_cluster_id", Text, "Location: cluster id")
            .prop("location_hypervisor_id", Text, "Location: hypervisor id")
            .prop("location_node_id", Text, "Location: node id")
            .prop("location_platform_id", Text, "Location: platform id")
            .prop("ipv6_address", Text, "IPv6 address")
            .prop("ipv6_gateway", Text, "IPv6 gateway")
            .prop("ipv6_netmask", Text, "IPv6 CIDR netmask")
            .prop("boot_type", Text, "local, bootscript or rescue")
            .prop("state_detail", Text, "Detail of the state")
            .prop("arch", Text, "unknown_arch, x86_64, arm or arm64")
            .prop("private_nics", TextList, "Ids of the private NICs")
            .prop("zone", Text, "Zone of the Instance")
            .prop(
                "end_of_service",
                Boolean,
                "Whether the commercial type reached end of service",
            ),
    ]
}

pub fn edges() -> Vec<EdgeKind> {
    vec![
        // (:ScalewayOrganization)-[:RESOURCE]->(:ScalewayProject)
        EdgeKind::new(RESOURCE, ORGANIZATION, PROJECT, "Holds the project")
            .access(Access::containment()),
        // (:ScalewayOrganization)-[:RESOURCE]->(:ScalewayUser)
        EdgeKind::new(RESOURCE, ORGANIZATION, USER, "Holds the user"),
        // (:ScalewayOrganization)-[:RESOURCE]->(:ScalewayGroup)
        EdgeKind::new(RESOURCE, ORGANIZATION, GROUP, "Holds the group"),
        // (:ScalewayOrganization)-[:RESOURCE]->(:ScalewayApplication)
        EdgeKind::new(RESOURCE, ORGANIZATION, APPLICATION, "Holds the application"),
        // (:ScalewayOrganization)-[:RESOURCE]->(:ScalewayApiKey)
        EdgeKind::new(RESOURCE, ORGANIZATION, API_KEY, "Holds the API key"),
        // (:ScalewayProject)-[:RESOURCE]->(:ScalewayInstance)
        EdgeKind::new(RESOURCE, PROJECT, INSTANCE, "Holds the instance")
            .access(Access::containment()),
        // (:ScalewayProject)-[:RESOURCE]->(:ScalewayFlexibleIp)
        EdgeKind::new(RESOURCE, PROJECT, FLEXIBLE_IP, "Holds the IP").access(Access::containment()),
        // (:ScalewayProject)-[:RESOURCE]->(:ScalewayVolume)
        EdgeKind::new(RESOURCE, PROJECT, VOLUME, "Holds the volume").access(Access::containment()),
        // (:ScalewayProject)-[:RESOURCE]->(:ScalewayVolumeSnapshot)
        EdgeKind::new(RESOURCE, PROJECT, SNAPSHOT, "Holds the snapshot")
            .access(Access::containment()),
        // (:ScalewayInstance)-[:MOUNTS]->(:ScalewayVolume)
        EdgeKind::new(MOUNTS, INSTANCE, VOLUME, "Has the volume attached"),
        // (:ScalewayFlexibleIp)-[:IDENTIFIES]->(:ScalewayInstance)
        EdgeKind::new(
            IDENTIFIES,
            FLEXIBLE_IP,
            INSTANCE,
            "Is attached to the instance",
        ),
        // (:ScalewayVolume)-[:HAS]->(:ScalewayVolumeSnapshot)
        EdgeKind::new(HAS, VOLUME, SNAPSHOT, "Was snapshotted as"),
        // (:ScalewayUser)-[:MEMBER_OF]->(:ScalewayGroup)
        EdgeKind::new(MEMBER_OF, USER, GROUP, "Is in the group").access(Access::membership()),
        // (:ScalewayApplication)-[:MEMBER_OF]->(:ScalewayGroup)
        EdgeKind::new(MEMBER_OF, APPLICATION, GROUP, "Is in the group")
            .access(Access::membership()),
        // (:ScalewayUser)-[:HAS]->(:ScalewayApiKey)
        // The key acts as its owner.
        EdgeKind::new(HAS, USER, API_KEY, "Owns the API key")
            .access(Access::acting_as().reversed()),
        // (:ScalewayApplication)-[:HAS]->(:ScalewayApiKey)
        // The key acts as its owner.
        EdgeKind::new(HAS, APPLICATION, API_KEY, "Owns the API key")
            .access(Access::acting_as().reversed()),
        // (:ScalewayOrganization)-[:RESOURCE]->(:ScalewayPolicy)
        EdgeKind::new(RESOURCE, ORGANIZATION, POLICY, "Holds the policy"),
        // (:ScalewayPolicy)-[:APPLIES_TO]->(:ScalewayUser|ScalewayGroup|ScalewayApplication)
        // The principal has whatever the policy grants: a member of it, read backwards.
        EdgeKind::new(APPLIES_TO, POLICY, USER, "Is attached to the user")
            .access(Access::membership().reversed()),
        EdgeKind::new(APPLIES_TO, POLICY, GROUP, "Is attached to the group")
            .access(Access::membership().reversed()),
        EdgeKind::new(
            APPLIES_TO,
            POLICY,
            APPLICATION,
            "Is attached to the application",
        )
        .access(Access::membership().reversed()),
        // (:ScalewayPolicy)-[:GRANTS]->(:ScalewayProject|ScalewayOrganization)
        grants(PROJECT, "Grants permission sets on the project"),
        grants(
            ORGANIZATION,
            "Grants permission sets on the whole Organization",
        ),
    ]
}

/// One edge per (policy, scope), whatever the number of rules on that scope.
fn grants(scope: &str, description: &str) -> EdgeKind {
    EdgeKind::new(GRANTS, POLICY, scope, description)
        .prop(
            "permission_set_names",
            TextList,
            "Permission sets the policy's rules grant on the scope, sorted",
        )
        .prop("rule_ids", TextList, "Ids of the rules on the scope")
        .prop(
            "conditions",
            TextList,
            "Conditions of those rules, where set (recorded, not evaluated)",
        )
        .access(Access::grant(["permission_set_names"]))
}
