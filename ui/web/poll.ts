import { useEffect, useRef } from 'preact/hooks';

/**
 * Calls `tick` now and then every `intervalMs` after the previous call settled, until the
 * component unmounts or `tick` returns false (nothing more will change). Errors are handed to
 * `onError` and polling goes on: a restarting API is a pause, not the end of the page.
 */
export function usePoll(tick: () => Promise<boolean | void>, intervalMs: number, deps: readonly unknown[], onError: (error: unknown) => void): void {
  const latest = useRef(tick);
  latest.current = tick;
  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const loop = async () => {
      let again = true;
      try {
        again = (await latest.current()) !== false;
      } catch (error) {
        if (!stopped) onError(error);
      }
      if (!stopped && again) timer = setTimeout(() => void loop(), intervalMs);
    };
    void loop();
    return () => {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, deps);
}
