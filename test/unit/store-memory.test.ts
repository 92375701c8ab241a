/**
 * The in-memory store that the engine's unit tests use must keep the same contract as the real
 * stores, or those tests would prove things about a store that does not exist.
 */
import { MemoryStore } from '../support/memory-store.js';
import { describeStoreConformance } from './store-conformance.js';

describeStoreConformance('the in-memory test store', async (limits) => {
  const store = new MemoryStore(limits);
  await store.init();
  return store;
});
