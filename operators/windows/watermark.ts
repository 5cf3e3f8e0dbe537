/**
 * Event-time watermark with bounded out-of-orderness and an idle advance.
 *
 * watermark = max(event time seen) - maxOutOfOrderness, and, when no event arrived for
 * `idleTimeoutMs` of processing time, at least now - idleTimeoutMs - maxOutOfOrderness, so
 * that windows of a quiet stream still close. It never moves backwards. A window [start, end)
 * fires once the watermark reaches `end`, and stays open for corrections until it reaches
 * `end + allowedLateness`; events for windows past that are late and dropped (counted).
 */
export interface WatermarkOptions {
  maxOutOfOrdernessMs: number;
  idleTimeoutMs: number;
}

export class Watermark {
  private wm: number;
  private lastEventWall = -Infinity;

  constructor(
    private readonly opts: WatermarkOptions,
    initial = -Infinity,
  ) {
    this.wm = initial;
  }

  get value(): number {
    return this.wm;
  }

  /** Advances with the max event time of a batch just processed; `now` is processing time. */
  observe(maxEventTs: number, now: number): number {
    this.lastEventWall = now;
    const candidate = maxEventTs - this.opts.maxOutOfOrdernessMs;
    if (candidate > this.wm) this.wm = candidate;
    return this.wm;
  }

  /** Advances with processing time if the source has been idle long enough; returns true if it moved. */
  idleAdvance(now: number): boolean {
    if (now - this.lastEventWall < this.opts.idleTimeoutMs) return false;
    const candidate = now - this.opts.idleTimeoutMs - this.opts.maxOutOfOrdernessMs;
    if (candidate <= this.wm) return false;
    this.wm = candidate;
    return true;
  }

  /** Marks the source as just active (e.g. a batch of only bad events) without moving event time. */
  touch(now: number): void {
    this.lastEventWall = now;
  }
}
