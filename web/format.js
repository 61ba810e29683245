'use strict';
// Small text helpers shared by the page's modules: times, durations and the words for a slice's state.

/** 75.3 → '1:15'; 3725 → '1:02:05'. With tenths: 12.5 → '0:12.5'. */
export function clock(seconds, tenths = false) {
  const s = Math.max(0, seconds || 0);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = s % 60;
  const sec = tenths ? rest.toFixed(1).padStart(4, '0') : String(Math.floor(rest)).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}

/** A rough length of time in words: 'about 40 s', 'about 3 min'. */
export function roughly(seconds) {
  if (seconds < 1) return 'under a second';
  if (seconds < 90) return `about ${Math.round(seconds)} s`;
  if (seconds < 5400) return `about ${Math.round(seconds / 60)} min`;
  return `about ${(seconds / 3600).toFixed(1)} h`;
}

/** '3 min ago', for the list of past jobs. */
export function ago(epochSeconds) {
  const s = Date.now() / 1000 - epochSeconds;
  if (s < 60) return 'just now';
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return new Date(epochSeconds * 1000).toLocaleDateString();
}

/** The state of a slice in words (never colour alone) and a symbol for its mark: `word` says it all
 * ('done by alpha'); `short` and `who` are its two halves, for a label on two lines ('done', 'by alpha'). */
export function sliceState(slice) {
  const w = slice.worker;
  switch (slice.status) {
    case 'leased': return { word: w ? `on ${w}` : 'on a worker', short: 'working', who: w ? `on ${w}` : '',
      symbol: '◐' };
    case 'done': return { word: w ? `done by ${w}` : 'done', short: 'done', who: w ? `by ${w}` : '',
      symbol: '✓' };
    case 'failed': return { word: 'failed', short: 'failed', who: '', symbol: '✕' };
    default: return { word: 'waiting', short: 'waiting', who: '', symbol: '○' };
  }
}

/** What produced a slice's text ('faster-whisper tiny.en'); '' before a worker has returned it. */
export function sliceEngine(slice) {
  return [slice.engine, slice.model].filter(Boolean).join(' ');
}

export const JOB_STATUS_WORDS = {
  queued: 'Waiting', running: 'Transcribing', done: 'Done', failed: 'Failed',
};
