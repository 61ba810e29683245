'use strict';
// Live mode: the microphone's PCM goes to the server while it is being recorded, so every slice is
// transcribed as soon as a pause closes it. Chunks carry sequence numbers; the server acknowledges the
// highest one up to which it has everything. Chunks it has not acknowledged stay here and are sent again
// after a reconnect, so a dropped connection loses nothing.
//
//   const stream = new LiveStream(socket, { onEnded: (problem) => … }); // the server ended it early (also
//                                                      // `live_ended {job, error}`: its job was deleted)
//   stream.push(pcm);                                  // every chunk from the recorder, from the first one
//   const job = await stream.open(name, sampleRate);   // throws Error(message) if the server refuses
//   await stream.finish();                             // after the recorder's last chunk: resolves when the
//                                                      // server has it all and has sent the last slice

const IN_FLIGHT = 32; // chunks sent and not yet acknowledged (8 s); the server holds up to 64 out of order
const OPEN_TIMEOUT_MS = 10000;
const MAX_REFUSALS = 50; // refusals in a row without progress: something is wrong that resending cannot fix

export class LiveStream {
  constructor(socket, { onEnded = null } = {}) {
    this.socket = socket;
    this.onEnded = onEnded;
    this.job = null;
    this.key = null;
    this.kept = new Map(); // seq → Uint8Array: every chunk the server has not acknowledged
    this.nextSeq = 0; // the number the next chunk pushed gets
    this.sendFrom = 0; // the next chunk to send
    this.highestSent = -1;
    this.acked = -1;
    this.lastSeq = null; // set by finish(): the Stop button was pressed after this chunk
    this.stopSent = false;
    this.resuming = false;
    this.ended = false;
    this.refusals = 0;
    this.stats = { sent: 0, resent: 0, reconnects: 0 };
    this.whenEnded = new Promise((resolve) => { this.resolveEnded = resolve; });
    this.onConnect = () => this.resume();
    socket.on('connect', this.onConnect);
    // The server ended the recording on its own (its job was deleted): stop at once, say why.
    this.onServerEnd = ({ job, error } = {}) => { if (job && job === this.job) this.end(error || 'ended'); };
    socket.on('live_ended', this.onServerEnd);
  }

  /** Ask the server for a live job; resolves with its id. Chunks pushed before are sent once it opens. */
  open(name, sampleRate) {
    return new Promise((resolve, reject) => {
      if (!this.socket.connected) {
        reject(new Error('the page is not connected to the server'));
        return;
      }
      const request = { name, sample_rate: sampleRate };
      this.socket.timeout(OPEN_TIMEOUT_MS).emit('live_start', request, (err, reply) => {
        if (err || !reply || reply.error) {
          reject(new Error(err ? 'the server did not answer' : (reply && reply.error) || 'no answer'));
          return;
        }
        this.job = reply.job;
        this.key = reply.key;
        this.pump();
        resolve(reply.job);
      });
    });
  }

  /** A chunk from the recorder (Int16Array); kept until the server acknowledges it. */
  push(pcm) {
    if (this.lastSeq !== null) return;
    this.kept.set(this.nextSeq++, new Uint8Array(pcm.buffer, pcm.byteOffset, pcm.byteLength));
    this.pump();
  }

  /** Every chunk the server does not have, in order (for an upload when live mode could not start). */
  unacknowledged() {
    return [...this.kept.keys()].sort((a, b) => a - b)
      .map((seq) => new Int16Array(this.kept.get(seq).slice().buffer));
  }

  /** Stop was pressed (after the recorder delivered its last chunk). */
  finish() {
    if (this.lastSeq === null) this.lastSeq = this.nextSeq - 1;
    this.pump();
    return this.whenEnded;
  }

  /** Stop sending without telling the server (live mode could not start; the recording is uploaded). */
  abandon() {
    this.end(null, false);
  }

  get finishing() { return this.lastSeq !== null && !this.ended; }

  pump() {
    if (!this.job || this.ended || this.resuming || !this.socket.connected) return;
    while (this.sendFrom < this.nextSeq && this.sendFrom - this.acked <= IN_FLIGHT) {
      const seq = this.sendFrom++;
      const pcm = this.kept.get(seq);
      if (!pcm) continue; // acknowledged meanwhile
      if (seq <= this.highestSent) this.stats.resent += 1;
      this.highestSent = Math.max(this.highestSent, seq);
      this.stats.sent += 1;
      const chunk = { job: this.job, key: this.key, seq, pcm };
      this.socket.emit('live_chunk', chunk, (reply) => this.onReply(reply));
    }
    if (this.lastSeq !== null && !this.stopSent && this.sendFrom > this.lastSeq) {
      this.stopSent = true;
      this.socket.emit('live_stop', { job: this.job, key: this.key, last_seq: this.lastSeq },
        (reply) => this.onReply(reply));
    }
  }

  onReply(reply) {
    if (!reply || this.ended) return;
    const progress = this.acknowledge(reply.ack);
    if (reply.finished) {
      this.end(reply.error || null);
      return;
    }
    if (reply.error) { // refused (most likely too far ahead): send again from what the server has
      this.refusals = progress ? 0 : this.refusals + 1;
      if (this.refusals > MAX_REFUSALS) {
        this.end(reply.error);
        return;
      }
      this.sendFrom = Math.min(this.sendFrom, this.acked + 1);
    }
    this.pump();
  }

  acknowledge(ack) {
    if (typeof ack !== 'number' || ack <= this.acked) return false;
    for (let seq = this.acked + 1; seq <= ack; seq++) this.kept.delete(seq);
    this.acked = ack;
    return true;
  }

  /** After a reconnect: learn what the server has, then send the rest. */
  resume() {
    if (!this.job || this.ended) return;
    this.stats.reconnects += 1;
    this.resuming = true;
    const request = { job: this.job, key: this.key };
    this.socket.timeout(OPEN_TIMEOUT_MS).emit('live_resume', request, (err, reply) => {
      this.resuming = false;
      if (err) { // no answer on this connection: the next reconnect tries again
        return;
      }
      if (reply.finished || reply.error) {
        this.acknowledge(reply.ack);
        this.end(reply.error || null);
        return;
      }
      this.acknowledge(reply.ack);
      this.sendFrom = this.acked + 1;
      this.stopSent = Boolean(reply.stopping);
      this.pump();
    });
  }

  end(problem, tell = true) {
    if (this.ended) return;
    this.ended = true;
    this.socket.off('connect', this.onConnect);
    this.socket.off('live_ended', this.onServerEnd);
    this.resolveEnded(problem);
    if (tell && problem && this.onEnded) this.onEnded(problem);
  }
}
