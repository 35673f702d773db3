//! The schema version: what this build's migrations make, against what a database has.
//! API nodes and audits never migrate, so they check it instead (`_sqlx_migrations`, the table
//! sqlx's migrator keeps, highest successful version); the engine checks for a database newer
//! than itself before it migrates.

use crate::error::StoreError;
use crate::role::Role;
use sqlx::migrate::Migrator;

/// The highest version this build's migrations reach.
pub(crate) fn expected(m: &Migrator) -> i64 {
    m.iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .map(|m| m.version)
        .max()
        .unwrap_or(0)
}

/// What the database says: no migrations table at all, or the highest version applied and
/// the lowest one that failed partway.
pub(crate) struct Applied {
    pub table: bool,
    pub highest: Option<i64>,
    pub failed: Option<i64>,
}

/// Compares; `Err(Schema)` with what to do when the database does not match.
pub(crate) fn check(
    shown: &str,
    m: &Migrator,
    applied: &Applied,
    role: Role,
) -> Result<(), StoreError> {
    let want = expected(m);
    if let Some(v) = applied.failed {
        return Err(StoreError::Schema {
            detail: format!(
                "{shown}: migration {v} failed partway; fix the database on the primary, then run \
             `lavabeacon engine` (or serve) against it"
            ),
        });
    }
    let have = if applied.table { applied.highest } else { None };
    match have {
        Some(v) if v > want => Err(StoreError::Schema {
            detail: format!(
            "{shown} has schema version {v}, newer than this build's {want}: this lavabeacon is \
             older than the database: upgrade it"
            ),
        }),
        Some(v) if v == want => Ok(()),
        // The engine migrates an older database itself.
        _ if role == Role::Engine => Ok(()),
        Some(v) => Err(StoreError::Schema {
            detail: format!(
                "{shown} has schema version {v}, older than this build's {want}: run `lavabeacon \
             engine` (or serve) once against the primary to migrate it"
            ),
        }),
        None => Err(StoreError::Schema {
            detail: format!(
                "{shown} has no lavabeacon schema yet (this build needs version {want}): run \
             `lavabeacon engine` (or serve) once against the primary to migrate it"
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(highest: Option<i64>) -> Applied {
        Applied {
            table: highest.is_some(),
            highest,
            failed: None,
        }
    }

    #[test]
    fn older_newer_and_equal_databases_are_told_apart() {
        let m = sqlx::migrate!("../../migrations/sqlite");
        let want = expected(&m);
        assert!(want >= 1);
        assert!(check("db", &m, &applied(Some(want)), Role::Api).is_ok());
        let e = check("db", &m, &applied(Some(want - 1)), Role::Api).unwrap_err();
        assert!(
            e.to_string()
                .contains("run `lavabeacon engine` (or serve) once"),
            "{e}"
        );
        let e = check("db", &m, &applied(None), Role::Audit).unwrap_err();
        assert!(e.to_string().contains("no lavabeacon schema"), "{e}");
        let e = check("db", &m, &applied(Some(want + 1)), Role::Api).unwrap_err();
        assert!(
            e.to_string()
                .contains("older than the database: upgrade it"),
            "{e}"
        );
        // The engine migrates older ones, but refuses newer ones too.
        assert!(check("db", &m, &applied(None), Role::Engine).is_ok());
        assert!(check("db", &m, &applied(Some(want + 1)), Role::Engine).is_err());
        let dirty = Applied {
            table: true,
            highest: Some(want),
            failed: Some(want),
        };
        assert!(check("db", &m, &dirty, Role::Api).is_err());
    }
}
