'use strict';
// One modal dialog for the page's questions ("Delete this job?", "Transcribe this slice again?"): a native
// <dialog>, so the focus is trapped in it, Esc cancels, and the focus goes back where it was when it closes.

const $ = (id) => document.getElementById(id);

/**
 * Ask a question; resolves true when the person confirms, false when they cancel (button, Esc).
 * @param {object} q
 * @param {string} q.title the question, as the dialog's heading
 * @param {string} q.text what happens if they say yes
 * @param {string} q.ok the confirming button's words ("Delete job")
 * @param {boolean} [q.danger] the confirming button is destructive (drawn as such)
 * @param {Node[]} [q.fields] form fields shown between the text and the buttons
 */
export function ask({ title, text, ok, danger = false, fields = [] }) {
  const dialog = $('dialog');
  $('dialog-h').textContent = title;
  $('dialog-text').textContent = text;
  $('dialog-fields').replaceChildren(...fields);
  $('dialog-ok').textContent = ok;
  $('dialog-ok').classList.toggle('danger-solid', danger);
  dialog.returnValue = 'cancel';
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
    dialog.showModal();
    // A destructive question starts on Cancel, so Enter alone never deletes.
    (danger ? $('dialog-cancel') : fields[0]?.querySelector('select, input') || $('dialog-ok')).focus();
  });
}
