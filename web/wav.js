'use strict';
// 16-bit PCM mono WAV files built in the page, from the chunks the recorder delivers.

/** A WAV Blob holding the Int16Array chunks back to back at sampleRate (mono, 16-bit). */
export function encodeWav(chunks, sampleRate) {
  const frames = chunks.reduce((n, c) => n + c.length, 0);
  const header = new DataView(new ArrayBuffer(44));
  const text = (offset, s) => {
    for (let i = 0; i < s.length; i++) header.setUint8(offset + i, s.charCodeAt(i));
  };
  text(0, 'RIFF');
  header.setUint32(4, 36 + frames * 2, true);
  text(8, 'WAVE');
  text(12, 'fmt ');
  header.setUint32(16, 16, true);            // size of the fmt chunk
  header.setUint16(20, 1, true);             // PCM
  header.setUint16(22, 1, true);             // mono
  header.setUint32(24, sampleRate, true);
  header.setUint32(28, sampleRate * 2, true); // bytes per second
  header.setUint16(32, 2, true);             // bytes per frame
  header.setUint16(34, 16, true);            // bits per sample
  text(36, 'data');
  header.setUint32(40, frames * 2, true);
  // Int16Array views are little-endian on every platform browsers run on, as WAV wants.
  return new Blob([header, ...chunks], { type: 'audio/wav' });
}
