import { useLayoutEffect } from 'preact/hooks';

/**
 * Moving to a page puts the focus on its heading, as a screen reader expects. A page that shows
 * "Loading…" first replaces that heading once its data is in, and the focus would fall back to
 * the document: this puts it on the new heading then, unless the user has moved it elsewhere.
 */
export function focusHeading(): void {
  document.querySelector<HTMLElement>('main h1')?.focus();
}

export function useHeadingFocus(loaded: boolean): void {
  useLayoutEffect(() => {
    if (loaded && (document.activeElement === null || document.activeElement === document.body)) focusHeading();
  }, [loaded]);
}
