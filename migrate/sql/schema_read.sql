-- The schema as rows (kind, key, table, name, def, a, b, c, d, ord), read by
-- migrate/schema_read.c (see schema_read.h for what each kind's columns hold).
-- Embedded in the migrate binary at build time (migrate/CMakeLists.txt).

-- schemas other than public
SELECT 'S',
        quote_ident(nspname),
        NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0
FROM pg_namespace n
WHERE nspname <> 'public'
  AND (n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%')

-- extensions
UNION ALL SELECT 'E',
        quote_ident(e.extname),
        NULL, NULL,
        quote_ident(n.nspname),
        NULL, NULL, NULL, NULL, 0
FROM pg_extension e
JOIN pg_namespace n ON n.oid = e.extnamespace
WHERE e.extname <> 'plpgsql'

-- enums
UNION ALL SELECT 'T',
        format('%I.%I', n.nspname, t.typname),
        NULL, NULL,
        (SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder)
         FROM pg_enum e WHERE e.enumtypid = t.oid),
        (SELECT string_agg(e.enumlabel, chr(31) ORDER BY e.enumsortorder)
         FROM pg_enum e WHERE e.enumtypid = t.oid),
        NULL, NULL, NULL, 0
FROM pg_type t
JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE t.typtype = 'e'
  AND (n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d
                  WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e')

-- sequences that are not an identity column's or an extension's
UNION ALL SELECT 'Q',
        format('%I.%I', n.nspname, c.relname),
        NULL, NULL,
        format('AS %s INCREMENT %s MINVALUE %s MAXVALUE %s START %s CACHE %s %s',
               format_type(s.seqtypid, NULL), s.seqincrement, s.seqmin, s.seqmax, s.seqstart,
               s.seqcache, CASE WHEN s.seqcycle THEN 'CYCLE' ELSE 'NO CYCLE' END),
        NULL, NULL, NULL, NULL, 0
FROM pg_sequence s
JOIN pg_class c ON c.oid = s.seqrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE (n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d
                  WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                    AND d.deptype IN ('e', 'i'))

-- tables: plain and partitioned, not partitions, not schema_migrations, not an extension's
UNION ALL SELECT 'R',
        format('%I.%I', n.nspname, c.relname),
        NULL, NULL,
        CASE c.relpersistence WHEN 'u' THEN 'UNLOGGED ' ELSE '' END,
        CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END,
        NULL, NULL, NULL, 0
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p')
  AND NOT c.relispartition
  AND (n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d
                  WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
  AND c.relname <> 'schema_migrations'

-- columns
UNION ALL SELECT 'C',
        format('%I.%I', n.nspname, c.relname) || '.' || quote_ident(a.attname),
        format('%I.%I', n.nspname, c.relname),
        quote_ident(a.attname),
        format_type(a.atttypid, a.atttypmod) ||
          CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation
               THEN ' COLLATE ' || (SELECT format('%I.%I', cn.nspname, co.collname)
                                    FROM pg_collation co
                                    JOIN pg_namespace cn ON cn.oid = co.collnamespace
                                    WHERE co.oid = a.attcollation)
               ELSE '' END,
        CASE WHEN a.attgenerated = '' THEN pg_get_expr(ad.adbin, ad.adrelid) END,
        CASE WHEN a.attnotnull THEN 't' ELSE 'f' END,
        a.attidentity::text,
        CASE WHEN a.attgenerated = 's' THEN pg_get_expr(ad.adbin, ad.adrelid) END,
        a.attnum
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid
    AND ad.adnum = a.attnum
WHERE a.attnum > 0
  AND NOT a.attisdropped
  AND c.relkind IN ('r', 'p')
  AND NOT c.relispartition
  AND (n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d
                  WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
  AND c.relname <> 'schema_migrations'

-- constraints
UNION ALL SELECT 'K',
        format('%I.%I', n.nspname, c.relname) || '.' || quote_ident(co.conname),
        format('%I.%I', n.nspname, c.relname),
        quote_ident(co.conname),
        pg_get_constraintdef(co.oid),
        co.contype::text,
        CASE WHEN co.convalidated THEN 't' ELSE 'f' END,
        CASE WHEN co.contype IN ('p', 'u') THEN pg_get_indexdef(co.conindid) END,
        NULL, 0
FROM pg_constraint co
JOIN pg_class c ON c.oid = co.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p')
  AND NOT c.relispartition
  AND (n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d
                  WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
  AND c.relname <> 'schema_migrations'

-- indexes that no constraint owns
UNION ALL SELECT 'I',
        format('%I.%I', n.nspname, ic.relname),
        format('%I.%I', n.nspname, c.relname),
        quote_ident(ic.relname),
        pg_get_indexdef(i.indexrelid),
        NULL, NULL, NULL, NULL, 0
FROM pg_index i
JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p')
  AND NOT c.relispartition
  AND (n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d
                  WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
  AND c.relname <> 'schema_migrations'
  AND NOT EXISTS (SELECT 1 FROM pg_constraint co
                  WHERE co.conindid = i.indexrelid AND co.contype IN ('p', 'u', 'x'))

-- plain views, with the tables they read
UNION ALL SELECT 'V',
        format('%I.%I', n.nspname, c.relname),
        NULL, NULL,
        rtrim(pg_get_viewdef(c.oid, true), E' \n'),
        '|' || coalesce((SELECT string_agg(DISTINCT format('%I.%I', dn.nspname, dc.relname), '|')
                         FROM pg_rewrite rw
                         JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = rw.oid
                         JOIN pg_class dc ON dc.oid = d.refobjid AND dc.oid <> c.oid
                         JOIN pg_namespace dn ON dn.oid = dc.relnamespace
                         WHERE rw.ev_class = c.oid), '') || '|',
        NULL, NULL, NULL, 0
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'v'
  AND (n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d
                  WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')

-- comments on tables, views, columns, schemas, enums, indexes
UNION ALL SELECT 'M',
        CASE WHEN d.objsubid > 0
             THEN 'COLUMN ' || format('%I.%I', n.nspname, c.relname) || '.' || quote_ident(a.attname)
             WHEN c.relkind = 'v' THEN 'VIEW ' || format('%I.%I', n.nspname, c.relname)
             WHEN c.relkind = 'i' THEN 'INDEX ' || format('%I.%I', n.nspname, c.relname)
             ELSE 'TABLE ' || format('%I.%I', n.nspname, c.relname) END,
        NULL, NULL,
        d.description,
        NULL, NULL, NULL, NULL, 0
FROM pg_description d
JOIN pg_class c ON d.classoid = 'pg_class'::regclass
    AND c.oid = d.objoid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attribute a ON a.attrelid = c.oid
    AND a.attnum = d.objsubid
WHERE c.relkind IN ('r', 'p', 'v')
  AND (n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d
                  WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')

UNION ALL SELECT 'O',
        'comment on index ' || format('%I.%I', n.nspname, c.relname),
        NULL, NULL,
        d.description,
        NULL, NULL, NULL, NULL, 0
FROM pg_description d
JOIN pg_class c ON d.classoid = 'pg_class'::regclass
    AND c.oid = d.objoid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'i'
  AND (n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%')

UNION ALL SELECT 'M',
        'SCHEMA ' || quote_ident(n.nspname),
        NULL, NULL,
        d.description,
        NULL, NULL, NULL, NULL, 0
FROM pg_description d
JOIN pg_namespace n ON d.classoid = 'pg_namespace'::regclass
    AND n.oid = d.objoid
WHERE n.nspname <> 'public'
  AND (n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%')

UNION ALL SELECT 'M',
        'TYPE ' || format('%I.%I', n.nspname, t.typname),
        NULL, NULL,
        d.description,
        NULL, NULL, NULL, NULL, 0
FROM pg_description d
JOIN pg_type t ON d.classoid = 'pg_type'::regclass
    AND t.oid = d.objoid
JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE (n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%')

-- what diff cannot change: compared by definition, reported when they differ
UNION ALL SELECT 'O',
        'function ' || p.oid::regprocedure::text,
        NULL, NULL,
        pg_get_functiondef(p.oid),
        NULL, NULL, NULL, NULL, 0
FROM pg_proc p
JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE p.prokind IN ('f', 'p')
  AND (n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d
                  WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')

UNION ALL SELECT 'O',
        'trigger ' || quote_ident(t.tgname) || ' on ' || format('%I.%I', n.nspname, c.relname),
        NULL, NULL,
        pg_get_triggerdef(t.oid, true),
        NULL, NULL, NULL, NULL, 0
FROM pg_trigger t
JOIN pg_class c ON c.oid = t.tgrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE NOT t.tgisinternal
  AND (n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%')

UNION ALL SELECT 'O',
        CASE c.relkind WHEN 'm' THEN 'materialized view ' WHEN 'f' THEN 'foreign table '
                       WHEN 'c' THEN 'composite type ' ELSE 'partition ' END
          || format('%I.%I', n.nspname, c.relname),
        NULL, NULL,
        CASE c.relkind WHEN 'm' THEN pg_get_viewdef(c.oid)
                       WHEN 'r' THEN pg_get_expr(c.relpartbound, c.oid) ELSE '' END,
        NULL, NULL, NULL, NULL, 0
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE (c.relkind IN ('m', 'f', 'c') OR c.relispartition)
  AND (n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d
                  WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')

UNION ALL SELECT 'O',
        'policy ' || quote_ident(p.polname) || ' on ' || format('%I.%I', n.nspname, c.relname),
        NULL, NULL,
        pg_get_expr(p.polqual, p.polrelid),
        NULL, NULL, NULL, NULL, 0
FROM pg_policy p
JOIN pg_class c ON c.oid = p.polrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE (n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%')

UNION ALL SELECT 'O',
        CASE t.typtype WHEN 'd' THEN 'domain ' ELSE 'range type ' END
          || format('%I.%I', n.nspname, t.typname),
        NULL, NULL,
        format_type(t.typbasetype, t.typtypmod),
        NULL, NULL, NULL, NULL, 0
FROM pg_type t
JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE t.typtype IN ('d', 'r')
  AND (n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d
                  WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e')
ORDER BY 1, 3, 10, 2
