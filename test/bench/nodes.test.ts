import { describe, expect, it } from 'vitest';
import { measureNodeTransitions } from '../../bench/nodes';

describe('the multi-node bench (bench/nodes.ts), at small sizes', () => {
  it('counts the same transitions for one node and two, short and longer runs, once the timing polls are set apart', async () => {
    const figures = await measureNodeTransitions({ nodes: [1, 2], steps: [2, 8] });

    expect(figures.map((f) => [f.nodes, f.steps, f.status])).toEqual([
      [1, 2, 'SUCCEEDED'],
      [1, 8, 'SUCCEEDED'],
      [2, 2, 'SUCCEEDED'],
      [2, 8, 'SUCCEEDED'],
    ]);
    // The nodes are handled inside the steps: neither the node count nor the training length adds states.
    expect(new Set(figures.map((f) => f.transitions - f.pollTransitions)).size).toBe(1);
    expect(figures.every((f) => f.pollTransitions >= 0 && f.transitions > 10)).toBe(true);
  }, 240_000);
});
