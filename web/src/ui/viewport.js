// @ts-check
// Keeps the page inside the visual viewport: when an on-screen keyboard (or pinch zoom) makes the
// visible part of the page smaller than the layout viewport, the app is sized and placed to the
// visible part, so the composer at its bottom stays above the keyboard.

/** @typedef {{height: number, offsetTop: number}} VisibleArea */

/**
 * The CSS variables that fit the app to the visible area: its height and its top.
 * @param {VisibleArea} visible @returns {{'--app-height': string, '--app-top': string}}
 */
export function viewportVars(visible) {
  const height = Math.max(0, Math.round(visible.height));
  const top = Math.max(0, Math.round(visible.offsetTop));
  return { '--app-height': `${height}px`, '--app-top': `${top}px` };
}

/**
 * Follows `window.visualViewport` (where the browser has one) and sets the variables on `el`;
 * returns the function that stops following.
 * @param {HTMLElement} el
 * @param {VisualViewport | null | undefined} [viewport]
 */
export function followVisualViewport(el, viewport = window.visualViewport) {
  if (!viewport) return () => {};
  const vv = viewport;
  const update = () => {
    for (const [name, value] of Object.entries(viewportVars(vv))) el.style.setProperty(name, value);
  };
  vv.addEventListener('resize', update);
  vv.addEventListener('scroll', update);
  update();
  return () => {
    vv.removeEventListener('resize', update);
    vv.removeEventListener('scroll', update);
  };
}
