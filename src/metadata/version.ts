/**
 * The SQLite store's identity and schema version, apart from the schema code so that the public
 * types never reach better-sqlite3's (a consumer compiles without them).
 */

/** Bumped on every incompatible change; older versions are migrated on open, newer ones refused. */
export const SCHEMA_VERSION = 3;

/** 'S3SC' — s3-stream-compactor. */
export const APPLICATION_ID = 0x53335343;

export const FORMAT_NAME = 's3-stream-compactor-metadata';
