// An uploaded file's contracts as a source: held in memory by the instance that accepted it, or read back from the database.
import type { Contract } from '../types.js';
import { contractMatcher } from './match.js';
import type { ContractSource } from './source.js';

// Pages handed to the detectors: the grain of progress writes and of cancellation between pages.
const UPLOAD_PAGE = 1000;

/** Pages of the contracts the filters select, at most `max_records` of them, from chunks read in order. */
function uploadSource(
  describe: string,
  chunks: (signal: AbortSignal) => AsyncIterable<Contract[]>,
): ContractSource {
  return {
    kind: 'upload',
    sample: false,
    describe,
    async *pages(filters, signal) {
      const match = contractMatcher(filters);
      let left = filters.max_records ?? Number.POSITIVE_INFINITY;
      for await (const contracts of chunks(signal)) {
        for (let i = 0; i < contracts.length && left > 0; i += UPLOAD_PAGE) {
          signal.throwIfAborted();
          const page = contracts
            .slice(i, i + UPLOAD_PAGE)
            .filter(match)
            .slice(0, left);
          left -= page.length;
          if (page.length > 0) yield page;
        }
        if (left <= 0) return;
      }
    },
  };
}

/** The stored upload, one chunk in memory at a time (`read` answers null past the last chunk). */
export function createStoredUploadSource(
  read: (chunk: number) => Promise<Contract[] | null>,
): ContractSource {
  return uploadSource('uploaded contracts (stored)', async function* (signal) {
    for (let chunk = 0; ; chunk++) {
      signal.throwIfAborted();
      const contracts = await read(chunk);
      if (!contracts) return;
      yield contracts;
    }
  });
}

/** The upload as it was parsed, still in memory on the instance that accepted it. */
export function createHeldUploadSource(contracts: readonly Contract[]): ContractSource {
  return uploadSource(`uploaded contracts (${contracts.length}, held)`, async function* () {
    yield contracts as Contract[];
  });
}
