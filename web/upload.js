'use strict';
// Sending a recording to the server as a new job. XMLHttpRequest rather than fetch: only it reports upload
// progress.

/**
 * POST a recording (any audio or video file) to /api/jobs (field 'audio').
 * @param {Blob} blob the recording
 * @param {string} name the file name shown for the job
 * @param {(sent: number, total: number) => void} onProgress bytes sent so far
 * @returns {Promise<{ok: boolean, status: number, body: object}>} the server's JSON answer; body.error holds
 *   its message when the upload was refused
 */
export function uploadRecording(blob, name, onProgress) {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', '/api/jobs');
    xhr.responseType = 'text';
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable) onProgress(event.loaded, event.total);
    };
    xhr.upload.onload = () => onProgress(blob.size, blob.size);
    xhr.onload = () => {
      let body;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        body = { error: `the server answered ${xhr.status} ${xhr.statusText} without an explanation` };
      }
      resolve({ ok: xhr.status >= 200 && xhr.status < 300, status: xhr.status, body });
    };
    xhr.onerror = () => resolve({ ok: false, status: 0,
      body: { error: 'the upload did not reach the server (network error): is it still running?' } });
    const form = new FormData();
    form.append('audio', blob, name);
    xhr.send(form);
  });
}
