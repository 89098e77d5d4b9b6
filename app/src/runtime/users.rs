//! Dashboard users and their roles. The environment's admin
//! (`POSTERN_ADMIN_PASSWORD_HASH`, or the password set in the dashboard) is
//! the user [`BUILTIN_ADMIN`]; everyone else is a row in the store.

use super::{Runtime, RuntimeError};

/// The login name of the environment's admin; no stored user may take it.
pub const BUILTIN_ADMIN: &str = "admin";

/// What a dashboard user may do. Ordered: each role can do all that the
/// ones before it can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything an analyst sees; changes nothing.
    Viewer,
    /// Reviews, releases, deletes and learns mail; no settings, accounts or lists.
    Analyst,
    /// Everything.
    Admin,
}

impl Role {
    /// The stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Analyst => "analyst",
            Self::Admin => "admin",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = RuntimeError;
    fn from_str(s: &str) -> Result<Self, RuntimeError> {
        match s {
            "viewer" => Ok(Self::Viewer),
            "analyst" => Ok(Self::Analyst),
            "admin" => Ok(Self::Admin),
            _ => Err(RuntimeError::Invalid(format!("unknown role {s:?}; use admin, analyst or viewer"))),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Refuses names that could be confused in the audit log or taken from the
/// environment's admin: 1 to 64 of `a-z 0-9 . _ -`, not [`BUILTIN_ADMIN`].
pub fn check_user_name(name: &str) -> Result<(), RuntimeError> {
    let ok_chars = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if name.is_empty() || name.len() > 64 || !ok_chars {
        return Err(RuntimeError::Invalid(
            "a user name is 1 to 64 characters of a-z, 0-9, '.', '_' and '-'".into(),
        ));
    }
    if name == BUILTIN_ADMIN {
        return Err(RuntimeError::Invalid(format!(
            "{BUILTIN_ADMIN:?} is the environment's admin (POSTERN_ADMIN_PASSWORD_HASH); choose another name"
        )));
    }
    Ok(())
}

impl Runtime {
    /// The bcrypt hash and role of a dashboard user, if the user exists and
    /// can log in. A stored role the code does not know yields no login.
    pub async fn user_credentials(&self, name: &str) -> Result<Option<(String, Role)>, RuntimeError> {
        if name == BUILTIN_ADMIN {
            return Ok(self.admin_hash().await?.map(|h| (h, Role::Admin)));
        }
        Ok(self
            .store
            .user_credentials(name)
            .await?
            .and_then(|(role, hash)| role.parse().ok().map(|r| (hash, r))))
    }

    /// Stores a new bcrypt hash for `name` (the environment's admin's goes
    /// where [`Runtime::set_admin_hash`] puts it) and ends the user's
    /// sessions but `keep` (the one that made the change).
    pub async fn set_user_hash(&self, name: &str, hash: &str, actor: &str, keep: Option<&str>) -> Result<(), RuntimeError> {
        if name == BUILTIN_ADMIN {
            self.set_admin_hash(hash, actor).await?;
            if let Some(k) = keep {
                self.store.delete_other_sessions(k).await?;
            }
            return Ok(());
        }
        match self.store.set_user_password(name, hash, actor, keep).await? {
            true => Ok(()),
            false => Err(RuntimeError::Invalid(format!("no user {name:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_names_checked() {
        assert!(Role::Viewer < Role::Analyst && Role::Analyst < Role::Admin);
        for r in [Role::Viewer, Role::Analyst, Role::Admin] {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
        }
        assert!("root".parse::<Role>().is_err());
        assert!(check_user_name("alice.b-2_x").is_ok());
        for bad in ["", "admin", "Alice", "a b", "a:b", &"x".repeat(65)] {
            assert!(check_user_name(bad).is_err(), "{bad:?}");
        }
    }
}
