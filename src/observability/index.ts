/** Observability: logger factory, Prometheus metrics (prom-client) fed by a Compactor, and their HTTP endpoint. */
export { createLogger, isLogLevel, LOG_LEVELS, type LogLevel, type CreateLoggerOptions } from './logger.js';
export { Registry as MetricsRegistry } from 'prom-client';
export { startMetricsServer, type MetricsServer, type MetricsServerOptions } from './server.js';
export { attachMetrics, METRIC_NAMES, type AttachMetricsOptions, type AttachedMetrics } from './attach.js';
