export * from './types.js';
export { SqliteMetadataStore, type SqliteMetadataStoreOptions } from './sqlite-store.js';
export { SCHEMA_VERSION } from './version.js';
export { PostgresMetadataStore, type PostgresMetadataStoreOptions } from './postgres-store.js';
export { SqliteThreadStore, type SqliteThreadStoreOptions } from './sqlite-thread.js';
