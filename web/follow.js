'use strict';
// Following playback: while the recording plays, the sentence being said is kept in view; when the person
// scrolls away (wheel, touch, keys, scrollbar), following stops and a "Follow playback" button brings it back.

const $ = (id) => document.getElementById(id);
const QUIET_MS = 1200; // scroll events this soon after the page's own scroll are the page's, not the person's

export class Follow {
  constructor() {
    this.on = true;
    this.ownUntil = 0;
    this.active = false; // something is playing: only then does scrolling away stop following
    window.addEventListener('scroll', () => {
      if (this.active && this.on && performance.now() > this.ownUntil) this.set(false);
    }, { passive: true });
    $('follow').addEventListener('click', () => { this.set(true); this.show(this.last, true); });
  }

  set(on) {
    this.on = on;
    $('follow').hidden = on;
  }

  /** Keep `el` (the sentence being said) in view, if following; `force`: even if it is in view already. */
  show(el, force = false) {
    this.last = el;
    if (!this.on || !el) return;
    const box = el.getBoundingClientRect();
    const bar = $('toolbar').getBoundingClientRect();
    const top = Math.max(0, bar.bottom) + 8;
    if (!force && box.top >= top && box.bottom <= window.innerHeight - 40) return;
    this.ownUntil = performance.now() + QUIET_MS;
    const calm = window.matchMedia('(prefers-reduced-motion: reduce)').matches;
    el.scrollIntoView({ block: 'center', behavior: calm ? 'instant' : 'smooth' });
  }
}
