/** One ranked entry: higher score first, ties by id in ascending code-unit order. */
export interface Ranked {
  id: string;
  score: number;
}

/** True when (sa, ia) ranks strictly before (sb, ib). */
export function ranksBefore(sa: number, ia: string, sb: number, ib: string): boolean {
  return sa > sb || (sa === sb && ia < ib);
}

/** Descending score, then ascending id: the order of every ranking and of its brute-force checks. */
export function compareRanked(a: Ranked, b: Ranked): number {
  return ranksBefore(a.score, a.id, b.score, b.id) ? -1 : ranksBefore(b.score, b.id, a.score, a.id) ? 1 : 0;
}

interface Block {
  scores: number[];
  ids: string[];
}

/**
 * An ordered set of (score, id), best first, kept as a list of sorted blocks of at most 256
 * entries (a one-level B-tree, as Python's sortedcontainers does). Insert and remove cost a
 * binary search over blocks and within one block plus a splice of at most one block:
 * O(log n + 256) with a small constant, whatever n is. `top(k)` reads the first k entries in
 * O(k). Scores must not be NaN. An id appears at most once if callers remove before re-inserting.
 */
export class Ranking {
  private blocks: Block[] = [];
  private count = 0;
  private readonly half: number;

  /** `maxBlock` (>= 2) is for tests that want many blocks with few entries. */
  constructor(private readonly maxBlock = 256) {
    if (!(Number.isInteger(maxBlock) && maxBlock >= 2)) throw new Error(`Ranking: maxBlock must be an integer >= 2, got ${maxBlock}`);
    this.half = maxBlock >> 1;
  }

  get size(): number {
    return this.count;
  }

  /** Index of the block where (score, id) is or would go. */
  private blockOf(score: number, id: string): number {
    const blocks = this.blocks;
    let lo = 0;
    let hi = blocks.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const b = blocks[mid];
      const last = b.ids.length - 1;
      if (ranksBefore(b.scores[last], b.ids[last], score, id)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** First index in `b` whose entry does not rank before (score, id). */
  private static position(b: Block, score: number, id: string): number {
    let lo = 0;
    let hi = b.ids.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (ranksBefore(b.scores[mid], b.ids[mid], score, id)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  insert(id: string, score: number): void {
    if (Number.isNaN(score)) throw new Error(`Ranking: score of ${JSON.stringify(id)} is NaN`);
    this.count++;
    if (this.blocks.length === 0) {
      this.blocks.push({ scores: [score], ids: [id] });
      return;
    }
    const bi = this.blockOf(score, id);
    const b = this.blocks[bi];
    const j = Ranking.position(b, score, id);
    b.scores.splice(j, 0, score);
    b.ids.splice(j, 0, id);
    if (b.ids.length > this.maxBlock) {
      this.blocks.splice(bi + 1, 0, { scores: b.scores.splice(this.half), ids: b.ids.splice(this.half) });
    }
  }

  /** Removes (score, id) if present; the score must be the one it was inserted with. */
  remove(id: string, score: number): boolean {
    if (this.blocks.length === 0) return false;
    const bi = this.blockOf(score, id);
    const b = this.blocks[bi];
    const j = Ranking.position(b, score, id);
    if (j >= b.ids.length || b.ids[j] !== id || b.scores[j] !== score) return false;
    b.scores.splice(j, 1);
    b.ids.splice(j, 1);
    this.count--;
    if (b.ids.length === 0) this.blocks.splice(bi, 1);
    return true;
  }

  /** The first k entries, best first: O(k). */
  top(k: number): Ranked[] {
    const out: Ranked[] = [];
    for (const b of this.blocks) {
      for (let j = 0; j < b.ids.length; j++) {
        if (out.length >= k) return out;
        out.push({ id: b.ids[j], score: b.scores[j] });
      }
    }
    return out;
  }

  /** Replaces the content with the entries (ids[i], scores[i]) in any order: one sort, O(n log n). */
  rebuild(ids: readonly string[], scores: ArrayLike<number>): void {
    const order = Array.from({ length: ids.length }, (_, i) => i);
    order.sort((a, b) => (ranksBefore(scores[a], ids[a], scores[b], ids[b]) ? -1 : ranksBefore(scores[b], ids[b], scores[a], ids[a]) ? 1 : 0));
    this.blocks = [];
    for (let i = 0; i < order.length; i += this.half) {
      const chunk = order.slice(i, i + this.half);
      this.blocks.push({ scores: chunk.map((o) => scores[o]), ids: chunk.map((o) => ids[o]) });
    }
    this.count = ids.length;
  }

  clear(): void {
    this.blocks = [];
    this.count = 0;
  }

  /** Every entry, best first (for tests and snapshots). */
  *entries(): IterableIterator<Ranked> {
    for (const b of this.blocks) for (let j = 0; j < b.ids.length; j++) yield { id: b.ids[j], score: b.scores[j] };
  }
}
