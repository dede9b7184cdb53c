/** Observability: logger factory, a Prometheus metrics registry fed by a Compactor, and its HTTP endpoint. */
export { createLogger, formatLogLine, isLogLevel, LOG_LEVELS, type LogLevel, type CreateLoggerOptions } from './logger.js';
export { MetricsRegistry, Counter, Gauge, PROMETHEUS_CONTENT_TYPE, type Labels } from './metrics.js';
export { startMetricsServer, type MetricsServer, type MetricsServerOptions } from './server.js';
export { attachMetrics, METRIC_NAMES, type AttachMetricsOptions, type AttachedMetrics } from './attach.js';
