/* version: the migrate tool's version, printed by --version and stored in schema_migrations. */
#ifndef MIGRATE_VERSION_H
#define MIGRATE_VERSION_H

#define MIGRATE_VERSION "0.1.0"

#endif
