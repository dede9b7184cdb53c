export * from './types.js';
export * from './transfer.js';
export * from './control.js';
export * from './typed-port.js';
export * from './candidates.js';
