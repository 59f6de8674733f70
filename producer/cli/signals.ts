/**
 * Who handles SIGINT/SIGTERM/SIGHUP in the `jcds` process. By default the first signal
 * stops `--wait` (the jobs go on in the fleet) and a second one exits at once. A command
 * that runs a child process (`jcds worker`, `jcds monitor`) registers a forwarder instead,
 * so the child gets each signal exactly once and drains gracefully.
 */
export type SignalForwarder = (signal: NodeJS.Signals) => void;

let forwarder: SignalForwarder | undefined;

/** Routes signals to `fn` until the returned function is called. */
export function forwardSignals(fn: SignalForwarder): () => void {
  forwarder = fn;
  return () => {
    if (forwarder === fn) forwarder = undefined;
  };
}

/** True when a forwarder took the signal. */
export function dispatchSignal(signal: NodeJS.Signals): boolean {
  if (!forwarder) return false;
  forwarder(signal);
  return true;
}
