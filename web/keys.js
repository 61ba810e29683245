'use strict';
// The page's keyboard shortcuts (listed on the page under "Keys"): none of them acts while the person types
// in a box or presses Space or Enter on a button.

import { typing } from './player.js';

/**
 * @param {Record<string, (event: KeyboardEvent) => void>} actions by key ('k', ' ', 'j', 'l', '<', '>', 'n',
 *   '/', 'f')
 */
export function installKeys(actions) {
  document.addEventListener('keydown', (event) => {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey || typing(event)) return;
    if (document.querySelector('dialog[open]')) return;
    const action = actions[event.key];
    if (!action) return;
    event.preventDefault();
    action(event);
  });
}
