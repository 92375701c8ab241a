/**
 * The status page (web/) declares the JSON it reads in web/types.d.ts instead of importing the
 * server's types, so the browser build never pulls in server code. This keeps the two honest:
 * it compiles (`npm run typecheck`) only while what the API serves still fits what the page
 * reads; a field renamed or retyped on the server breaks here, not in an operator's browser.
 */
import { describe, expectTypeOf, it } from 'vitest';
import type { ScalingEvent, TargetState } from '../../src/types.js';
import type { ScalingEvent as PageEvent, TargetState as PageTargetState } from '../../web/types.js';

describe("the status page's view of the API", () => {
  it("a target's state, as served, is what the page reads", () => {
    expectTypeOf<TargetState>().toExtend<PageTargetState>();
  });

  it('an event, as served, is what the page reads', () => {
    expectTypeOf<ScalingEvent>().toExtend<PageEvent>();
  });
});
