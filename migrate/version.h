/* version: the migrate tool's version, printed by --version and stored in schema_migrations. */
#ifndef MIGRATE_VERSION_H
#define MIGRATE_VERSION_H

#define MIGRATE_VERSION NEON_TODO_VERSION

#endif
