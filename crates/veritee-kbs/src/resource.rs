//! Resource paths: `<repository>/<type>/<tag>`, as CoCo's `kbs:///repo/type/tag` URIs
//! name them.

use crate::KbsError;

/// Longest path segment accepted.
pub const MAX_SEGMENT_LEN: usize = 128;
/// Largest resource stored.
pub const MAX_RESOURCE_LEN: usize = 1024 * 1024;
/// The media type of a resource sealed to the enclave's attested wrapping key (HPKE,
/// `enc || ciphertext`), which `veritee kbs put-resource` sends: unlike Trustee's
/// `set-resource`, the host never sees the resource in the clear.
pub const SEALED_RESOURCE_CONTENT_TYPE: &str = "application/vnd.veritee.sealed-resource";
/// The HPKE `info` of a sealed resource; its associated data is the resource path, so
/// the host cannot store a sealed resource under another path.
pub const SEALED_RESOURCE_INFO: &[u8] = b"veritee kbs sealed resource v1";

/// A checked resource path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ResourcePath {
    repository: String,
    kind: String,
    tag: String,
}

impl ResourcePath {
    /// Parses `repo/type/tag`: three non-empty segments of letters, digits, `.`, `_`
    /// and `-`, none of them `.` or `..`.
    pub fn parse(path: &str) -> Result<Self, KbsError> {
        let segments: Vec<&str> = path.split('/').collect();
        let [repository, kind, tag] = segments[..] else {
            return Err(KbsError::malformed(
                "resource path",
                format!(
                    "{path:?} has {} segments; a resource is named repository/type/tag",
                    segments.len()
                ),
            ));
        };
        for segment in [repository, kind, tag] {
            check_segment(segment).map_err(|reason| {
                KbsError::malformed("resource path", format!("{path:?}: {reason}"))
            })?;
        }
        Ok(Self {
            repository: repository.into(),
            kind: kind.into(),
            tag: tag.into(),
        })
    }

    /// The repository (first segment).
    pub fn repository(&self) -> &str {
        &self.repository
    }
}

/// What a resource policy applies to: every resource, one repository's, or one
/// resource. A release is judged by the most specific policy set for its resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyScope {
    /// Every resource without a more specific policy.
    Everything,
    /// The resources of one repository (`repo`).
    Repository(String),
    /// One resource (`repo/type/tag`).
    Resource(ResourcePath),
}

impl PolicyScope {
    /// Parses a scope: none, `repo`, or `repo/type/tag`.
    pub fn parse(scope: Option<&str>) -> Result<Self, KbsError> {
        match scope {
            None | Some("") => Ok(Self::Everything),
            Some(repository) if !repository.contains('/') => {
                check_segment(repository)
                    .map_err(|reason| KbsError::malformed("policy scope", reason))?;
                Ok(Self::Repository(repository.into()))
            }
            Some(path) => ResourcePath::parse(path).map(Self::Resource),
        }
    }

    /// The scopes whose policy may judge `path`, most specific first.
    pub fn for_resource(path: &ResourcePath) -> [Self; 3] {
        [
            Self::Resource(path.clone()),
            Self::Repository(path.repository.clone()),
            Self::Everything,
        ]
    }

    /// How the scope is named in the store and in listings (`""` for everything).
    pub fn name(&self) -> String {
        match self {
            Self::Everything => String::new(),
            Self::Repository(repository) => repository.clone(),
            Self::Resource(path) => path.to_string(),
        }
    }
}

fn check_segment(segment: &str) -> Result<(), String> {
    if segment.is_empty() {
        return Err("a segment is empty".into());
    }
    if segment.len() > MAX_SEGMENT_LEN {
        return Err(format!("a segment is longer than {MAX_SEGMENT_LEN} bytes"));
    }
    if segment == "." || segment == ".." {
        return Err(format!("{segment:?} is not a segment"));
    }
    if let Some(c) = segment
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "{c:?} is not allowed (letters, digits, '.', '_', '-')"
        ));
    }
    Ok(())
}

impl core::fmt::Display for ResourcePath {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}/{}/{}", self.repository, self.kind, self.tag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_scopes_go_from_the_resource_to_everything() {
        let path = ResourcePath::parse("default/key/disk").unwrap();
        let names: Vec<String> = PolicyScope::for_resource(&path)
            .iter()
            .map(PolicyScope::name)
            .collect();
        assert_eq!(names, ["default/key/disk", "default", ""]);
        assert_eq!(PolicyScope::parse(None).unwrap(), PolicyScope::Everything);
        assert_eq!(
            PolicyScope::parse(Some("default")).unwrap(),
            PolicyScope::Repository("default".into())
        );
        for bad in ["..", "a/b", "a b", "a/b/c/d"] {
            assert!(PolicyScope::parse(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn three_plain_segments_and_nothing_else() {
        let p = ResourcePath::parse("default/key/disk-1.v2").unwrap();
        assert_eq!(p.to_string(), "default/key/disk-1.v2");
        assert_eq!(p.repository(), "default");
        for bad in [
            "",
            "a/b",
            "a/b/c/d",
            "a//c",
            "a/../c",
            "a/b/.",
            "a/b/c d",
            "a/b/c%2f",
            "a/b/ü",
            &format!("a/b/{}", "x".repeat(129)),
        ] {
            let err = ResourcePath::parse(bad).unwrap_err();
            assert!(err.to_string().contains("resource path"), "{bad}: {err}");
        }
    }
}
