'use strict';
// What kind of file the person chose, from its first bytes: the server's table (server/sniff.py), so a
// file that is no audio is refused here with the server's own sentence, before any of it is sent.
// tests/test_sniff.py checks that both give the same answer for the same bytes.

export const HEAD_BYTES = 512;
const KNOWN = 'WAV, MP3, M4A, AAC, OGG, Opus, FLAC, AIFF, WebM, MP4, MOV or MKV';
const UNPACK = ' (unpack it and upload the recording inside)';

const bytes = (text) => Array.from(text, (c) => c.charCodeAt(0));
const at = (head, offset, text) => bytes(text).every((b, i) => head[offset + i] === b);
const audio = (name) => ({ audio: true, name, refusal: '' });
const notAudio = (what, advice = '') => ({ audio: false, name: what,
  refusal: `this is ${what}, not an audio or video file${advice}: upload a recording (${KNOWN})` });

const IMAGE_BRANDS = ['heic', 'heix', 'hevc', 'heim', 'heis', 'mif1', 'msf1', 'avif', 'avis'];
const ASF = '\x30\x26\xb2\x75\x8e\x66\xcf\x11\xa6\xd9\x00\xaa\x00\x62\xce\x6c';
const OTHER_AUDIO = [['#!AMR', 'AMR'], ['caff', 'CAF'], ['.snd', 'AU'], ['MAC ', "Monkey's Audio"],
  ['wvpk', 'WavPack'], ['TTA1', 'TTA'], ['MPCK', 'Musepack'], ['DSD ', 'DSF'], ['FRM8', 'DSDIFF'],
  ['\x00\x00\x01\xba', 'MPEG program stream']];
const NOT_AUDIO = [['\x89PNG', 'a PNG image', ''], ['\xff\xd8\xff', 'a JPEG image', ''], ['GIF8', 'a GIF image', ''],
  ['BM', 'a BMP image', ''], ['II*\x00', 'a TIFF image', ''], ['MM\x00*', 'a TIFF image', ''],
  ['%PDF', 'a PDF document', ''],
  ['PK\x03\x04', 'a ZIP archive (or a document saved as one, such as .docx)', UNPACK],
  ['\x1f\x8b', 'a gzip archive', UNPACK], ['BZh', 'a bzip2 archive', UNPACK],
  ['\xfd7zXZ\x00', 'an xz archive', UNPACK], ['7z\xbc\xaf\x27\x1c', 'a 7-Zip archive', UNPACK],
  ['Rar!', 'a RAR archive', UNPACK], ['\x28\xb5\x2f\xfd', 'a Zstandard archive', UNPACK],
  ['\x7fELF', 'a program', ''], ['MZ', 'a program', '']];

/**
 * The kind of file that begins with `head` (a Uint8Array of its first HEAD_BYTES bytes, or all of a
 * shorter file).
 * @returns {{audio: boolean, name: string, refusal: string}} `refusal`: the sentence for a file that is no audio
 */
export function sniff(head) {
  if (!head.length) return { audio: false, name: 'an empty file', refusal: 'the file is empty' };
  const four = (text) => at(head, 0, text);
  const eight = (text) => at(head, 8, text);
  if (four('RIFF') && head.length < 12) return audio('WAV');
  if (four('RIFF')) {
    if (eight('WAVE')) return audio('WAV');
    if (eight('AVI ')) return audio('AVI');
    if (eight('WEBP')) return notAudio('a WebP image');
  }
  if ((four('RF64') || four('BW64') || four('RIFX')) && eight('WAVE')) {
    return audio(four('RIFX') ? 'WAV (big-endian)' : 'WAV (RF64)');
  }
  if (four('ID3')) return audio('MP3');
  if (four('OggS')) return audio('Ogg');
  if (four('fLaC')) return audio('FLAC');
  if (four('FORM') && (eight('AIFF') || eight('AIFC'))) return audio('AIFF');
  if (four('\x1a\x45\xdf\xa3')) return audio('Matroska/WebM');
  if (at(head, 4, 'ftyp')) {
    if (IMAGE_BRANDS.some((brand) => eight(brand))) return notAudio('a HEIC/AVIF image');
    return audio('MP4/M4A/MOV');
  }
  if (['moov', 'mdat', 'free', 'wide', 'skip', 'pnot'].some((atom) => at(head, 4, atom))) {
    return audio('QuickTime/MP4');
  }
  if (four(ASF)) return audio('WMA/WMV');
  for (const [magic, name] of OTHER_AUDIO) if (four(magic)) return audio(name);
  if (head[0] === 0x47 && head.length > 188 && head[188] === 0x47) return audio('MPEG transport stream');
  const sync = mpegSync(head);
  if (sync) return audio(sync);
  return notAudioKind(head);
}

/** "MP3" or "AAC" for a raw MPEG audio or ADTS stream, after any leading zero bytes; "" otherwise. */
function mpegSync(head) {
  let start = 0;
  while (start < head.length && head[start] === 0) start += 1;
  if (head.length - start < 2 || head[start] !== 0xff || (head[start + 1] & 0xe0) !== 0xe0) return '';
  const b = head[start + 1];
  const layer = (b >> 1) & 3;
  const version = (b >> 3) & 3;
  if (layer === 0) return (b & 0xf6) === 0xf0 ? 'AAC' : '';
  return version !== 1 ? 'MP3' : '';
}

function notAudioKind(head) {
  for (const [magic, what, advice] of NOT_AUDIO) if (at(head, 0, magic)) return notAudio(what, advice);
  if (at(head, 257, 'ustar')) return notAudio('a tar archive', UNPACK);
  if (isText(head)) return notAudio('a text file');
  const shown = Array.from(head.slice(0, 8), (b) => b.toString(16).padStart(2, '0')).join(' ');
  return { audio: false, name: 'unknown', refusal: 'this is not an audio or video file this server ' +
    `recognises (it begins with the bytes ${shown}): upload a recording (${KNOWN})` };
}

/** UTF-8 (a character cut at the end is allowed) of printable characters and whitespace. */
function isText(head) {
  let text;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(head);
  } catch {
    // a character cut at the end: try without the last 1–3 bytes
    text = null;
    for (let cut = 1; cut <= 3 && text === null; cut += 1) {
      try {
        text = new TextDecoder('utf-8', { fatal: true }).decode(head.slice(0, head.length - cut));
      } catch { /* not yet */ }
    }
    if (text === null) return false;
  }
  text = text.replace(/^\ufeff/, '');
  // Python's str.isprintable(): no control, format, separator (but the space), surrogate or unassigned characters
  return text.length > 0 && !/[^\P{C}\t\r\n\f]|[\p{Zl}\p{Zp}]|[^\P{Zs} ]/u.test(text);
}

/** The verdict for a File or Blob, reading only its first HEAD_BYTES bytes. */
export async function sniffFile(file) {
  return sniff(new Uint8Array(await file.slice(0, HEAD_BYTES).arrayBuffer()));
}
