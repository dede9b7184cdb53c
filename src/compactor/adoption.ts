import type { Logger } from 'pino';
import { toCompactorError } from '../errors.js';
import type { MetadataStore } from '../metadata/types.js';
import type { CompactionReport } from './events.js';

/** What an adoption needs of the compactor it runs for the adopted node. */
export interface AdoptedCompactor {
  compactOnce(opts: { signal?: AbortSignal }): Promise<CompactionReport>;
  close(): Promise<void>;
}

/**
 * Compaction of one expired node under its id (`adoptExpiredNodes`). Holds at most one node,
 * from the first run that finds it until the home node (or another adopter) takes it back.
 */
export class Adoption {
  private current: { nodeId: number; compactor: AdoptedCompactor } | undefined;

  constructor(
    private readonly metadata: MetadataStore,
    private readonly ownNodeId: number,
    private readonly logger: Logger,
    /** A compactor for `nodeId`, its node lease held between its runs too. */
    private readonly create: (nodeId: number) => AdoptedCompactor,
  ) {}

  /** One run for the adopted node; undefined when there is none, or when the adoption ended. */
  async once(opts: { signal?: AbortSignal }): Promise<(CompactionReport & { nodeId: number }) | undefined> {
    if (!this.current) {
      const [nodeId] = (await this.metadata.listExpiredNodes?.({ excludeNodeId: this.ownNodeId })) ?? [];
      if (nodeId === undefined) return undefined;
      this.current = { nodeId, compactor: this.create(nodeId) };
      this.logger.warn({ adoptedNode: nodeId }, 'adopting an expired node: compacting its SSOs under its id');
    }
    const { nodeId, compactor } = this.current;
    try {
      return { ...(await compactor.compactOnce(opts)), nodeId };
    } catch (err) {
      const e = toCompactorError(err);
      if (e.code === 'ERR_METADATA_FENCED' || e.code === 'ERR_METADATA_NODE_BUSY') {
        // The home node (or another adopter) has it now: let it go.
        this.logger.info({ adoptedNode: nodeId, code: e.code }, 'adoption ended: the node is taken');
        await this.close();
        return undefined;
      }
      throw e;
    }
  }

  async close(): Promise<void> {
    const c = this.current;
    this.current = undefined;
    await c?.compactor.close();
  }
}
