//! The etcd key layout of one cluster (`server/docs/cluster_design.md` §2). Every key is
//! under `/speedlayer/<cluster>/`; nothing else in the crate spells a key.

/// The keys of one cluster.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    /// The keys of cluster `name`.
    pub fn new(name: &str) -> Keys {
        Keys {
            prefix: format!("/speedlayer/{name}/"),
        }
    }

    /// `/speedlayer/<cluster>/`: everything of the cluster.
    pub fn root(&self) -> &str {
        &self.prefix
    }

    /// Prefix of the members' keys.
    pub fn servers(&self) -> String {
        format!("{}servers/", self.prefix)
    }

    /// A member's key, bound to its lease.
    pub fn server(&self, id: &str) -> String {
        format!("{}servers/{id}", self.prefix)
    }

    /// The master election's name (etcd's election API keys candidates under it).
    pub fn election(&self) -> String {
        format!("{}master", self.prefix)
    }

    /// Prefix of everything in meta: read at one revision, it is one consistent view.
    pub fn meta(&self) -> String {
        format!("{}meta/", self.prefix)
    }

    /// The next region id to hand out (decimal).
    pub fn next_region_id(&self) -> String {
        format!("{}meta/next_region_id", self.prefix)
    }

    /// Prefix of the tables.
    pub fn tables(&self) -> String {
        format!("{}meta/tables/", self.prefix)
    }

    /// A table's schema and state.
    pub fn table(&self, name: &str) -> String {
        format!("{}meta/tables/{name}", self.prefix)
    }

    /// Prefix of every table's regions.
    pub fn regions(&self) -> String {
        format!("{}meta/regions/", self.prefix)
    }

    /// Prefix of one table's regions.
    pub fn regions_of(&self, table: &str) -> String {
        format!("{}meta/regions/{table}/", self.prefix)
    }

    /// One region's entry.
    pub fn region(&self, table: &str, id: u64) -> String {
        format!("{}meta/regions/{table}/{id}", self.prefix)
    }

    /// Prefix of operators' requests to the master (outside meta: they are not state).
    pub fn requests(&self) -> String {
        format!("{}requests/", self.prefix)
    }

    /// Prefix of move requests.
    pub fn move_requests(&self) -> String {
        format!("{}requests/move/", self.prefix)
    }

    /// A request to move region `id` of `table`; the value is the target member's id.
    pub fn move_request(&self, table: &str, id: u64) -> String {
        format!("{}requests/move/{table}/{id}", self.prefix)
    }

    /// A request for one balancer run (any value).
    pub fn balance_request(&self) -> String {
        format!("{}requests/balance", self.prefix)
    }
}

/// A cluster name: what `--cluster` accepts, so that it is one path segment of a key.
pub fn check_cluster_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 {
        return Err(format!("cluster name {name:?} must be 1 to 64 characters"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        return Err(format!(
            "cluster name {name:?} may hold only letters, digits, '-', '_' and '.'"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layout of the design document's example.
    #[test]
    fn keys_match_the_design_doc() {
        let k = Keys::new("fleet");
        assert_eq!(k.root(), "/speedlayer/fleet/");
        assert_eq!(
            k.server("a:16020:1795910400000"),
            "/speedlayer/fleet/servers/a:16020:1795910400000"
        );
        assert_eq!(k.servers(), "/speedlayer/fleet/servers/");
        assert_eq!(k.election(), "/speedlayer/fleet/master");
        assert_eq!(k.next_region_id(), "/speedlayer/fleet/meta/next_region_id");
        assert_eq!(k.table("driving"), "/speedlayer/fleet/meta/tables/driving");
        assert_eq!(
            k.region("driving", 2),
            "/speedlayer/fleet/meta/regions/driving/2"
        );
        assert!(k.region("driving", 2).starts_with(&k.regions_of("driving")));
        assert!(k.regions_of("driving").starts_with(&k.regions()));
        assert!(k.regions().starts_with(&k.meta()) && k.tables().starts_with(&k.meta()));
    }

    #[test]
    fn cluster_names_are_one_segment() {
        assert!(check_cluster_name("fleet-1.eu_west").is_ok());
        for bad in ["", "a/b", "a b", "ü", &"x".repeat(65)] {
            assert!(check_cluster_name(bad).is_err(), "{bad:?}");
        }
    }
}
