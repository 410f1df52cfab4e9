/**
 * The controllers a server runs, as one group that can be started and stopped at run time any
 * number of times (what leader election needs: only the leader runs them). Each controller's
 * start() resolves once it has seen every node; stop() leaves no timer and no subscription.
 */
export interface Controller {
  readonly name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export class Controllers {
  private running: Promise<void> | undefined;

  constructor(private readonly all: Controller[]) {}

  get names(): string[] {
    return this.all.map((c) => c.name);
  }

  get isRunning(): boolean {
    return this.running !== undefined;
  }

  /** Start every controller; resolves once each has synced. Idempotent while running. */
  start(): Promise<void> {
    this.running ??= Promise.all(this.all.map((c) => c.start())).then(() => undefined);
    return this.running;
  }

  /** Stop every controller (last started first). Idempotent. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = undefined;
    for (const c of [...this.all].reverse()) await c.stop();
  }
}
